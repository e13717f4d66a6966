//! Phones and a supervisor syncing through a real relay.

use harness::Relay;
use harness::proxy::{Faults, Proxy};
use wardcheck_core::doc::DocumentId;
use wardcheck_core::model::{Action, Status};
use wardcheck_core::testing::jpeg;

use crate::support::{Phone, populate, relay_behind_proxy, template, ward_a, ward_b};

/// SplitMix64, for reproducible random sync orders.
fn shuffled(n: usize, seed: &mut u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        order.swap(i, (z ^ (z >> 31)) as usize % (i + 1));
    }
    order
}

#[test]
fn three_phones_and_a_supervisor_converge_and_a_review_holds() {
    let relay = Relay::start();
    populate(&relay);
    let phones: Vec<Phone> = ["officer-a1", "officer-a2", "officer-a3"]
        .iter()
        .map(|user| Phone::enrol(&relay, &relay.url, user))
        .collect();
    let supervisor = Phone::enrol(&relay, &relay.url, "supervisor");

    // The first phone creates the assessment; the others get it from the relay.
    let id = phones[0]
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    for phone in &phones {
        phone.sync();
    }
    // Offline, everyone works on the same checklist: notes, statuses, photos.
    let mut photos = Vec::new();
    for (n, phone) in phones.iter().enumerate() {
        let ws = &phone.workspace;
        ws.set_note(&id, "c02", &format!("note from phone {n}"))
            .unwrap();
        ws.step(&id, &format!("c0{}", n + 4), Action::Start, None)
            .unwrap();
        let evidence = ws
            .add_photo(
                &id,
                "c03",
                &jpeg(1200, 900, n as u64),
                &format!("photo {n}"),
                None,
            )
            .unwrap();
        photos.push(evidence);
    }
    phones[0]
        .workspace
        .step(&id, "c01", Action::Submit, None)
        .unwrap();
    // They sync in random orders, twice round.
    let mut seed = 7;
    for _ in 0..2 {
        for i in shuffled(phones.len(), &mut seed) {
            phones[i].sync();
        }
    }
    let view = phones[0].workspace.view(&id).unwrap();
    for phone in &phones[1..] {
        assert_eq!(phone.workspace.view(&id).unwrap(), view);
    }
    let c03 = &view
        .criteria
        .iter()
        .find(|c| c.criterion.id == "c03")
        .unwrap()
        .evidence;
    assert_eq!(c03.len(), 3, "a photo was lost");
    for phone in &phones {
        for evidence in &photos {
            // Everyone has everyone's thumbnails; full photos come on demand.
            assert!(phone.workspace.blob(&evidence.thumbnail).unwrap().is_some());
            let photo = wardcheck_core::transport::fetch_photo(
                &phone.workspace,
                &phone.relay,
                &evidence.photo,
            )
            .unwrap();
            evidence.verify(&evidence.device_key, Some(&photo)).unwrap();
        }
    }

    // The supervisor approves c01; phone 2, offline and stale, restarts work on it.
    supervisor.sync();
    supervisor
        .workspace
        .step(&id, "c01", Action::Approve, None)
        .unwrap();
    phones[2]
        .workspace
        .step(&id, "c01", Action::Start, None)
        .unwrap();
    supervisor.sync();
    for phone in &phones {
        phone.sync();
    }
    supervisor.sync();
    for phone in phones.iter().chain([&supervisor]) {
        let c01 = phone.workspace.criterion(&id, "c01").unwrap();
        assert_eq!(
            c01.status,
            Status::Approved,
            "a stale edit undid the review"
        );
    }
}

