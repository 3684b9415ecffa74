//! Resuming a run from the journal (semantics, section 9).
//!
//! A crash is simulated deterministically: a task (or a revert) that was
//! armed says "I started" on a channel and then never finishes; the run's
//! future is dropped at that point, the engine and its store with it. A NEW
//! engine, built from a fresh copy of the same definition on a freshly opened
//! store, then takes the run up with [`EngineBuilder::resume`] and finishes it.
//! States the engine never writes by itself (a `Failure` whose consequences
//! were not recorded) are crafted by editing, through the [`Backend`], a record
//! the engine did write.
//!
//! Covered: `Success` results are reused, atoms caught `Running` run again
//! with the next attempt number, atoms caught `Reverting` revert again,
//! unresolved failures are resolved again by their controller, retries caught
//! `Retrying` or with their sub-flow half reverted go on, a suspended revert
//! finishes in another engine, a finished run stays finished, the parallel
//! engine, the run's inputs come from the store, and every way a stored run
//! can fail to fit its flow is a [`ResumeError`] with an exact message. Last,
//! a crash of the resuming process itself: what it decided while taking the
//! run up (revert everything, or retry) must survive a second crash.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow::{
    Args, Atom, AtomDetail, AtomState, Backend, Backoff, CaptureListener, CompiledFlow, Engine,
    Exec, Failure, Flow, FlowDetail, FlowId, FlowState, FnTask, Intention, MemoryBackend, Outcome,
    Outputs, ResumeError, Retry, RunError, RunHandle, Signature, SqliteBackend, StorageError,
    TaskError,
};
use futures::FutureExt;
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::mpsc;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Watches tasks: logs every `execute` and `revert`, and springs traps.
///
/// A trap is set on `"<atom> execute"` or `"<atom> revert"`; the next such call
/// reports the trap's name on the channel and never finishes. A trap springs
/// once.
#[derive(Clone)]
struct Probe {
    log: Arc<Mutex<Vec<String>>>,
    armed: Arc<Mutex<Vec<String>>>,
    started: mpsc::UnboundedSender<String>,
}

impl Probe {
    fn new() -> (Probe, mpsc::UnboundedReceiver<String>) {
        let (started, rx) = mpsc::unbounded_channel();
        let probe = Probe {
            log: Arc::default(),
            armed: Arc::default(),
            started,
        };
        (probe, rx)
    }

    fn arm(&self, trap: &str) {
        self.armed.lock().unwrap().push(trap.to_string());
    }

