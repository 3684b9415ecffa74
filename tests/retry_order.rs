//! An atom starts only when everything it waits for is done, whatever its
//! ready queue holds: after a retry resets its sub-flow, an entry queued in
//! the attempt before does not start an atom early, on either engine, with
//! or without priorities.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flow::{
    Atom, AtomState, CaptureListener, CompiledFlow, Engine, Event, Flow, FnTask, Listener, Mode,
    Outputs, Retry, RunError, Signature, TaskError,
};
use proptest::prelude::*;

/// Records, at each atom's start, any predecessor not done by then.
struct StartsAfterPredecessors {
    preds: HashMap<String, Vec<String>>,
    last: Mutex<HashMap<String, AtomState>>,
    early: Mutex<Vec<String>>,
}

impl StartsAfterPredecessors {
    fn new(flow: &CompiledFlow) -> Arc<Self> {
        let preds = flow
            .atom_names()
            .map(|a| {
                let p = flow.predecessors(a).unwrap_or_default();
                (a.to_string(), p.into_iter().map(str::to_string).collect())
            })
            .collect();
        Arc::new(StartsAfterPredecessors {
            preds,
            last: Mutex::default(),
            early: Mutex::default(),
        })
    }

    fn early(&self) -> Vec<String> {
        self.early.lock().unwrap().clone()
    }
}

impl Listener for StartsAfterPredecessors {
    fn on_event(&self, event: &Event<'_>) {
        let Event::Atom { atom, state, .. } = event else {
            return;
        };
        let mut last = self.last.lock().unwrap();
        if *state == AtomState::Running {
            for p in self.preds.get(*atom).into_iter().flatten() {
                let done = matches!(last.get(p), Some(AtomState::Success | AtomState::Ignore));
                if !done {
                    self.early
                        .lock()
                        .unwrap()
                        .push(format!("{atom} started while {p} was {:?}", last.get(p)));
                }
            }
        }
        last.insert(atom.to_string(), *state);
    }

    fn wants_progress(&self) -> bool {
        false
    }
}

/// The case of the issue: a graph under `Retry::times(2)` with `t2 -> s2`,
/// `t3` requiring `s2`, and `t4` failing; `t2` takes a moment.
fn the_case(t4_runs: &Arc<AtomicUsize>, priorities: bool) -> CompiledFlow {
    let t2 = FnTask::asynchronous(Signature::new().provides::<u32>("s2"), |_, _| async {
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        Ok(Outputs::one(2u32))
    });
    let t3 = FnTask::sync(Signature::new().requires::<u32>("s2"), |a| {
        a.get::<u32>(0)?;
        Ok(Outputs::new())
    });
    let runs = t4_runs.clone();
    let t4 = FnTask::asynchronous(Signature::new(), move |_, _| {
        let runs = runs.clone();
        async move {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            runs.fetch_add(1, Ordering::SeqCst);
            Err(TaskError::msg("Woot!"))
        }
    });
    // With priorities: `t2` first, then `t4` before `t3`, so that `t4` fails
    // while `t3` sits ready in the queue, above the controller.
    let (p2, p3, p4) = if priorities { (10, 1, 5) } else { (0, 0, 0) };
    Flow::graph("g")
        .retry(Retry::times(2).named("r1"))
        .add(Atom::new("t2", t2).priority(p2))
        .add(Atom::new("t3", t3).priority(p3))
        .add(Atom::new("t4", t4).priority(p4))
        .build()
        .unwrap()
}

