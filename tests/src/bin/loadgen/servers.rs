//! The servers under load, each a separate process on 127.0.0.1 with a fresh data folder:
//! our relay (with units, users and one enrolled device per simulated device), and
//! automerge-repo's node sync server (`tests/load/sync-server.mjs`, no accounts).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::Relay;
use wardcheck_core::model::Unit;
use wardcheck_core::photo::DeviceKey;
use wardcheck_relay::Role;
use wardcheck_relay::admin::{self, AdminError};
use wardcheck_relay::store::UnitKind;

/// Setting a server up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An admin step on the relay's data folder.
    #[error("relay admin: {0}")]
    Admin(#[from] AdminError),
    /// Enrolling a device over HTTP.
    #[error("enrolment: {0}")]
    Enrol(String),
    /// The node server: missing, or it did not start.
    #[error("node sync server: {0}")]
    Node(String),
}

/// The relay's province and city above the load test's wards.
const PROVINCE: &str = "load";
const CITY: &str = "load-city";

/// The wards' units, as the documents name them.
pub fn wards(count: usize) -> Vec<Unit> {
    (0..count)
        .map(|n| Unit {
            id: format!("load-ward-{n:03}"),
            name: format!("Công an phường {n}"),
            city: "Load City".into(),
            province: "Load Province".into(),
        })
        .collect()
}

/// Per-address bounds high enough for a thousand phones on one address.
const PER_ADDRESS_BOUNDS_OFF: &str =
    "connections_per_address = 1000000\nenrol_per_minute = 1000000\n";

/// Starts a relay and enrols `devices_per_ward` devices in each ward (one officer per
/// ward). Returns the relay and each device's WebSocket URL, ward by ward.
pub fn start_relay(
    wards: &[Unit],
    devices_per_ward: usize,
) -> Result<(Relay, Vec<String>), SetupError> {
    // Every simulated phone connects (and enrols) from 127.0.0.1, which the relay's bounds
    // per client address would otherwise count as one client.
    let relay = Relay::start_with_config(PER_ADDRESS_BOUNDS_OFF);
    let store = admin::open_store(relay.data_dir())?;
    admin::add_unit(&store, PROVINCE, "Load Province", UnitKind::Province, None)?;
    admin::add_unit(&store, CITY, "Load City", UnitKind::City, Some(PROVINCE))?;
    let now = now_ms();
    let mut codes = Vec::new();
    for ward in wards {
        let officer = format!("{}-officer", ward.id);
        admin::add_unit(&store, &ward.id, &ward.name, UnitKind::Ward, Some(CITY))?;
        admin::add_user(&store, &officer, &officer, Role::Officer, &ward.id, None)?;
        for _ in 0..devices_per_ward {
            let code =
                admin::enrol_code(&store, &officer, Duration::from_secs(3600), &relay.url, now)?;
            codes.push(code.code);
        }
    }
    let tokens = enrol_all(&relay.url, &codes)?;
    let ws = relay.url.replacen("http://", "ws://", 1);
    let urls = tokens
        .into_iter()
        .map(|token| format!("{ws}/v1/sync?token={token}"))
        .collect();
    Ok((relay, urls))
}

/// Enrols one device per code over HTTP, a few at a time; the tokens, in order.
fn enrol_all(base: &str, codes: &[String]) -> Result<Vec<String>, SetupError> {
    let tokens = Mutex::new(vec![String::new(); codes.len()]);
    let next = Mutex::new(0usize);
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().unwrap_or_else(|p| p.into_inner());
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(code) = codes.get(index) else { return };
                    match enrol(base, code, index) {
                        Ok(token) => {
                            tokens.lock().unwrap_or_else(|p| p.into_inner())[index] = token
                        }
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(tokens.into_inner().unwrap_or_else(|p| p.into_inner())),
    }
}

fn enrol(base: &str, code: &str, index: usize) -> Result<String, SetupError> {
    let key = DeviceKey::generate().map_err(|e| SetupError::Enrol(e.to_string()))?;
    let body = serde_json::json!({
        "code": code,
        "device_name": format!("load device {index}"),
        "public_key": key.public_key().to_string(),
    });
    let mut response = ureq::post(format!("{base}/v1/enroll"))
        .send_json(&body)
        .map_err(|e| SetupError::Enrol(e.to_string()))?;
    let answer: serde_json::Value = response
        .body_mut()
        .read_json()
        .map_err(|e| SetupError::Enrol(e.to_string()))?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SetupError::Enrol("no token in the answer".into()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// automerge-repo's node sync server, running.
pub struct NodeServer {
    child: Child,
    _data: tempfile::TempDir,
    /// Its WebSocket URL.
    pub url: String,
}

/// The folder with `sync-server.mjs` and its `node_modules`.
fn node_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("load")
}

impl NodeServer {
    /// Starts `node tests/load/sync-server.mjs` on a free port with an empty storage folder.
    pub fn start() -> Result<Self, SetupError> {
        let folder = node_folder();
        if !folder.join("node_modules").exists() {
            return Err(SetupError::Node(format!(
                "run `npm ci --ignore-scripts` in {} first",
                folder.display()
            )));
        }
        let data = tempfile::tempdir().map_err(|e| SetupError::Node(e.to_string()))?;
        let mut child = Command::new("node")
            .arg(folder.join("sync-server.mjs"))
            .arg("0")
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| SetupError::Node(format!("cannot run node: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| SetupError::Node("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                return Err(SetupError::Node("exited before listening".into()));
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().replacen("http://", "ws://", 1);
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            _data: data,
            url,
        })
    }

    /// The node process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's memory as `/proc/<pid>/status` tells it: (peak, current) resident set in
/// KiB; `None` where there is no such file (not Linux, or the process is gone).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}
