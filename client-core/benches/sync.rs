//! Sync benchmark: bytes on the wire and round trips to bring a replica up to date.
//!
//! Run: `cargo bench -p wardcheck-core --bench sync`. Prints a markdown table.
//!
//! Scenario, for k = 10, 100, 1,000 offline edits:
//!
//! 1. A phone creates an assessment (2024 template, 20 criteria) and pushes it to the relay
//!    in one session; it saves the sync state, as `transport::sync_now` does.
//! 2. Offline, the phone makes k edits through the public `Workspace` API, cycling through
//!    the criteria. Per 20 edits (interleaved, so even k = 10 mixes them): 10 notes
//!    (`set_note`), 3 comments, 1 indicator, 5 lifecycle steps (`step`: submit when allowed
//!    and the criterion has its photos, else start; a criterion in progress that lacks
//!    photos gets a photo instead), 1 photo (`Workspace::add_photo` of a 320×240
//!    `testing::jpeg`: the document carries the signed evidence record; the photo's bytes
//!    travel over HTTP, not in sync, and are not counted). The output gives the counts.
//! 3. One in-memory session phone → relay, frames moved as in the crate docs. Measured:
//!    - bytes each way: the sum of the frames' lengths (`Session::take_outgoing`), i.e. the
//!      WebSocket payloads, automerge-repo CBOR envelope included;
//!    - round trips: each time the phone sends a batch and then waits for the relay's
//!      answer (as `sync_now` does: it closes without waiting once the session is settled).
//!      The `join`/`peer` handshake is one of them, unless the phone met the relay before
//!      (it saved the relay's peer id with the sync state): then its first messages go
//!      right behind `join`;
//!    - the new changes alone: as raw change chunks (`Automerge::save_after(heads before
//!      the edits)`) and as one compressed bundle (`Automerge::bundle`, the encoding of a
//!      V2 sync message);
//!    - the whole compressed document: `Workspace::export_document(..).len()` after the edits.
//!
//!    Two variants: the phone resuming from its saved sync state, and without one (a
//!    fresh `SyncState`: a reinstalled app or a lost state).
//! 4. A colleague's phone, which had the document before the edits and kept its sync
//!    state, catches up from the relay: it receives the k edits.
//! 5. A fresh device (empty workspace) fetches the document from the relay: the whole
//!    history; and again over a link that drops every connection after a random
//!    3,000–8,000 bytes (both ways), resuming as one long `transport::sync_now` call does:
//!    what arrived is kept, the sync state saved, the message budget halved after each
//!    drop (a call that ends would also save it for the next). Counted:
//!    the connections and the frames' bytes, those of the frame a drop cut short included
//!    (not the WebSocket upgrade each connection also pays: ~1 KB both ways). Two ways:
//!    by sync messages alone, and as `transport::sync_now` does it, the relay's snapshot
//!    (its compacted document) downloaded with `Range` from what came (each connection's
//!    HTTP headers counted), then a sync for what came after it.
//!
//! Each session is run `RUNS` times against a fresh copy of the relay (bytes are identical
//! each time); the time is the median, with the relay's durable writes (fsync) included.

use std::time::{Duration, Instant};

use automerge::Automerge;
use wardcheck_core::Workspace;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::DocumentId;
use wardcheck_core::model::{Action, Status, sample_templates};
use wardcheck_core::sync::{
    DEFAULT_MESSAGE_BUDGET, MIN_MESSAGE_BUDGET, Session, SyncState, WorkspaceHost,
    wire::PeerMetadata,
};
use wardcheck_core::testing::{jpeg, sample_unit};

const RUNS: usize = 5;
const RELAY: &str = "relay";

/// What one session moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Traffic {
    up: usize,
    down: usize,
    frames_up: usize,
    frames_down: usize,
    round_trips: usize,
    /// Whether the `join`/`peer` handshake took a round trip of its own: it does not for a
    /// phone that met the relay before, whose first messages go right behind `join`.
    handshake_apart: bool,
}

