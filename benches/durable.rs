//! What a durable journal costs, side by side: SQLite with
//! `synchronous=FULL` (its default), SQLite with `synchronous=NORMAL`, and
//! PostgreSQL (`synchronous_commit=on`, the server's default).
//!
//! - 1,000 runs of a 10-task chain at once, sharing one store: task
//!   completions per second, through group commit.
//! - One 1,000-task chain on its own: time per task, every step waiting for
//!   its own commit.
//!
//! `cargo bench --bench durable --features postgres` prints one line per
//! case. The SQLite stores live in a temporary directory on the disk of the
//! current directory (`FLOW_BENCH_DIR` picks another disk). PostgreSQL is
//! measured when `FLOW_BENCH_POSTGRES` (or `FLOW_TEST_POSTGRES`) names a
//! server, in a schema of its own (`bench_PID`, dropped at the end when
//! `psql` is there); each sample's runs are pruned before the next.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use flow::{Backend, Engine, SqliteBackend, SqliteOptions, Synchronous};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A store to measure, made fresh (or emptied) for each sample.
enum Store {
    Sqlite(PathBuf, Synchronous),
    #[cfg(feature = "postgres")]
    Postgres(String, String),
}

impl Store {
    fn label(&self) -> String {
        match self {
            Store::Sqlite(_, Synchronous::Full) => "SQLite synchronous=FULL".into(),
            Store::Sqlite(_, _) => "SQLite synchronous=NORMAL".into(),
            #[cfg(feature = "postgres")]
            Store::Postgres(..) => "PostgreSQL synchronous_commit=on".into(),
        }
    }

    /// The store, empty; with a way to read its writes per commit. (`rt`
    /// connects to PostgreSQL; SQLite opens without it.)
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    fn open(&self, rt: &tokio::runtime::Runtime, name: &str) -> Opened {
        match self {
            Store::Sqlite(dir, sync) => {
                let path = dir.join(name);
                for ext in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                }
                let options = SqliteOptions::new().synchronous(*sync);
                Opened::Sqlite(Arc::new(
                    SqliteBackend::open_with(&path, options).expect("the store opens"),
                ))
            }
            #[cfg(feature = "postgres")]
            Store::Postgres(url, schema) => {
                // FLOW_BENCH_IN_FLIGHT: batches committing at once (default 2).
                let in_flight = std::env::var("FLOW_BENCH_IN_FLIGHT")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(2);
                let options = flow::PostgresOptions::new()
                    .schema(schema)
                    .in_flight(in_flight);
                let store = rt
                    .block_on(flow::PostgresBackend::connect_with(url, options))
                    .expect("the PostgreSQL store opens");
                rt.block_on(store.prune_flows(f64::MAX))
                    .expect("the last sample's runs are deleted");
                Opened::Postgres(Arc::new(store))
            }
        }
    }
}

enum Opened {
    Sqlite(Arc<SqliteBackend>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<flow::PostgresBackend>),
}

impl Opened {
    fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Opened::Sqlite(s) => s.clone(),
            #[cfg(feature = "postgres")]
            Opened::Postgres(s) => s.clone(),
        }
    }

    /// Writes and commits so far.
    fn stats(&self) -> (u64, u64) {
        match self {
            Opened::Sqlite(s) => (s.stats().writes, s.stats().commits),
            #[cfg(feature = "postgres")]
            Opened::Postgres(s) => (s.stats().writes, s.stats().commits),
        }
    }
}

/// `runs` runs of a `tasks`-task chain at once: seconds, and the writes per
/// commit.
fn concurrent(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    runs: usize,
    tasks: usize,
) -> (f64, f64) {
    let opened = store.open(rt, "concurrent.db");
    let backend = opened.backend();
    let flow = common::chain(tasks).build().expect("the chain is valid");
    let (w0, c0) = opened.stats();
    let secs = rt.block_on(async {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..runs {
            let mut engine = Engine::builder(flow.clone())
                .input("v0", 0u64)
                .storage(backend.clone())
                .build();
            set.spawn(async move {
                engine.run().await.expect("the run succeeds");
                engine.fetch::<u64>(&format!("v{tasks}")).copied()
            });
        }
        while let Some(done) = set.join_next().await {
            assert_eq!(done.expect("the run did not panic"), Some(tasks as u64));
        }
        start.elapsed().as_secs_f64()
    });
    let (w1, c1) = opened.stats();
    (secs, (w1 - w0) as f64 / (c1 - c0).max(1) as f64)
}

/// One `tasks`-task chain: seconds.
fn chain(rt: &tokio::runtime::Runtime, store: &Store, tasks: usize) -> f64 {
    let opened = store.open(rt, "chain.db");
    let flow = common::chain(tasks).build().expect("the chain is valid");
    rt.block_on(async {
        let mut engine = Engine::builder(flow)
            .input("v0", 0u64)
            .storage(opened.backend())
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

fn postgres_url() -> Option<String> {
    ["FLOW_BENCH_POSTGRES", "FLOW_TEST_POSTGRES"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
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
    let mut stores = vec![
        Store::Sqlite(dir.path().to_path_buf(), Synchronous::Full),
        Store::Sqlite(dir.path().to_path_buf(), Synchronous::Normal),
    ];
    let schema = format!("bench_{}", std::process::id());
    match postgres_url() {
        #[cfg(feature = "postgres")]
        Some(url) => stores.push(Store::Postgres(url, schema.clone())),
        #[cfg(not(feature = "postgres"))]
        Some(_) => println!(
            "PostgreSQL: not measured: build with --features postgres (cargo bench --bench durable --features postgres)"
        ),
        None => println!(
            "PostgreSQL: not measured: set FLOW_BENCH_POSTGRES=postgres://user@host/db to measure it"
        ),
    }
    // FLOW_BENCH_ONLY=postgres (or sqlite) measures those stores alone.
    if let Ok(only) = std::env::var("FLOW_BENCH_ONLY") {
        stores.retain(|s| s.label().to_lowercase().starts_with(&only.to_lowercase()));
    }
    let (runs, tasks, samples) = (1_000, 10, 5);
    let n = 1_000;
    let mut rates = Vec::new();
    for store in &stores {
        let label = store.label();
        let (times, batches): (Vec<f64>, Vec<f64>) = (0..samples)
            .map(|_| concurrent(&rt, store, runs, tasks))
            .unzip();
        let secs = median(times);
        let rate = (runs * tasks) as f64 / secs;
        rates.push((label.clone(), rate));
        println!(
            "concurrent  {label:<33} {runs} runs x {tasks} tasks: {rate:>8.0} task completions/s ({secs:.3} s, {:.0} writes per commit, median of {samples})",
            median(batches)
        );
        let times: Vec<f64> = (0..samples).map(|_| chain(&rt, store, n)).collect();
        let secs = median(times);
        println!(
            "chain       {label:<33} {n} tasks: {:>8.1} us per task ({secs:.3} s, median of {samples})",
            secs * 1e6 / n as f64
        );
    }
    if let [(_, full), _, (label, pg)] = &rates[..] {
        // Only when all three were measured.
        println!(
            "ratio       {label} / SQLite FULL, concurrent: {:.2}",
            pg / full
        );
    }
    drop_schema(&schema);
    let _: &Path = dir.path();
}

/// Drops the benchmark's PostgreSQL schema, when `psql` is there.
fn drop_schema(schema: &str) {
    let Some(url) = postgres_url() else { return };
    let _ = std::process::Command::new("psql")
        .args(["-X", "-q", &url, "-c"])
        .arg(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .output();
}
