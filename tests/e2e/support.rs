//! A small world for the tests: a relay with a province, a city, two wards, officers and
//! a supervisor, and phones (core workspaces) enrolled with it.

use std::io::Write;
use std::process::{Command, Stdio};

use harness::Relay;
use harness::proxy::Proxy;
pub use harness::world::{WARD_A, WARD_B, enrolment_code, populate};
use wardcheck_core::Workspace;
use wardcheck_core::model::{TemplateKey, Unit, sample_templates};
use wardcheck_core::transport::{self, Relay as RelayClient, RetryPolicy};

/// A populated relay, and a proxy in front of it for injecting faults.
pub fn relay_behind_proxy() -> (Relay, Proxy) {
    let relay = Relay::start();
    populate(&relay);
    let proxy = Proxy::start(relay.port());
    (relay, proxy)
}

/// A phone: a workspace in its own folder, enrolled for `user`.
pub struct Phone {
    pub workspace: Workspace,
    pub relay: RelayClient,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// Enrols a new phone for `user` with the relay at `url` (the relay's or a proxy's).
    pub fn enrol(relay: &Relay, url: &str, user: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::open(dir.path()).unwrap();
        transport::enroll(
            &workspace,
            url,
            &enrolment_code(relay, user),
            &format!("{user}'s phone"),
        )
        .unwrap();
        let relay = RelayClient::enrolled(&workspace)
            .unwrap()
            .with_retry(RetryPolicy {
                attempts: 30,
                base_delay: std::time::Duration::from_millis(20),
                max_delay: std::time::Duration::from_millis(500),
                ..RetryPolicy::default()
            });
        Self {
            workspace,
            relay,
            _dir: dir,
        }
    }

    /// Syncs everything, panicking on failure or if the sync did not finish.
    pub fn sync(&self) -> transport::SyncReport {
        let report = transport::sync_now(&self.workspace, &self.relay, &()).unwrap();
        assert_eq!(report.interrupted, None, "the sync did not finish");
        report
    }

    /// The app restarted: its workspace closed and opened again from its folder.
    pub fn restart(self) -> Self {
        let Self {
            workspace,
            relay,
            _dir,
        } = self;
        drop(workspace);
        let workspace = Workspace::open(_dir.path()).unwrap();
        Self {
            workspace,
            relay,
            _dir,
        }
    }
}

/// The relay's `/metrics` page.
pub fn metrics(relay: &Relay) -> String {
    ureq::get(&format!("{}/metrics", relay.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Ward A as the documents name it.
pub fn ward_a() -> Unit {
    Unit {
        id: WARD_A.into(),
        name: "Công an phường Ngô Mây".into(),
        city: "Kon Tum".into(),
        province: "Kon Tum".into(),
    }
}

/// Ward B as the documents name it.
pub fn ward_b() -> Unit {
    Unit {
        id: WARD_B.into(),
        name: "Công an phường Trần Hưng Đạo".into(),
        ..ward_a()
    }
}

/// The 2024 template (20 criteria).
pub fn template() -> TemplateKey {
    sample_templates().remove(1).key()
}

/// Adds a supervisor of the province (`kontum`) with a console password, given to the
/// admin command on its standard input.
pub fn add_console_supervisor(relay: &Relay, id: &str, name: &str, password: &str) {
    let mut child = Command::new(harness::relay_binary())
        .arg("admin")
        .arg("--data")
        .arg(relay.data_dir())
        .args(["user", "add", "--id", id, "--name", name])
        .args([
            "--role",
            "supervisor",
            "--unit",
            "kontum",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the admin command runs");
    writeln!(child.stdin.take().expect("piped stdin"), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}