    /// Logs `<atom> <action> #<attempt><detail>`; returns whether a trap on
    /// `<atom> <action>` was sprung.
    fn hit(&self, atom: &str, action: &str, attempt: u32, detail: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .push(format!("{atom} {action} #{attempt}{detail}"));
        let trap = format!("{atom} {action}");
        let mut armed = self.armed.lock().unwrap();
        match armed.iter().position(|t| *t == trap) {
            Some(k) => {
                armed.remove(k);
                self.started.send(trap).expect("the test listens");
                true
            }
            None => false,
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many times `<atom> <action>` was called.
    fn count(&self, atom: &str, action: &str) -> usize {
        let prefix = format!("{atom} {action} #");
        self.log().iter().filter(|l| l.starts_with(&prefix)).count()
    }
}

/// The first argument, for the log: ` (<value>)` when it is a `u64` or a
/// `u32`.
fn first_arg(args: &Args) -> String {
    if let Ok(v) = args.get::<u64>(0) {
        format!(" ({v})")
    } else if let Ok(v) = args.get::<u32>(0) {
        format!(" ({v})")
    } else {
        String::new()
    }
}

/// A task watched by `probe`: `execute` logs `<name> execute #<attempt>
/// (<first argument>)` and returns `body(args, attempt)`; `revert` logs
/// `<name> revert #<attempt>` followed by what it undoes (` = <u64 output>`,
/// or ` failed: <message>`). Either blocks forever when a trap is set on it.
fn watched(
    name: &'static str,
    signature: Signature,
    probe: &Probe,
    body: impl Fn(&Args, u32) -> Result<Outputs, TaskError> + Send + Sync + 'static,
) -> Atom {
    let on_execute = probe.clone();
    let on_revert = probe.clone();
    let task = FnTask::new(signature, move |args, ctx| {
        let blocked = on_execute.hit(name, "execute", ctx.attempt(), &first_arg(&args));
        let result = body(&args, ctx.attempt());
        Exec::future(async move {
            if blocked {
                futures::future::pending::<()>().await;
            }
            result
        })
    })
    .on_revert(move |input, ctx| {
        let detail = match (&input.outcome, input.outcome.output::<u64>(0)) {
            (_, Some(v)) => format!(" = {v}"),
            (Outcome::Failure(f), _) => format!(" failed: {}", f.message()),
            _ => String::new(),
        };
        let blocked = on_revert.hit(name, "revert", ctx.attempt(), &detail);
        Exec::future(async move {
            if blocked {
                futures::future::pending::<()>().await;
            }
            Ok(None)
        })
    });
    Atom::new(name, task)
}

/// A watched task requiring `from: u64` and providing `to: u64` = `f(from)`.
fn step(
    name: &'static str,
    from: &'static str,
    to: &'static str,
    f: fn(u64) -> u64,
    probe: &Probe,
) -> Atom {
    watched(
        name,
        Signature::new().requires::<u64>(from).provides::<u64>(to),
        probe,
        move |a, _| Ok(Outputs::one(f(*a.get::<u64>(0)?))),
    )
}

/// A watched task providing `symbol: u64` = `value`.
fn constant(name: &'static str, symbol: &'static str, value: u64, probe: &Probe) -> Atom {
    watched(
        name,
        Signature::new().provides::<u64>(symbol),
        probe,
        move |_, _| Ok(Outputs::one(value)),
    )
}

/// A watched task requiring `attempt: u32`; it fails with `not yet` while the
/// attempt is below 2.
fn needs_second_attempt(name: &'static str, probe: &Probe) -> Atom {
    watched(
        name,
        Signature::new().requires::<u32>("attempt"),
        probe,
        |a, _| {
            if *a.get::<u32>(0)? < 2 {
                Err(TaskError::msg("not yet"))
            } else {
                Ok(Outputs::new())
            }
        },
    )
}

/// A watched task that always fails with `Woot!`.
fn woot(name: &'static str, requires: &'static str, probe: &Probe) -> Atom {
    watched(
        name,
        Signature::new().requires::<u64>(requires),
        probe,
        |_, _| Err(TaskError::msg("Woot!")),
    )
}

/// `chain`: `t1: v1 = v0 * 10`, `t2: v2 = v1 + 3`, `t3: v3 = v2 * 2`; input
/// `v0: u64`. With `v0 = 4`: 40, 43, 86.
fn chain3(probe: &Probe) -> CompiledFlow {
    Flow::linear("chain")
        .input::<u64>("v0")
        .add(step("t1", "v0", "v1", |v| v * 10, probe))
        .add(step("t2", "v1", "v2", |v| v + 3, probe))
        .add(step("t3", "v2", "v3", |v| v * 2, probe))
        .build()
        .expect("valid flow")
}

/// Opens (or creates) the SQLite store of the test.
fn open(dir: &TempDir) -> Arc<dyn Backend> {
    Arc::new(SqliteBackend::open(dir.path().join("runs.db")).expect("the store opens"))
}

/// Runs `engine` until `traps` traps were sprung, then drops the run, the
/// engine and its store: the crash. Returns the traps, in the order sprung.
async fn crash(
    mut engine: Engine,
    started: &mut mpsc::UnboundedReceiver<String>,
    traps: usize,
) -> Vec<String> {
    let sprung = async {
        let mut sprung = Vec::new();
        for _ in 0..traps {
            sprung.push(started.recv().await.expect("a trap springs"));
        }
        sprung
    };
    let sprung = tokio::select! {
        result = engine.run() => panic!("the run ended before the crash: {result:?}"),
        sprung = sprung => sprung,
    };
    drop(engine);
    sprung
}

/// The stored run and its atoms by name.
async fn journal(backend: &dyn Backend, run: FlowId) -> (FlowDetail, BTreeMap<String, AtomDetail>) {
    let (detail, atoms) = backend.load_flow(run).await.expect("the run is stored");
    (
        detail,
        atoms.into_iter().map(|a| (a.name.clone(), a)).collect(),
    )
}

/// Each stored atom's state and intention, by name.
fn states(atoms: &BTreeMap<String, AtomDetail>) -> Vec<(&str, AtomState, Intention)> {
    atoms
        .values()
        .map(|a| (a.name.as_str(), a.state, a.intention))
        .collect()
}

/// The values a controller's stored history provided, oldest first, and the
/// names of the atoms that failed in each attempt.
fn history(detail: &AtomDetail) -> Vec<(serde_json::Value, Vec<String>)> {
    detail.meta["history"]
        .as_array()
        .expect("a controller keeps a history")
        .iter()
        .map(|entry| {
            let failed = entry["failures"]
                .as_object()
                .expect("failures by atom")
                .keys()
                .cloned()
                .collect();
            (entry["value"].clone(), failed)
        })
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

use AtomState::{Pending, Retrying, Reverted, Reverting, Running, Success};
use Intention::{Execute, Revert};

// ---------------------------------------------------------------------------
// What the journal says decides what runs again
// ---------------------------------------------------------------------------

#[tokio::test]
async fn success_results_are_reused_and_feed_the_rest() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("t3 execute");
    let first = Engine::builder(chain3(&probe))
        .input("v0", 4u64)
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["t3 execute"]);

    let store = open(&dir);
    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Running);
    assert_eq!(
        states(&atoms),
        [
            ("t1", Success, Execute),
            ("t2", Success, Execute),
            ("t3", Running, Execute)
        ]
    );
    assert_eq!(atoms["t1"].result, Some(json!([40])));
    assert_eq!(atoms["t2"].result, Some(json!([43])));

    let mut resumed = Engine::builder(chain3(&probe))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    assert_eq!(resumed.run_id(), run);
    assert_eq!(resumed.state(), FlowState::Running);
    // Decoded from the store, before anything runs.
    assert_eq!(resumed.fetch::<u64>("v1"), Some(&40));
    assert_eq!(resumed.fetch::<u64>("v2"), Some(&43));
    resumed.run().await.expect("the run finishes");

    assert_eq!(
        probe.log(),
        [
            "t1 execute #1 (4)",
            "t2 execute #1 (40)",
            "t3 execute #1 (43)",
            "t3 execute #2 (43)"
        ]
    );
    assert_eq!(probe.count("t1", "execute"), 1);
    assert_eq!(probe.count("t2", "execute"), 1);
    assert_eq!(resumed.state(), FlowState::Success);
    assert_eq!(resumed.fetch::<u64>("v3"), Some(&86));
    assert_eq!(resumed.attempts("t1"), Some(1));
    assert_eq!(resumed.attempts("t2"), Some(1));
    assert_eq!(resumed.attempts("t3"), Some(2));

    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Success);
    assert_eq!(
        states(&atoms),
        [
            ("t1", Success, Execute),
            ("t2", Success, Execute),
            ("t3", Success, Execute)
        ]
    );
    assert_eq!(atoms["t3"].result, Some(json!([86])));
    assert_eq!(atoms["t3"].attempts, 2);
}

