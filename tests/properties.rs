//! Property-based tests of the engines (specification, sections 2, 4 and 5).
//!
//! Random trees of linear, unordered and graph flows (up to 200 atoms) are run
//! on the serial and the parallel engine, with at most one failing task. Inside
//! graphs, atoms require the outputs of earlier items (inferred links) and some
//! explicit links go forward in declaration order, so there is never a cycle.
//! Every task logs its `execute` and `revert` calls to a shared log, from which
//! the properties are checked:
//!
//! - no atom executes before all its predecessors executed (and succeeded);
//! - without a failure, every atom executes exactly once and the flow ends
//!   `Success`;
//! - with a failure, every atom that executed is reverted exactly once, after
//!   all of its executed successors; atoms that never ran are never reverted;
//!   the run returns `RunError::Reverted` holding exactly the failing task, and
//!   the flow ends `Reverted`;
//! - every input carries the value its provider returned, and every revert sees
//!   its own outcome and the run's failures;
//! - the serial engine gives the same event sequence on two runs of one flow;
//! - with nobody listening (the engines' paths for plain tasks), the serial
//!   engine makes the same calls, in the same order, as with a listener, and
//!   so does the parallel engine with one atom in flight.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use flow::{
    Atom, CompiledFlow, Engine, Exec, Flow, FlowState, FnTask, Item, Mode, Outcome, Outputs,
    RunError, Signature, TaskError,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// At most this many atoms per flow; atoms beyond it are left out.
const MAX_ATOMS: usize = 200;

/// The pattern of a generated flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Linear,
    Unordered,
    Graph,
}

/// A generated flow tree, before names are given.
#[derive(Clone, Debug)]
enum Shape {
    /// An atom; inside a graph, each index picks a symbol of an earlier item to
    /// require (ignored elsewhere).
    Atom { reqs: Vec<Index> },
    /// A flow; inside a graph, each pair of indices picks two items to link, the
    /// earlier one first.
    Flow {
        kind: Kind,
        items: Vec<Shape>,
        links: Vec<(Index, Index)>,
    },
}

/// One call logged by a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Execute(usize),
    Revert(usize),
}

type Shared<T> = Arc<Mutex<Vec<T>>>;

fn push<T>(shared: &Shared<T>, value: T) {
    shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(value);
}

fn take<T: Clone>(shared: &Shared<T>) -> Vec<T> {
    shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Linear), Just(Kind::Unordered), Just(Kind::Graph)]
}

fn flow_of(inner: impl Strategy<Value = Shape>) -> impl Strategy<Value = Shape> {
    (
        kind(),
        prop::collection::vec(inner, 0..10),
        prop::collection::vec((any::<Index>(), any::<Index>()), 0..6),
    )
        .prop_map(|(kind, items, links)| Shape::Flow { kind, items, links })
}

/// A random flow tree whose root is a flow.
fn shape() -> impl Strategy<Value = Shape> {
    let atom = prop::collection::vec(any::<Index>(), 0..3).prop_map(|reqs| Shape::Atom { reqs });
    let tree = atom.prop_recursive(4, 240, 10, |inner| flow_of(inner).boxed());
    flow_of(tree)
}

fn count_atoms(shape: &Shape) -> usize {
    match shape {
        Shape::Atom { .. } => 1,
        Shape::Flow { items, .. } => items.iter().map(count_atoms).sum(),
    }
}

/// A built flow with the logs its tasks write.
struct Built {
    flow: CompiledFlow,
    atoms: usize,
    failing: Option<usize>,
    /// How many data inputs the atoms require, and explicit links were made.
    inputs: usize,
    links: usize,
    log: Shared<Call>,
    /// Anything a task saw that it should not have, described.
    wrong: Shared<String>,
}

/// Names atoms `a0, a1, ...` (symbol `s<i>`, value `i`) and flows `f0, f1, ...`
/// in declaration order.
struct Builder {
    next_atom: usize,
    next_flow: usize,
    failing: Option<usize>,
    inputs: usize,
    links: usize,
    log: Shared<Call>,
    wrong: Shared<String>,
}

