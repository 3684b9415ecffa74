//! The conformance scenarios of `scenarios.md` (S1-S4, S7, S8) on both engines,
//! and the run-time rules around them (semantics.md sections 2-5 and 8):
//! re-running, optional, collected, rebound and injected inputs, priorities,
//! revert hiding outputs, and the checks of a run's inputs.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MODES, engine, failing, pos, progressing, ran_and_reverted};
use flow::{
    Atom, AtomState, CaptureListener, CompiledFlow, Engine, Exec, Failures, Flow, FlowState,
    FnTask, Mode, Outcome, Outputs, RunError, Signature, TaskError, Value,
};

// S5 and S6 need retry controllers: they arrive with retry controllers.

/// A task that does nothing and provides nothing.
fn noop(name: &'static str) -> Atom {
    Atom::new(name, FnTask::sync(Signature::new(), |_| Ok(Outputs::new())))
}

/// A task that provides `symbol = value`.
fn provider(name: &'static str, symbol: &'static str, value: u32) -> Atom {
    Atom::new(
        name,
        FnTask::sync(Signature::new().provides::<u32>(symbol), move |_| {
            Ok(Outputs::one(value))
        }),
    )
}

/// A task mapping `from -> to` as `x + 1` (or providing `to = 1` with no `from`).
fn step(name: &'static str, from: Option<&'static str>, to: &'static str) -> Atom {
    let sig = match from {
        Some(f) => Signature::new().requires::<u32>(f),
        None => Signature::new(),
    }
    .provides::<u32>(to);
    let has_input = from.is_some();
    Atom::new(
        name,
        FnTask::sync(sig, move |a| {
            let x = if has_input { *a.get::<u32>(0)? } else { 0 };
            Ok(Outputs::one(x + 1))
        }),
    )
}

/// Like [`step`], but fails with `Woot!`.
fn failing_step(name: &'static str, from: &'static str, to: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(
            Signature::new().requires::<u32>(from).provides::<u32>(to),
            |_| Err(TaskError::msg("Woot!")),
        ),
    )
}

/// An engine capturing atom events only.
fn atoms_engine(flow: CompiledFlow, mode: Mode) -> (Engine, CaptureListener) {
    let capture = CaptureListener::atoms_only();
    let engine = Engine::builder(flow)
        .mode(mode)
        .listener(capture.clone())
        .build();
    (engine, capture)
}

fn sorted(events: &[impl AsRef<str>]) -> Vec<String> {
    let mut v: Vec<String> = events.iter().map(|e| e.as_ref().to_string()).collect();
    v.sort();
    v
}

/// Asserts that `before` happens before `after` in `events`.
fn before(events: &[String], before: &str, after: &str) {
    assert!(
        pos(events, before) < pos(events, after),
        "`{before}` should come before `{after}` in {events:#?}"
    );
}

// ---------------------------------------------------------------------------
// S1
// ---------------------------------------------------------------------------

