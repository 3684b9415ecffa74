//! The parallel engine without a journal (workers sharing the scheduler):
//! dropping and forgetting a run's future, suspend and cancel requests while
//! tasks run, the concurrency limit, panics, wide flows, current-thread
//! runtimes, the events it reports, and that no worker outlives a run holding
//! the flow.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow::{
    Atom, AtomState, CaptureListener, CompiledFlow, Engine, Event, FailureKind, Flow, FlowState,
    FnTask, Listener, Mode, Outputs, RunError, RunHandle, Signature, TaskError,
};
use tokio::sync::{Barrier, mpsc, watch};

/// How long a test may wait for something that must happen at once; only a
/// hang reaches it.
const HANG: Duration = Duration::from_secs(10);

/// A gate tasks wait at until the test opens it; once open it stays open.
#[derive(Clone)]
struct Gate {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Gate {
    fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Gate {
            tx: Arc::new(tx),
            rx,
        }
    }

    fn open(&self) {
        self.tx.send_replace(true);
    }

    async fn pass(&self) {
        let mut rx = self.rx.clone();
        rx.wait_for(|open| *open)
            .await
            .expect("the gate outlives its users");
    }
}

/// A listener forwarding every event's text into a channel, so that a test
/// can wait for one.
struct Forward(mpsc::UnboundedSender<String>);

impl Listener for Forward {
    fn on_event(&self, event: &Event<'_>) {
        let _ = self.0.send(event.to_string());
    }
}

/// Awaits `work`, failing the test with `why` if it takes longer than
/// `HANG` (a hang is what a scheduling bug looks like).
async fn within_hang<F: std::future::Future>(work: F, why: &str) -> F::Output {
    tokio::time::timeout(HANG, work).await.expect(why)
}

/// Waits until `event` comes through `events`.
async fn wait_for_event(events: &mut mpsc::UnboundedReceiver<String>, event: &str) {
    while let Some(e) = events.recv().await {
        if e == event {
            return;
        }
    }
    panic!("the engine went away before `{event}`");
}

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, what: impl Into<String>) {
    log.lock().unwrap().push(what.into());
}

/// `a` provides `x = 1`; `b` (after it) sends its attempt on `started`, waits
/// at `gate`, then provides `y = x + 10`. Each counts its executions.
fn blocked_pair(
    name: &'static str,
    gate: &Gate,
    started: mpsc::UnboundedSender<u32>,
    runs_a: &Arc<AtomicUsize>,
    runs_b: &Arc<AtomicUsize>,
) -> CompiledFlow {
    let runs = runs_a.clone();
    let a = FnTask::sync(Signature::new().provides::<u32>("x"), move |_| {
        runs.fetch_add(1, SeqCst);
        Ok(Outputs::one(1u32))
    });
    let (gate, runs) = (gate.clone(), runs_b.clone());
    let b = FnTask::asynchronous(
        Signature::new().requires::<u32>("x").provides::<u32>("y"),
        move |args, ctx| {
            runs.fetch_add(1, SeqCst);
            let (gate, started) = (gate.clone(), started.clone());
            async move {
                let x = *args.get::<u32>(0)?;
                let _ = started.send(ctx.attempt());
                gate.pass().await;
                Ok::<_, TaskError>(Outputs::one(x + 10))
            }
        },
    );
    Flow::linear(name)
        .add(Atom::new("a", a))
        .add(Atom::new("b", b))
        .build()
        .expect("valid flow")
}

