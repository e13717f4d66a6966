//! The real binary: admin commands, then `serve` on a free port, requests over TCP, and
//! a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wardcheck_core::photo::DeviceKey;

const BIN: &str = env!("CARGO_BIN_EXE_wardcheck-relay");

fn relay(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("WARDCHECK_CONFIG")
        .env_remove("WARDCHECK_LISTEN")
        .env_remove("WARDCHECK_PUBLIC_URL")
        .env_remove("RUST_LOG");
    command
}

fn run(data: &Path, args: &[&str]) -> Output {
    relay(data, args).output().unwrap()
}

fn run_ok(data: &Path, args: &[&str]) -> String {
    let output = run(data, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A running `serve`, killed if the test fails before it stops it.
struct Server {
    child: Child,
    url: String,
    addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = relay(data, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // "wardcheck-relay listening on http://127.0.0.1:PORT (data: DIR)"
        let rest = line
            .strip_prefix("wardcheck-relay listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (url, data_part) = rest.split_once(' ').unwrap();
        assert_eq!(data_part.trim(), format!("(data: {})", data.display()));
        let addr = url.split_once("://").unwrap().1.parse().unwrap();
        assert_ne!(url, "http://127.0.0.1:0");
        Self {
            child,
            url: url.to_owned(),
            addr,
            _stdout: stdout,
        }
    }

    /// SIGTERM, then the exit status (within 10 s).
    fn terminate(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, head, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn enrolment_code(printed: &str) -> String {
    printed
        .split_whitespace()
        .find(|word| {
            let groups: Vec<&str> = word.split('-').collect();
            groups.len() == 4
                && groups.iter().all(|g| {
                    g.len() == 4
                        && g.bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                })
        })
        .unwrap_or_else(|| panic!("no code in {printed:?}"))
        .to_owned()
}

fn json_field(body: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value[field].as_str().unwrap().to_owned()
}

#[test]
fn admin_then_serve_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    run_ok(
        &data,
        &[
            "admin",
            "unit",
            "add",
            "--id",
            "kt",
            "--name",
            "Công an tỉnh Kon Tum",
            "--kind",
            "province",
        ],
    );
    run_ok(
        &data,
        &[
            "admin", "unit", "add", "--id", "kt-city", "--name", "Kon Tum", "--kind", "city",
            "--parent", "kt",
        ],
    );
    run_ok(
        &data,
        &[
            "admin",
            "unit",
            "add",
            "--id",
            "ngo-may",
            "--name",
            "Ngô Mây",
            "--kind",
            "ward",
            "--parent",
            "kt-city",
        ],
    );
    let units = run_ok(&data, &["admin", "unit", "list"]);
    assert!(units.contains("ngo-may") && units.contains("Ngô Mây"));

    // Clear errors.
    let wrong = run(
        &data,
        &[
            "admin", "user", "add", "--id", "x", "--name", "X", "--role", "officer", "--unit",
            "kt-city",
        ],
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("an officer must belong to a ward"));
    let unknown = run(
        &data,
        &[
            "admin", "unit", "add", "--id", "w", "--name", "W", "--kind", "ward", "--parent",
            "nowhere",
        ],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unit \"nowhere\" does not exist"));

    let mut add_user = relay(
        &data,
        &[
            "admin",
            "user",
            "add",
            "--id",
            "officer-a",
            "--name",
            "Officer A",
            "--role",
            "officer",
            "--unit",
            "ngo-may",
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    add_user
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long password\n")
        .unwrap();
    assert!(add_user.wait().unwrap().success());
    let users = run_ok(&data, &["admin", "user", "list"]);
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("officer-a") && l.contains("yes"))
    );

    let printed = run_ok(
        &data,
        &[
            "admin",
            "device",
            "enrol-code",
            "--user",
            "officer-a",
            "--ttl-hours",
            "1",
            "--relay-url",
            "http://relay.example:8080",
        ],
    );
    let code = enrolment_code(&printed);
    assert!(
        printed.contains('█') || printed.contains('▀') || printed.contains('▄'),
        "no QR in {printed}"
    );
    assert!(printed.contains(&format!(
        "wardcheck://enrol?relay=http%3A%2F%2Frelay.example%3A8080&code={code}"
    )));

    let server = Server::start(&data, &[]);
    assert!(server.url.starts_with("http://127.0.0.1:"));
    let (status, _, body) = http(server.addr, "GET", "/healthz", &[], "");
    assert_eq!((status, body.as_str()), (200, "ok"));

    // Enrol over HTTP and use the token.
    let key = DeviceKey::generate().unwrap().public_key().to_string();
    let request =
        serde_json::json!({"code": code, "device_name": "phone", "public_key": key}).to_string();
    let json = [("content-type", "application/json")];
    let (status, _, body) = http(server.addr, "POST", "/v1/enroll", &json, &request);
    assert_eq!(status, 201, "{body}");
    let token = json_field(&body, "token");
    let device = json_field(&body, "device_id");
    let (status, _, body) = http(
        server.addr,
        "GET",
        &format!("/v1/documents?token={token}"),
        &[],
        "",
    );
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, _, _) = http(server.addr, "POST", "/v1/enroll", &json, &request);
    assert_eq!(status, 401, "a code works once");

    // Only this request's connection is open; the earlier ones close a moment after the
    // client has read their answers, which under load can still be in flight.
    let mut metrics = String::new();
    for _ in 0..100 {
        let (status, _, text) = http(server.addr, "GET", "/metrics", &[], "");
        assert_eq!(status, 200);
        metrics = text;
        if metrics.contains("wardcheck_open_connections 1\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        metrics.contains("wardcheck_open_connections 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/v1/enroll",status="201""#),
        "{metrics}"
    );

    // Revoked from another process while the relay runs: refused at once.
    let devices = run_ok(&data, &["admin", "device", "list"]);
    assert!(devices.contains(&device));
    run_ok(&data, &["admin", "device", "revoke", "--device", &device]);
    let bearer = format!("Bearer {token}");
    let (status, _, _) = http(
        server.addr,
        "GET",
        "/v1/documents",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(status, 401);

    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}

/// Fails with a message on standard error, without a panic; returns the message.
fn run_refused(data: &Path, args: &[&str]) -> String {
    let output = run(data, args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

#[test]
fn admin_refuses_names_that_break_its_tables_and_urls_that_make_no_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let province = ["admin", "unit", "add", "--id", "kt", "--kind", "province"];
    run_ok(&data, &[&province[..], &["--name", "Kon Tum"]].concat());
    for name in [
        "Kon Tum\u{1b}[2J",
        "two\nlines",
        "\u{202E}mut noK",
        "\u{2067}isolated",
        &"x".repeat(101),
    ] {
        let args = [
            "admin", "unit", "add", "--id", "w", "--kind", "ward", "--parent", "kt", "--name", name,
        ];
        let stderr = run_refused(&data, &args);
        assert!(stderr.starts_with("error: the unit name "), "{stderr}");
        let args = [
            "admin",
            "user",
            "add",
            "--id",
            "u",
            "--role",
            "supervisor",
            "--unit",
            "kt",
            "--name",
            name,
        ];
        let stderr = run_refused(&data, &args);
        assert!(stderr.starts_with("error: the user name "), "{stderr}");
    }
    assert_eq!(run_ok(&data, &["admin", "unit", "list"]).lines().count(), 2);
    assert_eq!(run_ok(&data, &["admin", "user", "list"]).lines().count(), 1);

    let user = [
        "admin",
        "user",
        "add",
        "--id",
        "sup",
        "--role",
        "supervisor",
        "--unit",
        "kt",
    ];
    run_ok(&data, &[&user[..], &["--name", "Giám sát viên"]].concat());
    let long_url = format!("https://relay.example/{}", "é".repeat(2000));
    let enrol = [
        "admin",
        "device",
        "enrol-code",
        "--user",
        "sup",
        "--relay-url",
    ];
    let stderr = run_refused(&data, &[&enrol[..], &[long_url.as_str()]].concat());
    assert!(
        stderr.starts_with("error: the relay URL must be"),
        "{stderr}"
    );
    let codes: i64 = rusqlite::Connection::open(data.join("relay.sqlite3"))
        .unwrap()
        .query_row("SELECT count(*) FROM enrolment_codes", [], |row| row.get(0))
        .unwrap();
    assert_eq!(codes, 0, "a refused enrolment code was stored");
    let printed = run_ok(&data, &[&enrol[..], &["https://relay.example"]].concat());
    assert!(printed.contains("wardcheck://enrol?relay=https%3A%2F%2Frelay.example&code="));
}

#[test]
fn admin_publishes_lists_and_retires_criteria_sets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let set = dir.path().join("2024.json");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../client-core/templates/model-ward-2024.json"
        ),
        &set,
    )
    .unwrap();
    let set = set.to_str().unwrap();
    let said = run_ok(&data, &["admin", "template", "add", set]);
    assert!(said.starts_with("published model-ward-antt@2024"), "{said}");
    let again = run_ok(&data, &["admin", "template", "add", set]);
    assert!(again.contains("nothing changed"), "{again}");
    let list = ["admin", "template", "list"];
    assert!(run_ok(&data, &list).contains("model-ward-antt@2024  20"));
    let retire = [
        "admin",
        "template",
        "retire",
        "--id",
        "model-ward-antt",
        "--version",
    ];
    assert!(run_ok(&data, &[&retire[..], &["2024"]].concat()).contains("retired"));
    let refused = run_refused(&data, &[&retire[..], &["1999"]].concat());
    assert!(
        refused.contains("model-ward-antt@1999 is not published"),
        "{refused}"
    );
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"id\": 7\n}").unwrap();
    let refused = run_refused(
        &data,
        &["admin", "template", "add", broken.to_str().unwrap()],
    );
    assert!(refused.contains("line 2"), "{refused}");
}

#[test]
fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = wardcheck_core::testing::self_signed_certificate(dir.path()) else {
        return;
    };
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    match Command::new("curl")
        .args(["--silent", "--show-error", "--cacert"])
        .arg(&cert)
        .arg(format!("{}/healthz", server.url))
        .output()
    {
        Ok(output) => {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(output.stdout, b"ok");
        }
        Err(_) => eprintln!("curl is not available; only checked that HTTPS starts"),
    }
    assert!(server.terminate().success());
}
