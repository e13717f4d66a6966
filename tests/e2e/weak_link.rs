//! A phone on a link that drops every few KB (issue 14): everything arrives, and nothing
//! that crossed the link is fetched twice, across `sync` calls and a restart of the app.

use harness::proxy::{Faults, Proxy};
use wardcheck_core::doc::DocumentId;
use wardcheck_core::testing::jpeg;
use wardcheck_core::transport::{self, FetchingDocument, RetryPolicy, SyncReport};

use crate::support::{Phone, metrics, relay_behind_proxy, template, ward_a};

/// Every connection through `proxy` is cut after a number of bytes (both ways counted)
/// drawn from `low..=high`, at 100 kB/s.
fn weak_link(proxy: &Proxy, low: u64, high: u64) {
    proxy.set_faults(Faults {
        cut_link_between: Some((low, high)),
        bytes_per_second: Some(100_000),
        ..Faults::default()
    });
}

/// An app's `sync` call gives up after its second failed attempt at a step, so a call
/// ends many times in the middle of a fetch and the next call must go on from it.
fn give_up_early(phone: &mut Phone) {
    phone.relay = phone.relay.clone().with_retry(RetryPolicy {
        attempts: 2,
        base_delay: std::time::Duration::from_millis(20),
        max_delay: std::time::Duration::from_millis(100),
        ..RetryPolicy::default()
    });
}

/// What a phone's `sync` calls added up to until one finished.
#[derive(Debug, Default)]
struct Calls {
    calls: u32,
    interrupted: u32,
    failed: u32,
    changes_received: u64,
    changes_new: u64,
    change_bytes: u64,
    change_bytes_sent: u64,
    snapshots: usize,
    snapshot_bytes: u64,
    /// What each report said was left to fetch: (bytes held, of about).
    left: Vec<(u64, u64)>,
}

impl Calls {
    fn add(&mut self, report: &SyncReport) {
        self.changes_received += report.changes_received;
        self.changes_new += report.changes_new;
        self.change_bytes += report.change_bytes_received;
        self.change_bytes_sent += report.change_bytes_sent;
        self.snapshots += report.snapshots_fetched;
        self.snapshot_bytes += report.snapshot_bytes_received;
        let sum = |f: fn(&FetchingDocument) -> u64| report.fetching.iter().map(f).sum();
        self.left
            .push((sum(|d| d.bytes_held), sum(|d| d.bytes_total)));
    }
}

/// Calls `sync` on `phone` again after each call that did not finish, as an app does,
/// until one does or `limit` calls were made; `restart_after` calls in, the app restarts.
fn sync_until_done(mut phone: Phone, calls: &mut Calls, limit: u32, restart_after: u32) -> Phone {
    while calls.calls < limit {
        if calls.calls == restart_after {
            phone = phone.restart();
        }
        calls.calls += 1;
        match transport::sync_now(&phone.workspace, &phone.relay, &()) {
            Ok(report) => {
                calls.add(&report);
                if report.interrupted.is_none() && report.thumbnails_not_yet_on_relay == 0 {
                    return phone;
                }
                calls.interrupted += u32::from(report.interrupted.is_some());
            }
            Err(_) => calls.failed += 1,
        }
    }
    panic!("no sync finished in {limit} calls: {calls:?}");
}

/// One phone with a new assessment of `edits` offline edits (notes and comments, half
/// each) and `photos` photos `width` pixels wide (16:10).
fn a_phone_with_a_new_assessment(
    proxy: &Proxy,
    relay: &harness::Relay,
    edits: u32,
    photos: u64,
    width: u32,
) -> (Phone, DocumentId) {
    let a = Phone::enrol(relay, &proxy.url, "officer-a1");
    let id = a
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let criteria: Vec<String> = (a.workspace.view(&id).unwrap().criteria)
        .into_iter()
        .map(|c| c.criterion.id)
        .collect();
    for n in 0..edits {
        if n % 2 == 0 {
            let criterion = &criteria[n as usize / 2 % criteria.len()];
            a.workspace
                .set_note(&id, criterion, &format!("ghi chú số {n}: đã kiểm tra"))
                .unwrap();
        } else {
            a.workspace
                .add_comment(&id, None, &format!("nhận xét số {n}"))
                .unwrap();
        }
    }
    for seed in 0..photos {
        let criterion = &criteria[seed as usize];
        a.workspace
            .add_photo(
                &id,
                criterion,
                &jpeg(width, width / 16 * 10, seed),
                "",
                None,
            )
            .unwrap();
    }
    (a, id)
}

