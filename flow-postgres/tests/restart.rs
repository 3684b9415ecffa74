//! The PostgreSQL server restarted in the middle of 30 runs: every run
//! finishes, every step ran once, nothing acknowledged is lost.
//!
//! It restarts the server (`pg_ctlcluster --skip-systemctl-redirect VERSION
//! main restart`), so it runs only where the test owns the server: with
//! `FLOW_TEST_POSTGRES_RESTART=1` (`.ci/run` sets it) besides
//! `FLOW_TEST_POSTGRES`; otherwise it passes at once, saying so.

mod support;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flow::postgres::PostgresBackend;
use support::Schema;
use support::runs::{Ran, check_runs, many_runs};

fn started_at(url: &str) -> String {
    support::query(url, "SELECT pg_postmaster_start_time()")[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run() {
    let Some(url) = support::url() else { return };
    if std::env::var("FLOW_TEST_POSTGRES_RESTART").as_deref() != Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the restart test restarts the PostgreSQL server; set \
             FLOW_TEST_POSTGRES_RESTART=1 where the test owns it"
        );
        return;
    }
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql lists the clusters")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a PostgreSQL cluster");
    let schema = Schema::new(&url);
    let store = Arc::new(
        PostgresBackend::connect_with(
            &url,
            support::options(&schema).unavailable_after(Duration::from_secs(60)),
        )
        .await
        .unwrap(),
    );
    let before = started_at(&url);
    let ran: Ran = Arc::default();
    // The 200th step to start restarts the server, from a thread of its own;
    // until the restart is over, every step takes 300 ms, so that the runs'
    // writes meet the server stopped, starting and started again.
    let steps = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let (s, r) = (steps.clone(), restarted.clone());
    let restarter = Arc::new(std::sync::Mutex::new(None));
    let slot = restarter.clone();
    let over = Arc::new(AtomicBool::new(false));
    let o = over.clone();
    let hook: Arc<dyn Fn(usize) -> Duration + Send + Sync> = Arc::new(move |_| {
        if s.fetch_add(1, Ordering::SeqCst) == 200 && !r.swap(true, Ordering::SeqCst) {
            let (version, o) = (version.clone(), o.clone());
            let thread = std::thread::spawn(move || {
                let status = Command::new("pg_ctlcluster")
                    .args(["--skip-systemctl-redirect", &version, "main", "restart"])
                    .status()
                    .expect("pg_ctlcluster runs");
                o.store(true, Ordering::SeqCst);
                status
            });
            *slot.lock().unwrap() = Some(thread);
        }
        if r.load(Ordering::SeqCst) && !o.load(Ordering::SeqCst) {
            Duration::from_millis(300)
        } else {
            Duration::from_millis(1)
        }
    });
    let (runs, tasks) = (30, 20);
    let outcomes = many_runs(store.clone(), runs, tasks, &ran, &hook).await;
    let thread = restarter
        .lock()
        .unwrap()
        .take()
        .expect("the server was restarted");
    assert!(
        thread.join().unwrap().success(),
        "pg_ctlcluster restart failed"
    );
    let finished = check_runs(&store, &outcomes, tasks, &ran).await;
    let stats = store.stats();
    // Written past the test harness's capture, so that `.ci/run` sees that
    // the restart happened even when the test passes.
    let _ = writeln!(
        std::io::stderr(),
        "{runs} runs across a restart: {finished} finished; {} tries again, {} commits settled \
         by reading back; {} commits",
        stats.retries, stats.settled, stats.commits
    );
    assert_ne!(started_at(&url), before, "the server did not restart");
    assert_eq!(finished, runs);
    assert!(stats.retries > 0, "no write met the restart: {stats:?}");
}