impl Builder {
    fn atom(&mut self, reqs: Vec<usize>) -> Atom {
        let i = self.next_atom;
        self.next_atom += 1;
        self.inputs += reqs.len();
        let mut sig = Signature::new();
        for r in &reqs {
            sig = sig.requires::<u64>(format!("s{r}"));
        }
        let sig = sig.provides::<u64>(format!("s{i}"));
        let fails = self.failing == Some(i);
        let failing = self.failing;
        let (log, wrong) = (self.log.clone(), self.wrong.clone());
        let (rlog, rwrong) = (self.log.clone(), self.wrong.clone());
        let task = FnTask::sync(sig, move |args| {
            push(&log, Call::Execute(i));
            for (k, &r) in reqs.iter().enumerate() {
                let got = args.get::<u64>(k).ok().copied();
                if got != Some(r as u64) {
                    push(&wrong, format!("a{i} read s{r} = {got:?}, expected {r}"));
                }
            }
            if fails {
                Err(TaskError::msg(format!("a{i} failed")))
            } else {
                Ok(Outputs::one(i as u64))
            }
        })
        .on_revert(move |input, ctx| {
            push(&rlog, Call::Revert(i));
            let outcome_ok = match &input.outcome {
                Outcome::Failure(f) => fails && f.message() == format!("a{i} failed"),
                Outcome::Success(out) => {
                    !fails && format!("{out:?}") == i.to_string() && out.len() == 1
                }
            };
            if !outcome_ok {
                push(&rwrong, format!("a{i} reverted with {:?}", input.outcome));
            }
            let failures = ctx.failures();
            let keys: Vec<&String> = failures.keys().collect();
            let expected: Vec<String> = failing.iter().map(|f| format!("a{f}")).collect();
            if keys != expected.iter().collect::<Vec<_>>() {
                push(&rwrong, format!("a{i} reverted seeing failures {keys:?}"));
            }
            Exec::Ready(Ok(None))
        });
        Atom::new(format!("a{i}"), task)
    }

    fn flow(&mut self, kind: Kind, items: &[Shape], links: &[(Index, Index)]) -> Flow {
        let name = format!("f{}", self.next_flow);
        self.next_flow += 1;
        let mut flow = match kind {
            Kind::Linear => Flow::linear(name),
            Kind::Unordered => Flow::unordered(name),
            Kind::Graph => Flow::graph(name),
        };
        let mut names: Vec<String> = Vec::new();
        // The atoms of the items added so far (their symbols are visible to later
        // items of a graph).
        let mut earlier: Vec<usize> = Vec::new();
        for shape in items {
            let before = self.next_atom;
            let item: Item = match shape {
                Shape::Atom { .. } if self.next_atom >= MAX_ATOMS => continue,
                Shape::Atom { reqs } => {
                    let mut reqs: Vec<usize> = if kind == Kind::Graph && !earlier.is_empty() {
                        reqs.iter()
                            .map(|r| earlier[r.index(earlier.len())])
                            .collect()
                    } else {
                        Vec::new()
                    };
                    reqs.sort_unstable();
                    reqs.dedup();
                    self.atom(reqs).into()
                }
                Shape::Flow { kind, items, links } => self.flow(*kind, items, links).into(),
            };
            names.push(item.name().to_string());
            earlier.extend(before..self.next_atom);
            flow.push(item);
        }
        if kind == Kind::Graph && names.len() >= 2 {
            for (x, y) in links {
                let (a, b) = (x.index(names.len()), y.index(names.len()));
                if a != b {
                    self.links += 1;
                    flow.push_link(names[a.min(b)].clone(), names[a.max(b)].clone());
                }
            }
        }
        flow
    }
}

fn build(shape: &Shape, failing: Option<Index>) -> Built {
    let atoms = count_atoms(shape).min(MAX_ATOMS);
    let failing = failing.filter(|_| atoms > 0).map(|f| f.index(atoms));
    let mut b = Builder {
        next_atom: 0,
        next_flow: 0,
        failing,
        inputs: 0,
        links: 0,
        log: Shared::default(),
        wrong: Shared::default(),
    };
    let Shape::Flow { kind, items, links } = shape else {
        unreachable!("the root is a flow")
    };
    let flow = b
        .flow(*kind, items, links)
        .build()
        .unwrap_or_else(|e| panic!("generated flow does not build: {e}"));
    assert_eq!(b.next_atom, atoms);
    assert_eq!(flow.len(), atoms);
    Built {
        flow,
        atoms,
        failing,
        inputs: b.inputs,
        links: b.links,
        log: b.log,
        wrong: b.wrong,
    }
}

fn index_of(name: &str) -> usize {
    name.strip_prefix('a')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected atom name `{name}`"))
}

/// Runs `built` on `mode` inside `rt`: the run's result and the flow's state.
fn run(
    rt: &tokio::runtime::Runtime,
    built: &Built,
    mode: Mode,
) -> (Result<(), RunError>, FlowState, Vec<String>) {
    let (mut engine, capture): (Engine, _) = common::engine(built.flow.clone(), mode);
    let result = rt.block_on(engine.run());
    (result, engine.state(), capture.events())
}