#[test]
fn an_officer_never_receives_another_wards_assessment() {
    let relay = Relay::start();
    populate(&relay);
    let phone_a = Phone::enrol(&relay, &relay.url, "officer-a1");
    let phone_b = Phone::enrol(&relay, &relay.url, "officer-b1");
    let a = phone_a
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    phone_a
        .workspace
        .set_note(&a, "c01", "ward A only")
        .unwrap();
    phone_a.sync();
    // Ward B's officer creates the same id (ids derive from unit and period) and a new
    // assessment of ward A: the relay shares and accepts neither.
    let b = phone_b
        .workspace
        .create_assessment(&ward_b(), "2025", &template())
        .unwrap();
    let same_as_a = phone_b
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    assert_eq!(same_as_a, a);
    let forged = phone_b
        .workspace
        .create_assessment(&ward_a(), "2026", &template())
        .unwrap();
    let mut report = phone_b.sync();
    report.unavailable.sort();
    let mut expected = vec![a, forged];
    expected.sort();
    assert_eq!(report.unavailable, expected);
    assert_eq!(
        phone_b.workspace.view(&a).unwrap().criteria[0].note,
        "",
        "ward A's data leaked"
    );
    phone_a.sync();
    assert!(!phone_a.workspace.has_document(&forged).unwrap());
    assert!(!phone_a.workspace.has_document(&b).unwrap());
    assert_eq!(
        phone_a.workspace.view(&a).unwrap().criteria[0].note,
        "ward A only"
    );
}

#[test]
fn a_relay_killed_and_restarted_loses_nothing_it_acknowledged() {
    let mut relay = Relay::start();
    populate(&relay);
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let id = phone
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    for n in 0..5 {
        phone
            .workspace
            .set_note(&id, "c02", &format!("draft {n}"))
            .unwrap();
        phone
            .workspace
            .add_photo(&id, "c03", &jpeg(800, 600, n), "", None)
            .unwrap();
        phone.sync();
    }
    relay.kill();
    relay.restart();
    let fresh = Phone::enrol(&relay, &relay.url, "officer-a2");
    fresh.sync();
    assert_eq!(
        fresh.workspace.view(&id).unwrap(),
        phone.workspace.view(&id).unwrap()
    );
}

/// A camera-like JPEG with sensor noise, which compresses badly, like real photos.
fn noisy_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = wardcheck_core::testing::picture(width, height, 3);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for pixel in &mut pixels {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *pixel = pixel.wrapping_add((state % 64) as u8);
    }
    wardcheck_core::testing::encode_jpeg(width, height, &pixels)
}

#[test]
fn a_cut_upload_resumes_and_a_photo_the_relay_has_is_never_sent_again() {
    let (relay, proxy) = relay_behind_proxy();
    let phone = Phone::enrol(&relay, &proxy.url, "officer-a1");
    let id = phone
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    phone.sync();
    // A big, grainy photo: its evidence JPEG is a few hundred KB.
    let camera = noisy_jpeg(2400, 1800);
    let evidence = phone
        .workspace
        .add_photo(&id, "c03", &camera, "", None)
        .unwrap();
    let size = phone
        .workspace
        .blob(&evidence.photo)
        .unwrap()
        .unwrap()
        .len() as u64;
    assert!(size > 150_000, "the evidence is only {size} bytes");
    // Every connection drops after 64 KiB up: the upload must resume, not restart.
    proxy.set_faults(Faults {
        cut_up_after: Some(64 * 1024),
        ..Faults::default()
    });
    let before = proxy.bytes_up();
    phone.sync();
    let sent = proxy.bytes_up() - before;
    assert!(
        proxy.cuts() >= 2,
        "the link dropped only {} times",
        proxy.cuts()
    );
    assert!(phone.workspace.pending_uploads().unwrap().is_empty());
    // Everything sent, headers and document changes included, stays within the photo
    // plus 64 KiB per interruption (plus a little for the rest).
    let budget = size + 64 * 1024 * proxy.cuts() + 32 * 1024;
    assert!(
        sent <= budget,
        "{sent} bytes sent for a {size}-byte photo over {} cuts",
        proxy.cuts()
    );

    // Another phone attaches the same camera picture: the same evidence bytes, which the
    // relay already has, so they are not sent (its thumbnail came with the sync).
    proxy.set_faults(Faults::default());
    let other = Phone::enrol(&relay, &proxy.url, "officer-a2");
    other.sync();
    let again = other
        .workspace
        .add_photo(&id, "c04", &camera, "same scene", None)
        .unwrap();
    assert_eq!(again.photo, evidence.photo);
    let report = other.sync();
    assert!(report.blobs_already_there >= 1, "{report:?}");
    assert_eq!(report.bytes_uploaded, 0);
}

