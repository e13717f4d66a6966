//! Document benchmarks: opening a long-edited assessment, one durable edit, a phone
//! taking in a round of its colleagues' edits, and the relay's change-policy check of a
//! phone's message.
//!
//! Run: `cargo bench -p wardcheck-core --bench documents`. Besides criterion's timings it
//! prints the heap used to open the 10,000-change document (peak and retained), counted by
//! a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use wardcheck_core::doc::Assessment;
use wardcheck_core::model::{Action, Author, Role, sample_templates};
use wardcheck_core::policy::{self, Writer};
use wardcheck_core::testing::{sample_unit, signed_evidence};
use wardcheck_core::{Workspace, WorkspaceConfig};

/// Counts live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CHANGES: usize = 10_000;

/// An assessment after `CHANGES` edits by four officers and a supervisor: notes, photos,
/// captions, lifecycle steps and reviews, indicators and comments.
fn long_edited() -> (Assessment, Vec<Vec<u8>>) {
    let template = Arc::new(sample_templates().remove(0));
    let ids: Vec<String> = template.criteria.iter().map(|c| c.id.clone()).collect();
    let mut doc = Assessment::create(&sample_unit(), "2025", template).unwrap();
    let officers: Vec<Author> = (0..4)
        .map(|n| Author::new(format!("officer-{n}"), format!("phone-{n}")))
        .collect();
    let supervisor = Author::new("supervisor", "console");
    let mut chunks = vec![doc.save()];
    let mut made = 0;
    let mut n = 0u64;
    while made < CHANGES {
        n += 1;
        let c = &ids[(n as usize * 7) % ids.len()];
        let by = &officers[n as usize % officers.len()];
        let heads = doc.heads();
        let _ = match n % 10 {
            0..=3 => doc.set_note(
                c,
                &format!("Ghi chú {n}: trụ sở, camera, mô hình tự quản."),
                by,
                n as i64,
            ),
            4 => doc.add_evidence(c, &signed_evidence(n, by), by, n as i64),
            5 => doc.add_comment(Some(c), &format!("comment {n}"), by, n as i64),
            6 => doc.set_indicator("incidents", n as i64 % 13, by, n as i64),
            7 => doc.step(c, Action::Submit, None, by, n as i64).map(drop),
            8 => doc
                .step(c, Action::Return, Some("thiếu ảnh"), &supervisor, n as i64)
                .map(drop),
            _ => doc.step(c, Action::Start, None, by, n as i64).map(drop),
        };
        if doc.heads() != heads {
            chunks.push(doc.save_after(&heads));
            made += 1;
        }
    }
    (doc, chunks)
}

fn open(c: &mut Criterion) {
    let (doc, chunks) = long_edited();
    let snapshot = doc.save();
    println!(
        "10,000-change assessment: snapshot {} bytes; as {} separate chunks {} bytes",
        snapshot.len(),
        chunks.len(),
        chunks.iter().map(Vec::len).sum::<usize>()
    );

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let opened = Assessment::load(&snapshot).unwrap();
    let view = opened.view().unwrap();
    println!(
        "open + view heap: peak {:.1} MiB, retained {:.1} MiB ({})",
        (PEAK.load(Ordering::Relaxed) - before) as f64 / 1048576.0,
        (LIVE.load(Ordering::Relaxed) - before) as f64 / 1048576.0,
        view.progress
    );
    drop((view, opened));

    let dir = tempfile::tempdir().unwrap();
    let id = {
        let ws = Workspace::open(dir.path()).unwrap();
        let id = ws.import_document(&snapshot).unwrap();
        ws.view(&id).unwrap(); // caches the view
        id
    };
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let ws = Workspace::open(dir.path()).unwrap();
    let view = ws.view(&id).unwrap();
    println!(
        "workspace open + cached view heap: peak {:.1} MiB, retained {:.1} MiB",
        (PEAK.load(Ordering::Relaxed) - before) as f64 / 1048576.0,
        (LIVE.load(Ordering::Relaxed) - before) as f64 / 1048576.0,
    );
    drop((view, ws));

    let mut group = c.benchmark_group("open 10k-change assessment");
    group.sample_size(10);
    group.bench_function("compacted snapshot: load + view", |b| {
        b.iter(|| {
            Assessment::load(black_box(&snapshot))
                .unwrap()
                .view()
                .unwrap()
        })
    });
    group.bench_function("uncompacted 10k chunks: load + view", |b| {
        b.iter(|| {
            let mut doc = automerge::Automerge::load(&chunks[0]).unwrap();
            for chunk in &chunks[1..] {
                doc.load_incremental(chunk).unwrap();
            }
            Assessment::from_automerge(doc).unwrap().view().unwrap()
        })
    });
    group.bench_function("workspace: open folder + view (view cache current)", |b| {
        b.iter(|| Workspace::open(dir.path()).unwrap().view(&id).unwrap())
    });
    group.finish();
}

