//! `loadgen`: many simulated devices syncing assessments with a sync server on loopback,
//! measured; the wardcheck relay and automerge-repo's node sync server under the same
//! load, side by side.
//!
//! ```sh
//! tests/load/run.sh                      # builds, installs the node server, 1,000 devices
//! cargo run --release -p wardcheck-e2e --bin loadgen -- --devices 20 --servers relay
//! ```
//!
//! Each run starts the server afresh (a separate process, fresh data folder). The devices
//! are spread evenly over `--wards` wards, one assessment each (2024 template, 20
//! criteria). Every device creates the ward's assessment itself (the deterministic first
//! change: the same bytes on every device); the first device of each ward pushes it
//! (not measured). Then all devices at once, each `--rounds` times: one edit (a note on
//! its criterion and a comment), then a sync over a new WebSocket connection, as a phone's
//! `sync_now` does (fresh sync state, `join`/`peer`, sync messages until both sides have
//! the same heads). When every device is done, each syncs once more and checks that it
//! has every comment of every device of its ward.
//!
//! With `--rate R` the syncs arrive instead as an open-loop load of R syncs per second
//! (exponential gaps, the same seeded schedule for every server and run), each by the
//! next device in a fixed shuffled order: phones coming back online one by one rather
//! than all in the same instant. Whether the server keeps up or not, the syncs keep
//! arriving on schedule.
//!
//! Measured: per sync, the time from its first sync message (right after `peer`) to
//! being in sync (*sync*), and from opening the TCP connection (*connect + sync*; under
//! `--rate`, from the sync's scheduled arrival, so a device still busy with its previous
//! sync counts the wait);
//! throughput is the measured syncs over the wall time of the measured phase; the
//! server's peak resident memory (`VmHWM`) after the run. With `--runs` > 1 the table
//! shows the median of the runs for each figure.

mod device;
mod servers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ActorId;
use clap::{Parser, ValueEnum};
use device::{Device, SyncError, Timing, comment_text};
use servers::{NodeServer, SetupError, rss_kib, start_relay, wards};
use wardcheck_core::doc::{Assessment, DocumentId};
use wardcheck_core::model::{Author, sample_templates};

/// The period of every assessment.
const PERIOD: &str = "2025";

#[derive(Debug, Parser)]
#[command(about = "Simulated devices syncing with the relay and automerge-repo's node server")]
struct Args {
    /// Simulated devices.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Wards, one assessment each; the devices are spread evenly over them.
    #[arg(long, default_value_t = 50)]
    wards: usize,
    /// Edits per device, each followed by a sync.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Runs per server; figures are the medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The servers, in order.
    #[arg(long, value_delimiter = ',', default_value = "relay,node")]
    servers: Vec<ServerKind>,
    /// Offered load in syncs per second, arriving one by one (open loop); without it,
    /// every device starts at once.
    #[arg(long)]
    rate: Option<f64>,
    /// A sync that takes longer than this many seconds counts as an error.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerKind {
    /// The wardcheck relay (release build beside this binary).
    Relay,
    /// automerge-repo 2.5.6's node sync server (tests/load/sync-server.mjs).
    Node,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Relay => "wardcheck relay",
            ServerKind::Node => "automerge-repo node sync server",
        }
    }
}

/// What one run measured.
#[derive(Debug, Default)]
struct RunResult {
    syncs: usize,
    errors: usize,
    /// Devices that lacked a comment at the end.
    incomplete: usize,
    elapsed: Duration,
    sync: Vec<Duration>,
    total: Vec<Duration>,
    peak_rss_kib: u64,
}