#[tokio::test]
async fn an_atom_caught_running_runs_again_from_scratch_with_the_next_attempt() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("t2 execute");
    let first = Engine::builder(chain3(&probe))
        .input("v0", 4u64)
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["t2 execute"]);

    let store = open(&dir);
    let (_, atoms) = journal(&*store, run).await;
    assert_eq!(atoms["t2"].state, Running);
    assert_eq!(atoms["t2"].attempts, 1);
    assert_eq!(atoms["t2"].result, None);
    // Written when the run was created (PENDING), then RUNNING, before the
    // task started.
    assert_eq!(atoms["t2"].version, 2);
    assert_eq!(
        (atoms["t3"].state, atoms["t3"].version),
        (Pending, 1),
        "t3 never started"
    );

    let capture = CaptureListener::new();
    let mut resumed = Engine::builder(chain3(&probe))
        .listener(capture.clone())
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    assert_eq!(resumed.atom_state("t1"), Some(Success));
    assert_eq!(resumed.atom_state("t2"), Some(Pending));
    assert_eq!(resumed.atom_state("t3"), Some(Pending));
    assert_eq!(resumed.attempts("t2"), Some(1));
    capture.clear();
    resumed.run().await.expect("the run finishes");

    assert_eq!(
        probe.log(),
        [
            "t1 execute #1 (4)",
            "t2 execute #1 (40)",
            "t2 execute #2 (40)",
            "t3 execute #1 (43)"
        ]
    );
    assert_eq!(resumed.attempts("t2"), Some(2));
    assert_eq!(resumed.attempts("t3"), Some(1));
    assert_eq!(resumed.fetch::<u64>("v3"), Some(&86));
    assert_eq!(
        capture.events(),
        [
            "t2.t RUNNING",
            "t2.t SUCCESS(43)",
            "t3.t RUNNING",
            "t3.t SUCCESS(86)",
            "chain.f SUCCESS"
        ]
    );

    let (_, atoms) = journal(&*store, run).await;
    assert_eq!(atoms["t2"].state, Success);
    assert_eq!(atoms["t2"].attempts, 2);
    assert_eq!(atoms["t2"].result, Some(json!([43])));
    // PENDING and RUNNING (first engine), then RUNNING and SUCCESS: versions
    // go on.
    assert_eq!(atoms["t2"].version, 4);
}

/// `undo`: `a: v1 = v0 * 10`, `b: v2 = v1 + 3`, `c: v3 = v2 * 2`, then `d`
/// fails with `Woot!`.
fn undo_flow(probe: &Probe) -> CompiledFlow {
    Flow::linear("undo")
        .input::<u64>("v0")
        .add(step("a", "v0", "v1", |v| v * 10, probe))
        .add(step("b", "v1", "v2", |v| v + 3, probe))
        .add(step("c", "v2", "v3", |v| v * 2, probe))
        .add(woot("d", "v3", probe))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn an_atom_caught_reverting_is_reverted_again_then_the_rest_in_reverse_order() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("c revert");
    let first = Engine::builder(undo_flow(&probe))
        .input("v0", 4u64)
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["c revert"]);

    let store = open(&dir);
    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Running);
    assert_eq!(detail.meta["revert_all"], json!(true));
    assert_eq!(
        states(&atoms),
        [
            ("a", Success, Revert),
            ("b", Success, Revert),
            ("c", Reverting, Revert),
            ("d", Reverted, Revert)
        ]
    );
    assert_eq!(atoms["c"].result, Some(json!([86])));

    let mut resumed = Engine::builder(undo_flow(&probe))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    let err = resumed.run().await.expect_err("the run is reverted");
    assert!(matches!(err, RunError::Reverted { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "flow `undo` was reverted: task `d` failed: Woot!"
    );
    assert_eq!(err.failures().len(), 1);
    assert_eq!(err.failures()[0].atom, "d");
    assert_eq!(err.failures()[0].failure.message(), "Woot!");

    // The revert sees the attempt of the execution it undoes (1), and the
    // output that execution stored.
    assert_eq!(
        probe.log(),
        [
            "a execute #1 (4)",
            "b execute #1 (40)",
            "c execute #1 (43)",
            "d execute #1 (86)",
            "d revert #1 failed: Woot!",
            "c revert #1 = 86",
            "c revert #1 = 86",
            "b revert #1 = 43",
            "a revert #1 = 40"
        ]
    );
    assert_eq!(probe.count("c", "revert"), 2);
    for once in ["a", "b", "d"] {
        assert_eq!(probe.count(once, "revert"), 1, "{once}");
    }
    assert_eq!(resumed.state(), FlowState::Reverted);

    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Reverted);
    assert_eq!(
        states(&atoms),
        [
            ("a", Reverted, Revert),
            ("b", Reverted, Revert),
            ("c", Reverted, Revert),
            ("d", Reverted, Revert)
        ]
    );
}

