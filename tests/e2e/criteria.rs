//! Criteria sets the relay publishes reach the phones at their next sync, marked apart
//! from the built-in samples; a set the relay retires takes no new assessments.

use std::process::{Command, Output};

use wardcheck_core::Error;
use wardcheck_core::model::{TemplateKey, sample_templates};

use harness::Relay;

use crate::support::{Phone, relay_behind_proxy, ward_a};

/// Runs `wardcheck-relay admin ARGS` on `relay`'s data folder.
fn admin(relay: &Relay, args: &[&str]) -> Output {
    let out = Command::new(harness::relay_binary())
        .arg("admin")
        .arg("--data")
        .arg(relay.data_dir())
        .args(args)
        .output()
        .expect("the admin command runs");
    assert!(out.status.success(), "{out:?}");
    out
}

#[test]
fn a_published_set_reaches_the_phones_at_their_next_sync_and_a_retired_one_takes_no_assessment() {
    let (relay, _proxy) = relay_behind_proxy();
    let phones = [
        Phone::enrol(&relay, &relay.url, "officer-a1"),
        Phone::enrol(&relay, &relay.url, "officer-a2"),
    ];
    let mut set = sample_templates().remove(1);
    set.version = 2026;
    set.title.en = "Model ward, 2026 (official)".into();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), set.to_json()).unwrap();
    admin(&relay, &["template", "add", &file.path().to_string_lossy()]);
    let key = TemplateKey {
        id: set.id.clone(),
        version: 2026,
    };

    for phone in &phones {
        let report = phone.sync();
        assert_eq!(report.criteria_sets_received, 1, "{report:?}");
        let installed = phone.workspace.installed_templates().unwrap();
        let new = (installed.iter())
            .find(|t| t.template.key() == key)
            .expect("the published set is installed");
        assert!(new.published && !new.sample && !new.retired, "{new:?}");
        assert_eq!(*new.template, set);
        assert_eq!(installed.iter().filter(|t| t.sample).count(), 2);
    }
    // Unchanged: nothing comes again.
    let [a, _b] = phones;
    assert_eq!(a.sync().criteria_sets_received, 0);

    // Retired on the relay: the phones learn it at their next sync, and make no new
    // assessment from it (the samples still do).
    admin(
        &relay,
        &["template", "retire", "--id", &set.id, "--version", "2026"],
    );
    a.sync();
    let installed = a.workspace.installed_templates().unwrap();
    let retired = (installed.iter())
        .find(|t| t.template.key() == key)
        .unwrap();
    assert!(retired.retired, "{retired:?}");
    assert!(matches!(
        a.workspace.create_assessment(&ward_a(), "2026", &key),
        Err(Error::InvalidInput(_))
    ));
    let sample = sample_templates().remove(1).key();
    a.workspace
        .create_assessment(&ward_a(), "2026", &sample)
        .unwrap();
}
