//! The PostgreSQL job board under conductors: jobs of 10 no-op tasks, with
//! 1, 2, 4 and 8 conductors, each on a backend of its own (its own pool,
//! writer and listening connection, as on separate machines).
//!
//! - **Throughput**: with the conductors idle, `FLOW_BENCH_JOBS` jobs
//!   (2,000) are posted by `FLOW_BENCH_POSTERS` (32) posters at once, each
//!   posting one job after another; jobs per second from the
//!   first post to the last job's run ending.
//! - **Pickup latency**: with the conductors idle, `FLOW_BENCH_PICKUPS`
//!   jobs (300) posted one at a time, 5 ms apart; the time from the post's
//!   call to its first task starting, p50 and p99. Conductors poll every
//!   second: what wakes them sooner is the server's `NOTIFY`.
//!
//! `FLOW_BENCH_POSTGRES=postgres://user@127.0.0.1/db cargo bench --bench
//! jobs --features postgres` prints one line per case; each case in a
//! schema of its own, dropped at the end (`FLOW_TEST_POSTGRES` serves too).
//! `FLOW_BENCH_CONDUCTORS=1,4` measures some counts only,
//! `FLOW_BENCH_CONCURRENCY` the jobs each conductor runs at once (64),
//! `FLOW_BENCH_POOL` the connections of each backend (16).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow::conductor::{Conductor, ConductorHandle, Registry};
use flow::postgres::{PostgresBackend, PostgresOptions};
use flow::storage::{JobBoard, JobQuery, JobState, NewJob};
use flow::{Atom, Flow, FnTask, Outputs, Signature};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// When each job's first task started, and how many runs ended.
#[derive(Default)]
struct Seen {
    started: Mutex<HashMap<u64, Instant>>,
    ended: AtomicUsize,
    all_ended: tokio::sync::Notify,
    want: AtomicUsize,
}

fn registry(seen: &Arc<Seen>) -> Registry {
    let mut flow = Flow::linear("noop").input::<u64>("n");
    for i in 0..10 {
        let seen = seen.clone();
        let task = FnTask::sync(Signature::new().requires::<u64>("n"), move |a| {
            let n = *a.get::<u64>(0)?;
            if i == 0 {
                seen.started
                    .lock()
                    .unwrap()
                    .entry(n)
                    .or_insert_with(Instant::now);
            }
            if i == 9 {
                let ended = seen.ended.fetch_add(1, Ordering::AcqRel) + 1;
                if ended >= seen.want.load(Ordering::Acquire) {
                    seen.all_ended.notify_one();
                }
            }
            Ok(Outputs::new())
        });
        flow = flow.add(Atom::new(format!("t{i}"), task));
    }
    let mut registry = Registry::new();
    registry.register("1", flow.build().expect("a valid flow"));
    registry
}

/// The connections of each backend (`FLOW_BENCH_POOL`, 16): claims,
/// completions and reads of the runs taken up share them beside the
/// writer's batches.
fn pool_size() -> usize {
    var("FLOW_BENCH_POOL")
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn case(
    url: &str,
    conductors: usize,
    jobs: u64,
    pickups: u64,
    concurrency: usize,
    posters: usize,
) {
    let schema = format!("bench_jobs_{}_{conductors}", std::process::id());
    let open = || async {
        Arc::new(
            PostgresBackend::connect_with(
                url,
                PostgresOptions::new()
                    .schema(&schema)
                    .pool_size(pool_size()),
            )
            .await
            .expect("the store opens"),
        )
    };
    let poster = open().await;
    let seen = Arc::new(Seen::default());
    let mut handles: Vec<ConductorHandle> = Vec::new();
    let mut running = Vec::new();
    let mut boards = Vec::new();
    for i in 0..conductors {
        let board = open().await;
        boards.push(board.clone());
        let c = Conductor::new(board, registry(&seen))
            .owner(format!("c{i}"))
            .concurrency(concurrency)
            .poll(Duration::from_secs(1));
        handles.push(c.handle());
        running.push(tokio::spawn(c.run()));
    }
    for b in &boards {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !b.is_listening() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // Throughput.
    seen.want.store(jobs as usize, Ordering::Release);
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let posters: Vec<_> = (0..posters)
        .map(|_| {
            let (poster, next) = (poster.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= jobs {
                        return;
                    }
                    poster
                        .post(NewJob::new("noop", "1").input("n", n))
                        .await
                        .expect("posted");
                }
            })
        })
        .collect();
    for p in posters {
        p.await.expect("a poster");
    }
    let posted = start.elapsed();
    if seen.ended.load(Ordering::Acquire) < jobs as usize {
        tokio::time::timeout(Duration::from_secs(600), seen.all_ended.notified())
            .await
            .expect("the jobs ended");
    }
    let elapsed = start.elapsed();
    let (commits, writes) = boards.iter().fold((0, 0), |(c, w), b| {
        let s = b.stats();
        (c + s.commits, w + s.writes)
    });

    // Pickup latency.
    seen.want.store(usize::MAX, Ordering::Release);
    let mut posts = Vec::new();
    for k in 0..pickups {
        let n = jobs + k;
        let at = Instant::now();
        poster
            .post(NewJob::new("noop", "1").input("n", n))
            .await
            .expect("posted");
        posts.push((n, at));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies = loop {
        let started = seen.started.lock().unwrap().clone();
        if posts.iter().all(|(n, _)| started.contains_key(n)) {
            break posts
                .iter()
                .map(|(n, at)| (started[n] - *at).as_secs_f64() * 1e3)
                .collect::<Vec<f64>>();
        }
        assert!(Instant::now() < deadline, "the pickups never all started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    latencies.sort_by(f64::total_cmp);

    // Every job complete, on the board too.
    let total = (jobs + pickups) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = poster
            .list_jobs(JobQuery::new().state(JobState::Complete))
            .await
            .expect("listed")
            .len();
        if done == total {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of {total} jobs complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for h in &handles {
        h.shutdown();
    }
    for r in running {
        r.await.expect("a conductor").expect("it ran");
    }
    println!(
        "conductors {conductors}: {:.0} jobs/s ({jobs} jobs of 10 no-op tasks in {:.2} s, posted \
         in {:.2} s); pickup p50 {:.1} ms, p99 {:.1} ms ({pickups} jobs posted 5 ms apart); journal: {:.1} writes per job in {:.1} \
         commits per job",
        jobs as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        posted.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        writes as f64 / jobs as f64,
        commits as f64 / jobs as f64,
    );
    drop(boards);
    drop(poster);
    drop_schema(url, &schema).await;
}

async fn drop_schema(url: &str, schema: &str) {
    if let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        let driver = tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
        drop(client);
        let _ = driver.await;
    }
}

fn main() {
    // RUST_LOG=flow=debug shows what the conductors and the store say.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let Some(url) = var("FLOW_BENCH_POSTGRES").or_else(|| var("FLOW_TEST_POSTGRES")) else {
        eprintln!(
            "FLOW_BENCH_POSTGRES (or FLOW_TEST_POSTGRES) names no server: nothing to measure"
        );
        return;
    };
    let counts: Vec<usize> = var("FLOW_BENCH_CONDUCTORS")
        .unwrap_or_else(|| "1,2,4,8".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let jobs = var("FLOW_BENCH_JOBS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let pickups = var("FLOW_BENCH_PICKUPS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let concurrency = var("FLOW_BENCH_CONCURRENCY")
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let posters = var("FLOW_BENCH_POSTERS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    for n in counts {
        rt.block_on(case(&url, n, jobs, pickups, concurrency, posters));
    }
}
