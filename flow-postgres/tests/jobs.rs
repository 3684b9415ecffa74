//! The job board on PostgreSQL beyond the conformance suite: a post made by
//! one backend (another machine, say) wakes a conductor of another at once,
//! by `NOTIFY`; conductors on two backends share jobs, each step running
//! once. Skipped without `FLOW_TEST_POSTGRES`.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow::conductor::{Conductor, Registry};
use flow::postgres::PostgresBackend;
use flow::storage::{JobBoard, JobOutcome, JobQuery, JobState, NewJob};
use flow::{Atom, Flow, FnTask, Outputs, Signature, TaskError};

async fn open(schema: &support::Schema) -> Arc<PostgresBackend> {
    Arc::new(
        PostgresBackend::connect_with(&schema.url, support::options(schema))
            .await
            .expect("the store opens"),
    )
}

async fn until_listening(b: &PostgresBackend) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.is_listening() {
        assert!(Instant::now() < deadline, "the backend never listened");
        b.wait_for_jobs(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_through_another_backend_wakes_a_waiting_conductor() {
    let Some(url) = support::url() else { return };
    let schema = support::Schema::new(&url);
    let (waiter, poster) = (open(&schema).await, open(&schema).await);
    until_listening(&waiter).await;
    // Drain the wake-up that said the listener came up.
    waiter.wait_for_jobs(Duration::from_millis(50)).await;
    for _ in 0..5 {
        let start = Instant::now();
        let wait = waiter.wait_for_jobs(Duration::from_secs(30));
        let post = async {
            tokio::task::yield_now().await;
            poster.post(NewJob::new("f", "1")).await.unwrap();
        };
        futures::join!(wait, post);
        // Woken by the server's NOTIFY: the poster shares nothing else
        // with the waiter, and the wait was for 30 s.
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
    assert_eq!(waiter.list_jobs(JobQuery::new()).await.unwrap().len(), 5);
}

/// `count`: adds one to its step's count; `fails`: a step with an undo,
/// then one that fails.
fn registry(ran: &Arc<Mutex<BTreeMap<String, u32>>>) -> Registry {
    let r = ran.clone();
    let count = FnTask::sync(Signature::new().requires::<u32>("n"), move |a| {
        let n = a.get::<u32>(0)?;
        *r.lock().unwrap().entry(format!("count {n}")).or_default() += 1;
        Ok(Outputs::new())
    });
    let r = ran.clone();
    let step = FnTask::sync(
        Signature::new().requires::<u32>("n"),
        |_| Ok(Outputs::new()),
    )
    .on_revert_sync(move |a| {
        let n = a.args.get::<u32>(0)?;
        *r.lock().unwrap().entry(format!("undo {n}")).or_default() += 1;
        Ok(None)
    });
    let boom = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("no")));
    let mut registry = Registry::new();
    registry.register(
        "1",
        Flow::linear("count")
            .input::<u32>("n")
            .add(Atom::new("count", count))
            .build()
            .unwrap(),
    );
    registry.register(
        "1",
        Flow::linear("fails")
            .input::<u32>("n")
            .add(Atom::new("step", step))
            .add(Atom::new("boom", boom))
            .build()
            .unwrap(),
    );
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductors_on_two_backends_share_jobs_each_step_once() {
    let Some(url) = support::url() else { return };
    let schema = support::Schema::new(&url);
    let (a, b) = (open(&schema).await, open(&schema).await);
    let ran = Arc::new(Mutex::new(BTreeMap::new()));
    let mut handles = Vec::new();
    let mut running = Vec::new();
    for (name, board) in [("a", a.clone()), ("b", b.clone())] {
        let c = Conductor::new(board, registry(&ran))
            .owner(name)
            .concurrency(4);
        handles.push(c.handle());
        running.push(tokio::spawn(c.run()));
    }
    let mut expected = BTreeMap::new();
    for n in 0..40u32 {
        let flow = if n % 4 == 3 { "fails" } else { "count" };
        a.post(NewJob::new(flow, "1").input("n", n)).await.unwrap();
        let key = if flow == "fails" { "undo" } else { "count" };
        expected.insert(format!("{key} {n}"), 1);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs = loop {
        let jobs = b.list_jobs(JobQuery::new()).await.unwrap();
        if jobs.iter().all(|j| j.state == JobState::Complete) {
            break jobs;
        }
        assert!(Instant::now() < deadline, "never all complete: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for h in &handles {
        h.shutdown();
    }
    let mut completed = 0;
    for r in running {
        completed += r.await.unwrap().unwrap().completed;
    }
    assert_eq!(completed, 40);
    for j in &jobs {
        let n = j.inputs["n"].as_u64().unwrap();
        let want = if n % 4 == 3 {
            JobOutcome::Reverted
        } else {
            JobOutcome::Succeeded
        };
        assert_eq!(
            (j.outcome, j.claims, j.crashes),
            (Some(want), 1, 0),
            "{j:?}"
        );
    }
    assert_eq!(*ran.lock().unwrap(), expected);
}