/// `flaky`: controller `r` (`Times(3)`, provides `attempt`), then `a`
/// (provides `n = 7`) and `b` (fails with `not yet` on attempt 1).
fn flaky_flow(probe: &Probe, backoff: Backoff) -> CompiledFlow {
    Flow::linear("flaky")
        .retry(
            Retry::times(3)
                .named("r")
                .provides("attempt")
                .backoff(backoff),
        )
        .add(constant("a", "n", 7, probe))
        .add(needs_second_attempt("b", probe))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn a_failure_not_yet_resolved_is_resolved_again_and_retried() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("b execute");
    let first = Engine::builder(flaky_flow(&probe, Backoff::None))
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["b execute"]);

    // The process died just after `b` failed, before the consequences were
    // recorded: `b` is `Failure` with its intention still `Execute`. Written
    // as the engine writes a detail: state and failure, one version more.
    let store = open(&dir);
    let (_, atoms) = journal(&*store, run).await;
    assert_eq!(
        states(&atoms),
        [
            ("a", Success, Execute),
            ("b", Running, Execute),
            ("r", Success, Execute)
        ]
    );
    assert_eq!(
        atoms["r"].meta,
        json!({"history": [{"value": 1, "failures": {}}]})
    );
    let mut b = atoms["b"].clone();
    b.state = AtomState::Failure;
    b.failure = Some(Failure::from_error(TaskError::msg("not yet")));
    b.version += 1;
    let fence = journal(&*store, run).await.0.ownership.fence;
    store.save_atoms(run, fence, vec![b]).await.unwrap();

    let mut resumed = Engine::builder(flaky_flow(&probe, Backoff::None))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    resumed.run().await.expect("the second attempt succeeds");

    assert_eq!(
        probe.log(),
        [
            "a execute #1",
            "b execute #1 (1)",
            "b revert #1 failed: not yet",
            "a revert #1 = 7",
            "a execute #2",
            "b execute #2 (2)"
        ]
    );
    assert_eq!(resumed.state(), FlowState::Success);
    assert_eq!(resumed.attempts("r"), Some(2));
    assert_eq!(resumed.attempts("a"), Some(2));
    assert_eq!(resumed.attempts("b"), Some(2));
    assert_eq!(resumed.fetch::<u32>("attempt"), Some(&2));

    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Success);
    assert_eq!(
        states(&atoms),
        [
            ("a", Success, Execute),
            ("b", Success, Execute),
            ("r", Success, Execute)
        ]
    );
    assert_eq!(
        history(&atoms["r"]),
        [(json!(1), strings(&["b"])), (json!(2), Vec::new())]
    );
    assert_eq!(atoms["r"].attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_controller_caught_retrying_starts_its_next_attempt_without_waiting_again() {
    let (probe, _started) = Probe::new();
    let hour = Backoff::Fixed(Duration::from_secs(3600));
    let journal_store = Arc::new(MemoryBackend::new());
    let mut first = Engine::builder(flaky_flow(&probe, hour))
        .storage(journal_store.clone())
        .build();
    let run = first.run_id();
    // Everything is synchronous up to the backoff wait before attempt 2: one
    // poll gets there, then the process dies.
    assert!(first.run().now_or_never().is_none(), "waits an hour");
    drop(first);

    let (detail, atoms) = journal(&*journal_store, run).await;
    assert_eq!(detail.state, FlowState::Running);
    assert_eq!(
        states(&atoms),
        [
            ("a", Pending, Execute),
            ("b", Pending, Execute),
            ("r", Retrying, Execute)
        ]
    );
    assert_eq!(history(&atoms["r"]), [(json!(1), strings(&["b"]))]);

    let start = tokio::time::Instant::now();
    let mut resumed = Engine::builder(flaky_flow(&probe, hour))
        .storage(journal_store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    resumed.run().await.expect("the second attempt succeeds");
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the wait is not waited again"
    );

    assert_eq!(
        probe.log(),
        [
            "a execute #1",
            "b execute #1 (1)",
            "b revert #1 failed: not yet",
            "a revert #1 = 7",
            "a execute #2",
            "b execute #2 (2)"
        ]
    );
    assert_eq!(probe.count("a", "execute"), 2);
    assert_eq!(probe.count("b", "execute"), 2);
    assert_eq!(resumed.attempts("r"), Some(2));
    assert_eq!(resumed.fetch::<u32>("attempt"), Some(&2));

    let (detail, atoms) = journal(&*journal_store, run).await;
    assert_eq!(detail.state, FlowState::Success);
    assert_eq!(
        history(&atoms["r"]),
        [(json!(1), strings(&["b"])), (json!(2), Vec::new())]
    );
    assert_eq!(atoms["r"].attempts, 2);
}

/// `again`: controller `r` (`Times(3)`, provides `attempt`), then `a`
/// (`n = 7`), `b` (`m = n + 1`) and `c` (fails on attempt 1).
fn again_flow(probe: &Probe) -> CompiledFlow {
    Flow::linear("again")
        .retry(Retry::times(3).named("r").provides("attempt"))
        .add(constant("a", "n", 7, probe))
        .add(step("b", "n", "m", |n| n + 1, probe))
        .add(needs_second_attempt("c", probe))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn a_retry_caught_reverting_its_sub_flow_finishes_the_revert_then_runs_again() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("b revert");
    let first = Engine::builder(again_flow(&probe))
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["b revert"]);

    let store = open(&dir);
    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.meta["revert_all"], json!(false));
    assert_eq!(
        states(&atoms),
        [
            ("a", Success, Revert),
            ("b", Reverting, Revert),
            ("c", Reverted, Revert),
            ("r", Success, Execute)
        ]
    );
    for owned in ["a", "b", "c"] {
        assert_eq!(atoms[owned].meta, json!({"owner": "r"}), "{owned}");
    }
    assert_eq!(history(&atoms["r"]), [(json!(1), strings(&["c"]))]);

    let mut resumed = Engine::builder(again_flow(&probe))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    resumed.run().await.expect("the second attempt succeeds");

    assert_eq!(
        probe.log(),
        [
            "a execute #1",
            "b execute #1 (7)",
            "c execute #1 (1)",
            "c revert #1 failed: not yet",
            "b revert #1 = 8",
            "b revert #1 = 8",
            "a revert #1 = 7",
            "a execute #2",
            "b execute #2 (7)",
            "c execute #2 (2)"
        ]
    );
    assert_eq!(resumed.state(), FlowState::Success);
    assert_eq!(resumed.attempts("r"), Some(2));
    assert_eq!(resumed.fetch::<u64>("m"), Some(&8));

    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Success);
    assert_eq!(
        states(&atoms),
        [
            ("a", Success, Execute),
            ("b", Success, Execute),
            ("c", Success, Execute),
            ("r", Success, Execute)
        ]
    );
    for owned in ["a", "b", "c"] {
        assert_eq!(atoms[owned].meta, serde_json::Value::Null, "{owned}");
    }
    assert_eq!(
        history(&atoms["r"]),
        [(json!(1), strings(&["c"])), (json!(2), Vec::new())]
    );
}

