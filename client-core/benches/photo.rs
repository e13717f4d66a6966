//! The photo pipeline on a 12 MP JPEG, side by side with ImageMagick doing the same job.
//!
//! Run with `taskset -c 0 cargo bench -p wardcheck-core --bench photo` for one-core
//! figures: the target is ≤ 0.40× of `convert`'s wall time, with a peak RSS ≤ 40 MiB.
//! (jpeg-decoder hands each colour component to a worker thread of its own; pinned to
//! one core those threads only take turns, as they would on a busy phone.)
//!
//! The input is a real photo: a 2560×1600 wallpaper from Debian's
//! `plasma-workspace-wallpapers`, upscaled once by ImageMagick to 4000×3000 and cached
//! under the target directory. ImageMagick's job is
//! `convert -limit thread 1 in.jpg -resize 1600x1600 -quality 80 ev.jpg` then
//! `convert -limit thread 1 ev.jpg -resize 320x320 -quality 80 th.jpg` (the thumbnail
//! from the evidence, as ours is). Without ImageMagick or the wallpaper, the pipeline
//! runs on a generated 12 MP JPEG and the comparison is skipped, with a message.
//!
//! After criterion's report, a table gives the medians of a few plain runs, their
//! ratio, and the peak RSS of one `process` call in a child process.
//!
//! `WARDCHECK_PHOTO_BENCH_INPUT=/path/to/photo.jpg` benchmarks another JPEG instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use wardcheck_core::photo::{PhotoConfig, process};

/// Set in the child process that measures peak memory: the path of the input.
const PEAK_CHILD: &str = "WARDCHECK_PHOTO_PEAK_INPUT";
/// The wallpaper upscaled into the input, if installed.
const WALLPAPERS: &str = "/usr/share/wallpapers";
/// Names another JPEG to use as the input instead (e.g. a real phone photo).
const INPUT_OVERRIDE: &str = "WARDCHECK_PHOTO_BENCH_INPUT";
/// Plain runs per side for the summary table.
const RUNS: usize = 9;

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("photo-bench");
    std::fs::create_dir_all(&dir).expect("create the bench's work directory");
    dir
}

/// True when `convert` is the real ImageMagick (a stand-in may be installed).
fn have_imagemagick() -> bool {
    Command::new("convert")
        .arg("-version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("ImageMagick"))
}

/// A 2560×1600 photo among the Plasma wallpapers, ColorfulCups first.
fn find_wallpaper() -> Option<PathBuf> {
    let preferred = Path::new(WALLPAPERS).join("ColorfulCups/contents/images/2560x1600.jpg");
    if preferred.is_file() {
        return Some(preferred);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(WALLPAPERS)
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("contents/images/2560x1600.jpg"))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The 12 MP input: the wallpaper upscaled by ImageMagick (cached), or `None` with a
/// message saying what is missing.
fn real_input(dir: &Path) -> Option<PathBuf> {
    let overridden = std::env::var_os(INPUT_OVERRIDE).map(PathBuf::from);
    if !have_imagemagick() {
        eprintln!(
            "photo bench: ImageMagick not found (`convert -version`); install it with \
             `apt-get install imagemagick`. Skipping the comparison."
        );
        return None;
    }
    if let Some(path) = overridden {
        println!(
            "photo bench: input {} (from ${INPUT_OVERRIDE})",
            path.display()
        );
        return Some(path);
    }
    let Some(wallpaper) = find_wallpaper() else {
        eprintln!(
            "photo bench: no 2560×1600 wallpaper under {WALLPAPERS}; install it with \
             `apt-get install plasma-workspace-wallpapers`. Skipping the comparison."
        );
        return None;
    };
    let input = dir.join("in-12mp.jpg");
    if !input.is_file() {
        // Phones write baseline 4:2:0 JPEGs at quality ~90.
        let status = Command::new("convert")
            .arg(&wallpaper)
            .args([
                "-resize",
                "4000x3000!",
                "-sampling-factor",
                "2x2",
                "-quality",
                "92",
            ])
            .arg(&input)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "photo bench: could not upscale {}; skipping.",
                wallpaper.display()
            );
            return None;
        }
    }
    println!(
        "photo bench: input {} (from {})",
        input.display(),
        wallpaper.display()
    );
    Some(input)
}