impl Traffic {
    fn total(&self) -> usize {
        self.up + self.down
    }
}

fn workspace(user: &str) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    ws.set_user(user).unwrap();
    (dir, ws)
}

fn sessions() -> (Session, Session) {
    let phone = Session::initiate(
        "phone",
        PeerMetadata {
            storage_id: Some("phone".into()),
            is_ephemeral: false,
        },
    );
    let relay = Session::accept(
        RELAY,
        PeerMetadata {
            storage_id: Some(RELAY.into()),
            is_ephemeral: false,
        },
    );
    (phone, relay)
}

/// One session: the phone syncs `id` from `state` with the relay. Returns the traffic and
/// the phone's sync state at the end.
fn sync(
    phone_ws: &Workspace,
    relay_ws: &Workspace,
    id: DocumentId,
    state: SyncState,
) -> (Traffic, SyncState) {
    let (mut phone, mut relay) = sessions();
    let (mut phone_host, mut relay_host) =
        (WorkspaceHost::new(phone_ws), WorkspaceHost::new(relay_ws));
    // A saved state means an earlier sync, which also saved the relay's peer id (as
    // `transport::sync_now` does).
    let met_before = !state.shared_heads.is_empty();
    if met_before {
        phone.expect_peer(RELAY);
    }
    phone.add_document(id, state, &mut phone_host).unwrap();
    let mut t = Traffic {
        up: 0,
        down: 0,
        frames_up: 0,
        frames_down: 0,
        round_trips: 0,
        handshake_apart: !met_before,
    };
    for _ in 0..1000 {
        let out = phone.take_outgoing();
        for frame in &out {
            t.up += frame.len();
            t.frames_up += 1;
            relay.receive(frame, &mut relay_host).unwrap();
        }
        if phone.is_settled() {
            let (_, state) = phone.states().next().unwrap();
            return (t, state.clone());
        }
        // The phone waits for the relay's answer.
        t.round_trips += 1;
        let back = relay.take_outgoing();
        assert!(!(out.is_empty() && back.is_empty()), "the session is stuck");
        for frame in &back {
            t.down += frame.len();
            t.frames_down += 1;
            phone.receive(frame, &mut phone_host).unwrap();
        }
    }
    panic!("the session never settled");
}

#[derive(Clone, Copy)]
enum Edit {
    Note,
    Comment,
    Indicator,
    Step,
    Photo,
}

/// Per 20 edits: 10 notes, 3 comments, 1 indicator, 5 steps, 1 photo, interleaved so that
/// even k = 10 mixes them.
const EDITS: [Edit; 20] = {
    use Edit::*;
    [
        Note, Step, Note, Comment, Note, Step, Photo, Note, Indicator, Step, //
        Note, Comment, Note, Step, Note, Comment, Note, Step, Note, Note,
    ]
};

#[derive(Default)]
struct Mix {
    notes: usize,
    comments: usize,
    indicators: usize,
    starts: usize,
    submits: usize,
    photos: usize,
}

/// Edit `n` of the offline run (see the module docs for the mix).
fn offline_edit(ws: &Workspace, id: &DocumentId, criteria: &[String], n: usize, mix: &mut Mix) {
    let c = criteria[(n * 7) % criteria.len()].as_str();
    let photo = |mix: &mut Mix| {
        let bytes = jpeg(320, 240, n as u64);
        ws.add_photo(id, c, &bytes, &format!("Ảnh {n}: bảng niêm yết"), None)
            .unwrap();
        mix.photos += 1;
    };
    match EDITS[n % EDITS.len()] {
        Edit::Note => {
            ws.set_note(
                id,
                c,
                &format!(
                    "Ghi chú {n}: trụ sở sạch đẹp, camera an ninh hoạt động, mô hình tự quản."
                ),
            )
            .unwrap();
            mix.notes += 1;
        }
        Edit::Comment => {
            ws.add_comment(
                id,
                Some(c),
                &format!("Đã kiểm tra lần {n}, cần bổ sung biên bản."),
            )
            .unwrap();
            mix.comments += 1;
        }
        Edit::Indicator => {
            let key = ["incidents", "patrols", "meetings"][n % 3];
            ws.set_indicator(id, key, (n % 17) as i64).unwrap();
            mix.indicators += 1;
        }
        Edit::Step => {
            let view = ws.criterion(id, c).unwrap();
            let photos = view.evidence.len() as u32;
            if Action::Submit.allowed_from(view.status) && photos >= view.criterion.min_photos {
                ws.step(id, c, Action::Submit, None).unwrap();
                mix.submits += 1;
            } else if Action::Start.allowed_from(view.status) {
                ws.step(id, c, Action::Start, None).unwrap();
                mix.starts += 1;
            } else {
                assert_eq!(view.status, Status::InProgress);
                photo(mix);
            }
        }
        Edit::Photo => photo(mix),
    }
}