/// Runs `built` on `mode` with nobody listening, which takes the engines'
/// paths for plain tasks: the run's result and the flow's state.
fn run_unheard(
    rt: &tokio::runtime::Runtime,
    built: &Built,
    mode: Mode,
) -> (Result<(), RunError>, FlowState) {
    let mut engine = Engine::builder(built.flow.clone()).mode(mode).build();
    let result = rt.block_on(engine.run());
    (result, engine.state())
}

/// Checks the properties of one run from the logs.
fn check(
    built: &Built,
    result: &Result<(), RunError>,
    state: FlowState,
    serial: bool,
) -> Result<(), TestCaseError> {
    let n = built.atoms;
    let log = take(&built.log);
    let wrong = take(&built.wrong);
    prop_assert!(wrong.is_empty(), "tasks saw wrong data: {:?}", wrong);

    let preds: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            let names = built
                .flow
                .predecessors(&format!("a{i}"))
                .expect("known atom");
            names.into_iter().map(index_of).collect()
        })
        .collect();
    let mut executed: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut reverted: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (pos, call) in log.iter().enumerate() {
        match *call {
            Call::Execute(i) => executed[i].push(pos),
            Call::Revert(i) => reverted[i].push(pos),
        }
    }
    for i in 0..n {
        prop_assert!(
            executed[i].len() <= 1,
            "a{} executed {:?} in {:?}",
            i,
            executed[i],
            log
        );
        let Some(&at) = executed[i].first() else {
            continue;
        };
        for &p in &preds[i] {
            prop_assert!(
                executed[p].first().is_some_and(|&pp| pp < at),
                "a{} executed before its predecessor a{}: {:?}",
                i,
                p,
                log
            );
            prop_assert!(
                built.failing != Some(p),
                "a{} executed after its predecessor a{} failed: {:?}",
                i,
                p,
                log
            );
        }
    }

    match built.failing {
        None => {
            prop_assert!(result.is_ok(), "run failed: {:?}", result);
            prop_assert_eq!(state, FlowState::Success);
            for (i, at) in executed.iter().enumerate() {
                prop_assert_eq!(at.len(), 1, "a{} in {:?}", i, log);
            }
            prop_assert_eq!(log.len(), n, "reverts logged: {:?}", log);
        }
        Some(f) => {
            match result {
                Err(e @ RunError::Reverted { .. }) => {
                    let failed: Vec<(&str, &str)> = e
                        .failures()
                        .iter()
                        .map(|a| (a.atom.as_str(), a.failure.message()))
                        .collect();
                    let (name, message) = (format!("a{f}"), format!("a{f} failed"));
                    prop_assert_eq!(failed, vec![(name.as_str(), message.as_str())]);
                }
                other => prop_assert!(false, "expected RunError::Reverted, got {:?}", other),
            }
            prop_assert_eq!(state, FlowState::Reverted);
            prop_assert_eq!(
                executed[f].len(),
                1,
                "the failing a{} did not run: {:?}",
                f,
                log
            );
            for i in 0..n {
                prop_assert_eq!(
                    reverted[i].len(),
                    executed[i].len(),
                    "a{} executed {:?} but reverted {:?}: {:?}",
                    i,
                    executed[i],
                    reverted[i],
                    log
                );
                if let (Some(&e), Some(&r)) = (executed[i].first(), reverted[i].first()) {
                    prop_assert!(e < r, "a{} reverted before it executed: {:?}", i, log);
                }
            }
            // For every edge p -> s where both ran: s is undone before p.
            for s in 0..n {
                let Some(&rs) = reverted[s].first() else {
                    continue;
                };
                for &p in &preds[s] {
                    if let Some(&rp) = reverted[p].first() {
                        prop_assert!(
                            rs < rp,
                            "a{} reverted before its successor a{}: {:?}",
                            p,
                            s,
                            log
                        );
                    }
                }
            }
            if serial {
                // One atom at a time: the failure is the last execution, and
                // every revert comes after it.
                let last_exec = log.iter().rposition(|c| matches!(c, Call::Execute(_)));
                let first_revert = log.iter().position(|c| matches!(c, Call::Revert(_)));
                prop_assert_eq!(last_exec, executed[f].first().copied(), "{:?}", log);
                prop_assert!(first_revert > last_exec, "{:?}", log);
            }
        }
    }
    Ok(())
}

fn serial_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

fn parallel_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