#[tokio::test]
async fn s1_one_task_with_flow_events() {
    for mode in MODES {
        let flow = Flow::linear("task1")
            .add(progressing("task1"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "task1.f RUNNING",
                "task1.t RUNNING",
                "task1.t SUCCESS(5)",
                "task1.f SUCCESS"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.state(), FlowState::Success);
        assert_eq!(engine.atom_state("task1"), Some(AtomState::Success));
        assert_eq!(engine.fetch::<u32>("task1"), Some(&5));
    }
}

// ---------------------------------------------------------------------------
// S2
// ---------------------------------------------------------------------------

const S2_RUN: [&str; 6] = [
    "fail.f RUNNING",
    "fail.t RUNNING",
    "fail.t FAILURE(Failure: Woot!)",
    "fail.t REVERTING",
    "fail.t REVERTED(())",
    "fail.f REVERTED",
];

#[tokio::test]
async fn s2_failing_task_is_reverted_and_a_second_run_starts_over() {
    for mode in MODES {
        let flow = Flow::linear("fail")
            .add(failing("fail"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);

        let err = engine.run().await.expect_err("fails");
        assert!(err.to_string().contains("Woot!"), "{mode:?}");
        assert_eq!(
            err.to_string(),
            "flow `fail` was reverted: task `fail` failed: Woot!"
        );
        assert!(matches!(err, RunError::Reverted { ref flow, .. } if flow == "fail"));
        assert_eq!(err.failures().len(), 1);
        assert_eq!(err.failures()[0].atom, "fail");
        assert_eq!(err.failures()[0].failure.message(), "Woot!");
        assert_eq!(capture.events(), S2_RUN, "{mode:?}");
        assert_eq!(engine.state(), FlowState::Reverted);
        assert_eq!(engine.atom_state("fail"), Some(AtomState::Reverted));

        let err = engine.run().await.expect_err("fails again");
        assert_eq!(
            err.to_string(),
            "flow `fail` was reverted: task `fail` failed: Woot!"
        );
        let mut expected: Vec<&str> = S2_RUN.to_vec();
        expected.extend(["fail.t PENDING", "fail.f PENDING"]);
        expected.extend(S2_RUN);
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(engine.attempts("fail"), Some(2));
    }
}

// ---------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------

#[tokio::test]
async fn s3_nested_linear_reverts_in_reverse_order() {
    for mode in MODES {
        let flow = Flow::linear("root-1")
            .add(progressing("task1"))
            .add(
                Flow::linear("child-1")
                    .add(progressing("task2"))
                    .add(failing("fail")),
            )
            .build()
            .expect("valid flow");
        let (mut engine, capture) = atoms_engine(flow, mode);
        let err = engine.run().await.expect_err("fails");
        assert_eq!(
            err.to_string(),
            "flow `root-1` was reverted: task `fail` failed: Woot!"
        );
        assert_eq!(
            capture.events(),
            [
                "task1.t RUNNING",
                "task1.t SUCCESS(5)",
                "task2.t RUNNING",
                "task2.t SUCCESS(5)",
                "fail.t RUNNING",
                "fail.t FAILURE(Failure: Woot!)",
                "fail.t REVERTING",
                "fail.t REVERTED(())",
                "task2.t REVERTING",
                "task2.t REVERTED(())",
                "task1.t REVERTING",
                "task1.t REVERTED(())"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
    }
}

#[tokio::test]
async fn s3_atoms_after_the_failure_are_neither_executed_nor_reverted() {
    for mode in MODES {
        let executed = Arc::new(AtomicUsize::new(0));
        let reverted = Arc::new(AtomicUsize::new(0));
        let (e, r) = (executed.clone(), reverted.clone());
        let never_runs = FnTask::sync(Signature::new(), move |_| {
            e.fetch_add(1, Ordering::SeqCst);
            Ok(Outputs::new())
        })
        .on_revert_sync(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        });
        let flow = Flow::linear("s3b")
            .add(failing("fail"))
            .add(Atom::new("never_runs", never_runs))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = atoms_engine(flow, mode);
        engine.run().await.expect_err("fails");
        assert_eq!(
            capture.events(),
            [
                "fail.t RUNNING",
                "fail.t FAILURE(Failure: Woot!)",
                "fail.t REVERTING",
                "fail.t REVERTED(())"
            ],
            "{mode:?}"
        );
        assert_eq!(executed.load(Ordering::SeqCst), 0);
        assert_eq!(reverted.load(Ordering::SeqCst), 0);
        assert_eq!(engine.atom_state("never_runs"), Some(AtomState::Pending));
        assert_eq!(engine.attempts("never_runs"), Some(0));
    }
}

// ---------------------------------------------------------------------------
// S4
// ---------------------------------------------------------------------------

fn s4_flow(task3_fails: bool) -> CompiledFlow {
    let task3 = if task3_fails {
        failing_step("task3", "b", "c")
    } else {
        step("task3", Some("b"), "c")
    };
    Flow::graph("s4")
        .add(step("task4", Some("c"), "d"))
        .add(step("task2", Some("a"), "b"))
        .add(task3)
        .add(step("task1", None, "a"))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn s4_graph_order_follows_data_not_insertion() {
    let flow = s4_flow(false);
    assert_eq!(
        flow.atom_names().collect::<Vec<_>>(),
        ["task4", "task2", "task3", "task1"]
    );
    assert_eq!(flow.predecessors("task1").unwrap(), Vec::<&str>::new());
    assert_eq!(flow.predecessors("task2").unwrap(), ["task1"]);
    assert_eq!(flow.predecessors("task3").unwrap(), ["task2"]);
    assert_eq!(flow.predecessors("task4").unwrap(), ["task3"]);
    for mode in MODES {
        let (mut engine, capture) = engine(flow.clone(), mode);
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "s4.f RUNNING",
                "task1.t RUNNING",
                "task1.t SUCCESS(1)",
                "task2.t RUNNING",
                "task2.t SUCCESS(2)",
                "task3.t RUNNING",
                "task3.t SUCCESS(3)",
                "task4.t RUNNING",
                "task4.t SUCCESS(4)",
                "s4.f SUCCESS"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.fetch::<u32>("d"), Some(&4));
    }
}

#[tokio::test]
async fn s4_graph_failure_reverts_in_reverse_dependency_order() {
    for mode in MODES {
        let (mut engine, capture) = engine(s4_flow(true), mode);
        let err = engine.run().await.expect_err("fails");
        assert_eq!(
            err.to_string(),
            "flow `s4` was reverted: task `task3` failed: Woot!"
        );
        assert_eq!(
            capture.events(),
            [
                "s4.f RUNNING",
                "task1.t RUNNING",
                "task1.t SUCCESS(1)",
                "task2.t RUNNING",
                "task2.t SUCCESS(2)",
                "task3.t RUNNING",
                "task3.t FAILURE(Failure: Woot!)",
                "task3.t REVERTING",
                "task3.t REVERTED(())",
                "task2.t REVERTING",
                "task2.t REVERTED(())",
                "task1.t REVERTING",
                "task1.t REVERTED(())",
                "s4.f REVERTED"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.atom_state("task4"), Some(AtomState::Pending));
        assert_eq!(engine.state(), FlowState::Reverted);
    }
}

// ---------------------------------------------------------------------------
// S7
// ---------------------------------------------------------------------------

type Seen = Arc<Mutex<Vec<(Outcome, Arc<Failures>)>>>;

#[tokio::test]
async fn s7_revert_is_told_its_outcome_and_the_flow_failures() {
    for mode in MODES {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let checking = FnTask::sync(Signature::new().provides::<String>("checking"), |_| {
            Ok(Outputs::one("RESULT".to_string()))
        })
        .on_revert(move |input, ctx| {
            record
                .lock()
                .unwrap()
                .push((input.outcome.clone(), ctx.failures()));
            Exec::Ready(Ok(None))
        });
        let fail_seen: Seen = Arc::default();
        let fail_record = fail_seen.clone();
        let fail1 = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("Woot!"))).on_revert(
            move |input, ctx| {
                fail_record
                    .lock()
                    .unwrap()
                    .push((input.outcome.clone(), ctx.failures()));
                Exec::Ready(Ok(None))
            },
        );
        let flow = Flow::linear("test")
            .add(Atom::new("checking", checking))
            .add(Atom::new("fail1", fail1))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = atoms_engine(flow, mode);
        engine.run().await.expect_err("fails");
        assert_eq!(
            capture.events(),
            [
                "checking.t RUNNING",
                "checking.t SUCCESS(\"RESULT\")",
                "fail1.t RUNNING",
                "fail1.t FAILURE(Failure: Woot!)",
                "fail1.t REVERTING",
                "fail1.t REVERTED(())",
                "checking.t REVERTING",
                "checking.t REVERTED(())"
            ],
            "{mode:?}"
        );

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "checking is reverted once");
        let (outcome, failures) = &seen[0];
        match outcome {
            Outcome::Success(out) => {
                assert_eq!(format!("{out:?}"), "\"RESULT\"");
                assert_eq!(out.values()[0].downcast_ref::<String>().unwrap(), "RESULT");
            }
            Outcome::Failure(f) => panic!("checking's outcome should be a success, got {f}"),
        }
        assert_eq!(failures.keys().collect::<Vec<_>>(), ["fail1"]);
        assert_eq!(failures["fail1"].to_string(), "Failure: Woot!");

        let fail_seen = fail_seen.lock().unwrap();
        assert_eq!(fail_seen.len(), 1);
        match &fail_seen[0].0 {
            Outcome::Failure(f) => assert_eq!(f.to_string(), "Failure: Woot!"),
            Outcome::Success(out) => panic!("fail1's outcome should be its failure, got {out:?}"),
        }
        assert_eq!(fail_seen[0].1.keys().collect::<Vec<_>>(), ["fail1"]);
    }
}

// ---------------------------------------------------------------------------
// S8
// ---------------------------------------------------------------------------

#[tokio::test]
async fn s8_revert_removes_data_and_keeps_revert_results() {
    for mode in MODES {
        let inc = FnTask::sync(
            Signature::new()
                .requires::<u32>("value")
                .provides::<u32>("value"),
            |a| Ok(Outputs::one(a.get::<u32>(0)? + 1)),
        )
        .on_revert_sync(|input| match &input.outcome {
            Outcome::Success(out) => {
                let result = out.values()[0].downcast_ref::<u32>().copied().unwrap();
                Ok(Some(Value::new(result + 1)))
            }
            Outcome::Failure(_) => Err(TaskError::msg("inc did not fail")),
        });
        let multi = FnTask::sync(
            Signature::new()
                .provides::<u32>("a")
                .provides::<u32>("b")
                .provides::<u32>("c"),
            |_| Ok(Outputs::new().with(1u32).with(3u32).with(5u32)),
        );
        let flow = Flow::linear("s8")
            .input::<u32>("value")
            .add(provider("one", "one", 1))
            .add(Atom::new("multi", multi))
            .add(Atom::new("inc", inc))
            .add(failing("fail"))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("value", 0u32)
            .listener(capture.clone())
            .build();
        engine.run().await.expect_err("fails");
        assert_eq!(
            capture.events(),
            [
                "one.t RUNNING",
                "one.t SUCCESS(1)",
                "multi.t RUNNING",
                "multi.t SUCCESS((1, 3, 5))",
                "inc.t RUNNING",
                "inc.t SUCCESS(1)",
                "fail.t RUNNING",
                "fail.t FAILURE(Failure: Woot!)",
                "fail.t REVERTING",
                "fail.t REVERTED(())",
                "inc.t REVERTING",
                "inc.t REVERTED(2)",
                "multi.t REVERTING",
                "multi.t REVERTED(())",
                "one.t REVERTING",
                "one.t REVERTED(())"
            ],
            "{mode:?}"
        );
        assert_eq!(
            engine.fetch_all().debug_map(),
            BTreeMap::from([("value".to_string(), "0".to_string())]),
            "{mode:?}"
        );
        assert_eq!(engine.fetch::<u32>("value"), Some(&0));
        assert_eq!(engine.fetch::<u32>("a"), None);
        let revert_result = engine.revert_result("inc").expect("a revert result");
        assert_eq!(revert_result.downcast_ref::<u32>(), Some(&2));
        assert!(engine.revert_result("one").is_none());
    }
}

// ---------------------------------------------------------------------------
// Parallel: sets and happens-before
// ---------------------------------------------------------------------------

fn wide_flow() -> CompiledFlow {
    Flow::linear("wide")
        .add(progressing("a"))
        .add(
            Flow::unordered("u")
                .add(progressing("b"))
                .add(progressing("c"))
                .add(progressing("d")),
        )
        .add(failing("e"))
        .build()
        .expect("valid flow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wide_flow_reverts_each_atom_after_its_successors() {
    let (mut engine, capture) = engine(wide_flow(), Mode::Parallel(4));
    let err = engine.run().await.expect_err("fails");
    assert_eq!(
        err.to_string(),
        "flow `wide` was reverted: task `e` failed: Woot!"
    );
    let events = capture.events();
    let mut expected = vec![
        "wide.f RUNNING".to_string(),
        "wide.f REVERTED".to_string(),
        "e.t RUNNING".to_string(),
        "e.t FAILURE(Failure: Woot!)".to_string(),
        "e.t REVERTING".to_string(),
        "e.t REVERTED(())".to_string(),
    ];
    for x in ["a", "b", "c", "d"] {
        expected.extend(ran_and_reverted(x, "5"));
    }
    assert_eq!(sorted(&events), sorted(&expected));
    assert_eq!(events.first().unwrap(), "wide.f RUNNING");
    assert_eq!(events.last().unwrap(), "wide.f REVERTED");
    for x in ["a", "b", "c", "d", "e"] {
        let done = if x == "e" {
            "e.t FAILURE(Failure: Woot!)".to_string()
        } else {
            format!("{x}.t SUCCESS(5)")
        };
        before(&events, &format!("{x}.t RUNNING"), &done);
        before(&events, &done, &format!("{x}.t REVERTING"));
        before(
            &events,
            &format!("{x}.t REVERTING"),
            &format!("{x}.t REVERTED(())"),
        );
    }
    for x in ["b", "c", "d"] {
        // Forward: after the predecessor, before the successor.
        before(&events, "a.t SUCCESS(5)", &format!("{x}.t RUNNING"));
        before(&events, &format!("{x}.t SUCCESS(5)"), "e.t RUNNING");
        // Revert: after the successor, before the predecessor.
        before(&events, "e.t REVERTED(())", &format!("{x}.t REVERTING"));
        before(&events, &format!("{x}.t REVERTED(())"), "a.t REVERTING");
    }
    assert_eq!(engine.fetch_all().len(), 0);
}

#[tokio::test]
async fn serial_wide_flow_is_deterministic() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (mut engine, capture) = atoms_engine(wide_flow(), Mode::Serial);
        engine.run().await.expect_err("fails");
        runs.push(capture.events());
    }
    assert_eq!(runs[0], runs[1]);
    assert_eq!(
        runs[0],
        [
            "a.t RUNNING",
            "a.t SUCCESS(5)",
            "b.t RUNNING",
            "b.t SUCCESS(5)",
            "c.t RUNNING",
            "c.t SUCCESS(5)",
            "d.t RUNNING",
            "d.t SUCCESS(5)",
            "e.t RUNNING",
            "e.t FAILURE(Failure: Woot!)",
            "e.t REVERTING",
            "e.t REVERTED(())",
            "d.t REVERTING",
            "d.t REVERTED(())",
            "c.t REVERTING",
            "c.t REVERTED(())",
            "b.t REVERTING",
            "b.t REVERTED(())",
            "a.t REVERTING",
            "a.t REVERTED(())"
        ]
    );
}