#[tokio::test]
async fn a_run_suspended_in_revert_finishes_reverting_in_a_new_engine() {
    let dir = TempDir::new().unwrap();
    let (probe, _started) = Probe::new();
    let slot: Arc<Mutex<Option<RunHandle>>> = Arc::default();
    let make = |probe: &Probe, slot: &Arc<Mutex<Option<RunHandle>>>| {
        let on_execute = probe.clone();
        let on_revert = probe.clone();
        let slot = slot.clone();
        let suspends = FnTask::new(
            Signature::new().requires::<u64>("v1").provides::<u64>("v2"),
            move |args, ctx| {
                on_execute.hit("b", "execute", ctx.attempt(), &first_arg(&args));
                Exec::Ready(
                    args.get::<u64>(0)
                        .map(|v| Outputs::one(v + 3))
                        .map_err(Into::into),
                )
            },
        )
        .on_revert(move |input, ctx| {
            let v = input.outcome.output::<u64>(0).copied().unwrap_or(0);
            on_revert.hit("b", "revert", ctx.attempt(), &format!(" = {v}"));
            if let Some(handle) = slot.lock().unwrap().as_ref() {
                handle.suspend();
            }
            Exec::Ready(Ok(None))
        });
        Flow::linear("suspend")
            .input::<u64>("v0")
            .add(step("a", "v0", "v1", |v| v * 10, probe))
            .add(Atom::new("b", suspends))
            .add(woot("c", "v2", probe))
            .build()
            .expect("valid flow")
    };

    let store = open(&dir);
    let mut first = Engine::builder(make(&probe, &slot))
        .input("v0", 4u64)
        .storage(store.clone())
        .build();
    *slot.lock().unwrap() = Some(first.handle());
    let run = first.run_id();
    let err = first.run().await.expect_err("suspended");
    assert!(matches!(err, RunError::Suspended { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "flow `suspend` was suspended: run it again to continue"
    );
    assert_eq!(first.state(), FlowState::Suspended);
    *slot.lock().unwrap() = None;
    drop(first);
    drop(store);

    let store = open(&dir);
    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Suspended);
    assert_eq!(
        states(&atoms),
        [
            ("a", Success, Revert),
            ("b", Reverted, Revert),
            ("c", Reverted, Revert)
        ]
    );

    let mut resumed = Engine::builder(make(&probe, &slot))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    assert_eq!(resumed.state(), FlowState::Suspended);
    let err = resumed.run().await.expect_err("reverted");
    assert!(matches!(err, RunError::Reverted { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "flow `suspend` was reverted: task `c` failed: Woot!"
    );
    assert_eq!(
        probe.log(),
        [
            "a execute #1 (4)",
            "b execute #1 (40)",
            "c execute #1 (43)",
            "c revert #1 failed: Woot!",
            "b revert #1 = 43",
            "a revert #1 = 40"
        ]
    );
    for atom in ["a", "b", "c"] {
        assert_eq!(probe.count(atom, "revert"), 1, "{atom}");
        assert_eq!(probe.count(atom, "execute"), 1, "{atom}");
    }
    assert_eq!(resumed.state(), FlowState::Reverted);
    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Reverted);
    assert_eq!(
        states(&atoms),
        [
            ("a", Reverted, Revert),
            ("b", Reverted, Revert),
            ("c", Reverted, Revert)
        ]
    );
}

#[tokio::test]
async fn a_finished_run_stays_finished() {
    let dir = TempDir::new().unwrap();
    let (probe, _started) = Probe::new();
    let store = open(&dir);
    let mut first = Engine::builder(chain3(&probe))
        .input("v0", 4u64)
        .storage(store.clone())
        .build();
    first.run().await.unwrap();
    let run = first.run_id();
    drop(first);
    drop(store);
    let before = probe.log();
    assert_eq!(before.len(), 3);

    let store = open(&dir);
    let (stored_before, _) = journal(&*store, run).await;
    let mut resumed = Engine::builder(chain3(&probe))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    assert_eq!(resumed.state(), FlowState::Success);
    resumed.run().await.expect("nothing to do");
    assert_eq!(probe.log(), before, "no task executes");
    assert_eq!(resumed.state(), FlowState::Success);
    assert_eq!(resumed.fetch::<u64>("v0"), Some(&4));
    assert_eq!(resumed.fetch::<u64>("v1"), Some(&40));
    assert_eq!(resumed.fetch::<u64>("v2"), Some(&43));
    assert_eq!(resumed.fetch::<u64>("v3"), Some(&86));
    for t in ["t1", "t2", "t3"] {
        assert_eq!(resumed.attempts(t), Some(1), "{t}");
        assert_eq!(resumed.atom_state(t), Some(Success), "{t}");
    }
    let (stored_after, _) = journal(&*store, run).await;
    assert_eq!(stored_after, stored_before, "nothing is written");
}

/// `fan`: `first: v1 = v0 * 10`, then `left: l = v1 + 1` and `right: r = v1 +
/// 2` in an unordered group, then `last: sum = l + r`.
fn fan_flow(probe: &Probe) -> CompiledFlow {
    let last = watched(
        "last",
        Signature::new()
            .requires::<u64>("l")
            .requires::<u64>("r")
            .provides::<u64>("sum"),
        probe,
        |a, _| Ok(Outputs::one(a.get::<u64>(0)? + a.get::<u64>(1)?)),
    );
    Flow::linear("fan")
        .input::<u64>("v0")
        .add(step("first", "v0", "v1", |v| v * 10, probe))
        .add(
            Flow::unordered("pair")
                .add(step("left", "v1", "l", |v| v + 1, probe))
                .add(step("right", "v1", "r", |v| v + 2, probe)),
        )
        .add(last)
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn the_parallel_engine_runs_again_every_atom_caught_running_and_nothing_else() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("left execute");
    probe.arm("right execute");
    let first = Engine::builder(fan_flow(&probe))
        .parallel(4)
        .input("v0", 4u64)
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    let mut sprung = crash(first, &mut started, 2).await;
    sprung.sort();
    assert_eq!(sprung, ["left execute", "right execute"]);

    let store = open(&dir);
    let (_, atoms) = journal(&*store, run).await;
    assert_eq!(
        states(&atoms),
        [
            ("first", Success, Execute),
            ("last", Pending, Execute),
            ("left", Running, Execute),
            ("right", Running, Execute)
        ]
    );

    let mut resumed = Engine::builder(fan_flow(&probe))
        .parallel(4)
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    resumed.run().await.expect("the run finishes");

    let mut log = probe.log();
    log.sort();
    assert_eq!(
        log,
        [
            "first execute #1 (4)",
            "last execute #1 (41)",
            "left execute #1 (40)",
            "left execute #2 (40)",
            "right execute #1 (40)",
            "right execute #2 (40)"
        ]
    );
    assert_eq!(resumed.fetch::<u64>("sum"), Some(&83));
    assert_eq!(resumed.attempts("first"), Some(1));
    assert_eq!(resumed.attempts("left"), Some(2));
    assert_eq!(resumed.attempts("right"), Some(2));
    assert_eq!(resumed.attempts("last"), Some(1));
    let (detail, atoms) = journal(&*store, run).await;
    assert_eq!(detail.state, FlowState::Success);
    assert_eq!(atoms["left"].result, Some(json!([41])));
    assert_eq!(atoms["right"].result, Some(json!([42])));
    assert_eq!(atoms["last"].result, Some(json!([83])));
}

#[tokio::test]
async fn the_run_inputs_come_from_the_store_not_the_builder() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("t1 execute");
    let first = Engine::builder(chain3(&probe))
        .input("v0", 4u64)
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["t1 execute"]);

    let mut resumed = Engine::builder(chain3(&probe))
        .input("v0", 100u64)
        .storage(open(&dir))
        .resume(run)
        .await
        .expect("the run resumes");
    assert_eq!(resumed.store().get::<u64>("v0"), Some(&4));
    resumed.run().await.expect("the run finishes");
    assert_eq!(
        probe.log(),
        [
            "t1 execute #1 (4)",
            "t1 execute #2 (4)",
            "t2 execute #1 (40)",
            "t3 execute #1 (43)"
        ]
    );
    assert_eq!(resumed.fetch::<u64>("v0"), Some(&4));
    assert_eq!(resumed.fetch::<u64>("v3"), Some(&86));
}

