//! Conductors in one process: jobs posted to a board run to their outcomes;
//! a conductor that shuts down hands its jobs back and another finishes
//! them; a cancelled job's run is reverted; two conductors on one SQLite
//! store share many jobs, each step running once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow::conductor::{Conductor, Registry};
use flow::storage::{Job, JobBoard, JobId, JobOutcome, JobQuery, JobState, NewJob};
use flow::{
    Atom, CompiledFlow, Exec, Flow, FlowState, FnTask, MemoryBackend, Outputs, Signature,
    SqliteBackend, TaskError,
};
use tempfile::TempDir;

/// Waits until `done` says the board is where the test wants it.
async fn until(board: &dyn JobBoard, what: &str, done: impl Fn(&[Job]) -> bool) -> Vec<Job> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = board.list_jobs(JobQuery::new()).await.unwrap();
        if done(&jobs) {
            return jobs;
        }
        assert!(Instant::now() < deadline, "never {what}: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn complete(id: JobId) -> impl Fn(&[Job]) -> bool {
    move |jobs| {
        jobs.iter()
            .any(|j| j.id == id && j.state == JobState::Complete)
    }
}

/// `greet`: `name -> greeting`; `fails`: one step that fails with `Woot!`.
fn registry(log: &Arc<Mutex<Vec<String>>>) -> Registry {
    let l = log.clone();
    let greet = FnTask::sync(
        Signature::new()
            .requires::<String>("name")
            .provides::<String>("greeting"),
        move |a| {
            let name = a.get::<String>(0)?;
            l.lock().unwrap().push(format!("greet {name}"));
            Ok(Outputs::one(format!("hello, {name}")))
        },
    );
    let undo_log = log.clone();
    let step = FnTask::sync(Signature::new(), |_| Ok(Outputs::new())).on_revert_sync(move |_| {
        undo_log.lock().unwrap().push("undo step".into());
        Ok(None)
    });
    let boom = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("Woot!")));
    let mut registry = Registry::new();
    registry
        .register(
            "1",
            Flow::linear("greet")
                .input::<String>("name")
                .add(Atom::new("greet", greet))
                .build()
                .unwrap(),
        )
        .register(
            "1",
            Flow::linear("fails")
                .add(Atom::new("step", step))
                .add(Atom::new("boom", boom))
                .build()
                .unwrap(),
        );
    registry
}