async fn run_the_case(mode: Mode, priorities: bool) -> (Vec<String>, Vec<String>) {
    let t4_runs = Arc::new(AtomicUsize::new(0));
    let flow = the_case(&t4_runs, priorities);
    let order = StartsAfterPredecessors::new(&flow);
    let capture = CaptureListener::atoms_only();
    let mut engine = Engine::builder(flow)
        .mode(mode)
        .listener_arc(order.clone())
        .listener(capture.clone())
        .build();
    let err = engine.run().await.expect_err("t4 always fails");
    assert!(matches!(err, RunError::Reverted { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "flow `g` was reverted: task `t4` failed: Woot!"
    );
    assert_eq!(t4_runs.load(Ordering::SeqCst), 2, "t4 ran once per attempt");
    (order.early(), capture.events())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parallel_engine_passes_the_case_a_thousand_times_in_a_row() {
    for round in 0..1000 {
        let (early, events) = run_the_case(Mode::Parallel(4), round % 2 == 1).await;
        assert_eq!(early, Vec::<String>::new(), "round {round}: {events:#?}");
    }
}

#[tokio::test]
async fn the_serial_engine_keeps_the_order_when_priorities_reorder_the_queue() {
    let (early, events) = run_the_case(Mode::Serial, true).await;
    assert_eq!(early, Vec::<String>::new());
    // In each attempt `t3` is ready when `t4` fails; the entry it leaves in
    // the queue never starts it in the attempt after.
    let attempt = [
        "r1.r RUNNING",
        "r1.r SUCCESS(())",
        "t2.t RUNNING",
        "t2.t SUCCESS(2)",
        "t4.t RUNNING",
        "t4.t FAILURE(Failure: Woot!)",
        "t4.t REVERTING",
        "t4.t REVERTED(())",
        "t2.t REVERTING",
        "t2.t REVERTED(())",
    ];
    let mut expected: Vec<&str> = attempt.to_vec();
    expected.extend(["r1.r RETRYING", "t2.t PENDING", "t4.t PENDING"]);
    expected.extend(attempt);
    expected.extend(["r1.r REVERTING", "r1.r REVERTED(())"]);
    assert_eq!(events, expected);
}

/// A random graph: task `i` reads the outputs of the earlier tasks in
/// `reads[i]`, has priority `priority[i]`, and fails on the first attempt
/// of its controller when `i == flaky`, or on every attempt when `always`.
#[derive(Clone, Debug)]
struct Case {
    reads: Vec<Vec<usize>>,
    priority: Vec<i32>,
    flaky: usize,
    always: bool,
    attempts: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (3usize..9).prop_flat_map(|n| {
        let reads = (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), 0..=i.min(3)))
            .collect::<Vec<_>>();
        (
            reads,
            proptest::collection::vec(-2i32..3, n),
            0..n,
            any::<bool>(),
            1usize..4,
        )
            .prop_map(|(reads, priority, flaky, always, attempts)| Case {
                reads: reads
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut r)| {
                        r.retain(|&j| j < i);
                        r.sort_unstable();
                        r.dedup();
                        r
                    })
                    .collect(),
                priority,
                flaky,
                always,
                attempts,
            })
    })
}

fn build(case: &Case) -> CompiledFlow {
    let attempt = Arc::new(AtomicUsize::new(0));
    let mut flow = Flow::graph("random").retry(Retry::times(case.attempts).named("r"));
    for (i, reads) in case.reads.iter().enumerate() {
        let sig = reads
            .iter()
            .fold(Signature::new(), |s, j| s.requires::<u64>(format!("v{j}")))
            .provides::<u64>(format!("v{i}"));
        let (fails, always, attempt) = (i == case.flaky, case.always, attempt.clone());
        let task = FnTask::asynchronous(sig, move |_, _| {
            let attempt = attempt.clone();
            async move {
                tokio::task::yield_now().await;
                if fails && (always || attempt.fetch_add(1, Ordering::SeqCst) == 0) {
                    return Err(TaskError::msg("flaky"));
                }
                Ok(Outputs::one(i as u64))
            }
        });
        flow.push(Atom::new(format!("t{i}"), task).priority(case.priority[i]));
    }
    flow.build().expect("the graph is valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_task_starts_before_its_predecessors_under_retries(case in case()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for mode in [Mode::Serial, Mode::Parallel(3)] {
            let flow = build(&case);
            let order = StartsAfterPredecessors::new(&flow);
            let mut engine = Engine::builder(flow).mode(mode).listener_arc(order.clone()).build();
            let outcome = rt.block_on(engine.run());
            prop_assert_eq!(order.early(), Vec::<String>::new(), "{:?}", mode);
            let recovers = !case.always && case.attempts > 1;
            prop_assert_eq!(outcome.is_ok(), recovers, "{:?}: {:?}", mode, outcome);
        }
    }
}
