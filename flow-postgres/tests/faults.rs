//! Faults between the backend and the server, with a real server and real
//! sockets: a connection cut just before the server got a `COMMIT` (nothing
//! committed: the batch is tried again), just after it committed (the
//! outcome is settled by reading back, not assumed), a server that stays
//! out of reach (a typed error after the documented time, and the engine
//! starts nothing more), and connections killed from the server's side
//! (`pg_terminate_backend`) all through concurrent runs.
//!
//! Skipped (each test passes at once, saying so) without `FLOW_TEST_POSTGRES`.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flow::postgres::PostgresBackend;
use flow::{AtomState, Backend, Engine, FlowState, LogbookId, Operation, RunError, StorageError};
use flow_conformance::{done, run, snapshots};
use serde_json::json;
use support::Schema;
use support::proxy::Proxy;
use support::runs::{Ran, check_runs, counted_chain, executed, many_runs};

/// A backend connected through a proxy, on a fresh schema.
async fn through_proxy(
    options: impl FnOnce(flow::postgres::PostgresOptions) -> flow::postgres::PostgresOptions,
) -> Option<(Schema, Proxy, PostgresBackend)> {
    let url = support::url()?;
    let schema = Schema::new(&url);
    let proxy = Proxy::start(&url);
    let store = PostgresBackend::connect_with(&proxy.url(&url), options(support::options(&schema)))
        .await
        .expect("the store opens through the proxy");
    Some((schema, proxy, store))
}

#[tokio::test]
async fn a_commit_cut_after_the_server_committed_is_settled_as_committed() {
    let Some((schema, proxy, store)) = through_proxy(|o| o).await else {
        return;
    };
    let r = run(LogbookId::new(), "settled", FlowState::Running);
    let lease = flow_conformance::create(&store, &r, Vec::new(), "me").await;
    let before = store.stats();
    proxy.cut_after_next_commit();
    store
        .save_atoms(r.id, lease.fence, vec![done("a", json!([1]), 1)])
        .await
        .expect("the write committed, and is acknowledged");
    assert_eq!(proxy.cuts(), 1, "the connection was cut after COMMIT");
    let after = store.stats();
    assert_eq!(after.settled - before.settled, 1, "{after:?}");
    assert_eq!(
        after.commits - before.commits,
        1,
        "committed once: {after:?}"
    );
    let (_, atoms) = store.load_flow(r.id).await.unwrap();
    assert_eq!(snapshots(&atoms), snapshots(&[done("a", json!([1]), 1)]));
    // Its token is in the store once: the settling insert found it there.
    let tokens = support::query(
        &schema.url,
        &format!("SELECT count(*) FROM {}.commits", schema.name),
    );
    assert_eq!(tokens, [after.commits.to_string()]);
}