fn diamond_flow() -> CompiledFlow {
    let sum = FnTask::sync(
        Signature::new()
            .requires::<u32>("l")
            .requires::<u32>("r")
            .provides::<u32>("sum"),
        |a| Ok(Outputs::one(a.get::<u32>(0)? + a.get::<u32>(1)?)),
    );
    Flow::graph("diamond")
        .add(Atom::new("bottom", sum))
        .add(step("right", Some("top"), "r"))
        .add(step("left", Some("top"), "l"))
        .add(step("top", None, "top"))
        .build()
        .expect("valid flow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_graph_diamond_respects_dependencies() {
    let (mut engine, capture) = atoms_engine(diamond_flow(), Mode::Parallel(4));
    engine.run().await.expect("runs");
    let events = capture.events();
    assert_eq!(
        sorted(&events),
        sorted(&[
            "top.t RUNNING",
            "top.t SUCCESS(1)",
            "left.t RUNNING",
            "left.t SUCCESS(2)",
            "right.t RUNNING",
            "right.t SUCCESS(2)",
            "bottom.t RUNNING",
            "bottom.t SUCCESS(4)",
        ])
    );
    assert_eq!(&events[..2], ["top.t RUNNING", "top.t SUCCESS(1)"]);
    assert_eq!(&events[6..], ["bottom.t RUNNING", "bottom.t SUCCESS(4)"]);
    before(&events, "left.t RUNNING", "left.t SUCCESS(2)");
    before(&events, "right.t RUNNING", "right.t SUCCESS(2)");
    assert_eq!(engine.fetch::<u32>("sum"), Some(&4));
}

#[tokio::test]
async fn serial_graph_diamond_runs_ready_atoms_in_declaration_order() {
    let (mut engine, capture) = atoms_engine(diamond_flow(), Mode::Serial);
    engine.run().await.expect("runs");
    assert_eq!(
        capture.events(),
        [
            "top.t RUNNING",
            "top.t SUCCESS(1)",
            "right.t RUNNING",
            "right.t SUCCESS(2)",
            "left.t RUNNING",
            "left.t SUCCESS(2)",
            "bottom.t RUNNING",
            "bottom.t SUCCESS(4)"
        ]
    );
}

/// Each task waits at `barrier`, so the run only ends if they all run at once.
fn meeting(name: &'static str, barrier: Arc<tokio::sync::Barrier>) -> Atom {
    Atom::new(
        name,
        FnTask::asynchronous(Signature::new(), move |_, _| {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                Ok(Outputs::new())
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_engine_runs_unordered_siblings_at_once() {
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let flow = Flow::unordered("meet")
        .add(meeting("x", barrier.clone()))
        .add(meeting("y", barrier.clone()))
        .add(meeting("z", barrier))
        .build()
        .expect("valid flow");
    let (mut engine, capture) = atoms_engine(flow, Mode::Parallel(4));
    // A guard against a hang if the siblings were run one at a time.
    tokio::time::timeout(Duration::from_secs(30), engine.run())
        .await
        .expect("all three siblings ran at once")
        .expect("runs");
    let events = capture.events();
    assert_eq!(
        sorted(&events),
        sorted(&[
            "x.t RUNNING",
            "x.t SUCCESS(())",
            "y.t RUNNING",
            "y.t SUCCESS(())",
            "z.t RUNNING",
            "z.t SUCCESS(())",
        ])
    );
    // All three started before any finished.
    assert_eq!(
        sorted(&events[..3]),
        ["x.t RUNNING", "y.t RUNNING", "z.t RUNNING"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_engine_never_exceeds_its_concurrency() {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let current = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let mut flow = Flow::unordered("bounded");
    for name in ["p1", "p2", "p3", "p4"] {
        let (barrier, current, max) = (barrier.clone(), current.clone(), max.clone());
        flow.push(Atom::new(
            name,
            FnTask::asynchronous(Signature::new(), move |_, _| {
                let (barrier, current, max) = (barrier.clone(), current.clone(), max.clone());
                async move {
                    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    barrier.wait().await;
                    current.fetch_sub(1, Ordering::SeqCst);
                    Ok(Outputs::new())
                }
            }),
        ));
    }
    let (mut engine, _capture) = atoms_engine(flow.build().expect("valid"), Mode::Parallel(2));
    tokio::time::timeout(Duration::from_secs(30), engine.run())
        .await
        .expect("pairs of tasks met")
        .expect("runs");
    assert_eq!(max.load(Ordering::SeqCst), 2);
}

fn join_flow() -> CompiledFlow {
    Flow::linear("join")
        .add(Flow::unordered("u1").add(noop("x1")).add(noop("x2")))
        .add(
            Flow::unordered("u2")
                .add(noop("a"))
                .add(noop("b"))
                .add(failing("fail")),
        )
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn serial_revert_crosses_a_join_in_reverse_order() {
    let (mut engine, capture) = atoms_engine(join_flow(), Mode::Serial);
    engine.run().await.expect_err("fails");
    let events = capture.events();
    let running: Vec<&str> = events
        .iter()
        .filter(|e| e.ends_with("RUNNING"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        running,
        [
            "x1.t RUNNING",
            "x2.t RUNNING",
            "a.t RUNNING",
            "b.t RUNNING",
            "fail.t RUNNING"
        ]
    );
    let reverting: Vec<&str> = events
        .iter()
        .filter(|e| e.ends_with("REVERTING"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        reverting,
        [
            "fail.t REVERTING",
            "b.t REVERTING",
            "a.t REVERTING",
            "x2.t REVERTING",
            "x1.t REVERTING"
        ]
    );
    assert_eq!(engine.state(), FlowState::Reverted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_revert_crosses_a_join_after_every_successor() {
    let (mut engine, capture) = atoms_engine(join_flow(), Mode::Parallel(4));
    engine.run().await.expect_err("fails");
    let events = capture.events();
    let mut expected = vec![
        "fail.t RUNNING".to_string(),
        "fail.t FAILURE(Failure: Woot!)".to_string(),
        "fail.t REVERTING".to_string(),
        "fail.t REVERTED(())".to_string(),
    ];
    for x in ["x1", "x2", "a", "b"] {
        expected.extend(ran_and_reverted(x, "()"));
    }
    assert_eq!(sorted(&events), sorted(&expected));
    for early in ["x1", "x2"] {
        for late in ["a", "b"] {
            before(
                &events,
                &format!("{early}.t SUCCESS(())"),
                &format!("{late}.t RUNNING"),
            );
            before(
                &events,
                &format!("{late}.t REVERTED(())"),
                &format!("{early}.t REVERTING"),
            );
        }
        before(&events, &format!("{early}.t SUCCESS(())"), "fail.t RUNNING");
        before(
            &events,
            "fail.t REVERTED(())",
            &format!("{early}.t REVERTING"),
        );
    }
}

#[tokio::test]
async fn revert_receives_the_execute_inputs_then_the_revert_only_inputs() {
    for mode in MODES {
        let seen: Arc<Mutex<Vec<(u32, String)>>> = Arc::default();
        let record = seen.clone();
        let t = FnTask::sync(
            Signature::new()
                .requires::<u32>("n")
                .revert_requires::<String>("reason"),
            |_| Ok(Outputs::new()),
        )
        .on_revert_sync(move |input| {
            let n = *input.args.get::<u32>(0)?;
            let reason = input.args.get::<String>(1)?.clone();
            record.lock().unwrap().push((n, reason));
            Ok(None)
        });
        let flow = Flow::linear("rr")
            .input::<String>("reason")
            .add(provider("p", "n", 4))
            .add(Atom::new("t", t))
            .add(failing("fail"))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("reason", "rollback".to_string())
            .build();
        engine.run().await.expect_err("fails");
        assert_eq!(*seen.lock().unwrap(), [(4, "rollback".to_string())]);
    }
}

// ---------------------------------------------------------------------------
// Re-running
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rerunning_a_successful_flow_does_nothing() {
    for mode in MODES {
        let flow = Flow::linear("task1")
            .add(progressing("task1"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect("runs");
        let first = capture.events();
        engine.run().await.expect("runs again");
        assert_eq!(capture.events(), first, "{mode:?}: no new event");
        assert_eq!(engine.attempts("task1"), Some(1));
        assert_eq!(engine.state(), FlowState::Success);
        assert_eq!(engine.fetch::<u32>("task1"), Some(&5));
    }
}

/// Provides `a = 1`; its revert fails with `revert boom` the first time only.
fn revert_fails_once(name: &'static str) -> Atom {
    let calls = Arc::new(AtomicUsize::new(0));
    Atom::new(
        name,
        FnTask::sync(Signature::new().provides::<u32>(name), |_| {
            Ok(Outputs::one(1u32))
        })
        .on_revert_sync(move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(TaskError::msg("revert boom"))
            } else {
                Ok(None)
            }
        }),
    )
}

/// Fails with `Woot!` the first time only.
fn fails_once(name: &'static str) -> Atom {
    let calls = Arc::new(AtomicUsize::new(0));
    Atom::new(
        name,
        FnTask::sync(Signature::new(), move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(TaskError::msg("Woot!"))
            } else {
                Ok(Outputs::new())
            }
        }),
    )
}

#[tokio::test]
async fn revert_failure_ends_in_failure_and_needs_reset() {
    for mode in MODES {
        let flow = Flow::linear("f")
            .add(revert_fails_once("a"))
            .add(fails_once("b"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        let err = engine.run().await.expect_err("fails");
        assert_eq!(
            err.to_string(),
            "flow `f` failed and could not be fully reverted: task `a` failed: revert boom; \
             after: task `b` failed: Woot!"
        );
        match &err {
            RunError::RevertFailed {
                flow,
                revert_failures,
                failures,
            } => {
                assert_eq!(flow, "f");
                assert_eq!(revert_failures.len(), 1);
                assert_eq!(revert_failures[0].atom, "a");
                assert_eq!(revert_failures[0].failure.message(), "revert boom");
                assert_eq!(failures.len(), 1);
                assert_eq!(failures[0].atom, "b");
                assert_eq!(failures[0].failure.message(), "Woot!");
            }
            other => panic!("expected RevertFailed, got {other:?}"),
        }
        assert_eq!(engine.state(), FlowState::Failure);
        assert_eq!(engine.atom_state("a"), Some(AtomState::RevertFailure));
        assert_eq!(
            capture.events(),
            [
                "f.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(1)",
                "b.t RUNNING",
                "b.t FAILURE(Failure: Woot!)",
                "b.t REVERTING",
                "b.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERT_FAILURE(Failure: revert boom)",
                "f.f FAILURE"
            ],
            "{mode:?}"
        );

        capture.clear();
        let err = engine.run().await.expect_err("needs a reset");
        assert!(matches!(&err, RunError::NeedsReset { flow } if flow == "f"));
        assert_eq!(
            err.to_string(),
            "flow `f` ended in failure earlier: call `reset()` before running it again"
        );
        assert_eq!(capture.events(), Vec::<String>::new());
        assert_eq!(engine.state(), FlowState::Failure);

        engine.reset();
        assert_eq!(engine.state(), FlowState::Pending);
        assert_eq!(engine.atom_state("a"), Some(AtomState::Pending));
        assert_eq!(engine.atom_state("b"), Some(AtomState::Pending));
        engine.run().await.expect("runs after reset");
        assert_eq!(engine.state(), FlowState::Success);
        assert_eq!(
            capture.events(),
            [
                "a.t PENDING",
                "b.t PENDING",
                "f.f PENDING",
                "f.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(1)",
                "b.t RUNNING",
                "b.t SUCCESS(())",
                "f.f SUCCESS"
            ],
            "{mode:?}"
        );
    }
}

/// A revert is handed the atom's outputs. In memory they move to it: once an
/// atom is reverting it shows no outputs, even when its revert fails. A
/// journaled run keeps them (the journal must hold them until the revert is
/// done).
#[tokio::test]
async fn outputs_move_to_the_revert_unless_journaled() {
    for journaled in [false, true] {
        for mode in MODES {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let record = seen.clone();
            let a = Atom::new(
                "a",
                FnTask::sync(Signature::new().provides::<u32>("x"), |_| {
                    Ok(Outputs::one(7u32))
                })
                .on_revert_sync(move |input| {
                    if let Outcome::Success(out) = &input.outcome {
                        let x = out.values()[0].downcast_ref::<u32>().copied();
                        record.lock().unwrap().push(x);
                    }
                    Err(TaskError::msg("revert boom"))
                }),
            );
            let flow = Flow::linear("keep")
                .add(a)
                .add(failing("b"))
                .build()
                .expect("valid flow");
            let mut builder = Engine::builder(flow).mode(mode);
            if journaled {
                builder = builder.storage(Arc::new(flow::MemoryBackend::new()));
            }
            let mut engine = builder.build();
            let err = engine.run().await.expect_err("fails");
            assert!(matches!(err, RunError::RevertFailed { .. }), "{err:?}");
            assert_eq!(*seen.lock().unwrap(), [Some(7)], "{mode:?}");
            assert_eq!(engine.atom_state("a"), Some(AtomState::RevertFailure));
            let kept = engine.outputs("a").map(|o| o.values().len());
            let fetched = engine.fetch::<u32>("x").copied();
            if journaled {
                assert_eq!((kept, fetched), (Some(1), Some(7)), "{mode:?}");
            } else {
                assert_eq!((kept, fetched), (None, None), "{mode:?}");
            }
        }
    }
}

#[tokio::test]
async fn revert_failure_schedules_no_further_revert() {
    for mode in MODES {
        let flow = Flow::linear("halt")
            .add(progressing("first"))
            .add(revert_fails_once("second"))
            .add(failing("third"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = atoms_engine(flow, mode);
        let err = engine.run().await.expect_err("fails");
        assert!(matches!(err, RunError::RevertFailed { .. }));
        assert_eq!(
            capture.events(),
            [
                "first.t RUNNING",
                "first.t SUCCESS(5)",
                "second.t RUNNING",
                "second.t SUCCESS(1)",
                "third.t RUNNING",
                "third.t FAILURE(Failure: Woot!)",
                "third.t REVERTING",
                "third.t REVERTED(())",
                "second.t REVERTING",
                "second.t REVERT_FAILURE(Failure: revert boom)"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.atom_state("first"), Some(AtomState::Success));
        assert_eq!(engine.state(), FlowState::Failure);
    }
}

// ---------------------------------------------------------------------------
// Data flow: optional, collections, rebind, inject, provides_as
// ---------------------------------------------------------------------------

fn optional_reader() -> Atom {
    Atom::new(
        "reader",
        FnTask::sync(
            Signature::new()
                .optional::<u32>("x")
                .provides::<Option<u32>>("seen"),
            |a| Ok(Outputs::one(a.optional::<u32>(0)?.copied())),
        ),
    )
}

#[tokio::test]
async fn optional_input_is_passed_when_provided() {
    for mode in MODES {
        let flow = Flow::linear("opt")
            .add(provider("px", "x", 3))
            .add(optional_reader())
            .build()
            .expect("valid flow");
        let (mut engine, capture) = atoms_engine(flow.clone(), mode);
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<Option<u32>>("seen"), Some(&Some(3)));
        assert_eq!(
            capture.events(),
            [
                "px.t RUNNING",
                "px.t SUCCESS(3)",
                "reader.t RUNNING",
                "reader.t SUCCESS(Some(3))"
            ]
        );
        assert_eq!(flow.predecessors("reader").unwrap(), ["px"]);
    }
}

#[tokio::test]
async fn optional_input_is_absent_without_a_provider() {
    for mode in MODES {
        let flow = Flow::linear("opt")
            .add(optional_reader())
            .build()
            .expect("an optional input needs no provider");
        let (mut engine, capture) = atoms_engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<Option<u32>>("seen"), Some(&None));
        assert_eq!(
            capture.events(),
            ["reader.t RUNNING", "reader.t SUCCESS(None)"]
        );
    }
}

#[tokio::test]
async fn optional_input_reads_the_store() {
    for mode in MODES {
        let flow = Flow::linear("opt")
            .input::<u32>("x")
            .add(optional_reader())
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).input("x", 9u32).build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<Option<u32>>("seen"), Some(&Some(9)));
    }
}

#[tokio::test]
async fn collect_gathers_symbols_in_the_listed_order() {
    for mode in MODES {
        let gather = FnTask::sync(
            Signature::new()
                .collect::<u32>("sizes", ["c", "a", "s", "b"])
                .provides::<Vec<u32>>("list"),
            |a| {
                Ok(Outputs::one(
                    a.list::<u32>(0)?.into_iter().copied().collect::<Vec<_>>(),
                ))
            },
        );
        let flow = Flow::linear("collect")
            .input::<u32>("s")
            .add(provider("pa", "a", 1))
            .add(provider("pb", "b", 2))
            .add(provider("pc", "c", 3))
            .add(Atom::new("gather", gather))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).input("s", 7u32).build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<Vec<u32>>("list"), Some(&vec![3, 1, 7, 2]));
    }
}

#[tokio::test]
async fn collect_map_gathers_symbols_by_name() {
    for mode in MODES {
        let gather = FnTask::sync(
            Signature::new()
                .collect_map::<u32>("sizes", ["c", "a", "b"])
                .provides::<BTreeMap<String, u32>>("map"),
            |a| {
                Ok(Outputs::one(
                    a.map::<u32>(0)?
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect::<BTreeMap<_, _>>(),
                ))
            },
        );
        let flow = Flow::linear("collect")
            .add(provider("pa", "a", 1))
            .add(provider("pb", "b", 2))
            .add(provider("pc", "c", 3))
            .add(Atom::new("gather", gather))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).build();
        engine.run().await.expect("runs");
        assert_eq!(
            engine.fetch::<BTreeMap<String, u32>>("map"),
            Some(&BTreeMap::from([
                ("a".to_string(), 1),
                ("b".to_string(), 2),
                ("c".to_string(), 3)
            ]))
        );
    }
}

#[tokio::test]
async fn collect_in_a_graph_links_every_provider() {
    for mode in MODES {
        let gather = common::gatherer(["b", "a"]);
        let flow = Flow::graph("g")
            .add(Atom::new("gather", gather))
            .add(provider("pa", "a", 1))
            .add(provider("pb", "b", 2))
            .build()
            .expect("valid flow");
        assert_eq!(flow.predecessors("gather").unwrap(), ["pa", "pb"]);
        let (mut engine, capture) = atoms_engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<Vec<u32>>("list"), Some(&vec![2, 1]));
        let events = capture.events();
        before(&events, "pa.t SUCCESS(1)", "gather.t RUNNING");
        before(&events, "pb.t SUCCESS(2)", "gather.t RUNNING");
    }
}

fn adder() -> FnTask {
    FnTask::sync(
        Signature::new()
            .requires::<u32>("x")
            .requires::<u32>("step")
            .provides::<u32>("y"),
        |a| Ok(Outputs::one(a.get::<u32>(0)? + a.get::<u32>(1)?)),
    )
}

#[tokio::test]
async fn rebind_inject_and_provides_as_at_the_use_site() {
    for mode in MODES {
        let flow = Flow::linear("use-site")
            .add(provider("start", "start", 5))
            .add(provider("x", "x", 1000))
            .add(provider("step", "step", 99))
            .add(
                Atom::new("add", adder())
                    .rebind("x", "start")
                    .inject("step", 10u32)
                    .provides_as("y", "end"),
            )
            .build()
            .expect("valid flow");
        assert_eq!(flow.predecessors("add").unwrap(), ["step"]);
        let (mut engine, capture) = atoms_engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("end"), Some(&15), "{mode:?}");
        assert_eq!(engine.fetch::<u32>("y"), None);
        assert_eq!(
            engine.fetch_all().debug_map(),
            BTreeMap::from([
                ("end".to_string(), "15".to_string()),
                ("start".to_string(), "5".to_string()),
                ("step".to_string(), "99".to_string()),
                ("x".to_string(), "1000".to_string()),
            ])
        );
        assert_eq!(
            capture.events()[6..],
            ["add.t RUNNING", "add.t SUCCESS(15)"]
        );
    }
}

#[tokio::test]
async fn injected_value_wins_over_the_store_and_renamed_output_feeds_later_atoms() {
    for mode in MODES {
        let double = FnTask::sync(
            Signature::new()
                .requires::<u32>("end")
                .provides::<u32>("doubled"),
            |a| Ok(Outputs::one(a.get::<u32>(0)? * 2)),
        );
        let flow = Flow::linear("inject")
            .input::<u32>("x")
            .input::<u32>("step")
            .add(
                Atom::new("add", adder())
                    .inject("step", 1u32)
                    .provides_as("y", "end"),
            )
            .add(Atom::new("double", double))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("x", 20u32)
            .input("step", 500u32)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("end"), Some(&21));
        assert_eq!(engine.fetch::<u32>("doubled"), Some(&42));
    }
}

#[tokio::test]
async fn rebind_applies_to_collected_names() {
    for mode in MODES {
        let gather = common::gatherer(["p", "q"]);
        let flow = Flow::linear("rebind")
            .add(provider("pp", "p", 1))
            .add(provider("pq", "q", 2))
            .add(provider("pr", "r", 3))
            .add(Atom::new("gather", gather).rebind("p", "r"))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<Vec<u32>>("list"), Some(&vec![3, 2]));
    }
}

#[tokio::test]
async fn store_is_the_outermost_scope() {
    for mode in MODES {
        let inc = || {
            FnTask::sync(
                Signature::new()
                    .requires::<u32>("value")
                    .provides::<u32>("value"),
                |a| Ok(Outputs::one(a.get::<u32>(0)? + 1)),
            )
        };
        let flow = Flow::linear("chain")
            .input::<u32>("value")
            .add(Atom::new("a", inc()))
            .add(Atom::new("b", inc()))
            .add(Atom::new("c", inc()))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("value", 0u32)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "a.t RUNNING",
                "a.t SUCCESS(1)",
                "b.t RUNNING",
                "b.t SUCCESS(2)",
                "c.t RUNNING",
                "c.t SUCCESS(3)"
            ]
        );
        assert_eq!(engine.fetch::<u32>("value"), Some(&3));
        assert_eq!(engine.store().get::<u32>("value"), Some(&0));
    }
}

/// Reads `x: u32` and publishes it as `seen_by_<name>`.
fn reader(name: &'static str, seen: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(
            Signature::new().requires::<u32>("x").provides::<u32>(seen),
            |a| Ok(Outputs::one(*a.get::<u32>(0)?)),
        ),
    )
}

#[tokio::test]
async fn nearest_visible_provider_wins() {
    for mode in MODES {
        let flow = Flow::linear("scopes")
            .input::<u32>("x")
            .add(provider("outer1", "x", 1))
            .add(provider("outer2", "x", 2))
            .add(reader("r_latest", "seen_latest"))
            .add(
                Flow::linear("inner")
                    .add(provider("inner_p", "x", 3))
                    .add(reader("r_inner", "seen_inner")),
            )
            .add(reader("r_expanded", "seen_expanded"))
            .add(
                Flow::unordered("u")
                    .add(provider("sibling", "x", 4))
                    .add(reader("r_sibling", "seen_sibling")),
            )
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).input("x", 100u32).build();
        engine.run().await.expect("runs");
        // Latest earlier sibling.
        assert_eq!(engine.fetch::<u32>("seen_latest"), Some(&2));
        // Own flow before the parent's.
        assert_eq!(engine.fetch::<u32>("seen_inner"), Some(&3));
        // A nested sibling flow is expanded.
        assert_eq!(engine.fetch::<u32>("seen_expanded"), Some(&3));
        // An unordered sibling is invisible: the nearest is the earlier flow.
        assert_eq!(engine.fetch::<u32>("seen_sibling"), Some(&3));
    }
}

