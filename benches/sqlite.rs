//! What the SQLite journal costs.
//!
//! - 1,000 runs of a 10-task chain at once, sharing one store: task
//!   completions per second, through group commit.
//! - One 1,000-task chain on its own: time per task, every step waiting for
//!   its own commit.
//!
//! Both with `synchronous=FULL` (the default) and `synchronous=NORMAL` (the
//! relaxed mode). `cargo bench --bench sqlite` prints one line per case; the
//! store lives in a temporary directory on the disk of the current directory
//! (set `FLOW_BENCH_DIR` to measure another disk).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use flow::{Engine, SqliteBackend, SqliteOptions, Synchronous};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn store(dir: &std::path::Path, name: &str, sync: Synchronous) -> Arc<SqliteBackend> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let options = SqliteOptions::new().synchronous(sync);
    Arc::new(SqliteBackend::open_with(&path, options).expect("the store opens"))
}

/// `runs` runs of a `tasks`-task chain at once: seconds, and the writes per
/// commit.
fn concurrent(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    sync: Synchronous,
    runs: usize,
    tasks: usize,
) -> (f64, f64) {
    let store = store(dir, "concurrent.db", sync);
    let flow = common::chain(tasks).build().expect("the chain is valid");
    rt.block_on(async {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..runs {
            let mut engine = Engine::builder(flow.clone())
                .input("v0", 0u64)
                .storage(store.clone())
                .build();
            set.spawn(async move {
                engine.run().await.expect("the run succeeds");
                engine.fetch::<u64>(&format!("v{tasks}")).copied()
            });
        }
        while let Some(done) = set.join_next().await {
            assert_eq!(done.expect("the run did not panic"), Some(tasks as u64));
        }
        let secs = start.elapsed().as_secs_f64();
        let stats = store.stats();
        (secs, stats.writes as f64 / stats.commits as f64)
    })
}

/// One `tasks`-task chain: seconds.
fn chain(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    sync: Synchronous,
    tasks: usize,
) -> f64 {
    let store = store(dir, "chain.db", sync);
    let flow = common::chain(tasks).build().expect("the chain is valid");
    rt.block_on(async {
        let mut engine = Engine::builder(flow)
            .input("v0", 0u64)
            .storage(store)
            .build();
        let start = Instant::now();
        engine.run().await.expect("the run succeeds");
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(
            engine.fetch::<u64>(&format!("v{tasks}")),
            Some(&(tasks as u64))
        );
        elapsed
    })
}

fn main() {
    let base = std::env::var_os("FLOW_BENCH_DIR").map_or_else(
        || std::env::current_dir().expect("a current directory"),
        PathBuf::from,
    );
    let dir = tempfile::tempdir_in(&base).expect("a temporary directory");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (runs, tasks, samples) = (1_000, 10, 5);
    for (label, sync) in [("FULL", Synchronous::Full), ("NORMAL", Synchronous::Normal)] {
        let (times, batches): (Vec<f64>, Vec<f64>) = (0..samples)
            .map(|_| concurrent(&rt, dir.path(), sync, runs, tasks))
            .unzip();
        let secs = median(times);
        println!(
            "concurrent  synchronous={label:<6} {runs} runs x {tasks} tasks: {:>8.0} task completions/s ({secs:.3} s, {:.0} writes per commit, median of {samples})",
            (runs * tasks) as f64 / secs,
            median(batches)
        );
        let n = 1_000;
        let times: Vec<f64> = (0..samples)
            .map(|_| chain(&rt, dir.path(), sync, n))
            .collect();
        let secs = median(times);
        println!(
            "chain       synchronous={label:<6} {n} tasks: {:>8.1} us per task ({secs:.3} s, median of {samples})",
            secs * 1e6 / n as f64
        );
    }
}