// ---------------------------------------------------------------------------
// 1. Dropping the run's future
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_mid_way_keeps_running_atoms_running_then_reruns_them() {
    let gate = Gate::new();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (runs_a, runs_b) = (Arc::default(), Arc::default());
    let flow = blocked_pair("dropped", &gate, started_tx, &runs_a, &runs_b);
    let mut engine = Engine::builder(flow).parallel(4).build();
    {
        let run = engine.run();
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => panic!("the run ended while `b` was blocked: {r:?}"),
            attempt = started.recv() => assert_eq!(attempt, Some(1)),
        }
        // `run` is dropped here, with `b` still running.
    }
    assert_eq!(engine.state(), FlowState::Running);
    assert_eq!(engine.atom_state("a"), Some(AtomState::Success));
    assert_eq!(engine.atom_state("b"), Some(AtomState::Running));
    assert_eq!(engine.attempts("a"), Some(1));
    assert_eq!(engine.attempts("b"), Some(1));
    assert_eq!(engine.fetch::<u32>("x"), Some(&1));
    assert_eq!(engine.fetch::<u32>("y"), None);

    // Lets the abandoned `b` finish too: its worker finds the run gone.
    gate.open();
    within_hang(engine.run(), "the second run ends")
        .await
        .expect("the second run succeeds");
    assert_eq!(started.recv().await, Some(2));
    assert_eq!(engine.state(), FlowState::Success);
    assert_eq!(engine.atom_state("a"), Some(AtomState::Success));
    assert_eq!(engine.atom_state("b"), Some(AtomState::Success));
    assert_eq!(engine.attempts("a"), Some(1));
    assert_eq!(engine.attempts("b"), Some(2));
    assert_eq!(runs_a.load(SeqCst), 1);
    assert_eq!(runs_b.load(SeqCst), 2);
    assert_eq!(engine.fetch::<u32>("x"), Some(&1));
    assert_eq!(engine.fetch::<u32>("y"), Some(&11));
    let b = engine.outputs("b").expect("b's outputs");
    assert_eq!(b.values()[0].downcast_ref::<u32>(), Some(&11));
}

// ---------------------------------------------------------------------------
// 2. Cancel while a long task runs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_starts_reverts_at_once_while_a_long_task_runs() {
    let log: Log = Arc::default();
    let gate = Gate::new();
    let (reverted_tx, mut reverted) = mpsc::unbounded_channel::<()>();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();

    let (l1, l2, g) = (log.clone(), log.clone(), gate.clone());
    let long = FnTask::asynchronous(Signature::new(), move |_, _| {
        let (log, gate, started) = (l1.clone(), g.clone(), started_tx.clone());
        async move {
            note(&log, "long started");
            let _ = started.send(());
            gate.pass().await;
            note(&log, "long finished");
            Ok(Outputs::new())
        }
    })
    .on_revert_sync(move |_| {
        note(&l2, "long reverted");
        Ok(None)
    });
    let (q1, q2) = (log.clone(), log.clone());
    let quick = FnTask::sync(Signature::new(), move |_| {
        note(&q1, "quick executed");
        Ok(Outputs::new())
    })
    .on_revert_sync(move |_| {
        note(&q2, "quick reverted");
        let _ = reverted_tx.send(());
        Ok(None)
    });
    let flow = Flow::unordered("cancelled")
        .add(Atom::new("long", long))
        .add(Atom::new("quick", quick))
        .build()
        .expect("valid flow");

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let capture = CaptureListener::atoms_only();
    let mut engine = Engine::builder(flow)
        .parallel(2)
        .listener(capture.clone())
        .listener(Forward(events_tx))
        .build();
    let handle = engine.handle();

    let control = async {
        // `long` is in its body and `quick` is recorded done: nothing is
        // ready, so the cancellation itself must start quick's revert (waking
        // an idle worker, or from the run's own future) while `long` runs.
        started.recv().await.expect("long started");
        wait_for_event(&mut events, "quick.t SUCCESS(())").await;
        handle.cancel();
        // Only comes if the revert starts while `long` still runs.
        reverted.recv().await.expect("quick's revert ran");
        // And its end is recorded before `long` can end: the events' order
        // below is then fixed.
        wait_for_event(&mut events, "quick.t REVERTED(())").await;
        gate.open();
    };
    let (result, ()) = within_hang(
        async { tokio::join!(engine.run(), control) },
        "quick's revert ran while `long` was still running",
    )
    .await;

    let err = result.expect_err("cancelled");
    match &err {
        RunError::Cancelled { flow, failures } => {
            assert_eq!(flow, "cancelled");
            assert!(failures.is_empty(), "{failures:?}");
        }
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "flow `cancelled` was cancelled and what had run was reverted"
    );
    assert_eq!(engine.state(), FlowState::Reverted);
    assert_eq!(engine.atom_state("quick"), Some(AtomState::Reverted));
    assert_eq!(engine.atom_state("long"), Some(AtomState::Reverted));
    let log = log.lock().unwrap().clone();
    // The two bodies start in either order; the rest is fixed by the test.
    let mut first = log[..2].to_vec();
    first.sort();
    assert_eq!(first, ["long started", "quick executed"]);
    assert_eq!(
        log[2..],
        ["quick reverted", "long finished", "long reverted"]
    );
    assert_eq!(
        capture.events(),
        [
            "long.t RUNNING",
            "quick.t RUNNING",
            "quick.t SUCCESS(())",
            "quick.t REVERTING",
            "quick.t REVERTED(())",
            "long.t SUCCESS(())",
            "long.t REVERTING",
            "long.t REVERTED(())",
        ]
    );
    assert!(
        !handle.is_cancelled(),
        "the request is forgotten after the run"
    );
}