/// A phone pushes a new assessment (through a link cut every `low..=high` bytes if
/// `push_through_cuts`, else a clean one), and a fresh phone of the same ward fetches it
/// through the cut link, its app restarting after its third call: both converge, photos
/// included, and nothing that crossed the link reaches the fetching phone twice. Returns
/// what the fetching phone's calls added up to.
fn push_and_fetch_through_cuts(
    (low, high): (u64, u64),
    push_through_cuts: bool,
    edits: u32,
    photos: u64,
    width: u32,
) -> Calls {
    let (relay, proxy) = relay_behind_proxy();
    let (mut a, id) = a_phone_with_a_new_assessment(&proxy, &relay, edits, photos, width);
    let mut b = Phone::enrol(&relay, &proxy.url, "officer-a2");
    give_up_early(&mut a);
    give_up_early(&mut b);
    let mut pushed = Calls::default();
    if !push_through_cuts {
        a.sync();
    }
    weak_link(&proxy, low, high);
    let a = sync_until_done(a, &mut pushed, 400, u32::MAX);
    if push_through_cuts && pushed.calls > 1 {
        // A call cut short after it wrote changes says so, rather than failing.
        assert!(
            pushed.interrupted > 0 && pushed.change_bytes_sent > 0,
            "{pushed:?}"
        );
    }
    let (connections, cuts, down) = (proxy.connections(), proxy.cuts(), proxy.bytes_down());
    let mut fetched = Calls::default();
    let b = sync_until_done(b, &mut fetched, 400, 3);
    eprintln!(
        "cuts every {low}-{high} B: pushed {pushed:?}; fetched {fetched:?} over {} connections \
         ({} cut), {} bytes down",
        proxy.connections() - connections,
        proxy.cuts() - cuts,
        proxy.bytes_down() - down,
    );
    // The snapshot and the thumbnails (~30 KB through 3-8 KB cuts, ~12 KB through
    // 2-4 KB ones) cross in few connections: a link that cut fewer than three of them
    // tested nothing.
    assert!(
        proxy.cuts() - cuts >= 3,
        "the fetch was cut only {} times",
        proxy.cuts() - cuts
    );
    assert!(
        fetched.calls > 1,
        "the fetch needed no second call: {fetched:?}"
    );

    // Both converge, photos included (thumbnails; full photos come on demand).
    let view = b.workspace.view(&id).unwrap();
    assert_eq!(a.workspace.view(&id).unwrap(), view);
    assert_eq!(view.comments.len(), edits as usize / 2);
    let thumbnails: Vec<_> = view
        .criteria
        .iter()
        .flat_map(|c| c.evidence.iter().map(|e| e.thumbnail))
        .collect();
    assert_eq!(thumbnails.len(), photos as usize);
    for thumbnail in thumbnails {
        let info = b.workspace.blob_info(&thumbnail).unwrap();
        eprintln!(
            "thumbnail of {} bytes",
            info.expect("every thumbnail arrived").size
        );
    }
    // Every change came, and nothing that crossed the link came twice.
    let document = a.workspace.export_document(&id).unwrap();
    let changes = automerge::Automerge::load(&document)
        .unwrap()
        .get_changes(&[])
        .len();
    assert_eq!(fetched.changes_new, changes as u64, "{fetched:?}");
    assert_eq!(fetched.changes_received, fetched.changes_new, "{fetched:?}");
    // The document came as the relay's snapshot, each byte of it once (a cut download
    // went on from where it stopped), then the changes after it.
    let listing = b.workspace.relay_listing(&proxy.url).unwrap();
    let snapshot = (listing.iter().flat_map(|l| &l.documents))
        .find(|listed| listed.id == id)
        .and_then(|listed| listed.snapshot)
        .expect("the relay lists a snapshot of the document");
    assert_eq!(fetched.snapshots, 1, "{fetched:?}");
    assert!(
        fetched.snapshot_bytes <= snapshot.bytes,
        "{fetched:?} of {snapshot:?}"
    );

    // Each report said how far the fetch had come, never less than the one before: what
    // came was kept, across calls and the restart. The last one: nothing left.
    // (Before the listing first came, a report knows of nothing to fetch.)
    let left = &fetched.left;
    assert_eq!(left.last(), Some(&(0, 0)), "{left:?}");
    let going: Vec<(u64, u64)> = (left.iter().copied())
        .skip_while(|&(_, of)| of == 0)
        .take_while(|&(_, of)| of > 0)
        .collect();
    assert!(going.iter().all(|&(held, of)| held <= of), "{left:?}");
    assert!(going.windows(2).all(|w| w[0].0 <= w[1].0), "{left:?}");

    // The phones learnt what to fetch on their sync connections: no listing of its own.
    let metrics = metrics(&relay);
    assert!(!metrics.contains("route=\"/v1/documents\""), "{metrics}");
    fetched
}

#[test]
fn a_fresh_phone_gets_a_big_assessment_through_cuts_every_3_to_8_kb_and_nothing_twice() {
    push_and_fetch_through_cuts((3_000, 8_000), true, 1_000, 3, 2560);
}

/// Below the smallest link a new assessment's push is sure to cross (README): the push
/// goes over a clean link (through 2–4 KB cuts it took 70 to 98 calls in four runs here,
/// and made 400 without finishing in a CI run, 2026-12-07), the fetch through the cuts.
#[test]
fn a_fresh_phone_fetches_through_cuts_every_2_to_4_kb_and_nothing_twice() {
    let fetched = push_and_fetch_through_cuts((2_000, 4_000), false, 300, 1, 640);
    // Calls that ended before the assessment was whole said how much of it had come.
    assert!(
        fetched.left.iter().any(|&(held, of)| 0 < held && held < of),
        "{fetched:?}"
    );
}
