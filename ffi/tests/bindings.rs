//! The phone library as apps use it: bindings generated from the built library, then a
//! field officer's day played in Kotlin on the JVM (the JNA bindings an Android app uses)
//! and in Python, against a real relay; and the Swift bindings checked to be produced.
//!
//! Needs the Kotlin compiler (`npm ci` in `ffi/tests/kotlin`, or `KOTLINC`), JNA
//! (`/usr/share/java/jna.jar` from Debian's `libjna-java`, or `WARDCHECK_JNA_JAR`), `java`
//! and `python3`; `.ci/run` installs them. Without them a test is skipped with a message,
//! except under CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use harness::Relay;
use harness::world::{enrolment_code, populate};
use wardcheck_core::testing::{ExifSpec, jpeg, jpeg_with_exif};

/// `target/<profile>`: the integration test runs from its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_owned()
}

/// The cdylib cargo built for this test, as an app would load it. `cargo test` leaves it
/// in `deps/` (a `cargo build` also copies it up to `target/<profile>/`, but that copy
/// may be older), so `deps/` comes first.
fn built_library() -> PathBuf {
    let name = format!(
        "{}wardcheck_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let profile = profile_dir();
    [profile.join("deps").join(&name), profile.join(&name)]
        .into_iter()
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("{name} is missing from {}", profile.display()))
}

/// The library the Kotlin and Python tests load: [`built_library`], or the build of the
/// same source that `WARDCHECK_FFI_LIBRARY` names (the stripped phone build that
/// `ffi/phone-size.sh` leaves, say; the bindings still come from [`built_library`], whose
/// symbols carry UniFFI's metadata, and their checksums must match the loaded library).
fn library() -> PathBuf {
    std::env::var_os("WARDCHECK_FFI_LIBRARY").map_or_else(built_library, PathBuf::from)
}

/// Kotlin, Swift and Python bindings generated once from [`built_library`], as
/// `ffi/generate-bindings.sh` generates them.
fn bindings() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let utf8 =
            |p: &Path| camino::Utf8PathBuf::from_path_buf(p.to_owned()).expect("a UTF-8 path");
        uniffi::generate(uniffi::GenerateOptions {
            languages: vec![
                uniffi::TargetLanguage::Kotlin,
                uniffi::TargetLanguage::Swift,
                uniffi::TargetLanguage::Python,
            ],
            source: utf8(&built_library()),
            out_dir: utf8(dir.path()),
            config_override: None,
            format: false,
            crate_filter: None,
            metadata_no_deps: true,
        })
        .expect("bindings are generated");
        dir
    })
    .path()
}

/// `Ok(value)`, or `None` after saying why the test is skipped; under CI a failure.
fn prerequisite<T>(test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the {test} test must run under CI, but {why}"
            );
            eprintln!("\n*** SKIPPING the {test} test: {why} ***\n");
            None
        }
    }
}

/// `env_var`'s value as a path, or `default`.
fn path_from(env_var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(env_var).map_or(default, PathBuf::from)
}

/// `path` if it is a file; else why not.
fn file(path: PathBuf, hint: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is missing ({hint})", path.display()))
    }
}

/// A command that answers `--version`.
fn runs(program: &str) -> Result<(), String> {
    match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err(format!("`{program}` does not run")),
    }
}