// ---------------------------------------------------------------------------
// Runs that no longer fit their flow
// ---------------------------------------------------------------------------

/// A task that provides nothing.
fn noop(name: &'static str) -> Atom {
    Atom::new(name, FnTask::sync(Signature::new(), |_| Ok(Outputs::new())))
}

/// A linear flow `name` of no-op tasks.
fn noops(name: &'static str, atoms: &[&'static str]) -> CompiledFlow {
    let mut flow = Flow::linear(name);
    for a in atoms {
        flow.push(noop(a));
    }
    flow.build().expect("valid flow")
}

/// Runs `engine` (journaled to `store`) to the end and returns its id.
async fn stored(mut engine: Engine) -> FlowId {
    engine.run().await.expect("the stored run succeeds");
    engine.run_id()
}

async fn stored_noops(atoms: &[&'static str]) -> (Arc<MemoryBackend>, FlowId) {
    let store = Arc::new(MemoryBackend::new());
    let run = stored(
        Engine::builder(noops("f", atoms))
            .storage(store.clone())
            .build(),
    )
    .await;
    (store, run)
}

/// Resumes `run` with `flow`, expecting an error; checks the run was left as
/// it was.
async fn resume_err(flow: CompiledFlow, store: Arc<dyn Backend>, run: FlowId) -> ResumeError {
    let before = store.load_flow(run).await.ok().map(|(detail, _)| detail);
    let err = Engine::builder(flow)
        .storage(store.clone())
        .resume(run)
        .await
        .expect_err("the run does not fit");
    let after = store.load_flow(run).await.ok().map(|(detail, _)| detail);
    assert_eq!(after, before, "a failed resume writes nothing");
    err
}

#[tokio::test]
async fn resuming_without_a_store_is_an_error() {
    let run = FlowId::new();
    let err = Engine::builder(noops("f", &["a"]))
        .resume(run)
        .await
        .expect_err("no store");
    assert!(
        matches!(err, ResumeError::NoStorage { run: r } if r == run),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot resume run {run} without its store: call `EngineBuilder::storage` with the \
             backend that holds it"
        )
    );
}

#[tokio::test]
async fn resuming_an_unknown_run_is_a_not_found_storage_error() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    // The store holds another run.
    stored(
        Engine::builder(noops("f", &["a"]))
            .storage(store.clone())
            .build(),
    )
    .await;
    let run = FlowId::new();
    let err = resume_err(noops("f", &["a"]), store, run).await;
    assert!(
        matches!(
            &err,
            ResumeError::Storage { run: r, source: StorageError::NotFound(id) }
                if *r == run && *id == run
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot resume run {run}: no run with id {run} in the store: list the runs with \
             `Backend::list_flows`"
        )
    );
}

#[tokio::test]
async fn resuming_a_run_of_another_flow_is_an_error() {
    let (store, run) = stored_noops(&["a"]).await;
    let err = resume_err(noops("g", &["a"]), store, run).await;
    assert!(
        matches!(&err, ResumeError::OtherFlow { flow, stored, .. } if flow == "g" && stored == "f"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "run {run} is a run of flow `f`, not of `g`: resume it with the flow it was started \
             with"
        )
    );
}