proptest! {
    // Integration tests have no `lib.rs` next to them for proptest's regression
    // files: shrunk cases are printed instead.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn serial_engine_respects_order_and_reverts(
        shape in shape(),
        failing in prop::option::of(any::<Index>()),
    ) {
        let built = build(&shape, failing);
        let (result, state, _) = run(&serial_runtime(), &built, Mode::Serial);
        check(&built, &result, state, true)?;
    }

    #[test]
    fn parallel_engine_respects_order_and_reverts(
        shape in shape(),
        failing in prop::option::of(any::<Index>()),
    ) {
        let rt = parallel_runtime();
        let built = build(&shape, failing);
        let (result, state, _) = run(&rt, &built, Mode::Parallel(3));
        check(&built, &result, state, false)?;
    }

    #[test]
    fn serial_engine_is_deterministic(
        shape in shape(),
        failing in prop::option::of(any::<Index>()),
    ) {
        let rt = serial_runtime();
        let first = build(&shape, failing);
        let second = build(&shape, failing);
        let (r1, s1, events1) = run(&rt, &first, Mode::Serial);
        let (r2, s2, events2) = run(&rt, &second, Mode::Serial);
        prop_assert_eq!(r1.is_ok(), r2.is_ok());
        prop_assert_eq!(s1, s2);
        // The flow starts and ends; each atom that ran was announced running and
        // done, and, when the flow was reverted, reverting and reverted.
        let ran = take(&first.log).iter().filter(|c| matches!(c, Call::Execute(_))).count();
        let per_atom = if first.failing.is_some() { 4 } else { 2 };
        prop_assert_eq!(events1.len(), 2 + per_atom * ran, "{:?}", events1);
        prop_assert_eq!(events1, events2);
        prop_assert_eq!(take(&first.log), take(&second.log));
    }

    #[test]
    fn serial_engine_runs_alike_with_and_without_a_listener(
        shape in shape(),
        failing in prop::option::of(any::<Index>()),
    ) {
        let rt = serial_runtime();
        let heard = build(&shape, failing);
        let unheard = build(&shape, failing);
        let (r1, s1, _) = run(&rt, &heard, Mode::Serial);
        let (r2, s2) = run_unheard(&rt, &unheard, Mode::Serial);
        check(&unheard, &r2, s2, true)?;
        prop_assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
        prop_assert_eq!(s1, s2);
        // The same calls, in the same order, with the same data.
        prop_assert_eq!(take(&heard.log), take(&unheard.log));
    }

    #[test]
    fn parallel_engine_respects_order_and_reverts_with_nobody_listening(
        shape in shape(),
        failing in prop::option::of(any::<Index>()),
    ) {
        let rt = parallel_runtime();
        let built = build(&shape, failing);
        let (result, state) = run_unheard(&rt, &built, Mode::Parallel(3));
        check(&built, &result, state, false)?;
    }

    #[test]
    fn parallel_engine_with_one_in_flight_runs_as_the_serial_engine_unheard(
        shape in shape(),
        failing in prop::option::of(any::<Index>()),
    ) {
        let rt = parallel_runtime();
        let serial = build(&shape, failing);
        let parallel = build(&shape, failing);
        let (r1, s1, _) = run(&serial_runtime(), &serial, Mode::Serial);
        let (r2, s2) = run_unheard(&rt, &parallel, Mode::Parallel(1));
        check(&parallel, &r2, s2, true)?;
        prop_assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
        prop_assert_eq!(s1, s2);
        prop_assert_eq!(take(&serial.log), take(&parallel.log));
    }
}

/// The generator reaches flows of every size up to the cap, of every pattern,
/// with data inputs, explicit links and ordering edges.
#[test]
fn generator_covers_sizes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn kinds(shape: &Shape, out: &mut BTreeMap<String, usize>) {
        if let Shape::Flow { kind, items, .. } = shape {
            *out.entry(format!("{kind:?}")).or_default() += 1;
            for item in items {
                kinds(item, out);
            }
        }
    }

    let mut runner = TestRunner::deterministic();
    let strategy = shape();
    let mut sizes = Vec::new();
    let mut seen = BTreeMap::new();
    let (mut inputs, mut links, mut edges) = (0, 0, 0);
    for _ in 0..64 {
        let shape = strategy.new_tree(&mut runner).expect("a shape").current();
        sizes.push(count_atoms(&shape).min(MAX_ATOMS));
        kinds(&shape, &mut seen);
        let built = build(&shape, None);
        inputs += built.inputs;
        links += built.links;
        edges += (0..built.atoms)
            .map(|i| {
                built
                    .flow
                    .predecessors(&format!("a{i}"))
                    .map_or(0, |p| p.len())
            })
            .sum::<usize>();
    }
    sizes.sort_unstable();
    println!(
        "atoms per generated flow: {sizes:?}; flows by pattern: {seen:?}; \
         data inputs: {inputs}, explicit links: {links}, edges: {edges}"
    );
    assert!(inputs > 100 && links > 100 && edges > 1000);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(sizes.iter().any(|&s| s >= 100), "{sizes:?}");
    assert!(sizes.iter().any(|&s| s <= 10), "{sizes:?}");
}