// ---------------------------------------------------------------------------
// 3. Suspend and resume
// ---------------------------------------------------------------------------

type Slot = Arc<Mutex<Option<RunHandle>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_from_a_task_then_resume_without_rerunning_finished_atoms() {
    let slot: Slot = Arc::default();
    let barrier = Arc::new(Barrier::new(2));
    let runs: [Arc<AtomicUsize>; 4] = Default::default();

    let first = {
        let runs = runs[0].clone();
        FnTask::sync(Signature::new().provides::<u32>("x"), move |_| {
            runs.fetch_add(1, SeqCst);
            Ok(Outputs::one(1u32))
        })
    };
    // `pause` asks for the suspension once `sibling` runs beside it.
    let pause = {
        let (runs, slot, barrier) = (runs[1].clone(), slot.clone(), barrier.clone());
        FnTask::asynchronous(
            Signature::new().requires::<u32>("x").provides::<u32>("p"),
            move |args, _| {
                runs.fetch_add(1, SeqCst);
                let (slot, barrier) = (slot.clone(), barrier.clone());
                async move {
                    let x = *args.get::<u32>(0)?;
                    barrier.wait().await;
                    if let Some(h) = slot.lock().unwrap().as_ref() {
                        h.suspend();
                    }
                    Ok::<_, TaskError>(Outputs::one(x + 1))
                }
            },
        )
    };
    let sibling = {
        let (runs, barrier) = (runs[2].clone(), barrier.clone());
        FnTask::asynchronous(
            Signature::new().requires::<u32>("x").provides::<u32>("q"),
            move |args, _| {
                runs.fetch_add(1, SeqCst);
                let barrier = barrier.clone();
                async move {
                    let x = *args.get::<u32>(0)?;
                    barrier.wait().await;
                    Ok::<_, TaskError>(Outputs::one(x * 10))
                }
            },
        )
    };
    let last = {
        let runs = runs[3].clone();
        FnTask::sync(
            Signature::new()
                .requires::<u32>("p")
                .requires::<u32>("q")
                .provides::<u32>("total"),
            move |a| {
                runs.fetch_add(1, SeqCst);
                Ok(Outputs::one(a.get::<u32>(0)? + a.get::<u32>(1)?))
            },
        )
    };
    let flow = Flow::linear("s")
        .add(Atom::new("first", first))
        .add(
            Flow::unordered("u")
                .add(Atom::new("pause", pause))
                .add(Atom::new("sibling", sibling)),
        )
        .add(Atom::new("last", last))
        .build()
        .expect("valid flow");
    let mut engine = Engine::builder(flow).parallel(4).build();
    *slot.lock().unwrap() = Some(engine.handle());

    let err = within_hang(engine.run(), "the run stops")
        .await
        .expect_err("suspended");
    assert!(
        matches!(&err, RunError::Suspended { flow } if flow == "s"),
        "{err}"
    );
    assert_eq!(engine.state(), FlowState::Suspended);
    assert_eq!(engine.atom_state("first"), Some(AtomState::Success));
    assert_eq!(engine.atom_state("pause"), Some(AtomState::Success));
    assert_eq!(engine.atom_state("sibling"), Some(AtomState::Success));
    assert_eq!(engine.atom_state("last"), Some(AtomState::Pending));
    let counts = |runs: &[Arc<AtomicUsize>; 4]| runs.each_ref().map(|r| r.load(SeqCst));
    assert_eq!(counts(&runs), [1, 1, 1, 0]);
    assert_eq!(engine.fetch::<u32>("p"), Some(&2));
    assert_eq!(engine.fetch::<u32>("q"), Some(&10));
    assert_eq!(engine.fetch::<u32>("total"), None);

    *slot.lock().unwrap() = None;
    within_hang(engine.run(), "the run ends")
        .await
        .expect("resumes to success");
    assert_eq!(engine.state(), FlowState::Success);
    assert_eq!(counts(&runs), [1, 1, 1, 1]);
    for atom in ["first", "pause", "sibling", "last"] {
        assert_eq!(engine.atom_state(atom), Some(AtomState::Success), "{atom}");
        assert_eq!(engine.attempts(atom), Some(1), "{atom}");
    }
    assert_eq!(engine.fetch::<u32>("x"), Some(&1));
    assert_eq!(engine.fetch::<u32>("total"), Some(&12));
}