#[test]
fn sync_converges_through_duplicated_frames_and_a_slow_link() {
    let (relay, proxy) = relay_behind_proxy();
    proxy.set_faults(Faults {
        duplicate_frames: true,
        delay: std::time::Duration::from_millis(2),
        ..Faults::default()
    });
    let a = Phone::enrol(&relay, &proxy.url, "officer-a1");
    let b = Phone::enrol(&relay, &proxy.url, "officer-a2");
    let id = a
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    a.workspace.set_note(&id, "c01", "from a").unwrap();
    a.sync();
    b.sync();
    b.workspace.set_note(&id, "c02", "from b").unwrap();
    b.sync();
    a.sync();
    assert_eq!(
        a.workspace.view(&id).unwrap(),
        b.workspace.view(&id).unwrap()
    );
    assert_eq!(a.workspace.view(&id).unwrap().criteria[1].note, "from b");
}

/// A relay behind a proxy, two phones of ward A enrolled through it, and a new
/// assessment on the first, not synced yet.
fn two_phones_and_a_new_assessment() -> (Relay, Proxy, Phone, Phone, DocumentId) {
    let (relay, proxy) = relay_behind_proxy();
    let a = Phone::enrol(&relay, &proxy.url, "officer-a1");
    let b = Phone::enrol(&relay, &proxy.url, "officer-a2");
    let id = a
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    (relay, proxy, a, b, id)
}

/// Every connection through `proxy` dies after `bytes` in either direction.
fn cut_both_ways(proxy: &Proxy, bytes: u64) {
    proxy.set_faults(Faults {
        cut_up_after: Some(bytes),
        cut_down_after: Some(bytes),
        ..Faults::default()
    });
}

#[test]
fn a_link_that_drops_every_few_kilobytes_still_converges() {
    let (_relay, proxy, a, b, id) = two_phones_and_a_new_assessment();
    // Days offline: many edits make a history far bigger than what one connection carries.
    for n in 0..150 {
        a.workspace
            .set_note(
                &id,
                &format!("c{:02}", n % 6 + 1),
                &format!("ghi chú số {n}: đã kiểm tra"),
            )
            .unwrap();
        a.workspace
            .add_comment(
                &id,
                None,
                &format!("comment {n} with some words to make it longer"),
            )
            .unwrap();
    }
    a.workspace
        .add_photo(&id, "c03", &jpeg(1600, 1200, 9), "", None)
        .unwrap();
    // Every connection dies after 24 KiB in either direction.
    cut_both_ways(&proxy, 24 * 1024);
    a.sync();
    b.sync();
    assert!(
        proxy.cuts() >= 3,
        "the link dropped only {} times",
        proxy.cuts()
    );
    assert_eq!(
        a.workspace.view(&id).unwrap(),
        b.workspace.view(&id).unwrap()
    );
    assert_eq!(b.workspace.view(&id).unwrap().comments.len(), 150);
}