#[tokio::test]
async fn unordered_sibling_is_invisible_and_the_store_is_used() {
    for mode in MODES {
        let flow = Flow::unordered("u")
            .input::<u32>("x")
            .add(provider("sibling", "x", 4))
            .add(reader("r", "seen"))
            .build()
            .expect("the store provides `x`");
        let mut engine = Engine::builder(flow).mode(mode).input("x", 100u32).build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("seen"), Some(&100));
    }
}

#[tokio::test]
async fn graph_links_a_nested_flow_to_its_provider() {
    for mode in MODES {
        let flow = Flow::graph("g")
            .add(
                Flow::linear("sub")
                    .add(reader("r", "seen"))
                    .add(noop("after_r")),
            )
            .add(provider("p", "x", 8))
            .build()
            .expect("valid flow");
        assert_eq!(flow.predecessors("r").unwrap(), ["p"]);
        let (mut engine, capture) = atoms_engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "p.t RUNNING",
                "p.t SUCCESS(8)",
                "r.t RUNNING",
                "r.t SUCCESS(8)",
                "after_r.t RUNNING",
                "after_r.t SUCCESS(())"
            ],
            "{mode:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Priorities (serial engine)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn serial_priority_then_declaration_order_among_ready_siblings() {
    let flow = Flow::linear("prio")
        .add(noop("first"))
        .add(
            Flow::unordered("u")
                .add(noop("a"))
                .add(noop("b").priority(5))
                .add(noop("c"))
                .add(noop("d").priority(5))
                .add(noop("e").priority(-1))
                .add(noop("f").priority(7)),
        )
        .build()
        .expect("valid flow");
    let (mut engine, capture) = atoms_engine(flow, Mode::Serial);
    engine.run().await.expect("runs");
    let running: Vec<String> = capture
        .events()
        .into_iter()
        .filter(|e| e.ends_with("RUNNING"))
        .collect();
    assert_eq!(
        running,
        [
            "first.t RUNNING",
            "f.t RUNNING",
            "b.t RUNNING",
            "d.t RUNNING",
            "a.t RUNNING",
            "c.t RUNNING",
            "e.t RUNNING"
        ]
    );
}