/// The new changes alone: as Automerge saves them incrementally (`save_after`, raw change
/// chunks), and as one compressed bundle (the encoding a V2 sync message uses).
fn changes_bytes(before: &[u8], after: &[u8]) -> (usize, usize) {
    let heads = if before.is_empty() {
        Vec::new()
    } else {
        Automerge::load(before).unwrap().get_heads()
    };
    let after = Automerge::load(after).unwrap();
    let hashes: Vec<_> = after.get_changes(&heads).iter().map(|c| c.hash()).collect();
    let bundle = after.bundle(hashes).unwrap().bytes().len();
    (after.save_after(&heads).len(), bundle)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Runs `session` `RUNS` times (it returns one sync's traffic and time), checks the bytes
/// are the same each time, and returns them with the median time.
fn repeated(mut session: impl FnMut() -> (Traffic, Duration)) -> (Traffic, Duration) {
    let mut traffic = None;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let (t, time) = session();
        times.push(time);
        assert!(traffic.is_none() || traffic == Some(t), "traffic varies");
        traffic = Some(t);
    }
    (traffic.unwrap(), median(times))
}

/// One timed session of `phone_ws` with `relay_ws`, which must end with the same heads.
fn timed_sync(
    phone_ws: &Workspace,
    relay_ws: &Workspace,
    id: DocumentId,
    state: SyncState,
) -> (Traffic, Duration) {
    let started = Instant::now();
    let (traffic, _) = sync(phone_ws, relay_ws, id, state);
    let time = started.elapsed();
    assert_eq!(relay_ws.heads(&id).unwrap(), phone_ws.heads(&id).unwrap());
    (traffic, time)
}

/// Runs a session `RUNS` times, each against a fresh relay holding `relay_doc` (what it had
/// before the offline edits), and checks the bytes are the same each time.
fn measure(
    phone_ws: &Workspace,
    relay_doc: &[u8],
    id: DocumentId,
    state: &SyncState,
) -> (Traffic, Duration) {
    repeated(|| {
        let (_dir, relay_ws) = workspace("supervisor");
        relay_ws.import_document(relay_doc).unwrap();
        timed_sync(phone_ws, &relay_ws, id, state.clone())
    })
}

/// A fresh device fetching the document from a relay holding `relay_doc`.
fn measure_fetch(relay_doc: &[u8], id: DocumentId) -> (Traffic, Duration) {
    let (_relay_dir, relay_ws) = workspace("supervisor");
    relay_ws.import_document(relay_doc).unwrap();
    repeated(|| {
        let (_dir, fresh) = workspace("officer-2");
        timed_sync(&fresh, &relay_ws, id, SyncState::new())
    })
}

/// A colleague's phone that had the document as `shared` (and met the relay then: it kept
/// the sync state) catching up from a relay holding `relay_doc`.
fn measure_catch_up(shared: &[u8], relay_doc: &[u8], id: DocumentId) -> (Traffic, Duration) {
    let (_before_dir, relay_before) = workspace("supervisor");
    relay_before.import_document(shared).unwrap();
    repeated(|| {
        let (_dir, colleague) = workspace("officer-2");
        colleague.import_document(shared).unwrap();
        let (_, state) = sync(&colleague, &relay_before, id, SyncState::new());
        let saved = SyncState::decode(&state.encode()).unwrap();
        let (_relay_dir, relay_ws) = workspace("supervisor");
        relay_ws.import_document(relay_doc).unwrap();
        timed_sync(&colleague, &relay_ws, id, saved)
    })
}

/// What a fetch through a link that keeps dropping moved.
#[derive(Debug, Default)]
struct CutTraffic {
    connections: usize,
    /// Frame bytes both ways, the crossed part of frames a drop cut short included.
    wire: usize,
}

/// A link that drops each connection after a number of bytes (both ways) drawn from
/// `low..=high`: the same cuts every run (xorshift64).
struct CutLink {
    random: u64,
    low: usize,
    high: usize,
}

impl CutLink {
    fn new(low: usize, high: usize) -> Self {
        Self {
            random: 0x2545_f491_4f6c_dd1d,
            low,
            high,
        }
    }

    /// The bytes the next connection carries before it drops.
    fn capacity(&mut self) -> usize {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.low + (self.random % (self.high - self.low + 1) as u64) as usize
    }
}

/// A fresh device fetching the document from a relay holding `relay_doc` by sync
/// messages alone, over `link` (see the module docs).
fn fetch_through_cuts(relay_doc: &[u8], id: DocumentId, link: &mut CutLink) -> CutTraffic {
    let (_relay_dir, relay_ws) = workspace("supervisor");
    relay_ws.import_document(relay_doc).unwrap();
    let (_dir, phone_ws) = workspace("officer-2");
    let mut t = CutTraffic::default();
    sync_through_cuts(&phone_ws, &relay_ws, id, link, &mut t);
    t
}

/// A fresh device fetching the document as the relay's snapshot of it (`relay_doc`, as
/// the relay stores it compacted) over `link`: downloads resumed with `Range`, each
/// connection paying its request and answer headers (those `transport` sends and the
/// relay answers, sizes as on the wire), then a sync for what came after the snapshot.
fn fetch_snapshot_through_cuts(relay_doc: &[u8], id: DocumentId, link: &mut CutLink) -> CutTraffic {
    let (_relay_dir, relay_ws) = workspace("supervisor");
    relay_ws.import_document(relay_doc).unwrap();
    let (_dir, phone_ws) = workspace("officer-2");
    let hash = BlobHash::of(relay_doc);
    let size = relay_doc.len();
    let mut t = CutTraffic::default();
    let mut held = 0;
    while held < size {
        t.connections += 1;
        assert!(t.connections < 1000, "the download makes no progress");
        let mut left = link.capacity();
        let range = if held > 0 {
            format!("range: bytes={held}-\r\n")
        } else {
            String::new()
        };
        let request = format!(
            "GET /v1/documents/{id}/snapshot/{hash} HTTP/1.1\r\nhost: relay.example.vn\r\n\
             authorization: Bearer {}\r\n{range}user-agent: ureq/3.1.2\r\n\
             accept: */*\r\naccept-encoding: gzip\r\n\r\n",
            "t".repeat(43)
        );
        let answer = format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-type: application/octet-stream\r\n\
             etag: \"{hash}\"\r\naccept-ranges: bytes\r\n\
             cache-control: private, max-age=31536000, immutable\r\n\
             content-range: bytes {held}-{}/{size}\r\ncontent-length: {}\r\n\
             date: Mon, 07 Dec 2026 23:00:00 GMT\r\n\r\n",
            size - 1,
            size - held
        );
        for head in [request.len(), answer.len()] {
            let crossed = head.min(left);
            (t.wire, left) = (t.wire + crossed, left - crossed);
        }
        let body = (size - held).min(left);
        (t.wire, held) = (t.wire + body, held + body);
    }
    phone_ws
        .import_snapshot(RELAY, &id, &hash, relay_doc)
        .unwrap();
    sync_through_cuts(&phone_ws, &relay_ws, id, link, &mut t);
    t
}

