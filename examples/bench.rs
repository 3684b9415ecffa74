//! Measures one benchmark case and prints it as one JSON line, for scripts that
//! compare `flow` with other systems in the same run.
//!
//! ```text
//! cargo run --release --example bench -- SHAPE SIZE ENGINE [--repeat N] [--workers N] [--max N]
//! cargo run --release --example bench -- embarrassing SIZE --ceiling [--repeat N] [--workers N]
//! cargo run --release --example bench -- linear_chain 1000000 serial
//! {"shape":"linear_chain","size":1000000,"tasks":1000000,"engine":"serial","build_ns_per_task":..,"run_ns_per_task":..,"teardown_ns_per_task":..,"total_ns_per_task":..,"peak_rss_bytes":..,"repeat":1}
//! ```
//!
//! SHAPE is one of `linear_chain`, `binary_tree`, `fan_out_in`, `wavefront`,
//! `embarrassing`, `revert_chain`; ENGINE is `serial` (one thread) or
//! `parallel` (`--workers` tokio worker threads, 2 by default, and up to
//! `--max` atoms at once, as many as workers by default). Build is the flow's
//! construction, validation and compilation (`construct_ns_per_task` is the
//! construction alone, the shape's own code); run is making the engine and
//! running it; teardown is dropping the engine, with the compiled flow and the
//! values (the same serial work for both engines); total is all three. For
//! `revert_chain`, `forward_ns_per_task` and `revert_ns_per_task` split the run
//! at the moment its last task fails. With `--repeat N`
//! the case runs N times in this process and the medians are printed. Run one
//! case per process: `peak_rss_bytes` is the process's high-water mark.
//!
//! `--ceiling` measures the host rather than the engine: the arithmetic of
//! the `embarrassing` tasks alone, with no flow and no engine, first in one
//! thread and then split evenly over `--workers` plain threads, the two
//! alternating N times. Its line has `engine` `none`, `serial_ns_per_task`,
//! `parallel_ns_per_task` and `ceiling`, the median of the N ratios: the
//! most any scheduler could gain from that many threads on this host at
//! that moment, to read the parallel engine's speedup against.

#[path = "../benches/shapes/mod.rs"]
mod shapes;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use flow::{Engine, RunError};

/// The benchmarks run on mimalloc, the allocator a service making many small
/// allocations would pick; benches/README.md gives the figures with the
/// system allocator too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: bench SHAPE SIZE serial|parallel [--repeat N] [--workers N] [--max N]\n       bench embarrassing SIZE --ceiling [--repeat N] [--workers N]";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The process's peak resident set (`VmHWM`), in bytes; 0 where unknown.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

struct Case {
    shape: String,
    size: usize,
    parallel: bool,
    repeat: usize,
    workers: usize,
    max: Option<usize>,
    /// The host's ceiling for the `embarrassing` arithmetic, no engine.
    ceiling: bool,
}

fn parse() -> Result<Case, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut repeat = 1;
    let mut workers = 2;
    let mut max = None;
    let mut ceiling = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--repeat" => repeat = number("--repeat")?,
            "--workers" => workers = number("--workers")?,
            "--max" => max = Some(number("--max")?),
            "--ceiling" => ceiling = true,
            "-h" | "--help" => return Err(String::new()),
            _ => positional.push(arg.clone()),
        }
    }
    if ceiling && max.is_some() {
        return Err("--ceiling runs no engine: --max does not apply".into());
    }
    // With --ceiling no engine runs, and none is named.
    let (shape, size, engine) = match (ceiling, positional.as_slice()) {
        (true, [shape, size]) => (shape, size, None),
        (false, [shape, size, engine]) => (shape, size, Some(engine.as_str())),
        (true, _) => return Err("expected embarrassing SIZE --ceiling".into()),
        (false, _) => return Err("expected SHAPE SIZE ENGINE".into()),
    };
    if ceiling && shape != "embarrassing" {
        return Err(format!(
            "--ceiling measures the arithmetic of `embarrassing` tasks, not `{shape}`"
        ));
    }
    if !shapes::SHAPES.contains(&shape.as_str()) {
        return Err(format!(
            "unknown shape `{shape}`; the shapes are {}",
            shapes::SHAPES.join(", ")
        ));
    }
    let size = size
        .replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 1.0)
        .ok_or_else(|| format!("`{size}` is not a size (1000, 1e6, 1_000_000)"))?
        as usize;
    let parallel = match engine {
        None | Some("serial") => false,
        Some("parallel") => true,
        Some(other) => return Err(format!("unknown engine `{other}`: serial or parallel")),
    };
    Ok(Case {
        shape: shape.clone(),
        size,
        parallel,
        repeat,
        workers,
        max,
        ceiling,
    })
}

/// The `embarrassing` tasks' arithmetic for tasks `range`, in this thread.
fn spin_range(range: std::ops::Range<usize>) -> u64 {
    range.fold(0u64, |acc, i| acc.wrapping_add(shapes::spin(i as u64)))
}

