//! The supervisors' console in a real browser: phones sync an assessment with photos and
//! leave a conflict made offline; a supervisor, in headless Chromium driven by
//! `tests/console/console.mjs` (npm `playwright-core`, Debian's `/usr/bin/chromium`), signs
//! in, approves one criterion, returns another and settles the conflict; the phone's next
//! sync sees all three.
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and `tests/console/node_modules`
//! (`npm ci` there, as `.ci/run` does). Without them the test is skipped, except under CI
//! (`CI` set), where it fails. Screenshots of every page go to
//! `target/console-screenshots/` of the workspace, or to `WARDCHECK_SCREENSHOTS`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::Relay;
use wardcheck_core::doc::FieldValue;
use wardcheck_core::model::{Action, Status};
use wardcheck_core::photo::GeoPoint;
use wardcheck_core::testing::jpeg;

use crate::node;
use crate::support::{Phone, WARD_A, add_console_supervisor, populate, template, ward_a};

/// The browser part takes ~10 s; the deadline is for a loaded CI machine.
const BROWSER_DEADLINE: Duration = Duration::from_secs(180);

const PASSWORD: &str = "giám sát 2025!";

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn screenshots() -> PathBuf {
    std::env::var_os("WARDCHECK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
        })
}

#[test]
fn a_supervisor_reviews_and_settles_in_the_browser_and_phones_see_it() {
    let mut missing = node::missing_prerequisite(&console_dir(), "playwright-core");
    if missing.is_none() && !chromium().exists() {
        missing = Some(format!(
            "{} is missing: apt-get install chromium",
            chromium().display()
        ));
    }
    if !node::may_run("console browser test", missing) {
        return;
    }
    let relay = Relay::start();
    populate(&relay);
    add_console_supervisor(&relay, "giam-sat", "Giám sát viên tỉnh", PASSWORD);
    relay.admin(&[
        "unit",
        "locate",
        "--id",
        WARD_A,
        "--lat",
        "14.3545",
        "--lon",
        "108.0076",
        "--radius-m",
        "2000",
    ]);

    // A phone syncs the unit's assessment with photos, two criteria submitted.
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let ws = &phone.workspace;
    let id = ws
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let here = GeoPoint::new(14.3550, 108.0080, Some(8.0)).unwrap();
    for (n, criterion) in ["c01", "c02"].into_iter().enumerate() {
        ws.add_photo(
            &id,
            criterion,
            &jpeg(1200, 900, n as u64),
            &format!("Ảnh minh chứng {criterion}"),
            Some(here),
        )
        .unwrap();
        ws.step(&id, criterion, Action::Submit, None).unwrap();
    }
    phone.sync();

    // Two phones, offline, give the same indicator different values.
    let other = Phone::enrol(&relay, &relay.url, "officer-a2");
    other.sync();
    ws.set_indicator(&id, "incidents", 5).unwrap();
    other.workspace.set_indicator(&id, "incidents", 6).unwrap();
    phone.sync();
    other.sync();
    assert_eq!(
        ws.conflicts(&id).unwrap().len(),
        0,
        "not yet merged on the phone"
    );
    phone.sync();
    assert_eq!(
        ws.conflicts(&id).unwrap().len(),
        1,
        "the relay holds both values"
    );

    // The supervisor, in the browser.
    let reason = "Ảnh chưa rõ biển hiệu, đề nghị chụp lại";
    let shots = screenshots();
    let run = node::run(
        &console_dir(),
        "console.mjs",
        &[
            &relay.url,
            "giam-sat",
            PASSWORD,
            &shots.to_string_lossy(),
            reason,
        ],
        BROWSER_DEADLINE,
    );
    let printed = run.json_line("the browser test");
    eprintln!(
        "the browser test took {:?}; screenshots in {}",
        run.elapsed,
        shots.display()
    );
    assert!(printed["screenshots"].as_u64() >= Some(12), "{printed}");
    let settled: FieldValue = serde_json::from_value(printed["settled"].clone()).unwrap();

    // The phone's next sync brings the supervisor's decisions.
    phone.sync();
    let c01 = ws.criterion(&id, "c01").unwrap();
    assert_eq!(c01.status, Status::Approved);
    assert_eq!(c01.review.as_ref().map(|r| r.by.as_str()), Some("giam-sat"));
    let c02 = ws.criterion(&id, "c02").unwrap();
    assert_eq!(c02.status, Status::Returned);
    assert_eq!(c02.review.and_then(|r| r.reason).as_deref(), Some(reason));
    assert!(
        ws.conflicts(&id).unwrap().is_empty(),
        "the conflict is settled"
    );
    let incidents = ws
        .view(&id)
        .unwrap()
        .indicators
        .into_iter()
        .find(|i| i.key == "incidents")
        .unwrap();
    assert_eq!(
        Some(FieldValue::Int(incidents.value.unwrap())),
        Some(settled)
    );
    // The other phone too.
    other.sync();
    assert_eq!(
        other.workspace.criterion(&id, "c01").unwrap().status,
        Status::Approved
    );
    for n in 1..=12 {
        let prefix = format!("{n:02}-");
        let saved = std::fs::read_dir(&shots)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
        assert!(
            saved,
            "screenshot {prefix}* is missing in {}",
            shots.display()
        );
    }
}