/// Syncs `phone_ws` with `relay_ws` over `link` until it has the relay's document
/// (`id`), resuming as one long `transport::sync_now` call does, adding to `t`.
fn sync_through_cuts(
    phone_ws: &Workspace,
    relay_ws: &Workspace,
    id: DocumentId,
    link: &mut CutLink,
    t: &mut CutTraffic,
) {
    let mut budget = DEFAULT_MESSAGE_BUDGET;
    loop {
        t.connections += 1;
        assert!(t.connections < 1000, "the fetch makes no progress");
        let capacity = link.capacity();
        let (mut phone, mut relay) = sessions();
        let (mut phone_host, mut relay_host) =
            (WorkspaceHost::new(phone_ws), WorkspaceHost::new(relay_ws));
        phone_host.set_budget(budget);
        relay_host.set_budget(budget);
        let state = phone_ws.sync_state(RELAY, &id).unwrap();
        if state.is_some() {
            phone.expect_peer(RELAY);
        }
        let state = state.map_or_else(SyncState::new, |s| SyncState::decode(&s).unwrap());
        phone.add_document(id, state, &mut phone_host).unwrap();
        let mut left = capacity;
        let mut carry = |frame: &[u8], t: &mut CutTraffic| {
            let crossed = frame.len().min(left);
            t.wire += crossed;
            left -= crossed;
            crossed == frame.len()
        };
        let mut dropped = false;
        'connection: for _ in 0..1000 {
            let out = phone.take_outgoing();
            for frame in &out {
                if !carry(frame, t) {
                    dropped = true;
                    break 'connection;
                }
                relay.receive(frame, &mut relay_host).unwrap();
            }
            if phone.is_settled() {
                break;
            }
            let back = relay.take_outgoing();
            for frame in &back {
                if !carry(frame, t) {
                    dropped = true;
                    break 'connection;
                }
                phone.receive(frame, &mut phone_host).unwrap();
            }
        }
        for (doc, state) in phone.states() {
            phone_ws
                .save_sync_state(RELAY, doc, &state.encode())
                .unwrap();
        }
        if dropped {
            budget = (budget / 2).max(MIN_MESSAGE_BUDGET);
        }
        if phone_ws.has_document(&id).unwrap()
            && phone_ws.heads(&id).unwrap() == relay_ws.heads(&id).unwrap()
        {
            break;
        }
    }
    assert_eq!(phone_ws.view(&id).unwrap(), relay_ws.view(&id).unwrap());
}