/// Runs `command` to its end and fails the test, showing its output, if it fails.
fn run(what: &str, command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A relay with the end-to-end tests' wards and users, camera photos, enrolment codes,
/// and the environment that hands them to a Kotlin or Python program.
struct World {
    _relay: Relay,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl World {
    fn new() -> Self {
        let relay = Relay::start();
        populate(&relay);
        let dir = tempfile::tempdir().expect("temp dir");
        let photo = |name: &str, bytes: Vec<u8>| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("photo written");
            path.display().to_string()
        };
        let gps = ExifSpec {
            gps: Some((14.3545, 108.0076)),
            taken_at: Some("2025:03:01 09:15:00"),
            ..ExifSpec::default()
        };
        // A port nothing listens on: bound, then let go.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let work = dir.path().join("work");
        std::fs::create_dir(&work).expect("work dir");
        let env = vec![
            ("WARDCHECK_RELAY_URL", relay.url.clone()),
            ("WARDCHECK_DEAD_RELAY_URL", format!("http://{dead}")),
            ("WARDCHECK_WORK_DIR", work.display().to_string()),
            (
                "WARDCHECK_PHOTO_GPS",
                photo("gps.jpg", jpeg_with_exif(1200, 900, 1, &gps)),
            ),
            (
                "WARDCHECK_PHOTO_PLAIN",
                photo("plain.jpg", jpeg(1600, 1200, 2)),
            ),
            (
                "WARDCHECK_CODE_OFFICER",
                enrolment_code(&relay, "officer-a1"),
            ),
            (
                "WARDCHECK_CODE_COLLEAGUE",
                enrolment_code(&relay, "officer-a2"),
            ),
            (
                "WARDCHECK_CODE_SUPERVISOR",
                enrolment_code(&relay, "supervisor"),
            ),
        ];
        Self {
            _relay: relay,
            dir,
            env,
        }
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn kotlin_plays_a_field_officers_day_against_a_real_relay() {
    let kotlin_dir = manifest_dir().join("tests/kotlin");
    let compiler_home = kotlin_dir.join("node_modules/kotlin-compiler");
    let tools = (|| {
        runs("java")?;
        let kotlinc = file(
            path_from("KOTLINC", compiler_home.join("bin/kotlinc")),
            "run `npm ci` in ffi/tests/kotlin",
        )?;
        let jna = file(
            path_from("WARDCHECK_JNA_JAR", "/usr/share/java/jna.jar".into()),
            "apt-get install libjna-java",
        )?;
        // The coroutines and the standard library come with the compiler.
        let lib = kotlinc
            .parent()
            .and_then(Path::parent)
            .map(|home| home.join("lib"))
            .ok_or("no Kotlin home")?;
        let [coroutines, stdlib] = ["kotlinx-coroutines-core-jvm.jar", "kotlin-stdlib.jar"]
            .map(|jar| file(lib.join(jar), "the Kotlin compiler comes with it"));
        let (coroutines, stdlib) = (coroutines?, stdlib?);
        Ok((kotlinc, jna, coroutines, stdlib))
    })();
    let Some((kotlinc, jna, coroutines, stdlib)) = prerequisite("Kotlin", tools) else {
        return;
    };

    let world = World::new();
    let out = world.dir.path().join("day.jar");
    let classpath = |jars: &[&Path]| std::env::join_paths(jars).expect("a classpath");
    run(
        "kotlinc",
        Command::new(&kotlinc)
            .arg("-nowarn")
            .arg("-cp")
            .arg(classpath(&[&jna, &coroutines]))
            .arg("-d")
            .arg(&out)
            .arg(bindings().join("uniffi/wardcheck/wardcheck.kt"))
            .arg(kotlin_dir.join("FieldOfficerDay.kt")),
    );
    let stdout = run(
        "the Kotlin field officer's day",
        Command::new("java")
            .arg("-cp")
            .arg(classpath(&[&out, &stdlib, &jna, &coroutines]))
            .arg(format!(
                "-Djna.library.path={}",
                library().parent().expect("a folder").display()
            ))
            .arg("FieldOfficerDayKt")
            // Only `jna.library.path`: cargo's `LD_LIBRARY_PATH` could hand JNA another build.
            .env_remove("LD_LIBRARY_PATH")
            .envs(world.env.iter().map(|(k, v)| (k, v))),
    );
    assert!(stdout.contains("field officer's day: ok"), "{stdout}");
}

#[test]
fn python_plays_a_field_officers_day_against_a_real_relay() {
    let Some(()) = prerequisite("Python", runs("python3")) else {
        return;
    };
    let world = World::new();
    // The generated module loads the library from its own folder.
    let module_dir = world.dir.path().join("python");
    std::fs::create_dir(&module_dir).expect("module dir");
    std::fs::copy(
        bindings().join("wardcheck.py"),
        module_dir.join("wardcheck.py"),
    )
    .expect("module copied");
    let lib = library();
    std::fs::copy(&lib, module_dir.join(lib.file_name().expect("a file name")))
        .expect("library copied");
    let stdout = run(
        "the Python field officer's day",
        Command::new("python3")
            .arg(manifest_dir().join("tests/python/field_officer_day.py"))
            .env("PYTHONPATH", &module_dir)
            .envs(world.env.iter().map(|(k, v)| (k, v))),
    );
    assert!(stdout.contains("field officer's day: ok"), "{stdout}");
}

#[test]
fn swift_bindings_are_generated() {
    // Compared without whitespace and backticks: the generator's spacing is no API.
    let squeeze = |text: &str| {
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '`')
            .collect::<String>()
    };
    let swift = squeeze(
        &std::fs::read_to_string(bindings().join("wardcheck.swift")).expect("wardcheck.swift"),
    );
    for api in [
        "public static func open(dir: String) throws -> Workspace",
        "func sync(listener: SyncListener? = nil, handle: SyncHandle? = nil) async throws -> SyncReport",
        "func enroll(relayUrl: String, code: String, deviceName: String) async throws -> EnrolmentInfo",
        "func addPhoto(criterion: String, cameraBytes: Data, caption: String = \"\", location: GeoPoint? = nil) throws -> Evidence",
        "public enum WardcheckError: Swift.Error",
        "case EnrolmentRefused(message: String)",
        "public protocol SyncListener",
    ] {
        assert!(
            swift.contains(&squeeze(api)),
            "wardcheck.swift lacks `{api}`"
        );
    }
    let header =
        std::fs::read_to_string(bindings().join("wardcheckFFI.h")).expect("wardcheckFFI.h");
    assert!(header.contains("uniffi_wardcheck_ffi_fn_constructor_workspace_open"));
    let modulemap =
        std::fs::read_to_string(bindings().join("wardcheckFFI.modulemap")).expect("modulemap");
    assert!(
        modulemap.contains("header \"wardcheckFFI.h\""),
        "{modulemap}"
    );
}