#[tokio::test]
async fn serial_priority_holds_across_a_join_of_two_groups() {
    let flow = Flow::linear("prio")
        .add(
            Flow::unordered("u1")
                .add(noop("x1"))
                .add(noop("x2").priority(1)),
        )
        .add(
            Flow::unordered("u2")
                .add(noop("a"))
                .add(noop("b"))
                .add(noop("c").priority(3)),
        )
        .build()
        .expect("valid flow");
    assert_eq!(flow.predecessors("a").unwrap(), ["x1", "x2"]);
    let (mut engine, capture) = atoms_engine(flow, Mode::Serial);
    engine.run().await.expect("runs");
    let running: Vec<String> = capture
        .events()
        .into_iter()
        .filter(|e| e.ends_with("RUNNING"))
        .collect();
    assert_eq!(
        running,
        [
            "x2.t RUNNING",
            "x1.t RUNNING",
            "c.t RUNNING",
            "a.t RUNNING",
            "b.t RUNNING"
        ]
    );
}

// ---------------------------------------------------------------------------
// Outputs after revert
// ---------------------------------------------------------------------------

#[tokio::test]
async fn outputs_are_invisible_after_revert() {
    for mode in MODES {
        let flow = Flow::linear("hide")
            .input::<u32>("n")
            .add(provider("p", "p", 1))
            .add(provider("shadow", "n", 2))
            .add(failing("fail"))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).input("n", 40u32).build();
        engine.run().await.expect_err("fails");
        assert!(engine.outputs("p").is_none());
        assert!(engine.outputs("shadow").is_none());
        assert_eq!(engine.fetch::<u32>("p"), None);
        assert_eq!(engine.fetch::<u32>("n"), Some(&40));
        assert_eq!(
            engine.fetch_all().debug_map(),
            BTreeMap::from([("n".to_string(), "40".to_string())])
        );
        assert_eq!(engine.atom_state("p"), Some(AtomState::Reverted));
        assert_eq!(engine.failure("fail").map(|f| f.message()), Some("Woot!"));
    }
}