struct Row {
    k: String,
    what: &'static str,
    traffic: Traffic,
    time: Duration,
    changes: (usize, usize),
    document: usize,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep it quick
    // there by measuring only the smallest k.
    let quick = !std::env::args().any(|a| a == "--bench");
    let ks: &[usize] = if quick { &[10] } else { &[10, 100, 1000] };
    let template = sample_templates().remove(1).key(); // 2024, 20 criteria
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut mixes = Vec::new();
    let mut cuts = Vec::new();
    for &k in ks {
        let (_p, phone_ws) = workspace("officer-1");
        let (_r, relay_ws) = workspace("supervisor");
        let id = phone_ws
            .create_assessment(&sample_unit(), "2025", &template)
            .unwrap();
        let criteria: Vec<String> = phone_ws
            .view(&id)
            .unwrap()
            .criteria
            .iter()
            .map(|c| c.criterion.id.clone())
            .collect();
        // Shared: pushed to the relay, state saved on the phone.
        let (_, state) = sync(&phone_ws, &relay_ws, id, SyncState::new());
        phone_ws
            .save_sync_state(RELAY, &id, &state.encode())
            .unwrap();
        let shared = relay_ws.export_document(&id).unwrap();

        let mut mix = Mix::default();
        for n in 0..k {
            offline_edit(&phone_ws, &id, &criteria, n, &mut mix);
        }
        let after = phone_ws.export_document(&id).unwrap();
        let changes = changes_bytes(&shared, &after);
        let document = after.len();

        let saved = SyncState::decode(&phone_ws.sync_state(RELAY, &id).unwrap().unwrap()).unwrap();
        let (traffic, time) = measure(&phone_ws, &shared, id, &saved);
        rows.push(Row {
            k: k.to_string(),
            what: "phone → relay, saved sync state",
            traffic,
            time,
            changes,
            document,
        });
        let (traffic, time) = measure(&phone_ws, &shared, id, &SyncState::new());
        rows.push(Row {
            k: k.to_string(),
            what: "phone → relay, no saved state",
            traffic,
            time,
            changes,
            document,
        });
        let (traffic, time) = measure_catch_up(&shared, &after, id);
        rows.push(Row {
            k: k.to_string(),
            what: "colleague's phone catches up, saved sync state",
            traffic,
            time,
            changes,
            document,
        });
        let (traffic, time) = measure_fetch(&after, id);
        rows.push(Row {
            k: k.to_string(),
            what: "fresh device fetches the document",
            traffic,
            time,
            changes: changes_bytes(&[], &after),
            document,
        });
        let cut = fetch_through_cuts(&after, id, &mut CutLink::new(3_000, 8_000));
        let snapshot = fetch_snapshot_through_cuts(&after, id, &mut CutLink::new(3_000, 8_000));
        cuts.push((k, traffic.total(), cut, snapshot, document));
        mixes.push((k, mix, shared.len()));
    }