impl RunResult {
    fn throughput(&self) -> f64 {
        self.syncs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A failure that ends the benchmark.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("seeding a ward's assessment: {0}")]
    Seed(SyncError),
    #[error("creating the assessments: {0}")]
    Create(#[from] wardcheck_core::Error),
    #[error("tokio: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("{0}")]
    Args(&'static str),
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run_all(&args) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(2),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every server `runs` times and prints the table; `Ok(false)` if any sync failed or
/// any device missed a comment.
fn run_all(args: &Args) -> Result<bool, LoadError> {
    if args.wards == 0 || args.devices < args.wards || args.rounds == 0 || args.runs == 0 {
        return Err(LoadError::Args(
            "need wards ≥ 1, devices ≥ wards, rounds ≥ 1, runs ≥ 1",
        ));
    }
    if args
        .rate
        .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
    {
        return Err(LoadError::Args("the rate must be a positive number"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for &server in &args.servers {
        let mut results = Vec::new();
        for run in 1..=args.runs {
            let result = runtime.block_on(run_once(args, server))?;
            println!(
                "{} run {run}: {} syncs, {} errors, {} incomplete, {:.0} syncs/s, \
                 p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, peak RSS {} MiB",
                server.name(),
                result.syncs,
                result.errors,
                result.incomplete,
                result.throughput(),
                ms(percentile(&result.sync, 50.0)),
                ms(percentile(&result.sync, 99.0)),
                ms(percentile(&result.sync, 100.0)),
                result.peak_rss_kib / 1024,
            );
            results.push(result);
        }
        rows.push((server, results));
    }
    print_table(args, &rows);
    Ok(rows
        .iter()
        .flat_map(|(_, results)| results)
        .all(|r| r.errors == 0 && r.incomplete == 0))
}

async fn run_once(args: &Args, kind: ServerKind) -> Result<RunResult, LoadError> {
    let per_ward = args.devices / args.wards;
    let units = wards(args.wards);
    // The server, and each device's URL.
    let (relay, node, urls, pid) = match kind {
        ServerKind::Relay => {
            let (relay, urls) = start_relay(&units, per_ward)?;
            let pid = relay.pid().unwrap_or(0);
            (Some(relay), None, urls, pid)
        }
        ServerKind::Node => {
            let node = NodeServer::start()?;
            let urls = vec![node.url.clone(); per_ward * units.len()];
            let pid = node.pid();
            (None, Some(node), urls, pid)
        }
    };
    let template = Arc::new(sample_templates().remove(1));
    let mut devices = Vec::new();
    for (w, unit) in units.iter().enumerate() {
        let genesis = Assessment::create(unit, PERIOD, template.clone())?;
        let id = genesis.id()?;
        for d in 0..per_ward {
            let mut doc = genesis.clone();
            doc.set_actor(ActorId::random());
            let peer_id = format!("load-device-{w:03}-{d:03}");
            devices.push(Device {
                author: Author::new(format!("{}-officer", unit.id), peer_id.clone()),
                peer_id,
                id,
                doc,
                url: urls[w * per_ward + d].clone(),
                connections: 0,
                saved_state: None,
            });
        }
    }
    let limit = Duration::from_secs(args.timeout_secs);
    // The first device of each ward pushes the assessment.
    let mut seeding = tokio::task::JoinSet::new();
    let mut seeded = Vec::new();
    for mut device in devices {
        if device.peer_id.ends_with("-000") {
            seeding.spawn(async move {
                let result = device.sync(limit).await;
                (device, result)
            });
        } else {
            seeded.push(device);
        }
    }
    while let Some(joined) = seeding.join_next().await {
        let Ok((device, result)) = joined else {
            continue;
        };
        result.map_err(LoadError::Seed)?;
        seeded.push(device);
    }
    let devices = seeded;

    // The measured phase: every device edits and syncs, `rounds` times.
    let criteria: Vec<String> = template.criteria.iter().map(|c| c.id.clone()).collect();
    let mut schedules = arrivals(devices.len(), args.rounds, args.rate).into_iter();
    let started = Instant::now();
    let mut working = tokio::task::JoinSet::new();
    for (n, mut device) in devices.into_iter().enumerate() {
        let criterion = criteria[n % criteria.len()].clone();
        let schedule = schedules.next().unwrap_or_default();
        working.spawn(async move {
            let mut timings: Vec<Result<Timing, SyncError>> = Vec::new();
            for (round, due) in schedule.into_iter().enumerate() {
                // Under an open-loop load a sync is late if its device was still busy
                // when it was due; all at once, a device's rounds simply follow each other.
                let late = match due {
                    Some(due) => {
                        tokio::time::sleep_until((started + due).into()).await;
                        (started + due).elapsed()
                    }
                    None => Duration::ZERO,
                };
                let now = i64::try_from(round).unwrap_or(0);
                match device.edit(&criterion, round, now) {
                    Ok(()) => timings.push(device.sync(limit).await.map(|timing| Timing {
                        total: timing.total + late,
                        ..timing
                    })),
                    Err(e) => timings.push(Err(e)),
                }
            }
            (device, timings)
        });
    }
    let mut result = RunResult::default();
    let mut devices = Vec::new();
    while let Some(joined) = working.join_next().await {
        let Ok((device, timings)) = joined else {
            result.errors += args.rounds;
            continue;
        };
        for timing in timings {
            match timing {
                Ok(timing) => {
                    result.syncs += 1;
                    result.sync.push(timing.sync);
                    result.total.push(timing.total);
                }
                Err(e) => {
                    result.errors += 1;
                    eprintln!("{}: {e}", device.peer_id);
                }
            }
        }
        devices.push(device);
    }
    result.elapsed = started.elapsed();

    // Every device catches up and checks it has everyone's comments.
    let expected = Arc::new(expected_comments(&devices, args.rounds));
    let mut checking = tokio::task::JoinSet::new();
    for mut device in devices {
        let expected = expected.clone();
        checking.spawn(async move {
            let synced = device.sync(limit).await;
            let complete = synced.is_ok() && has_all(&device, &expected);
            (device.peer_id, synced.err(), complete)
        });
    }
    while let Some(joined) = checking.join_next().await {
        match joined {
            Ok((peer, error, complete)) => {
                if let Some(e) = error {
                    eprintln!("{peer}, final sync: {e}");
                    result.errors += 1;
                }
                if !complete {
                    result.incomplete += 1;
                }
            }
            Err(_) => result.incomplete += 1,
        }
    }
    result.peak_rss_kib = rss_kib(pid).map(|(peak, _)| peak).unwrap_or(0);
    drop((relay, node));
    Ok(result)
}

/// When each device's syncs are due, as offsets from the start of the measured phase:
/// without a rate, none (each device starts at once and syncs round after round);
/// otherwise `devices × rounds` arrivals with exponential gaps of mean `1 / rate`, taken in
/// turn by the devices in a fixed shuffled order (a device's next round comes `devices`
/// arrivals later). Seeded, so every server and run gets the same schedule.
fn arrivals(devices: usize, rounds: usize, rate: Option<f64>) -> Vec<Vec<Option<Duration>>> {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    let Some(rate) = rate else {
        return vec![vec![None; rounds]; devices];
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5741_5244);
    let mut order: Vec<usize> = (0..devices).collect();
    order.shuffle(&mut rng);
    let mut schedule = vec![Vec::with_capacity(rounds); devices];
    let mut at = 0.0_f64;
    for _ in 0..rounds {
        for &device in &order {
            // An exponential gap: -ln(U) / rate, with U in (0, 1].
            let u: f64 = 1.0 - rng.random::<f64>();
            at += -u.ln() / rate;
            schedule[device].push(Some(Duration::from_secs_f64(at)));
        }
    }
    schedule
}

/// Each ward's comments once every device has done its rounds.
fn expected_comments(
    devices: &[Device],
    rounds: usize,
) -> std::collections::HashMap<DocumentId, Vec<String>> {
    let mut expected: std::collections::HashMap<DocumentId, Vec<String>> = Default::default();
    for device in devices {
        let texts = expected.entry(device.id).or_default();
        texts.extend((0..rounds).map(|round| comment_text(&device.peer_id, round)));
    }
    for texts in expected.values_mut() {
        texts.sort();
    }
    expected
}

fn has_all(device: &Device, expected: &std::collections::HashMap<DocumentId, Vec<String>>) -> bool {
    let Ok(view) = device.doc.view() else {
        return false;
    };
    let mut texts: Vec<String> = view.comments.into_iter().map(|c| c.text).collect();
    texts.sort();
    expected.get(&device.id) == Some(&texts)
}

/// The `p`th percentile (nearest rank) of `values`; zero for none.
fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of a figure over runs.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn print_table(args: &Args, rows: &[(ServerKind, Vec<RunResult>)]) {
    println!();
    let arrival = match args.rate {
        Some(rate) => format!("arriving at {rate} syncs/s (open loop)"),
        None => "all devices at once".to_string(),
    };
    println!(
        "{} devices ({} wards × {}), {} edit+sync rounds each, {arrival}, {} run(s) per \
         server (medians)",
        args.devices / args.wards * args.wards,
        args.wards,
        args.devices / args.wards,
        args.rounds,
        args.runs
    );
    println!();
    println!(
        "| server | syncs | errors | syncs/s | sync p50 | sync p99 | sync max | \
         connect+sync p50 | connect+sync p99 | peak RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut p99s = Vec::new();
    for (server, results) in rows {
        let figure = |f: &dyn Fn(&RunResult) -> f64| median(results.iter().map(f).collect());
        let p99 = figure(&|r| ms(percentile(&r.sync, 99.0)));
        let total_p99 = figure(&|r| ms(percentile(&r.total, 99.0)));
        p99s.push((*server, (p99, total_p99)));
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} MiB |",
            server.name(),
            figure(&|r| r.syncs as f64),
            figure(&|r| (r.errors + r.incomplete) as f64),
            figure(&RunResult::throughput),
            figure(&|r| ms(percentile(&r.sync, 50.0))),
            p99,
            figure(&|r| ms(percentile(&r.sync, 100.0))),
            figure(&|r| ms(percentile(&r.total, 50.0))),
            total_p99,
            figure(&|r| r.peak_rss_kib as f64 / 1024.0),
        );
    }
    let find = |kind| p99s.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p);
    if let (Some(ours), Some(theirs)) = (find(ServerKind::Relay), find(ServerKind::Node)) {
        println!();
        println!(
            "relay p99 / node p99: sync {:.3}, connect+sync {:.3} (target ≤ 0.1)",
            ours.0 / theirs.0.max(1e-9),
            ours.1 / theirs.1.max(1e-9)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_rate_no_sync_has_a_due_time() {
        let schedule = arrivals(3, 2, None);
        assert_eq!(schedule, vec![vec![None; 2]; 3]);
    }

    #[test]
    fn an_open_loop_schedule_spreads_the_syncs_at_the_rate() {
        let (devices, rounds, rate) = (100, 3, 50.0);
        let schedule = arrivals(devices, rounds, Some(rate));
        assert_eq!(schedule.len(), devices);
        let schedule: Vec<Vec<Duration>> = schedule
            .into_iter()
            .map(|rounds| rounds.into_iter().map(|due| due.expect("due")).collect())
            .collect();
        let mut all: Vec<Duration> = schedule.iter().flatten().copied().collect();
        // Each device's rounds come in order, and no two syncs are due at once.
        assert!(schedule.iter().all(|rounds| rounds.is_sorted()));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), devices * rounds);
        // 300 exponential gaps of mean 20 ms: within 20% of 6 s (seeded, so exact).
        let last = all.last().expect("arrivals").as_secs_f64();
        let expected = (devices * rounds) as f64 / rate;
        assert!((last - expected).abs() < expected * 0.2, "{last} s");
        // A device's next round comes a whole turn of the others later.
        assert!(
            schedule
                .iter()
                .all(|r| r[1] - r[0] > Duration::from_millis(500))
        );
        let again = arrivals(devices, rounds, Some(rate));
        assert!(
            again
                .iter()
                .flatten()
                .flatten()
                .eq(schedule.iter().flatten()),
            "seeded"
        );
    }
}
