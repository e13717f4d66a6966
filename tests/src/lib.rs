//! The end-to-end harness: start the real `wardcheck-relay` binary on a free loopback port
//! with a fresh data folder, run its admin commands, kill and restart it, and put a
//! fault-injecting proxy between it and the clients.

pub mod proxy;
pub mod world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The relay binary: `WARDCHECK_RELAY_BIN`, or the one cargo built next to this test.
pub fn relay_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDCHECK_RELAY_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/e2e-<hash>  →  target/<profile>/wardcheck-relay
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join(format!("wardcheck-relay{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --workspace` builds it (or run `cargo build -p wardcheck-relay`)",
        binary.display()
    );
    binary
}

/// A running relay with its own data folder.
pub struct Relay {
    child: Option<Child>,
    data: tempfile::TempDir,
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    port: u16,
}

impl Relay {
    /// Starts a relay on a free port with an empty data folder.
    pub fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut relay = Self {
            child: None,
            data,
            url: String::new(),
            port: 0,
        };
        relay.spawn("127.0.0.1:0");
        relay
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    fn spawn(&mut self, listen: &str) {
        let mut child = Command::new(relay_binary())
            .args(["serve", "--listen", listen, "--data"])
            .arg(self.data.path())
            .env("RUST_LOG", "error")
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