    println!();
    println!(
        "| k edits | session | round trips | frames ↑/↓ | bytes ↑ | bytes ↓ | wire total | changes: raw / bundle | wire / bundle | whole doc | wire / doc | time (median of {RUNS}) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let t = &r.traffic;
        println!(
            "| {} | {} | {} ({}) | {}/{} | {} | {} | **{}** | {} / {} | {:.2}× | {} | **{:.2}×** | {:.1} ms |",
            r.k,
            r.what,
            t.round_trips,
            if t.handshake_apart {
                "1 of them join/peer"
            } else {
                "join/peer in the first"
            },
            t.frames_up,
            t.frames_down,
            t.up,
            t.down,
            t.total(),
            r.changes.0,
            r.changes.1,
            t.total() as f64 / r.changes.1 as f64,
            r.document,
            t.total() as f64 / r.document as f64,
            r.time.as_secs_f64() * 1e3,
        );
    }
    println!(
        "\nA fresh device fetches the document, clean and through a link cut every \
3,000–8,000 bytes:\n"
    );
    println!("| k edits | fetch | connections | wire bytes | wire / doc |");
    println!("|---:|---|---:|---:|---:|");
    for (k, clean, cut, snapshot, document) in &cuts {
        let ratio = |bytes: usize| bytes as f64 / *document as f64;
        println!(
            "| {k} | clean, sync | 1 | {clean} | {:.2}× |",
            ratio(*clean)
        );
        for (what, t) in [("sync", cut), ("snapshot + sync", snapshot)] {
            println!(
                "| {k} | cut every 3–8 KB, {what} | {} | {} | **{:.2}×** |",
                t.connections,
                t.wire,
                ratio(t.wire)
            );
        }
    }
    println!();
    for (k, m, shared) in &mixes {
        println!(
            "k = {k}: {} notes, {} comments, {} indicators, {} starts, {} submits, {} photos; shared document before the edits {shared} bytes",
            m.notes, m.comments, m.indicators, m.starts, m.submits, m.photos
        );
    }
    println!(
        "\n`changes`: the new changes (for the fetch: the whole history) as raw change chunks \
(`Automerge::save_after(heads before)`) / as one compressed bundle (`Automerge::bundle`); \
`whole doc`: `export_document` after the edits (compacted, compressed)."
    );
    println!("whole run: {:.1} s", started.elapsed().as_secs_f64());
}
