//! A small world for the tests: a relay with a province, a city, two wards, officers and
//! a supervisor, and phones (core workspaces) enrolled with it.

use harness::Relay;
use harness::proxy::Proxy;
use wardcheck_core::Workspace;
use wardcheck_core::model::{TemplateKey, Unit, sample_templates};
use wardcheck_core::transport::{self, Relay as RelayClient, RetryPolicy};

/// Ward A: Ngô Mây.
pub const WARD_A: &str = "kontum-ngo-may";
/// Ward B: Trần Hưng Đạo.
pub const WARD_B: &str = "kontum-tran-hung-dao";

/// Sets up units and users on a fresh relay.
pub fn populate(relay: &Relay) {
    relay.admin(&[
        "unit",
        "add",
        "--id",
        "kontum",
        "--name",
        "Công an tỉnh Kon Tum",
        "--kind",
        "province",
    ]);
    relay.admin(&[
        "unit",
        "add",
        "--id",
        "kontum-city",
        "--name",
        "TP Kon Tum",
        "--kind",
        "city",
        "--parent",
        "kontum",
    ]);
    relay.admin(&[
        "unit",
        "add",
        "--id",
        WARD_A,
        "--name",
        "Công an phường Ngô Mây",
        "--kind",
        "ward",
        "--parent",
        "kontum-city",
    ]);
    relay.admin(&[
        "unit",
        "add",
        "--id",
        WARD_B,
        "--name",
        "Công an phường Trần Hưng Đạo",
        "--kind",
        "ward",
        "--parent",
        "kontum-city",
    ]);
    for (user, ward) in [
        ("officer-a1", WARD_A),
        ("officer-a2", WARD_A),
        ("officer-a3", WARD_A),
        ("officer-b1", WARD_B),
    ] {
        relay.admin(&[
            "user", "add", "--id", user, "--name", user, "--role", "officer", "--unit", ward,
        ]);
    }
    relay.admin(&[
        "user",
        "add",
        "--id",
        "supervisor",
        "--name",
        "Supervisor",
        "--role",
        "supervisor",
        "--unit",
        "kontum",
    ]);
}

/// A populated relay, and a proxy in front of it for injecting faults.
pub fn relay_behind_proxy() -> (Relay, Proxy) {
    let relay = Relay::start();
    populate(&relay);
    let proxy = Proxy::start(relay.port());
    (relay, proxy)
}

/// A one-time enrolment code for `user`, read from the admin command's output.
pub fn enrolment_code(relay: &Relay, user: &str) -> String {
    let output = relay.admin(&["device", "enrol-code", "--user", user]);
    output
        .split_whitespace()
        .find(|word| {
            let groups: Vec<&str> = word.split('-').collect();
            groups.len() >= 4
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric()))
        })
        .unwrap_or_else(|| panic!("no enrolment code in {output:?}"))
        .to_owned()
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

    /// Syncs everything, panicking on failure.
    pub fn sync(&self) -> transport::SyncReport {
        transport::sync_now(&self.workspace, &self.relay, &()).unwrap()
    }
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
