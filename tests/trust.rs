//! Resumption you can trust, within one process: a finished run stays
//! finished; an engine that lost its run starts nothing more; a cancel
//! reaches the owner through the store, ends retry waits at once and gives up
//! on tasks that ignore it; a synchronous task past its limit times out;
//! what the journal cannot hold exactly is the task's failure; a definition
//! may drop atoms that need nothing more.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{MODES, failing, progressing};
use flow::{
    Atom, Backend, CaptureListener, Claim, CompiledFlow, Engine, Event, Exec, FailureKind, Flow,
    FlowState, FnTask, Listener, MemoryBackend, Outputs, ResumeError, Retry, RunError, Signature,
    TaskError, Value,
};

/// Counts executes and reverts of every task it makes.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<BTreeMap<String, (usize, usize)>>>);

impl Counts {
    fn task(&self, name: &'static str, provides: Option<u32>, fails: bool) -> Atom {
        let (on_exec, on_revert) = (self.0.clone(), self.0.clone());
        let sig = match provides {
            Some(_) => Signature::new().provides::<u32>(name),
            None => Signature::new(),
        };
        let task = FnTask::sync(sig, move |_| {
            on_exec.lock().unwrap().entry(name.into()).or_default().0 += 1;
            if fails {
                return Err(TaskError::msg("Woot!"));
            }
            Ok(provides.map_or_else(Outputs::new, Outputs::one))
        })
        .on_revert_sync(move |_| {
            on_revert.lock().unwrap().entry(name.into()).or_default().1 += 1;
            Ok(None)
        });
        Atom::new(name, task)
    }

    fn get(&self) -> BTreeMap<String, (usize, usize)> {
        self.0.lock().unwrap().clone()
    }
}

