//! Document benchmarks: opening a long-edited assessment and one durable edit.
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
use wardcheck_core::model::{Action, Author, sample_templates};
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

criterion_group!(benches, open, durable_edit);
criterion_main!(benches);
