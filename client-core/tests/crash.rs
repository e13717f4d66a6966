//! Crash safety: a child process edits a workspace and reports each call that returned;
//! it is killed with SIGKILL at a random moment. Reopening must show every acknowledged
//! edit, a healthy database, and a document that loads.
//!
//! The child is this same binary, started with `WARDCHECK_CRASH_CHILD` set to the
//! workspace folder. The binary has a `main` of its own (`harness = false` in Cargo.toml),
//! so the child is a mode of it, not a test that could pass by doing nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wardcheck_core::model::{TemplateKey, sample_templates};
use wardcheck_core::testing::{jpeg, sample_unit};
use wardcheck_core::{Workspace, WorkspaceConfig};

const CHILD_ENV: &str = "WARDCHECK_CRASH_CHILD";
const PHOTO_EVERY: u64 = 7;

fn template() -> TemplateKey {
    sample_templates().remove(0).key()
}

/// The crash test's name, as `cargo test` filters and lists it.
const TEST_NAME: &str = "killed_at_random_points_loses_nothing_acknowledged";

/// Runs as the child when started as one, else runs the test (unless a `cargo test`
/// filter leaves it out). A failure panics: the exit status is not zero.
fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        crash_child(Path::new(&dir));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{TEST_NAME}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| TEST_NAME.contains(f.as_str())) {
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
        return;
    }
    println!("test {TEST_NAME} ...");
    killed_at_random_points_loses_nothing_acknowledged();
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

/// The child: opens the workspace, then edits until it is killed, printing `ack N` after
/// edit N returns.
fn crash_child(dir: &Path) -> ! {
    let config = WorkspaceConfig {
        // Compact often, so that kills also land in the middle of compactions.
        compact_after_chunks: 8,
        ..WorkspaceConfig::default()
    };
    let ws = Workspace::open_with(dir, config).unwrap();
    ws.set_user("officer-1").unwrap();
    let id = match ws.assessments().unwrap().first() {
        Some(summary) => summary.id,
        None => ws
            .create_assessment(&sample_unit(), "2025", &template())
            .unwrap(),
    };
    let start = ws.view(&id).unwrap().comments.len() as u64;
    let mut out = std::io::stdout().lock();
    for n in start.. {
        if n % PHOTO_EVERY == 0 {
            ws.add_photo(&id, "c05", &jpeg(64, 48, n), &format!("photo {n}"), None)
                .unwrap();
        }
        ws.add_comment(&id, Some("c01"), &format!("edit {n}"))
            .unwrap();
        ws.set_note(&id, "c02", &format!("note after edit {n}"))
            .unwrap();
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
    unreachable!("edits until killed")
}

/// Runs the child for `kill_after`, kills it wherever it is, and returns the last edit it
/// acknowledged.
fn run_and_kill(dir: &Path, kill_after: Duration) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("ack ")?.parse::<u64>().ok())
            .last()
    });
    std::thread::sleep(kill_after);
    // SIGKILL: no destructors, no flushing, like the OS killing the app or a power cut.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap()
}

fn killed_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // A deterministic spread of kill times (xorshift), different every round.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut acknowledged = None;
    for _round in 0..12 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let kill_after = Duration::from_millis(150 + state % 600);
        if let Some(n) = run_and_kill(dir.path(), kill_after) {
            acknowledged = Some(n);
        }
        let Some(last) = acknowledged else { continue };

        let ws = Workspace::open(dir.path()).unwrap();
        ws.integrity_check().unwrap();
        let summaries = ws.assessments().unwrap();
        assert_eq!(summaries.len(), 1);
        let view = ws.view(&summaries[0].id).unwrap();
        let comments: Vec<String> = view.comments.iter().map(|c| c.text.clone()).collect();
        // Every acknowledged edit is there, in order; at most one more (done, not yet
        // acknowledged when the kill came).
        for n in 0..=last {
            assert_eq!(
                comments.get(n as usize),
                Some(&format!("edit {n}")),
                "edit {n} lost"
            );
        }
        assert!(comments.len() as u64 <= last + 2);
        let photos = &view
            .criteria
            .iter()
            .find(|c| c.criterion.id == "c05")
            .unwrap()
            .evidence;
        assert!(photos.len() as u64 > last / PHOTO_EVERY);
        for photo in photos {
            assert!(ws.blob(&photo.photo).unwrap().is_some(), "photo blob lost");
            assert!(
                ws.blob(&photo.thumbnail).unwrap().is_some(),
                "thumbnail blob lost"
            );
        }
    }
    assert!(
        acknowledged.unwrap_or(0) > 20,
        "the child made too few edits to test anything"
    );
}