/// `a`, `b`, then `c`, which fails when `fail` is set.
fn abc(counts: &Counts, fail: bool) -> CompiledFlow {
    Flow::linear("abc")
        .add(counts.task("a", Some(1), false))
        .add(counts.task("b", Some(2), false))
        .add(counts.task("c", None, fail))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_run_taken_up_after_it_ended_returns_its_outcome_and_runs_nothing() {
    for fail in [false, true] {
        let store = Arc::new(MemoryBackend::new());
        let counts = Counts::default();
        let mut first = Engine::builder(abc(&counts, fail))
            .storage(store.clone())
            .build();
        let outcome = first.run().await.map_err(|e| e.to_string());
        let id = first.run_id();
        drop(first);
        let after_first = counts.get();

        // As if the process died between journaling the end and giving the
        // run back: its lease is still live.
        let ghost = store
            .claim_flow(id, Claim::new("ghost", Duration::from_secs(600)))
            .await
            .unwrap();
        assert_eq!(ghost.fence, 2);

        let mut again = Engine::builder(abc(&counts, fail))
            .storage(store.clone())
            .resume(id)
            .await
            .expect("an ended run is read back whoever holds it");
        let end = if fail {
            FlowState::Reverted
        } else {
            FlowState::Success
        };
        assert_eq!(again.state(), end);
        for _ in 0..2 {
            assert_eq!(again.run().await.map_err(|e| e.to_string()), outcome);
        }
        assert_eq!(counts.get(), after_first, "nothing ran or reverted again");
        let (run, _) = store.load_flow(id).await.unwrap();
        assert_eq!(
            (run.state, run.ownership.fence),
            (end, 2),
            "nothing was written"
        );

        if fail {
            assert_eq!(
                outcome,
                Err("flow `abc` was reverted: task `c` failed: Woot!".to_string())
            );
            // Starting it over is an explicit call, once the ghost is gone.
            store.release_flow(&ghost).await.unwrap();
            again.reset();
            let err = again.run().await.expect_err("c fails again");
            assert_eq!(
                err.to_string(),
                "flow `abc` was reverted: task `c` failed: Woot!"
            );
            assert_eq!(
                counts.get(),
                [
                    ("a".to_string(), (2, 2)),
                    ("b".to_string(), (2, 2)),
                    ("c".to_string(), (2, 2))
                ]
                .into()
            );
        }
    }
}

/// Blocks until `gate` is sent a unit.
fn gated(
    name: &'static str,
    gate: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>>,
    reached: tokio::sync::mpsc::UnboundedSender<()>,
) -> Atom {
    let task = FnTask::asynchronous(Signature::new().provides::<u32>(name), move |_, _| {
        let gate = gate.clone();
        let reached = reached.clone();
        async move {
            let _ = reached.send(());
            gate.lock().await.recv().await;
            Ok(Outputs::one(7u32))
        }
    });
    Atom::new(name, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_whose_run_was_taken_over_starts_nothing_more() {
    let store = Arc::new(MemoryBackend::new());
    let counts = Counts::default();
    let (open, gate) = tokio::sync::mpsc::channel(1);
    let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel();
    let flow = Flow::linear("taken")
        .add(counts.task("a", Some(1), false))
        .add(gated(
            "slow",
            Arc::new(tokio::sync::Mutex::new(gate)),
            reached_tx,
        ))
        .add(counts.task("after", Some(3), false))
        .build()
        .unwrap();
    // A lease that runs out while `slow` runs, and nothing renewing it.
    let mut engine = Engine::builder(flow)
        .storage(store.clone())
        .owner("first")
        .lease(Duration::from_millis(100))
        .renew_every(Duration::from_secs(3600))
        .build();
    let id = engine.run_id();
    let running = tokio::spawn(async move { (engine.run().await, engine) });
    reached.recv().await.expect("slow starts");
    // Waiting for the lease's end is the point here.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = store
        .claim_flow(id, Claim::new("second", Duration::from_secs(600)))
        .await
        .expect("a lease that ran out can be taken over");
    assert_eq!(second.fence, 2);
    open.send(()).await.unwrap();
    let (outcome, engine) = running.await.unwrap();
    let err = outcome.expect_err("the run was taken");
    let RunError::OwnershipLost {
        fence,
        current,
        holder,
        ..
    } = &err
    else {
        panic!("expected OwnershipLost, got {err:?}");
    };
    assert_eq!(
        (*fence, *current, holder.as_deref()),
        (1, 2, Some("second"))
    );
    assert_eq!(
        err.to_string(),
        format!(
            "flow `taken`: run {id} was claimed by `second` (fencing number 2, ours 1): this \
             engine stopped and left the run to its new owner"
        )
    );
    assert_eq!(
        counts.get(),
        [("a".to_string(), (1, 0))].into(),
        "`after` never ran"
    );
    let (run, atoms) = store.load_flow(id).await.unwrap();
    assert_eq!(run.ownership.owner.as_deref(), Some("second"));
    let slow = atoms.iter().find(|a| a.name == "slow").unwrap();
    assert_eq!(
        slow.state,
        flow::AtomState::Running,
        "the refused write changed nothing"
    );
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_ran_out_with_nobody_taking_over_is_renewed_and_the_run_goes_on() {
    let store = Arc::new(MemoryBackend::new());
    let counts = Counts::default();
    let (open, gate) = tokio::sync::mpsc::channel(1);
    let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel();
    let flow = Flow::linear("late")
        .add(gated(
            "slow",
            Arc::new(tokio::sync::Mutex::new(gate)),
            reached_tx,
        ))
        .add(counts.task("after", Some(3), false))
        .build()
        .unwrap();
    let mut engine = Engine::builder(flow)
        .storage(store.clone())
        .lease(Duration::from_millis(100))
        .renew_every(Duration::from_secs(3600))
        .build();
    let running = tokio::spawn(async move { engine.run().await });
    reached.recv().await.expect("slow starts");
    tokio::time::sleep(Duration::from_millis(250)).await;
    open.send(()).await.unwrap();
    running
        .await
        .unwrap()
        .expect("nobody took the run: it goes on");
    assert_eq!(counts.get(), [("after".to_string(), (1, 0))].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_through_the_store_reaches_the_engine_that_holds_the_run() {
    let store = Arc::new(MemoryBackend::new());
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
    let flow = Flow::linear("remote")
        .add(progressing("a"))
        .add(Atom::new("watcher", watcher))
        .build()
        .unwrap();
    let capture = CaptureListener::atoms_only();
    let mut engine = Engine::builder(flow)
        .storage(store.clone())
        .listener(capture.clone())
        .renew_every(Duration::from_millis(20))
        .build();
    let id = engine.run_id();
    let running = tokio::spawn(async move { engine.run().await });
    started.recv().await.expect("the watcher starts");
    let asked = Instant::now();
    store.request_cancel(id).await.unwrap();
    let err = running.await.unwrap().expect_err("cancelled");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        err.to_string(),
        "flow `remote` was cancelled and what had run was reverted; meanwhile: task `watcher` \
         failed: stopped"
    );
    let (run, _) = store.load_flow(id).await.unwrap();
    assert_eq!(run.state, FlowState::Reverted);
    assert_eq!(
        capture.events().last().map(String::as_str),
        Some("a.t REVERTED(())")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_can_wait_for_a_dead_owners_lease_to_run_out() {
    let store = Arc::new(MemoryBackend::new());
    let counts = Counts::default();
    let mut first = Engine::builder(abc(&counts, false))
        .storage(store.clone())
        .build();
    first.handle().suspend();
    assert!(matches!(first.run().await, Err(RunError::Suspended { .. })));
    let id = first.run_id();
    drop(first);
    store
        .claim_flow(id, Claim::new("dead", Duration::from_millis(300)))
        .await
        .unwrap();

    let err = Engine::builder(abc(&counts, false))
        .storage(store.clone())
        .resume(id)
        .await
        .expect_err("held");
    assert!(
        matches!(&err, ResumeError::Owned { owner, .. } if owner == "dead"),
        "{err:?}"
    );

    let asked = Instant::now();
    let mut engine = Engine::builder(abc(&counts, false))
        .storage(store.clone())
        .wait_for_lease(Duration::from_secs(10))
        .resume(id)
        .await
        .expect("taken over once the lease ran out");
    assert!(
        asked.elapsed() >= Duration::from_millis(200),
        "{:?}",
        asked.elapsed()
    );
    engine.run().await.unwrap();
    assert_eq!(
        counts.get(),
        [
            ("a".to_string(), (1, 0)),
            ("b".to_string(), (1, 0)),
            ("c".to_string(), (1, 0))
        ]
        .into()
    );
}

/// Calls `cancel` on the run's handle when an event's text is `on`.
struct CancelOn {
    on: &'static str,
    handle: Mutex<Option<flow::RunHandle>>,
    at: Mutex<Option<Instant>>,
}

impl Listener for CancelOn {
    fn on_event(&self, event: &Event<'_>) {
        if event.to_string() == self.on {
            if let Some(h) = self.handle.lock().unwrap().as_ref() {
                *self.at.lock().unwrap() = Some(Instant::now());
                h.cancel();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_ends_a_retry_wait_at_once() {
    for mode in MODES {
        let flow = Flow::linear("patient")
            .retry(
                Retry::times(3)
                    .named("r")
                    .backoff(flow::Backoff::Fixed(Duration::from_secs(10))),
            )
            .add(failing("fails"))
            .build()
            .unwrap();
        let cancel = Arc::new(CancelOn {
            on: "r.r RETRYING",
            handle: Mutex::new(None),
            at: Mutex::new(None),
        });
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .listener_arc(cancel.clone())
            .listener(capture.clone())
            .build();
        *cancel.handle.lock().unwrap() = Some(engine.handle());
        let err = engine.run().await.expect_err("cancelled");
        let waited = cancel.at.lock().unwrap().expect("cancelled").elapsed();
        eprintln!("{mode:?}: the run returned {waited:?} after the cancel");
        assert!(waited < Duration::from_millis(500), "{mode:?}: {waited:?}");
        assert!(matches!(err, RunError::Cancelled { .. }), "{err}");
        assert_eq!(
            capture.events(),
            [
                "r.r RUNNING",
                "r.r SUCCESS(())",
                "fails.t RUNNING",
                "fails.t FAILURE(Failure: Woot!)",
                "fails.t REVERTING",
                "fails.t REVERTED(())",
                "r.r RETRYING",
                "fails.t PENDING",
                "r.r REVERTING",
                "r.r REVERTED(())"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_gives_up_on_a_task_that_ignores_it() {
    for mode in MODES {
        let stubborn = FnTask::asynchronous(Signature::new(), |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Outputs::new())
        });
        let flow = Flow::linear("stubborn")
            .add(progressing("a"))
            .add(Atom::new("stubborn", stubborn))
            .build()
            .unwrap();
        let cancel = Arc::new(CancelOn {
            on: "stubborn.t RUNNING",
            handle: Mutex::new(None),
            at: Mutex::new(None),
        });
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .cancel_grace(Duration::from_millis(100))
            .listener_arc(cancel.clone())
            .listener(capture.clone())
            .build();
        *cancel.handle.lock().unwrap() = Some(engine.handle());
        let err = engine.run().await.expect_err("cancelled");
        let waited = cancel.at.lock().unwrap().expect("cancelled").elapsed();
        assert!(
            (Duration::from_millis(100)..Duration::from_secs(2)).contains(&waited),
            "{mode:?}: {waited:?}"
        );
        let failure = &engine.failure("stubborn").expect("it failed").clone();
        assert_eq!(failure.kind(), FailureKind::Cancelled);
        let message = "task `stubborn` did not stop within 100ms of the run's cancellation: \
                       the engine gave up on it";
        assert_eq!(failure.message(), message);
        assert_eq!(
            err.to_string(),
            format!(
                "flow `stubborn` was cancelled and what had run was reverted; meanwhile: task \
                 `stubborn` failed: {message}"
            )
        );
        assert_eq!(
            capture.events(),
            [
                "a.t RUNNING",
                "a.t SUCCESS(5)",
                "stubborn.t RUNNING",
                &format!("stubborn.t FAILURE(Failure: {message})"),
                "stubborn.t REVERTING",
                "stubborn.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERTED(())"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_synchronous_task_that_returns_past_its_limit_has_timed_out() {
    for mode in MODES {
        let reverted = Arc::new(AtomicUsize::new(0));
        let r = reverted.clone();
        let slow = FnTask::sync(Signature::new().provides::<u32>("n"), |_| {
            std::thread::sleep(Duration::from_millis(60));
            Ok(Outputs::one(1u32))
        })
        .on_revert_sync(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        });
        let flow = Flow::linear("late")
            .add(Atom::new("slow", slow).timeout(Duration::from_millis(20)))
            .build()
            .unwrap();
        let mut engine = Engine::builder(flow).mode(mode).build();
        let err = engine.run().await.expect_err("timed out");
        assert_eq!(
            err.to_string(),
            "flow `late` was reverted: task `slow` failed: task `slow` timed out after 20ms"
        );
        assert_eq!(err.failures()[0].failure.kind(), FailureKind::Timeout);
        assert_eq!(reverted.load(Ordering::SeqCst), 1, "{mode:?}");
    }
}

/// A task providing `value` (of type `T`) and a task after it.
fn producing<T: flow::Data + Clone>(value: T, reverted: &Arc<AtomicUsize>) -> CompiledFlow {
    let r = reverted.clone();
    let produce = FnTask::sync(Signature::new().provides::<T>("value"), move |_| {
        Ok(Outputs::one(value.clone()))
    })
    .on_revert_sync(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    });
    let consume = FnTask::sync(Signature::new().requires::<T>("value"), |_| {
        panic!("consume must not run")
    });
    Flow::linear("exact")
        .add(Atom::new("produce", produce))
        .add(Atom::new("consume", consume))
        .build()
        .unwrap()
}

async fn refused<T: flow::Data + Clone>(value: T, reason: &str) {
    let reverted = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(producing(value, &reverted))
        .storage(store.clone())
        .build();
    let err = engine.run().await.expect_err("refused");
    let failure = &err.failures()[0].failure;
    assert_eq!(failure.kind(), FailureKind::Unstorable);
    let message = format!(
        "task `produce` returned a output `value` that the journal cannot store exactly \
         ({reason}): return a type whose JSON reads back as the same value"
    );
    assert_eq!(failure.message(), message);
    assert_eq!(
        reverted.load(Ordering::SeqCst),
        1,
        "reverted like any failure"
    );
    let (run, atoms) = store.load_flow(engine.run_id()).await.unwrap();
    assert_eq!(run.state, FlowState::Reverted);
    let produce = atoms.iter().find(|a| a.name == "produce").unwrap();
    assert_eq!(produce.state, flow::AtomState::Reverted);
    assert_eq!(
        produce.failure.as_ref().map(|f| f.message()),
        Some(message.as_str())
    );
}

#[tokio::test]
async fn what_the_journal_cannot_hold_exactly_is_the_tasks_failure() {
    let not_exact = "cannot be stored exactly in the journal's JSON";
    refused(f64::INFINITY, &format!("the float inf {not_exact}")).await;
    refused(f64::NAN, &format!("the float NaN {not_exact}")).await;
    refused(
        Some(None::<u8>),
        &format!(
            "`Some` of a value written as null (such as `Some(None)` or `Some(())`), which \
             reads back as `None`, {not_exact}"
        ),
    )
    .await;
    refused(u128::MAX, "number out of range").await;
    refused(i128::MIN, "number out of range").await;
    let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
    refused(map, "key must be a string").await;
    refused(
        "a\0b".to_string(),
        &format!(
            "a string holding the character U+0000 (PostgreSQL's JSONB cannot hold it) {not_exact}"
        ),
    )
    .await;
}

#[tokio::test]
async fn what_the_journal_holds_exactly_reads_back_equal_after_a_resume() {
    async fn round_trip<T: flow::Data + Clone + PartialEq>(value: T) {
        let reverted = Arc::new(AtomicUsize::new(0));
        let store = Arc::new(MemoryBackend::new());
        let produce_only = {
            let v = value.clone();
            Flow::linear("exact")
                .add(Atom::new(
                    "produce",
                    FnTask::sync(Signature::new().provides::<T>("value"), move |_| {
                        Ok(Outputs::one(v.clone()))
                    }),
                ))
                .build()
                .unwrap()
        };
        let mut engine = Engine::builder(produce_only.clone())
            .storage(store.clone())
            .build();
        engine.run().await.unwrap();
        let again = Engine::builder(produce_only)
            .storage(store)
            .resume(engine.run_id())
            .await
            .unwrap();
        assert!(again.fetch::<T>("value") == Some(&value));
        assert_eq!(reverted.load(Ordering::SeqCst), 0);
    }
    round_trip(Some(Some(1u8))).await;
    round_trip(-0.0f64).await;
    round_trip(f64::MAX).await;
    round_trip(u64::MAX).await;
    round_trip(i128::from(i64::MIN)).await;
    round_trip(BTreeMap::from([(7u32, "seven".to_string())])).await;
}

#[tokio::test]
async fn a_revert_result_the_journal_cannot_hold_is_the_reverts_failure() {
    let undo = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()))
        .on_revert_sync(|_| Ok(Some(Value::new(f64::NAN))));
    let flow = Flow::linear("undo")
        .add(Atom::new("undo", undo))
        .add(failing("fail"))
        .build()
        .unwrap();
    let mut engine = Engine::builder(flow)
        .storage(Arc::new(MemoryBackend::new()))
        .build();
    let err = engine.run().await.expect_err("the revert failed");
    let RunError::RevertFailed {
        revert_failures, ..
    } = &err
    else {
        panic!("expected RevertFailed, got {err:?}");
    };
    assert_eq!(revert_failures[0].atom, "undo");
    assert_eq!(revert_failures[0].failure.kind(), FailureKind::Unstorable);
    assert_eq!(engine.state(), FlowState::Failure);
}

/// A definition that dropped an atom already reverted takes up a run
/// suspended mid-revert; one that dropped an atom still to revert does not.
#[tokio::test]
async fn a_definition_may_drop_atoms_that_need_nothing_more() {
    let store = Arc::new(MemoryBackend::new());
    let counts = Counts::default();
    let slot: Arc<Mutex<Option<flow::RunHandle>>> = Arc::default();
    let s = slot.clone();
    // `b`'s revert suspends the run: `c` (failed) is reverted by then, `a` not.
    let b_revert = counts.0.clone();
    let b = FnTask::sync(Signature::new().provides::<u32>("b"), |_| {
        Ok(Outputs::one(2u32))
    })
    .on_revert_sync(move |_| {
        b_revert.lock().unwrap().entry("b".into()).or_default().1 += 1;
        if let Some(h) = s.lock().unwrap().as_ref() {
            h.suspend();
        }
        Ok(None)
    });
    let full = Flow::linear("shrinking")
        .add(counts.task("a", Some(1), false))
        .add(Atom::new("b", b))
        .add(counts.task("c", None, true))
        .build()
        .unwrap();
    let mut engine = Engine::builder(full).storage(store.clone()).build();
    *slot.lock().unwrap() = Some(engine.handle());
    assert!(matches!(
        engine.run().await,
        Err(RunError::Suspended { .. })
    ));
    let id = engine.run_id();
    drop(engine);

    // Without `c` (reverted): accepted, and the revert goes on with `a`.
    let without_c = |counts: &Counts| {
        Flow::linear("shrinking")
            .add(counts.task("a", Some(1), false))
            .add(counts.task("b", Some(2), false))
            .build()
            .unwrap()
    };
    // Without `a` (still to revert): refused.
    let without_a = Flow::linear("shrinking")
        .add(counts.task("b", Some(2), false))
        .add(counts.task("c", None, true))
        .build()
        .unwrap();
    let err = Engine::builder(without_a)
        .storage(store.clone())
        .resume(id)
        .await
        .expect_err("a still needs its revert");
    assert!(
        matches!(&err, ResumeError::DefinitionChanged { removed, .. } if removed == &["a"]),
        "{err:?}"
    );

    let mut resumed = Engine::builder(without_c(&counts))
        .storage(store.clone())
        .resume(id)
        .await
        .expect("c needs nothing more");
    let err = resumed.run().await.expect_err("reverted");
    assert!(matches!(err, RunError::Reverted { .. }), "{err}");
    assert_eq!(resumed.state(), FlowState::Reverted);
    // `b`'s own execute is not counted; its revert ran once, before the
    // suspension, and not again.
    assert_eq!(
        counts.get(),
        [
            ("a".to_string(), (1, 1)),
            ("b".to_string(), (0, 1)),
            ("c".to_string(), (1, 1))
        ]
        .into()
    );
}
