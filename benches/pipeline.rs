//! The overhead of pipelines: 1,000 steps of `/bin/true` (a chain, and ten
//! chains of 100 side by side), in memory and on the SQLite default store,
//! against the same 1,000 processes started by a plain shell loop, in the
//! same invocation.
//!
//! ```text
//! cargo bench --bench pipeline --features pipeline [-- ROUNDS] [--current-thread]
//! ```
//!
//! The engine runs on a 2-worker tokio runtime, or with `--current-thread`
//! on a runtime of one thread (the process then runs on one core, as the
//! shell loop does).
//!
//! Each figure is the median of ROUNDS (5) rounds; in each round every case
//! runs once, in turn, so that the machine's drift touches all alike. The
//! logs and the store go to a temporary directory under the current one
//! (`FLOW_BENCH_DIR` picks another disk).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow::pipeline::{Params, Pipeline, Settings};
use flow::{Backend, SqliteBackend};

const STEPS: usize = 1_000;

/// `lanes` chains of `STEPS / lanes` steps of `/bin/true`.
fn pipeline(lanes: usize) -> Pipeline {
    let per = STEPS / lanes;
    let mut text = String::from("name: overhead\nsteps:\n");
    for lane in 0..lanes {
        for i in 0..per {
            text.push_str(&format!(
                "  - name: s{lane}-{i}\n    command: [/bin/true]\n"
            ));
            if i > 0 {
                text.push_str(&format!("    depends-on: [s{lane}-{}]\n", i - 1));
            }
        }
    }
    Pipeline::from_str("overhead.yaml", &text).expect("a valid pipeline")
}

/// The CPU time this process and its reaped children have used: user and
/// system, from `/proc/self/stat` (in clock ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// The same processes from a shell loop (`/bin/true`, not the builtin).
fn shell_loop() -> (Duration, Duration) {
    let script = format!("i=0; while [ $i -lt {STEPS} ]; do /bin/true; i=$((i+1)); done");
    let (start, used) = (Instant::now(), cpu());
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .status()
        .unwrap();
    assert!(status.success());
    (start.elapsed(), cpu() - used)
}

fn run(
    rt: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    lanes: usize,
    dir: &Path,
    store: Option<Arc<dyn Backend>>,
) -> (Duration, Duration) {
    let settings = Settings::new(dir.join("logs"));
    let run = pipeline.to_flow(&Params::new(), &settings).unwrap();
    let (start, used) = (Instant::now(), cpu());
    let mut builder = run.engine().unwrap();
    if let Some(store) = store {
        builder = builder.storage(store);
    }
    let mut engine = if lanes == 1 {
        builder.build()
    } else {
        builder.parallel(lanes).build()
    };
    rt.block_on(engine.run()).unwrap();
    // The logs stay until the end: on ext4, files created just after others
    // were deleted cost several times more (the inode allocator skips the
    // recently freed inodes), which would charge the benchmark's own clean-up
    // to the next run.
    (start.elapsed(), cpu() - used)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let base = std::env::var_os("FLOW_BENCH_DIR").map_or_else(|| ".".into(), Into::into);
    let dir = tempfile::tempdir_in::<std::path::PathBuf>(base).unwrap();
    let current = std::env::args().any(|a| a == "--current-thread");
    let rt = if current {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    let chain = pipeline(1);
    let wide = pipeline(10);
    let cases: [(&str, &Pipeline, usize, bool); 4] = [
        ("chain, memory", &chain, 1, false),
        ("10 wide, memory", &wide, 10, false),
        ("chain, SQLite", &chain, 1, true),
        ("10 wide, SQLite", &wide, 10, true),
    ];
    let mut shell = Vec::new();
    let mut times: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        shell.push(shell_loop());
        for (k, (_, p, lanes, durable)) in cases.iter().enumerate() {
            let store: Option<Arc<dyn Backend>> = durable.then(|| {
                let path = dir.path().join(format!("store-{round}-{k}.db"));
                Arc::new(SqliteBackend::open(path).unwrap()) as Arc<dyn Backend>
            });
            times[k].push(run(&rt, p, *lanes, dir.path(), store));
        }
    }
    let flavor = if current { "one thread" } else { "2 workers" };
    println!("{STEPS} processes of /bin/true, median of {rounds} rounds, tokio runtime: {flavor}");
    println!();
    println!(
        "| case | wall (ms) | per step (us) | / shell loop (median of the rounds' ratios; range) \
         | CPU (ms) | CPU / shell loop's |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, t: &[(Duration, Duration)]| {
        let mut ratios: Vec<f64> = t
            .iter()
            .zip(&shell)
            .map(|(t, s)| t.0.as_secs_f64() / s.0.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let wall = median(t.iter().map(|x| x.0).collect());
        let used = median(t.iter().map(|x| x.1).collect());
        let shell_cpu = median(shell.iter().map(|x| x.1).collect());
        println!(
            "| {name} | {:.1} | {:.0} | {:.2} ({:.2}-{:.2}) | {:.0} | {:.2} |",
            wall.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e6 / STEPS as f64,
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            used.as_secs_f64() * 1e3,
            used.as_secs_f64() / shell_cpu.as_secs_f64(),
        );
    };
    row("shell loop", &shell);
    for ((name, ..), t) in cases.iter().zip(&times) {
        row(name, t);
    }
}