// ---------------------------------------------------------------------------
// Run-time input checks
// ---------------------------------------------------------------------------

fn needs_x() -> CompiledFlow {
    Flow::linear("f")
        .input::<u32>("x")
        .add(Atom::new(
            "t",
            FnTask::sync(
                Signature::new().requires::<u32>("x"),
                |_| Ok(Outputs::new()),
            ),
        ))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn missing_declared_input_is_reported_before_running() {
    for mode in MODES {
        let (mut engine, capture) = engine(needs_x(), mode);
        let err = engine.run().await.expect_err("input missing");
        assert!(matches!(
            &err,
            RunError::MissingInput { flow, symbol, type_name }
                if flow == "f" && symbol == "x" && type_name == "u32"
        ));
        assert_eq!(
            err.to_string(),
            "flow `f` declares the input `x: u32`, but the store has no `x`"
        );
        assert_eq!(capture.events(), Vec::<String>::new());
        assert_eq!(engine.state(), FlowState::Pending);
        assert_eq!(engine.attempts("t"), Some(0));
    }
}

#[tokio::test]
async fn declared_input_of_another_type_is_reported_before_running() {
    for mode in MODES {
        let capture = CaptureListener::new();
        let mut engine = Engine::builder(needs_x())
            .mode(mode)
            .input("x", "three".to_string())
            .listener(capture.clone())
            .build();
        let err = engine.run().await.expect_err("wrong type");
        assert!(matches!(
            &err,
            RunError::InputType { flow, symbol, expected, actual }
                if flow == "f" && symbol == "x" && expected == "u32" && actual == "String"
        ));
        assert_eq!(
            err.to_string(),
            "flow `f` declares the input `x: u32`, but the store holds a `String`"
        );
        assert_eq!(capture.events(), Vec::<String>::new());
        assert_eq!(engine.state(), FlowState::Pending);
    }
}

/// An item of a graph that holds no atom (an empty sub-flow) still passes the
/// order on: `x -> empty` inside a graph keeps `x` among the graph's exits, so a
/// consumer of `x` outside waits for it, even when it has the higher priority.
#[tokio::test]
async fn an_empty_sub_flow_in_a_graph_keeps_the_order_through_it() {
    for mode in MODES {
        let consumer = Atom::new(
            "consumer",
            FnTask::sync(
                Signature::new().requires::<u32>("x").provides::<u32>("y"),
                |a| Ok(Outputs::one(a.get::<u32>(0)? + 1)),
            ),
        )
        .priority(10);
        let flow = Flow::graph("outer")
            .add(
                Flow::graph("inner")
                    .add(progressing("x"))
                    .add(Flow::linear("empty"))
                    .link("x", "empty"),
            )
            .add(consumer)
            .build()
            .expect("valid flow");
        assert_eq!(flow.predecessors("consumer").unwrap(), ["x"]);
        let (mut engine, _) = engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("y"), Some(&6), "{mode:?}");
    }
}