/// ImageMagick doing the pipeline's job: evidence from the photo, thumbnail from it.
fn convert_job(input: &Path, dir: &Path) {
    let evidence = dir.join("ev.jpg");
    let thumbnail = dir.join("th.jpg");
    for (from, size, to) in [
        (input, "1600x1600", &evidence),
        (&evidence, "320x320", &thumbnail),
    ] {
        let status = Command::new("convert")
            .args(["-limit", "thread", "1"])
            .arg(from)
            .args(["-resize", size, "-quality", "80"])
            .arg(to)
            .status()
            .expect("run convert");
        assert!(status.success(), "convert failed");
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time_runs(mut run: impl FnMut()) -> Duration {
    run(); // warm-up
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed()
            })
            .collect(),
    )
}

/// Peak resident set of this process so far, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// In the child: one `process` of the file named in the environment, then the peak.
fn peak_child(path: &str) {
    let input = std::fs::read(path).expect("read the input");
    let before = peak_rss_kib().unwrap_or(0);
    let out = process(&input, &PhotoConfig::default()).expect("process");
    std::hint::black_box(&out);
    let peak = peak_rss_kib().unwrap_or(0);
    println!("before={before} peak={peak}");
}

/// Runs the peak child on `input`: (peak KiB before processing, peak KiB after).
fn measure_peak(input: &Path) -> Option<(u64, u64)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe).env(PEAK_CHILD, input).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))?
            .parse()
            .ok()
    };
    Some((field("before=")?, field("peak=")?))
}

/// Peak RSS of convert's evidence step in KiB, if GNU time is installed.
fn convert_peak_kib(input: &Path, dir: &Path) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "convert", "-limit", "thread", "1"])
        .arg(input)
        .args(["-resize", "1600x1600", "-quality", "80"])
        .arg(dir.join("ev.jpg"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if let Ok(path) = std::env::var(PEAK_CHILD) {
        peak_child(&path);
        return;
    }
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let dir = work_dir();
    let real = real_input(&dir);
    let input_path = match &real {
        Some(path) => path.clone(),
        None => {
            let path = dir.join("generated-12mp.jpg");
            if !path.is_file() {
                let jpeg = wardcheck_core::testing::jpeg(4000, 3000, 1);
                std::fs::write(&path, jpeg).expect("write the generated input");
            }
            path
        }
    };
    let input = std::fs::read(&input_path).expect("read the input");
    let config = PhotoConfig::default();
    if benchmarking && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        println!(
            "photo bench: more than one core available; for one-core figures run under \
             `taskset -c 0`."
        );
    }

    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("photo_12mp");
        group.bench_function("wardcheck_process", |b| {
            b.iter(|| process(std::hint::black_box(&input), &config).expect("process"))
        });
        if let Some(path) = &real {
            group.bench_function("imagemagick_convert", |b| {
                b.iter(|| convert_job(path, &dir))
            });
        }
        group.finish();
    }
    criterion.final_summary();
    if !benchmarking {
        return;
    }

    let ours = time_runs(|| {
        std::hint::black_box(process(&input, &config).expect("process"));
    });
    let out = process(&input, &config).expect("process");
    println!();
    println!(
        "photo bench: {} ({} bytes) -> evidence {}×{} ({} bytes), thumbnail {} bytes",
        input_path.display(),
        input.len(),
        out.evidence_width,
        out.evidence_height,
        out.evidence.len(),
        out.thumbnail.len()
    );
    let peak = measure_peak(&input_path);
    println!("{:<34} {:>12} {:>16}", "", "median", "peak RSS");
    let peak_text = peak.map_or("?".to_string(), |(before, peak)| {
        format!(
            "{:.1} MiB (input read: {:.1})",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        )
    });
    println!(
        "{:<34} {:>9.1} ms   {}",
        "wardcheck process (1 call)",
        ms(ours),
        peak_text
    );
    if let Some(path) = &real {
        let theirs = time_runs(|| convert_job(path, &dir));
        let convert_peak = convert_peak_kib(path, &dir).map_or("?".to_string(), |kib| {
            format!("{:.1} MiB", kib as f64 / 1024.0)
        });
        println!(
            "{:<34} {:>9.1} ms   {}",
            "convert -limit thread 1 (2 calls)",
            ms(theirs),
            convert_peak
        );
        println!(
            "{:<34} {:>9.3}×   (target ≤ 0.40×)",
            "ratio ours / convert",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
}
