//! Running node scripts for the tests that drive JavaScript clients: the automerge-repo
//! interop client (`tests/interop/`) and the console's browser test (`tests/console/`);
//! and other outside tools the same way (schemathesis, `api.rs`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `node`, or `WARDCHECK_NODE`.
pub fn node() -> PathBuf {
    std::env::var_os("WARDCHECK_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"))
}

/// Why `node` cannot run `dir`'s scripts, if it cannot: node missing, or the package
/// `module` not installed in `dir/node_modules` (`npm ci` there).
pub fn missing_prerequisite(dir: &Path, module: &str) -> Option<String> {
    let version = Command::new(node())
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    match version {
        Ok(output) if output.status.success() => {}
        _ => return Some(format!("`{}` does not run", node().display())),
    }
    let modules = dir.join("node_modules").join(module);
    if !modules.is_dir() {
        return Some(format!(
            "{} is missing: run `npm ci` in {}",
            modules.display(),
            dir.display()
        ));
    }
    None
}

/// Panics under CI (`CI` set) if `why` says something is missing, so a CI run never
/// skips; elsewhere says what is skipped. Returns whether the test may run.
pub fn may_run(test: &str, why: Option<String>) -> bool {
    let Some(why) = why else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "the {test} must run under CI, but {why}"
    );
    eprintln!("skipping the {test}: {why}");
    false
}

/// What the node (or other) process did.
pub struct NodeRun {
    /// Whether it exited with 0 before the deadline.
    pub success: bool,
    /// What it printed.
    pub stdout: String,
    /// What it logged.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `node dir/script args…` in `dir`, killing it after `deadline`.
pub fn run(dir: &Path, script: &str, args: &[&str], deadline: Duration) -> NodeRun {
    let mut command = Command::new(node());
    command.arg(dir.join(script)).args(args).current_dir(dir);
    run_command(command, deadline)
}

/// Runs `command` (node or another tool the tests drive, such as schemathesis) with no
/// input, killing it after `deadline`.
pub fn run_command(mut command: Command, deadline: Duration) -> NodeRun {
    let started = Instant::now();
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{program} does not start: {err}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    NodeRun {
        success: status.is_some_and(|s| s.success()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

impl NodeRun {
    /// The first line of stdout that is JSON, after checking that the script (`what`)
    /// succeeded; panics with what it printed otherwise.
    pub fn json_line(&self, what: &str) -> serde_json::Value {
        assert!(
            self.success,
            "{what} failed after {:?}\nstdout: {}\nstderr: {}",
            self.elapsed, self.stdout, self.stderr
        );
        self.stdout
            .lines()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("no JSON line from {what}: {}", self.stdout))
    }
}
