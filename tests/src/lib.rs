//! The end-to-end harness: start the real `wardcheck-relay` binary on a free loopback port
//! with a fresh data folder, run its admin commands, kill and restart it, and put a
//! fault-injecting proxy between it and the clients.

pub mod proxy;
pub mod raw;
pub mod world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The relay binary: `WARDCHECK_RELAY_BIN`, or the one cargo built next to this program
/// (a test in `target/<profile>/deps/`, or the load generator in `target/<profile>/`).
pub fn relay_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDCHECK_RELAY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the program knows its own path");
    let name = format!("wardcheck-relay{}", std::env::consts::EXE_SUFFIX);
    let beside = exe.parent().map(|dir| dir.join(&name));
    let above = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(&name));
    let binary = [beside, above]
        .into_iter()
        .flatten()
        .find(|path| path.exists());
    binary.unwrap_or_else(|| {
        panic!(
            "no {name} next to {}: `cargo test --workspace` builds it (or run \
             `cargo build -p wardcheck-relay`, with `--release` for the load generator)",
            exe.display()
        )
    })
}

/// A running relay with its own data folder.
pub struct Relay {
    child: Option<Child>,
    data: tempfile::TempDir,
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    port: u16,
    /// Environment variables of its process (`WARDCHECK_*` settings).
    env: Vec<(String, String)>,
}

impl Relay {
    /// Starts a relay on a free port with an empty data folder.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts a relay like [`Relay::start`], with these environment variables (settings
    /// such as `WARDCHECK_SYNC_SESSIONS`), kept on restarts.
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), env)
    }

    /// Starts a relay like [`Relay::start`] with `toml` as its config file (`--config`,
    /// see `server/src/config.rs`), kept on restarts.
    pub fn start_with_config(toml: &str) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let file = data.path().join("relay.toml");
        std::fs::write(&file, toml).expect("the config file is written");
        let file = file.to_string_lossy().into_owned();
        Self::start_in(data, &[("WARDCHECK_CONFIG", &file)])
    }

    fn start_in(data: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let mut relay = Self {
            child: None,
            data,
            url: String::new(),
            port: 0,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        relay.spawn("127.0.0.1:0");
        relay
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The relay process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self, listen: &str) {
        let mut child = Command::new(relay_binary())
            .args(["serve", "--listen", listen, "--data"])
            .arg(self.data.path())
            .env("RUST_LOG", "error")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the relay starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let line = lines
                .next()
                .expect("the relay prints where it listens")
                .expect("readable stdout");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not say where it listens"
            );
        };
        // Keep draining stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("a port in the URL");
        self.url = url.trim_end_matches('/').to_owned();
        self.child = Some(child);
    }

    /// Runs `wardcheck-relay admin --data DIR <args>` and returns what it printed.
    pub fn admin(&self, args: &[&str]) -> String {
        let output = Command::new(relay_binary())
            .arg("admin")
            .arg("--data")
            .arg(self.data.path())
            .args(args)
            .output()
            .expect("the admin command runs");
        assert!(
            output.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Kills the relay with SIGKILL: no shutdown, no flushing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data folder.
    pub fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port);
        // The port may take a moment to be free again.
        for _ in 0..50 {
            if std::net::TcpListener::bind(&listen).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spawn(&listen);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}