// ---------------------------------------------------------------------------
// 4. The concurrency limit
// ---------------------------------------------------------------------------

struct Tally {
    current: AtomicUsize,
    peak: AtomicUsize,
    order: Mutex<Vec<usize>>,
}

/// An unordered flow of `n` async tasks recording their start order and how
/// many run at once; the first three meet at `barrier` when there is one.
fn tallied(n: usize, barrier: Option<Arc<Barrier>>, tally: &Arc<Tally>) -> CompiledFlow {
    let mut flow = Flow::unordered("tallied");
    for i in 0..n {
        let (barrier, tally) = (barrier.clone(), tally.clone());
        flow.push(Atom::new(
            format!("t{i}"),
            FnTask::asynchronous(Signature::new(), move |_, _| {
                let (barrier, tally) = (barrier.clone(), tally.clone());
                async move {
                    let now = tally.current.fetch_add(1, SeqCst) + 1;
                    tally.peak.fetch_max(now, SeqCst);
                    tally.order.lock().unwrap().push(i);
                    if let Some(b) = barrier.filter(|_| i < 3) {
                        b.wait().await;
                    }
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    tally.current.fetch_sub(1, SeqCst);
                    Ok(Outputs::new())
                }
            }),
        ));
    }
    flow.build().expect("valid flow")
}