fn changes(err: &ResumeError) -> (Vec<String>, Vec<String>, Vec<String>) {
    match err {
        ResumeError::DefinitionChanged {
            added,
            removed,
            changed_kind,
            flow,
            ..
        } => {
            assert_eq!(flow, "f");
            (added.clone(), removed.clone(), changed_kind.clone())
        }
        other => panic!("expected DefinitionChanged, got {other:?}"),
    }
}

#[tokio::test]
async fn an_added_atom_is_a_changed_definition() {
    let (store, run) = stored_noops(&["a", "b"]).await;
    let err = resume_err(noops("f", &["a", "b", "c"]), store, run).await;
    assert_eq!(changes(&err), (strings(&["c"]), vec![], vec![]));
    assert_eq!(
        err.to_string(),
        format!(
            "flow `f` no longer matches run {run}: atoms added: `c`; resume the run with the \
             definition it was started with, or start a new run"
        )
    );
}

#[tokio::test]
async fn a_removed_atom_is_a_changed_definition() {
    let (store, run) = stored_noops(&["a", "b"]).await;
    let err = resume_err(noops("f", &["a"]), store, run).await;
    assert_eq!(changes(&err), (vec![], strings(&["b"]), vec![]));
    assert_eq!(
        err.to_string(),
        format!(
            "flow `f` no longer matches run {run}: atoms removed: `b`; resume the run with the \
             definition it was started with, or start a new run"
        )
    );
}

#[tokio::test]
async fn a_renamed_atom_shows_as_removed_and_added() {
    let (store, run) = stored_noops(&["a", "b"]).await;
    let err = resume_err(noops("f", &["a", "b2"]), store, run).await;
    assert_eq!(changes(&err), (strings(&["b2"]), strings(&["b"]), vec![]));
    assert_eq!(
        err.to_string(),
        format!(
            "flow `f` no longer matches run {run}: atoms added: `b2`; atoms removed: `b` (a \
             renamed atom shows as removed and added); resume the run with the definition it \
             was started with, or start a new run"
        )
    );
}

#[tokio::test]
async fn a_task_turned_into_a_retry_controller_is_a_changed_definition() {
    let (store, run) = stored_noops(&["r", "a"]).await;
    let now = Flow::linear("f")
        .retry(Retry::times(2).named("r"))
        .add(noop("a"))
        .build()
        .expect("valid flow");
    let err = resume_err(now, store, run).await;
    assert_eq!(changes(&err), (vec![], vec![], strings(&["r"])));
    assert_eq!(
        err.to_string(),
        format!(
            "flow `f` no longer matches run {run}: atoms changed between task and retry \
             controller: `r`; resume the run with the definition it was started with, or start \
             a new run"
        )
    );
}