/// The host's ceiling: `size` tasks' arithmetic in one thread, then split
/// over `workers` threads, alternating `repeat` times; one JSON line. The
/// helper threads are started once and wait at a barrier between rounds, as
/// the engine's worker threads outlive its runs.
fn ceiling(case: &Case) -> serde_json::Value {
    let (n, workers) = (case.size, case.workers);
    let chunk = n.div_ceil(workers);
    let mut serial = Vec::with_capacity(case.repeat);
    let mut parallel = Vec::with_capacity(case.repeat);
    let mut ratios = Vec::with_capacity(case.repeat);
    let barrier = std::sync::Barrier::new(workers);
    std::thread::scope(|scope| {
        for w in 1..workers {
            let barrier = &barrier;
            scope.spawn(move || {
                for _ in 0..case.repeat {
                    barrier.wait();
                    std::hint::black_box(spin_range(w * chunk..((w + 1) * chunk).min(n)));
                    barrier.wait();
                }
            });
        }
        for _ in 0..case.repeat {
            let start = Instant::now();
            std::hint::black_box(spin_range(0..n));
            let one = start.elapsed().as_secs_f64();
            let start = Instant::now();
            barrier.wait();
            std::hint::black_box(spin_range(0..chunk.min(n)));
            barrier.wait();
            let many = start.elapsed().as_secs_f64();
            serial.push(one);
            parallel.push(many);
            ratios.push(one / many);
        }
    });
    let per_task = |secs: f64| (secs * 1e9 / n as f64).round();
    serde_json::json!({
        "shape": case.shape,
        "size": n,
        "tasks": n,
        "engine": "none",
        "workers": workers,
        "serial_ns_per_task": per_task(median(serial)),
        "parallel_ns_per_task": per_task(median(parallel)),
        "ceiling": (median(ratios) * 1000.0).round() / 1000.0,
        "repeat": case.repeat,
    })
}

fn main() -> ExitCode {
    let case = match parse() {
        Ok(case) => case,
        Err(message) => {
            let mut err = std::io::stderr().lock();
            if message.is_empty() {
                let _ = writeln!(std::io::stdout().lock(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(err, "bench: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if case.ceiling {
        let line = ceiling(&case);
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        return ExitCode::SUCCESS;
    }
    let rt = if case.parallel {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(case.workers)
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread().build()
    }
    .expect("a tokio runtime");

    let mut builds = Vec::with_capacity(case.repeat);
    let mut runs = Vec::with_capacity(case.repeat);
    let mut teardowns = Vec::with_capacity(case.repeat);
    let mut constructs = Vec::with_capacity(case.repeat);
    let mut forwards = Vec::with_capacity(case.repeat);
    let mut reverts = Vec::with_capacity(case.repeat);
    let mut tasks = 0;
    for _ in 0..case.repeat {
        let start = Instant::now();
        let (flow, n) = shapes::build(&case.shape, case.size).expect("a known shape");
        constructs.push(start.elapsed().as_secs_f64());
        let compiled = match flow.build() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bench: the {} flow does not build: {e}", case.shape);
                return ExitCode::FAILURE;
            }
        };
        builds.push(start.elapsed().as_secs_f64());
        tasks = n;
        let start = Instant::now();
        let outcome = rt.block_on(async {
            let builder = Engine::builder(compiled).input("v0", 0u64);
            let mut engine = if case.parallel {
                builder.parallel(case.max.unwrap_or(case.workers)).build()
            } else {
                builder.build()
            };
            let result = engine.run().await;
            let check = shapes::expected(&case.shape, case.size)
                .map(|(symbol, value)| (engine.fetch::<u64>(&symbol).copied(), value));
            ((result, check), engine)
        });
        let (outcome, engine) = outcome;
        let end = Instant::now();
        runs.push((end - start).as_secs_f64());
        if let Some(failed) = shapes::FAILED_AT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            forwards.push((failed - start).as_secs_f64());
            reverts.push((end - failed).as_secs_f64());
        }
        let start = Instant::now();
        rt.block_on(async move { drop(engine) });
        teardowns.push(start.elapsed().as_secs_f64());
        match (&case.shape[..], outcome) {
            ("revert_chain", (Err(RunError::Reverted { .. }), _)) => {}
            ("revert_chain", (other, _)) => {
                eprintln!("bench: revert_chain did not revert: {other:?}");
                return ExitCode::FAILURE;
            }
            (_, (Ok(()), check)) => {
                if let Some((got, want)) = check {
                    if got != Some(want) {
                        eprintln!("bench: wrong result {got:?}, expected {want}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            (_, (Err(e), _)) => {
                eprintln!("bench: the run failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let per_task = |secs: f64| secs * 1e9 / tasks as f64;
    let build = per_task(median(builds));
    let run = per_task(median(runs));
    let teardown = per_task(median(teardowns));
    let construct = per_task(median(constructs));
    let mut line = serde_json::json!({
        "shape": case.shape,
        "size": case.size,
        "tasks": tasks,
        "engine": if case.parallel { "parallel" } else { "serial" },
        "workers": if case.parallel { case.workers } else { 1 },
        "max_in_flight": if case.parallel { case.max.unwrap_or(case.workers) } else { 1 },
        "build_ns_per_task": build.round(),
        "construct_ns_per_task": construct.round(),
        "run_ns_per_task": run.round(),
        "teardown_ns_per_task": teardown.round(),
        "total_ns_per_task": (build + run + teardown).round(),
        "peak_rss_bytes": peak_rss_bytes(),
        "repeat": case.repeat,
    });
    if !reverts.is_empty() {
        // revert_chain: the run split at the failure of its last task.
        line["forward_ns_per_task"] = per_task(median(forwards)).round().into();
        line["revert_ns_per_task"] = per_task(median(reverts)).round().into();
    }
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    ExitCode::SUCCESS
}