fn new_tally() -> Arc<Tally> {
    Arc::new(Tally {
        current: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        order: Mutex::new(Vec::new()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_at_once_on_two_threads_never_more() {
    let tally = new_tally();
    let flow = tallied(30, Some(Arc::new(Barrier::new(3))), &tally);
    let mut engine = Engine::builder(flow).parallel(3).build();
    within_hang(engine.run(), "the first three tasks ran at once")
        .await
        .expect("runs");
    assert_eq!(tally.peak.load(SeqCst), 3);
    assert_eq!(tally.current.load(SeqCst), 0);
    let mut order = tally.order.lock().unwrap().clone();
    // No other task starts before the first three met (their bodies may
    // start in any order).
    let mut first = order[..3].to_vec();
    first.sort_unstable();
    assert_eq!(first, [0, 1, 2]);
    order.sort_unstable();
    assert_eq!(order, (0..30).collect::<Vec<_>>());
    assert_eq!(engine.state(), FlowState::Success);
    for i in 0..30 {
        let name = format!("t{i}");
        assert_eq!(engine.atom_state(&name), Some(AtomState::Success), "{name}");
        assert_eq!(engine.attempts(&name), Some(1), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_at_a_time_in_declaration_order() {
    let tally = new_tally();
    let flow = tallied(30, None, &tally);
    let mut engine = Engine::builder(flow).parallel(1).build();
    within_hang(engine.run(), "the run ends")
        .await
        .expect("runs");
    assert_eq!(tally.peak.load(SeqCst), 1);
    assert_eq!(*tally.order.lock().unwrap(), (0..30).collect::<Vec<_>>());
    assert_eq!(engine.state(), FlowState::Success);
}

// ---------------------------------------------------------------------------
// 5. A panicking task
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_reverts_the_flow() {
    let barrier = Arc::new(Barrier::new(2));
    let reverts: Log = Arc::default();
    let reverting = |name: &'static str, task: FnTask| {
        let reverts = reverts.clone();
        Atom::new(
            name,
            task.on_revert_sync(move |_| {
                note(&reverts, name);
                Ok(None)
            }),
        )
    };
    let first = FnTask::sync(Signature::new().provides::<u32>("x"), |_| {
        Ok(Outputs::one(1u32))
    });
    let b = barrier.clone();
    let sibling = FnTask::asynchronous(Signature::new().provides::<u32>("s"), move |_, _| {
        let b = b.clone();
        async move {
            b.wait().await;
            Ok(Outputs::one(2u32))
        }
    });
    let b = barrier.clone();
    let boom = FnTask::asynchronous(Signature::new(), move |_, ctx| {
        let b = b.clone();
        async move {
            // Both run before the panic.
            b.wait().await;
            if ctx.attempt() == 1 {
                panic!("kaboom");
            }
            Ok::<_, TaskError>(Outputs::new())
        }
    });
    let flow = Flow::linear("panics")
        .add(reverting("first", first))
        .add(
            Flow::unordered("u")
                .add(reverting("sibling", sibling))
                .add(reverting("boom", boom)),
        )
        .build()
        .expect("valid flow");
    let mut engine = Engine::builder(flow).parallel(4).build();
    let err = within_hang(engine.run(), "the run ends")
        .await
        .expect_err("reverted");
    match &err {
        RunError::Reverted { flow, failures } => {
            assert_eq!(flow, "panics");
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].atom, "boom");
            assert_eq!(failures[0].failure.kind(), FailureKind::Panic);
            assert_eq!(failures[0].failure.message(), "panicked: kaboom");
        }
        other => panic!("expected a revert, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "flow `panics` was reverted: task `boom` failed: panicked: kaboom"
    );
    assert_eq!(engine.state(), FlowState::Reverted);
    for atom in ["first", "sibling", "boom"] {
        assert_eq!(engine.atom_state(atom), Some(AtomState::Reverted), "{atom}");
    }
    let mut reverted = reverts.lock().unwrap().clone();
    assert_eq!(reverted.last().map(String::as_str), Some("first"));
    reverted.sort();
    assert_eq!(reverted, ["boom", "first", "sibling"]);
    assert_eq!(engine.fetch_all().len(), 0);
}

// ---------------------------------------------------------------------------
// 6. A wide flow
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_siblings_and_a_sink() {
    const N: usize = 10_000;
    let runs = Arc::new(AtomicUsize::new(0));
    let names: Vec<String> = (0..N).map(|i| format!("w{i}")).collect();
    let mut workers = Flow::unordered("workers");
    for (i, name) in names.iter().enumerate() {
        let runs = runs.clone();
        workers.push(Atom::new(
            name.clone(),
            FnTask::sync(Signature::new().provides::<u64>(name.clone()), move |_| {
                runs.fetch_add(1, SeqCst);
                Ok(Outputs::one(i as u64))
            }),
        ));
    }
    let sink = FnTask::sync(
        Signature::new()
            .collect::<u64>("parts", names.clone())
            .provides::<u64>("sum"),
        |a| Ok(Outputs::one(a.list::<u64>(0)?.into_iter().sum::<u64>())),
    );
    let flow = Flow::linear("wide")
        .add(workers)
        .add(Atom::new("sink", sink))
        .build()
        .expect("valid flow");
    let mut engine = Engine::builder(flow).parallel(4).build();
    within_hang(engine.run(), "the run ends")
        .await
        .expect("runs");
    assert_eq!(engine.state(), FlowState::Success);
    assert_eq!(
        engine.fetch::<u64>("sum"),
        Some(&(0..N as u64).sum::<u64>())
    );
    assert_eq!(engine.fetch::<u64>("sum"), Some(&49_995_000));
    assert_eq!(runs.load(SeqCst), N);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(engine.atom_state(name), Some(AtomState::Success), "{name}");
        let out = engine.outputs(name).expect("outputs");
        assert_eq!(out.values()[0].downcast_ref::<u64>(), Some(&(i as u64)));
    }
    assert_eq!(engine.atom_state("sink"), Some(AtomState::Success));
}

/// Records the thread that dropped it.
struct DropProbe(Arc<Mutex<Vec<std::thread::ThreadId>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        // A poisoned lock (a failed assertion) must not abort the process.
        let mut threads = self.0.lock().unwrap_or_else(|e| e.into_inner());
        threads.push(std::thread::current().id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_run_returns_no_worker_holds_the_flow() {
    // The flow (here, the tasks' closures) is freed when the engine is
    // dropped, on the dropping thread: a worker that outlived the run would
    // free it on its own thread, later.
    const TASKS: usize = 1_000;
    let here = std::thread::current().id();
    for round in 0..200 {
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let mut flow = Flow::unordered("probed");
        for i in 0..TASKS {
            let probe = DropProbe(dropped.clone());
            flow.push(Atom::new(
                format!("t{i}"),
                FnTask::sync(Signature::new(), move |_| {
                    let _held = &probe;
                    Ok(Outputs::new())
                }),
            ));
        }
        let mut engine = Engine::builder(flow.build().expect("valid flow"))
            .parallel(4)
            .build();
        within_hang(engine.run(), "the run ends")
            .await
            .expect("runs");
        assert_eq!(engine.state(), FlowState::Success, "round {round}");
        assert!(dropped.lock().unwrap().is_empty(), "round {round}");
        drop(engine);
        assert_eq!(*dropped.lock().unwrap(), vec![here; TASKS], "round {round}");
    }
}

// ---------------------------------------------------------------------------
// 7. Forgetting the run's future
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_the_run_leaves_a_vacant_engine_that_starts_over() {
    let gate = Gate::new();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (runs_a, runs_b) = (Arc::default(), Arc::default());
    let flow = blocked_pair("forgotten", &gate, started_tx, &runs_a, &runs_b);
    let mut engine = Engine::builder(flow).parallel(4).build();

    let mut run = Box::pin(engine.run());
    assert!(futures::poll!(run.as_mut()).is_pending());
    // The workers go on without the run's future being polled.
    assert_eq!(within_hang(started.recv(), "b starts").await, Some(1));
    std::mem::forget(run);

    // The workers kept the machine: nothing is known about the atoms.
    assert_eq!(engine.state(), FlowState::Running);
    for atom in ["a", "b"] {
        assert_eq!(engine.atom_state(atom), None, "{atom}");
        assert_eq!(engine.attempts(atom), None, "{atom}");
        assert!(engine.outputs(atom).is_none(), "{atom}");
        assert!(engine.failure(atom).is_none(), "{atom}");
        assert!(engine.revert_result(atom).is_none(), "{atom}");
    }
    assert_eq!(engine.fetch::<u32>("x"), None);
    assert_eq!(engine.fetch_all().len(), 0);

    // Lets the leaked `b` finish as well; its worker ends on its own.
    gate.open();
    within_hang(engine.run(), "the new run ends")
        .await
        .expect("the new run succeeds");
    // The new run started over: `b` is on its first attempt again.
    assert_eq!(started.recv().await, Some(1));
    assert_eq!(engine.state(), FlowState::Success);
    for atom in ["a", "b"] {
        assert_eq!(engine.atom_state(atom), Some(AtomState::Success), "{atom}");
        assert_eq!(engine.attempts(atom), Some(1), "{atom}");
    }
    assert_eq!(runs_a.load(SeqCst), 2);
    assert_eq!(runs_b.load(SeqCst), 2);
    assert_eq!(engine.fetch::<u32>("x"), Some(&1));
    assert_eq!(engine.fetch::<u32>("y"), Some(&11));
}

// ---------------------------------------------------------------------------
// 8. A current-thread runtime
// ---------------------------------------------------------------------------

#[tokio::test]
async fn diamond_on_a_current_thread_runtime() {
    let top = FnTask::sync(Signature::new().provides::<u32>("top"), |_| {
        Ok(Outputs::one(1u32))
    });
    let side = |add: u32| {
        move |args: flow::Args, _| async move {
            tokio::task::yield_now().await;
            let top = *args.get::<u32>(0)?;
            tokio::task::yield_now().await;
            Ok::<_, TaskError>(Outputs::one(top + add))
        }
    };
    let left = FnTask::asynchronous(
        Signature::new().requires::<u32>("top").provides::<u32>("l"),
        side(1),
    );
    let right = FnTask::asynchronous(
        Signature::new().requires::<u32>("top").provides::<u32>("r"),
        side(2),
    );
    let bottom = FnTask::sync(
        Signature::new()
            .requires::<u32>("l")
            .requires::<u32>("r")
            .provides::<u32>("sum"),
        |a| Ok(Outputs::one(a.get::<u32>(0)? * 10 + a.get::<u32>(1)?)),
    );
    let flow = Flow::graph("diamond")
        .add(Atom::new("bottom", bottom))
        .add(Atom::new("right", right))
        .add(Atom::new("left", left))
        .add(Atom::new("top", top))
        .build()
        .expect("valid flow");
    let mut engine = Engine::builder(flow).parallel(4).build();
    within_hang(engine.run(), "the run ends")
        .await
        .expect("runs");
    assert_eq!(engine.state(), FlowState::Success);
    for atom in ["top", "left", "right", "bottom"] {
        assert_eq!(engine.atom_state(atom), Some(AtomState::Success), "{atom}");
    }
    assert_eq!(engine.fetch::<u32>("top"), Some(&1));
    assert_eq!(engine.fetch::<u32>("l"), Some(&2));
    assert_eq!(engine.fetch::<u32>("r"), Some(&3));
    assert_eq!(engine.fetch::<u32>("sum"), Some(&23));
}

// ---------------------------------------------------------------------------
// 9. Events
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_flow_reports_the_same_events_in_both_modes() {
    let mut runs = Vec::new();
    for mode in [Mode::Serial, Mode::Parallel(4)] {
        let flow = common::chain(5).build().expect("valid flow");
        let capture = CaptureListener::new();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("v0", 0u64)
            .listener(capture.clone())
            .build();
        within_hang(engine.run(), "the run ends")
            .await
            .expect("runs");
        assert_eq!(engine.fetch::<u64>("v5"), Some(&5), "{mode:?}");
        runs.push(capture.events());
    }
    let mut expected = vec!["chain.f RUNNING".to_string()];
    for i in 0..5 {
        expected.push(format!("t{i}.t RUNNING"));
        expected.push(format!("t{i}.t SUCCESS({})", i + 1));
    }
    expected.push("chain.f SUCCESS".to_string());
    assert_eq!(runs[0], expected);
    assert_eq!(runs[1], runs[0]);
}

// ---------------------------------------------------------------------------
// 9. The context each task is handed
// ---------------------------------------------------------------------------

/// What a task saw of its context: `name#attempt`.
fn seen(ctx: &flow::Context) -> Outputs {
    Outputs::one(format!("{}#{}", ctx.atom(), ctx.attempt()))
}

/// Workers lend one context to the synchronous tasks they run, pointed at
/// each in turn; a task that returns a future, or runs on the blocking pool,
/// takes its own. Every task must see its own name and attempt, whichever way
/// it runs and whichever worker runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_sees_its_own_context_on_every_worker() {
    const N: usize = 300;
    let mut flow = Flow::unordered("contexts");
    let mut names = Vec::with_capacity(N);
    for i in 0..N {
        let name = format!("t{i}");
        let sig = Signature::new().provides::<String>(format!("seen{i}"));
        let task = match i % 3 {
            0 => FnTask::new(sig, |_, ctx| flow::Exec::Ready(Ok(seen(ctx)))),
            1 => FnTask::asynchronous(sig, |_, ctx| async move {
                tokio::task::yield_now().await;
                Ok(seen(&ctx))
            }),
            _ => FnTask::new(sig.blocking(), |_, ctx| flow::Exec::Ready(Ok(seen(ctx)))),
        };
        flow.push(Atom::new(name.clone(), task));
        names.push(name);
    }
    let mut engine = Engine::builder(flow.build().expect("valid flow"))
        .parallel(8)
        .build();
    within_hang(engine.run(), "the run ends")
        .await
        .expect("runs");
    assert_eq!(engine.state(), FlowState::Success);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            engine.fetch::<String>(&format!("seen{i}")),
            Some(&format!("{name}#1")),
            "{name}"
        );
    }
}