/// A flow `f` with one task `t` providing `n` as a `T` (`value`).
fn provides<T: flow::Data + Clone>(value: T) -> CompiledFlow {
    Flow::linear("f")
        .add(Atom::new(
            "t",
            FnTask::sync(Signature::new().provides::<T>("n"), move |_| {
                Ok(Outputs::one(value.clone()))
            }),
        ))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn a_stored_output_that_no_longer_decodes_names_the_atom_and_the_symbol() {
    let store = Arc::new(MemoryBackend::new());
    let run = stored(
        Engine::builder(provides(7u64))
            .storage(store.clone())
            .build(),
    )
    .await;
    let err = resume_err(provides(String::from("seven")), store, run).await;
    assert!(
        matches!(
            &err,
            ResumeError::Decode { atom, symbol, expected, .. }
                if atom == "t" && symbol == "n" && expected == "String"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "run {run}: the stored `n` of atom `t` no longer decodes as `String` (invalid type: \
             integer `7`, expected a string): keep the type able to read what was stored (serde \
             defaults and aliases help), or start a new run"
        )
    );
}

#[tokio::test]
async fn a_task_declaring_another_number_of_outputs_is_an_error() {
    let store = Arc::new(MemoryBackend::new());
    let run = stored(
        Engine::builder(provides(7u64))
            .storage(store.clone())
            .build(),
    )
    .await;
    let two = Flow::linear("f")
        .add(Atom::new(
            "t",
            FnTask::sync(
                Signature::new().provides::<u64>("n").provides::<u64>("m"),
                |_| Ok(Outputs::one(7u64).with(8u64)),
            ),
        ))
        .build()
        .expect("valid flow");
    let err = resume_err(two, store, run).await;
    assert!(
        matches!(
            &err,
            ResumeError::OutputsChanged { atom, stored: 1, declared: 2, .. } if atom == "t"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "run {run}: atom `t` stored 1 output(s) but declares 2 now: resume with the \
             definition the run was started with"
        )
    );
}

/// A flow `f` declaring the input `x: T`, read by its task `t`.
fn reads_input<T: flow::Data>() -> CompiledFlow {
    Flow::linear("f")
        .input::<T>("x")
        .add(Atom::new(
            "t",
            FnTask::sync(Signature::new().requires::<T>("x"), |_| Ok(Outputs::new())),
        ))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn a_stored_input_that_no_longer_decodes_is_an_error() {
    let store = Arc::new(MemoryBackend::new());
    let run = stored(
        Engine::builder(reads_input::<u32>())
            .input("x", 7u32)
            .storage(store.clone())
            .build(),
    )
    .await;
    let err = resume_err(reads_input::<String>(), store, run).await;
    assert!(
        matches!(
            &err,
            ResumeError::DecodeInput { symbol, expected, .. } if symbol == "x" && expected == "String"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "run {run}: the stored input `x` no longer decodes as `String` (invalid type: integer \
             `7`, expected a string): keep the type able to read what was stored, or start a new \
             run"
        )
    );
}

#[tokio::test]
async fn a_declared_input_missing_from_the_stored_run_is_an_error() {
    let store = Arc::new(MemoryBackend::new());
    let run = stored(
        Engine::builder(noops("f", &["t"]))
            .storage(store.clone())
            .build(),
    )
    .await;
    let now = Flow::linear("f")
        .input::<u32>("y")
        .add(noop("t"))
        .build()
        .expect("valid flow");
    let err = resume_err(now, store, run).await;
    assert!(
        matches!(
            &err,
            ResumeError::MissingInput { flow, symbol, .. } if flow == "f" && symbol == "y"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "run {run} has no stored value for input `y`, which flow `f` declares: resume with \
             the definition the run was started with"
        )
    );
}

/// `twice`: `a: v1 = v0 * 10`, `b: v2 = v1 + 3`, `c` (fails with `Woot!`),
/// `d: v3 = v2 * 2`; no retry controller.
fn twice_flow(probe: &Probe) -> CompiledFlow {
    Flow::linear("twice")
        .input::<u64>("v0")
        .add(step("a", "v0", "v1", |v| v * 10, probe))
        .add(step("b", "v1", "v2", |v| v + 3, probe))
        .add(woot("c", "v2", probe))
        .add(step("d", "v2", "v3", |v| v * 2, probe))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn a_failure_resolved_while_resuming_survives_a_second_crash() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("c execute");
    let first = Engine::builder(twice_flow(&probe))
        .input("v0", 4u64)
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["c execute"]);

    // Crash just after `c` failed: `Failure`, intention still `Execute`.
    let store = open(&dir);
    let (_, atoms) = journal(&*store, run).await;
    let mut c = atoms["c"].clone();
    assert_eq!((c.state, c.intention), (Running, Execute));
    c.state = AtomState::Failure;
    c.failure = Some(Failure::from_error(TaskError::msg("Woot!")));
    c.version += 1;
    let fence = journal(&*store, run).await.0.ownership.fence;
    store.save_atoms(run, fence, vec![c]).await.unwrap();

    // The second process resolves the failure (no controller: revert
    // everything) and dies while reverting `c`.
    probe.arm("c revert");
    let second = Engine::builder(twice_flow(&probe))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    drop(store);
    assert_eq!(crash(second, &mut started, 1).await, ["c revert"]);

    let store = open(&dir);
    let (after_second, atoms_after_second) = journal(&*store, run).await;
    let mut third = Engine::builder(twice_flow(&probe))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    let err = third.run().await.expect_err("the run is reverted");
    assert_eq!(
        err.to_string(),
        "flow `twice` was reverted: task `c` failed: Woot!"
    );
    // Everything that ran is undone, in reverse order; `d` never ran.
    assert_eq!(
        probe.log(),
        [
            "a execute #1 (4)",
            "b execute #1 (40)",
            "c execute #1 (43)",
            "c revert #1 failed: Woot!",
            "c revert #1 failed: Woot!",
            "b revert #1 = 43",
            "a revert #1 = 40"
        ]
    );
    for atom in ["a", "b", "c"] {
        assert_eq!(third.atom_state(atom), Some(Reverted), "{atom}");
    }
    assert_eq!(third.atom_state("d"), Some(Pending));

    // What the second process decided was journaled before it acted on it.
    assert_eq!(after_second.meta["revert_all"], json!(true));
    for (atom, state) in [("a", Success), ("b", Success), ("c", Reverting)] {
        let a = &atoms_after_second[atom];
        assert_eq!((a.state, a.intention), (state, Revert), "{atom}");
    }
}

#[tokio::test]
async fn a_retry_decided_while_resuming_survives_a_second_crash() {
    let dir = TempDir::new().unwrap();
    let (probe, mut started) = Probe::new();
    probe.arm("b execute");
    let first = Engine::builder(flaky_flow(&probe, Backoff::None))
        .storage(open(&dir))
        .build();
    let run = first.run_id();
    assert_eq!(crash(first, &mut started, 1).await, ["b execute"]);

    // Crash just after `b` failed: `Failure`, intention still `Execute`.
    let store = open(&dir);
    let (_, atoms) = journal(&*store, run).await;
    let mut b = atoms["b"].clone();
    assert_eq!((b.state, b.intention), (Running, Execute));
    b.state = AtomState::Failure;
    b.failure = Some(Failure::from_error(TaskError::msg("not yet")));
    b.version += 1;
    let fence = journal(&*store, run).await.0.ownership.fence;
    store.save_atoms(run, fence, vec![b]).await.unwrap();

    // The second process has `r` decide a retry, and dies while reverting `b`.
    probe.arm("b revert");
    let second = Engine::builder(flaky_flow(&probe, Backoff::None))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    drop(store);
    assert_eq!(crash(second, &mut started, 1).await, ["b revert"]);

    let store = open(&dir);
    let (_, atoms_after_second) = journal(&*store, run).await;
    let mut third = Engine::builder(flaky_flow(&probe, Backoff::None))
        .storage(store.clone())
        .resume(run)
        .await
        .expect("the run resumes");
    third.run().await.expect("the second attempt succeeds");
    // The whole sub-flow is reverted before it runs again.
    assert_eq!(
        probe.log(),
        [
            "a execute #1",
            "b execute #1 (1)",
            "b revert #1 failed: not yet",
            "b revert #1 failed: not yet",
            "a revert #1 = 7",
            "a execute #2",
            "b execute #2 (2)"
        ]
    );
    assert_eq!(third.attempts("r"), Some(2));
    let (_, atoms) = journal(&*store, run).await;
    assert_eq!(
        history(&atoms["r"]),
        [(json!(1), strings(&["b"])), (json!(2), Vec::new())]
    );

    // What the second process decided was journaled before it acted on it.
    assert_eq!(
        states(&atoms_after_second),
        [
            ("a", Success, Revert),
            ("b", Reverting, Revert),
            ("r", Success, Execute)
        ]
    );
    assert_eq!(atoms_after_second["a"].meta, json!({"owner": "r"}));
    assert_eq!(
        history(&atoms_after_second["r"]),
        [(json!(1), strings(&["b"]))]
    );
}