#[test]
fn a_relay_killed_in_the_middle_of_a_sync_keeps_what_it_acknowledged() {
    let (mut relay, proxy) = relay_behind_proxy();
    let a = Phone::enrol(&relay, &proxy.url, "officer-a1");
    let id = a
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    a.workspace.set_note(&id, "c01", "acknowledged").unwrap();
    a.sync();
    // A long offline history, sent slowly, and the relay dies in the middle of it.
    for n in 0..600 {
        a.workspace
            .add_comment(
                &id,
                None,
                &format!("offline comment {n}, long enough to take room"),
            )
            .unwrap();
    }
    proxy.set_faults(Faults {
        delay: std::time::Duration::from_millis(25),
        ..Faults::default()
    });
    let connections_before = proxy.connections();
    let result = std::thread::scope(|scope| {
        let sync = scope.spawn(|| wardcheck_core::transport::sync_now(&a.workspace, &a.relay, &()));
        std::thread::sleep(std::time::Duration::from_millis(250));
        relay.kill();
        relay.restart();
        sync.join().unwrap()
    });
    // The phone retried against the restarted relay and finished.
    result.unwrap();
    assert!(
        proxy.connections() > connections_before + 1,
        "no reconnection happened"
    );
    proxy.set_faults(Faults::default());
    // What the relay acknowledged before dying is there.
    let b = Phone::enrol(&relay, &proxy.url, "officer-a2");
    b.sync();
    assert_eq!(
        b.workspace.view(&id).unwrap().criteria[0].note,
        "acknowledged"
    );
    // And nothing of the interrupted sync is missing.
    b.sync();
    assert_eq!(
        b.workspace.view(&id).unwrap(),
        a.workspace.view(&id).unwrap()
    );
    assert_eq!(b.workspace.view(&id).unwrap().comments.len(), 600);
}

#[test]
fn a_new_assessment_crosses_a_link_that_drops_every_8_kib_both_ways() {
    // A new assessment (its template alone is ~20 KB, ~7 KB compressed) and a day's
    // work, never synced: more than one connection can carry as changes. (The fresh
    // phone downloads the relay's compacted snapshot instead, about one connection's
    // worth: `weak_link.rs` cuts those downloads.)
    let (_relay, proxy, a, b, id) = two_phones_and_a_new_assessment();
    for n in 0..40 {
        a.workspace
            .add_comment(&id, None, &format!("nhận xét {n}: đã kiểm tra hồ sơ"))
            .unwrap();
    }
    cut_both_ways(&proxy, 8 * 1024);
    a.sync();
    let cuts_pushing = proxy.cuts();
    // A fresh device fetches it over the same link.
    let fetched = b.sync();
    assert!(cuts_pushing >= 1, "the push never hit the limit");
    assert_eq!(fetched.snapshots_fetched, 1, "{fetched:?}");
    assert_eq!(
        a.workspace.view(&id).unwrap(),
        b.workspace.view(&id).unwrap()
    );
    assert_eq!(b.workspace.view(&id).unwrap().comments.len(), 40);
}

#[test]
fn a_phone_remembers_the_relay_it_met_and_recovers_when_another_answers() {
    let (relay, proxy) = relay_behind_proxy();
    let a = Phone::enrol(&relay, &proxy.url, "officer-a1");
    let b = Phone::enrol(&relay, &proxy.url, "officer-a2");
    let url = a.workspace.enrolment().unwrap().unwrap().relay_url;
    let id = a
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    assert_eq!(a.workspace.relay_peer_id(&url).unwrap(), None);
    a.sync();
    let met = a.workspace.relay_peer_id(&url).unwrap().expect("saved");

    // Known: the next sync's changes go right behind `join`.
    a.workspace.set_note(&id, "c01", "sent ahead").unwrap();
    a.sync();
    // A stale id (another relay answered at this address once): it fails over to waiting
    // for `peer`, and remembers the relay that answered.
    a.workspace
        .save_relay_peer_id(&url, "a-relay-long-gone")
        .unwrap();
    a.workspace.set_note(&id, "c02", "after the move").unwrap();
    a.sync();
    assert_eq!(a.workspace.relay_peer_id(&url).unwrap(), Some(met));
    b.sync();
    let view = b.workspace.view(&id).unwrap();
    assert_eq!(view.criteria[0].note, "sent ahead");
    assert_eq!(view.criteria[1].note, "after the move");
}