async fn jobs_run_to_their_outcomes(board: Arc<dyn JobBoard>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let ok = board
        .post(NewJob::new("greet", "1").input("name", "world"))
        .await
        .unwrap();
    let failing = board.post(NewJob::new("fails", "1")).await.unwrap();
    let unknown = board
        .post(NewJob::new("greet", "2").input("name", "x"))
        .await
        .unwrap();
    let bad = board
        .post(NewJob::new("greet", "1").input("name", 5))
        .await
        .unwrap();
    let conductor = Conductor::new(board.clone(), registry(&log))
        .owner("c1")
        .concurrency(2)
        .poll(Duration::from_millis(20));
    let stop = conductor.handle();
    let running = tokio::spawn(conductor.run());
    let jobs = until(&*board, "completed the known jobs", |jobs| {
        [ok.id, failing.id, bad.id]
            .iter()
            .all(|id| complete(*id)(jobs))
    })
    .await;
    stop.shutdown();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(
        (summary.completed, summary.handed_back, summary.lost),
        (3, 0, 0)
    );

    let by_id: BTreeMap<JobId, &Job> = jobs.iter().map(|j| (j.id, j)).collect();
    assert_eq!(by_id[&ok.id].outcome, Some(JobOutcome::Succeeded));
    assert_eq!(by_id[&ok.id].error, None);
    assert_eq!(by_id[&failing.id].outcome, Some(JobOutcome::Reverted));
    assert_eq!(
        by_id[&failing.id].error.as_deref(),
        Some("flow `fails` was reverted: task `boom` failed: Woot!")
    );
    assert_eq!(by_id[&bad.id].outcome, Some(JobOutcome::Failed));
    let why = by_id[&bad.id].error.clone().unwrap();
    assert!(
        why.starts_with(&format!(
            "its run could not be taken up: run {}: the stored input `name` no longer decodes as `String`",
            bad.run
        )),
        "{why}"
    );
    // Nobody knows version 2: it waits, visibly.
    assert_eq!(by_id[&unknown.id].state, JobState::Unclaimed);
    assert_eq!(by_id[&unknown.id].claims, 0);

    let (run, atoms) = board.load_flow(ok.run).await.unwrap();
    assert_eq!(run.state, FlowState::Success);
    assert_eq!(
        run.ownership.owner, None,
        "the run was given back with the job"
    );
    assert_eq!(atoms[0].result, Some(serde_json::json!(["hello, world"])));
    let mut log = log.lock().unwrap().clone();
    log.sort();
    assert_eq!(log, ["greet world", "undo step"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_to_their_outcomes_on_memory() {
    jobs_run_to_their_outcomes(Arc::new(MemoryBackend::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_to_their_outcomes_on_sqlite() {
    let dir = TempDir::new().unwrap();
    let store = SqliteBackend::open(dir.path().join("jobs.db")).unwrap();
    jobs_run_to_their_outcomes(Arc::new(store)).await;
}

/// `first` logs itself; `slow` waits until `gate` has a message; `last`
/// logs itself.
fn gated_flow(log: &Arc<Mutex<Vec<String>>>, gate: Arc<tokio::sync::Semaphore>) -> CompiledFlow {
    let (l1, l3) = (log.clone(), log.clone());
    let first = FnTask::sync(Signature::new(), move |_| {
        l1.lock().unwrap().push("first".into());
        Ok(Outputs::new())
    });
    let slow = FnTask::asynchronous(Signature::new(), move |_, _| {
        let gate = gate.clone();
        async move {
            gate.acquire().await.map_err(TaskError::from)?.forget();
            Ok(Outputs::new())
        }
    });
    let last = FnTask::sync(Signature::new(), move |_| {
        l3.lock().unwrap().push("last".into());
        Ok(Outputs::new())
    });
    Flow::linear("gated")
        .add(Atom::new("first", first))
        .add(Atom::new("slow", slow))
        .add(Atom::new("last", last))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conductor_that_shuts_down_hands_its_job_back_for_another() {
    let board: Arc<dyn JobBoard> = Arc::new(MemoryBackend::new());
    let log = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut registry = Registry::new();
    registry.register("1", gated_flow(&log, gate.clone()));
    let job = board.post(NewJob::new("gated", "1")).await.unwrap();

    let a = Conductor::new(board.clone(), registry.clone())
        .owner("a")
        .poll(Duration::from_millis(20));
    let stop_a = a.handle();
    let running_a = tokio::spawn(a.run());
    until(&*board, "claimed by a", |jobs| {
        jobs[0].owner.as_deref() == Some("a")
    })
    .await;
    // `first` done, `slow` waits: shut down, then let `slow` finish.
    stop_a.shutdown();
    gate.add_permits(1);
    let summary = running_a.await.unwrap().unwrap();
    assert_eq!((summary.completed, summary.handed_back), (0, 1));
    let back = board.load_job(job.id).await.unwrap().unwrap();
    assert_eq!((back.state, back.claims), (JobState::Unclaimed, 1));
    let (run, _) = board.load_flow(job.run).await.unwrap();
    assert_eq!(
        (run.state, run.ownership.owner.clone()),
        (FlowState::Suspended, None)
    );

    let b = Conductor::new(board.clone(), registry)
        .owner("b")
        .poll(Duration::from_millis(20));
    let stop_b = b.handle();
    let running_b = tokio::spawn(b.run());
    until(&*board, "completed by b", complete(job.id)).await;
    stop_b.shutdown();
    assert_eq!(running_b.await.unwrap().unwrap().completed, 1);
    let done = board.load_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (done.outcome, done.claims, done.crashes),
        (Some(JobOutcome::Succeeded), 2, 0)
    );
    assert_eq!(done.owner.as_deref(), Some("b"));
    assert_eq!(
        *log.lock().unwrap(),
        ["first", "last"],
        "each step ran once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_reverts_its_run() {
    let board: Arc<dyn JobBoard> = Arc::new(MemoryBackend::new());
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = FnTask::new(Signature::new(), move |_, ctx| {
        let ctx = ctx.clone();
        let started = started_tx.clone();
        Exec::future(async move {
            let _ = started.send(());
            ctx.cancelled().await;
            Err(TaskError::msg("stopped"))
        })
    });
    let mut registry = Registry::new();
    registry.register(
        "1",
        Flow::linear("watched")
            .add(Atom::new("watcher", watcher))
            .build()
            .unwrap(),
    );
    let job = board.post(NewJob::new("watched", "1")).await.unwrap();
    let conductor = Conductor::new(board.clone(), registry)
        .renew_every(Duration::from_millis(20))
        .poll(Duration::from_millis(20));
    let stop = conductor.handle();
    let running = tokio::spawn(conductor.run());
    started.recv().await.expect("the watcher starts");
    let asked = board.cancel_job(job.id).await.unwrap();
    assert_eq!(asked.state, JobState::Claimed);
    let jobs = until(&*board, "cancelled", complete(job.id)).await;
    stop.shutdown();
    running.await.unwrap().unwrap();
    assert_eq!(jobs[0].outcome, Some(JobOutcome::Cancelled));
    assert_eq!(
        jobs[0].error.as_deref(),
        Some(
            "flow `watched` was cancelled and what had run was reverted; meanwhile: task \
             `watcher` failed: stopped"
        )
    );
    let (run, _) = board.load_flow(job.run).await.unwrap();
    assert_eq!(run.state, FlowState::Reverted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conductors_share_a_hundred_jobs_on_one_sqlite_store() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("shared.db");
    let log = Arc::new(Mutex::new(Vec::new()));
    let registry = || {
        let mut flow = Flow::linear("three").input::<u64>("n");
        for step in ["s1", "s2", "s3"] {
            let log = log.clone();
            let task = FnTask::sync(Signature::new().requires::<u64>("n"), move |a| {
                log.lock()
                    .unwrap()
                    .push(format!("{} {step}", a.get::<u64>(0)?));
                Ok(Outputs::new())
            });
            flow.push(Atom::new(step, task));
        }
        let mut r = Registry::new();
        r.register("1", flow.build().unwrap());
        r
    };
    // Two stores on one file: as two processes would share it.
    let first: Arc<dyn JobBoard> = Arc::new(SqliteBackend::open(&path).unwrap());
    let second: Arc<dyn JobBoard> = Arc::new(SqliteBackend::open(&path).unwrap());
    let mut ids = Vec::new();
    for n in 0..100u64 {
        ids.push(
            first
                .post(NewJob::new("three", "1").input("n", n))
                .await
                .unwrap()
                .id,
        );
    }
    let conductors = [("c1", first.clone()), ("c2", second.clone())].map(|(owner, board)| {
        let c = Conductor::new(board, registry())
            .owner(owner)
            .concurrency(4)
            .poll(Duration::from_millis(10));
        (c.handle(), tokio::spawn(c.run()))
    });
    let jobs = until(&*first, "completed every job", |jobs| {
        jobs.len() == 100 && jobs.iter().all(|j| j.state == JobState::Complete)
    })
    .await;
    let mut completed = 0;
    for (stop, running) in conductors {
        stop.shutdown();
        completed += running.await.unwrap().unwrap().completed;
    }
    assert_eq!(completed, 100);
    assert!(
        jobs.iter()
            .all(|j| j.outcome == Some(JobOutcome::Succeeded) && j.claims == 1)
    );
    let mut log = log.lock().unwrap().clone();
    log.sort();
    let mut expected: Vec<String> = (0..100u64)
        .flat_map(|n| ["s1", "s2", "s3"].map(|s| format!("{n} {s}")))
        .collect();
    expected.sort();
    assert_eq!(log, expected, "each step of each job ran once");
    drop(second);
}