#[tokio::test]
async fn a_commit_cut_before_the_server_had_it_is_settled_and_tried_again() {
    let Some((schema, proxy, store)) = through_proxy(|o| o).await else {
        return;
    };
    let r = run(LogbookId::new(), "again", FlowState::Running);
    let lease = flow_conformance::create(&store, &r, Vec::new(), "me").await;
    let before = store.stats();
    proxy.cut_before_next_commit();
    store
        .save_atoms(r.id, lease.fence, vec![done("a", json!([2]), 1)])
        .await
        .expect("the write went through on its second try");
    assert_eq!(proxy.cuts(), 1, "the connection was cut before COMMIT");
    let after = store.stats();
    assert_eq!(after.settled - before.settled, 1, "{after:?}");
    assert_eq!(after.commits - before.commits, 1, "{after:?}");
    let (_, atoms) = store.load_flow(r.id).await.unwrap();
    assert_eq!(snapshots(&atoms), snapshots(&[done("a", json!([2]), 1)]));
    // The first try's token went in only through the settling insert,
    // which barred that try for good: one token more than commits.
    let tokens = support::query(
        &schema.url,
        &format!("SELECT count(*) FROM {}.commits", schema.name),
    );
    assert_eq!(tokens, [(after.commits + 1).to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_reach_becomes_a_typed_error_and_the_engine_starts_nothing_more() {
    let Some((_schema, proxy, store)) =
        through_proxy(|o| o.unavailable_after(Duration::from_secs(1))).await
    else {
        return;
    };
    let store = Arc::new(store);
    let ran: Ran = Arc::default();
    let p = proxy.clone();
    let cut = Arc::new(AtomicBool::new(true));
    let c = cut.clone();
    let hook: Arc<dyn Fn(usize) -> Duration + Send + Sync> = Arc::new(move |i| {
        if i == 3 && c.swap(false, Ordering::SeqCst) {
            p.down();
        }
        Duration::from_millis(1)
    });
    let make = || counted_chain(10, ran.clone(), hook.clone());
    let mut engine = Engine::builder(make())
        .input("run", "away".to_string())
        .input("v0", 0u64)
        .storage(store.clone())
        .lease(Duration::from_millis(500))
        .build();
    let started = Instant::now();
    let err = engine.run().await.unwrap_err();
    let took = started.elapsed();
    match &err {
        RunError::Storage(StorageError::Unavailable { op, waited, .. }) => {
            assert_eq!(*op, Operation::SaveRun);
            assert!(*waited >= Duration::from_secs(1), "{waited:?}");
        }
        other => panic!("expected a storage error Unavailable, got {other:?}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        err.to_string().contains("could not be reached for"),
        "{err}"
    );
    let id = engine.run_id();
    // t03 ran (the server went away while it did); nothing after it started.
    assert_eq!(executed(&ran, "away"), ["t00x1", "t01x1", "t02x1", "t03x1"]);
    drop(engine);

    // The server back: the run is as journaled, and resumes to the end; the
    // step caught running runs again, the others once.
    proxy.up();
    let (flow, atoms) = store.load_flow(id).await.unwrap();
    assert_eq!(flow.state, FlowState::Running);
    let states: HashMap<String, AtomState> =
        atoms.iter().map(|a| (a.name.clone(), a.state)).collect();
    assert_eq!(states["t02"], AtomState::Success);
    assert_eq!(states["t03"], AtomState::Running);
    assert_eq!(states["t04"], AtomState::Pending);
    let mut resumed = Engine::builder(make())
        .storage(store.clone())
        .wait_for_lease(Duration::from_secs(5))
        .resume(id)
        .await
        .unwrap();
    resumed.run().await.unwrap();
    assert_eq!(resumed.fetch::<u64>("v10"), Some(&10));
    assert_eq!(
        executed(&ran, "away"),
        [
            "t00x1", "t01x1", "t02x1", "t03x2", "t04x1", "t05x1", "t06x1", "t07x1", "t08x1",
            "t09x1"
        ]
    );
}

/// 60 runs of 25 steps at once while the server kills the backend's
/// connections every 20 to 80 ms (`pg_terminate_backend`, aimed at this
/// backend by its `application_name`): each run finishes or fails with a
/// typed error, every step journaled `SUCCESS` ran once, and commits were
/// caught in the middle and settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_by_the_server_during_commits() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    let app = format!("flow_kill_{}", &schema.name[2..14]);
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = Arc::new(
        PostgresBackend::connect_with(
            &format!("{url}{sep}application_name={app}"),
            support::options(&schema),
        )
        .await
        .unwrap(),
    );
    let ran: Ran = Arc::default();
    let hook: Arc<dyn Fn(usize) -> Duration + Send + Sync> = Arc::new(|_| Duration::from_millis(1));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let (d, k, u, a) = (done.clone(), kills.clone(), url.clone(), app.clone());
    let killer = std::thread::spawn(move || {
        // Now and then, 20 to 80 ms apart (a batch needs a few ms between
        // its BEGIN and its COMMIT; killed faster, it could never commit).
        let mut rounds = 0u64;
        while !d.load(Ordering::SeqCst) && rounds < 1000 {
            let killed = support::query(
                &u,
                &format!(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM \
                     pg_stat_activity WHERE application_name = '{a}'"
                ),
            );
            k.fetch_add(killed[0].parse::<usize>().unwrap_or(0), Ordering::SeqCst);
            rounds += 1;
            let gap = 20 + (rounds.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58);
            std::thread::sleep(Duration::from_millis(gap));
        }
    });
    let (runs, tasks) = (60, 25);
    let outcomes = many_runs(store.clone(), runs, tasks, &ran, &hook).await;
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let finished = check_runs(&store, &outcomes, tasks, &ran).await;
    let stats = store.stats();
    println!(
        "{runs} runs: {finished} finished; {} connections killed; {} tries again, {} commits \
         settled by reading back; {} commits",
        kills.load(Ordering::SeqCst),
        stats.retries,
        stats.settled,
        stats.commits
    );
    assert!(finished > 0, "no run finished");
    assert!(kills.load(Ordering::SeqCst) > 0, "no connection was killed");
    assert!(
        stats.retries + stats.settled > 0,
        "no write met a killed connection: {stats:?}"
    );
}