fn durable_edit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open_with(dir.path(), WorkspaceConfig::default()).unwrap();
    ws.set_user("officer-1").unwrap();
    let key = sample_templates().remove(0).key();
    let id = ws.create_assessment(&sample_unit(), "2025", &key).unwrap();
    let mut n = 0u64;
    let mut group = c.benchmark_group("durable edit");
    group.sample_size(50);
    group.bench_function("set_note (committed, fsynced)", |b| {
        b.iter(|| {
            n += 1;
            ws.set_note(&id, "c01", &format!("note {n}")).unwrap()
        })
    });
    group.finish();
}

/// Officers of one ward, as in the load benchmark (`tests/load/`).
const WARD_OFFICERS: usize = 20;

/// A ward's assessment after `rounds` rounds in which each of `WARD_OFFICERS` phones made
/// one edit (a note and a comment, two changes) and synced: every phone's replica, all
/// equal.
fn ward_after_rounds(rounds: usize) -> Vec<Assessment> {
    let template = Arc::new(sample_templates().remove(1));
    let mut merged = Assessment::create(&sample_unit(), "2025", template).unwrap();
    let mut phones: Vec<Assessment> = (0..WARD_OFFICERS).map(|_| merged.clone()).collect();
    for phone in &mut phones {
        phone.set_actor(automerge::ActorId::random());
    }
    for round in 0..rounds {
        for (n, phone) in phones.iter_mut().enumerate() {
            ward_edit(phone, n, round);
            merged.merge(phone).unwrap();
        }
        for phone in &mut phones {
            phone.merge(&merged).unwrap();
        }
    }
    phones
}

/// Phone `n`'s edit in `round`: a note on one of the template's criteria and a comment.
fn ward_edit(phone: &mut Assessment, n: usize, round: usize) {
    let template = phone.template().clone();
    let criterion = &template.criteria[n % template.criteria.len()].id;
    let by = Author::new(format!("officer-{n}"), format!("phone-{n}"));
    let text = format!("phone {n}, round {round}: đã kiểm tra");
    let at = (round * WARD_OFFICERS + n) as i64;
    phone.set_note(criterion, &text, &by, at).unwrap();
    phone.add_comment(None, &text, &by, at).unwrap();
}

/// A phone syncing after a round: it takes in its 19 colleagues' 38 new changes, sent as
/// the relay sends a catch-up (one compressed bundle). This is most of what a phone does
/// per sync in the load benchmark.
fn colleagues_round(c: &mut Criterion) {
    const ROUNDS: usize = 3;
    let mut phones = ward_after_rounds(ROUNDS);
    let before = phones[0].heads();
    let mut relay = phones[0].clone();
    for (n, phone) in phones.iter_mut().enumerate().skip(1) {
        ward_edit(phone, n, ROUNDS);
        relay.merge(phone).unwrap();
    }
    let new: Vec<_> = relay
        .automerge()
        .get_changes_meta(&before)
        .into_iter()
        .map(|change| change.hash)
        .collect();
    let bundle = relay.automerge().bundle(new.iter().copied()).unwrap();
    let bytes = bundle.bytes().to_vec();
    println!(
        "a ward of {WARD_OFFICERS} phones after {ROUNDS} rounds: {} changes; a round of \
         colleagues' edits: {} changes, {} bytes as a bundle",
        relay.automerge().get_changes_meta(&[]).len(),
        new.len(),
        bytes.len()
    );
    let phone = &phones[0];
    let mut group = c.benchmark_group("a phone takes in its colleagues' round");
    group.bench_function("apply the catch-up bundle", |b| {
        b.iter_batched(
            || phone.clone(),
            |mut phone| black_box(phone.apply(&bytes).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The relay's check of a phone's sync message (the change policy over its new changes):
/// a note and a comment, on a ward's young assessment and on the 10,000-change one.
fn policy_check(c: &mut Criterion) {
    let young = ward_after_rounds(3).remove(0);
    let (old, _) = long_edited();
    let mut group = c.benchmark_group("the relay checks a phone's 2 new changes");
    for (name, doc) in [
        ("170-change assessment", young),
        ("10k-change assessment", old),
    ] {
        let before = doc.heads();
        let mut after = doc.clone();
        after.set_actor(automerge::ActorId::random());
        ward_edit(&mut after, 0, 99);
        let writer = Writer {
            user: "officer-0",
            role: Role::Officer,
        };
        policy::check(&after, &before, &writer).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| policy::check(black_box(&after), &before, &writer).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, open, durable_edit, colleagues_round, policy_check);
criterion_main!(benches);
