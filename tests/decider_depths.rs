//! Decider depths and nested flows (issue 36, section 7), as TaskFlow has
//! them: a nested flow is another flow, so `Flow` and `Neighbors` stop at
//! it, and only `All` reaches into it and past the graph.
//!
//! The graph of every test, inside `linear outer [ graph g [...], e ]`:
//!
//! ```text
//!        no         yes
//!   a ------> b ---------> sub [ s1 -> s2 ]
//!             |             ^
//!             v             |
//!             c ----> d ----'
//! ```
//!
//! `a` provides `x = 1`; the decider on `a -> b` wants 2, so it says no, at
//! the depth under test. The decider on `b -> sub` says yes (it runs when
//! `sub`'s first atom would start, `b` ignored or not). The link `d -> sub`
//! gives one order to everything that runs, so that the parallel engine's
//! events are as exact as the serial one's.

mod common;

use std::sync::{Arc, Mutex};

use common::{MODES, engine};
use flow::{Atom, AtomState, Decider, Depth, Flow, FlowState, FnTask, Outputs, Signature};

type Ran = Arc<Mutex<Vec<&'static str>>>;

/// Records that it ran; provides `x = 1` when `x`.
fn step(name: &'static str, ran: &Ran, x: bool) -> Atom {
    let ran = ran.clone();
    let sig = if x {
        Signature::new().provides::<u32>("x")
    } else {
        Signature::new()
    };
    Atom::new(
        name,
        FnTask::sync(sig, move |_| {
            ran.lock().unwrap().push(name);
            Ok(if x {
                Outputs::one(1u32)
            } else {
                Outputs::new()
            })
        }),
    )
}

fn decided(depth: Depth, ran: &Ran) -> flow::CompiledFlow {
    Flow::linear("outer")
        .add(
            Flow::graph("g")
                .add(step("a", ran, true))
                .add(step("b", ran, false))
                .add(step("c", ran, false))
                .add(step("d", ran, false))
                .add(
                    Flow::linear("sub")
                        .add(step("s1", ran, false))
                        .add(step("s2", ran, false)),
                )
                .link_if(
                    "a",
                    "b",
                    Decider::new(|r| r.get::<u32>("a") == Some(&2)).depth(depth),
                )
                .link_if("b", "sub", Decider::new(|_| true))
                .link("b", "c")
                .link("c", "d")
                .link("d", "sub"),
        )
        .add(step("e", ran, false))
        .build()
        .expect("valid flow")
}

/// The events of a run of the graph at `depth`, the same on both engines,
/// and what ran.
async fn run(depth: Depth) -> (Vec<String>, Vec<&'static str>) {
    let mut seen = Vec::new();
    for mode in MODES {
        let ran: Ran = Arc::default();
        let (mut engine, capture) = engine(decided(depth, &ran), mode);
        engine.run().await.expect("ignoring is not failing");
        assert_eq!(engine.state(), FlowState::Success);
        let ran = ran.lock().unwrap().clone();
        for atom in ["a", "b", "c", "d", "s1", "s2", "e"] {
            let state = engine.atom_state(atom).expect("an atom");
            let expected = if ran.contains(&atom) {
                AtomState::Success
            } else {
                AtomState::Ignore
            };
            assert_eq!(state, expected, "{atom} at {depth:?} on {mode:?}");
        }
        seen.push((mode, capture.events(), ran));
    }
    let (_, parallel, ran_parallel) = seen.pop().expect("two modes");
    let (_, serial, ran_serial) = seen.pop().expect("two modes");
    assert_eq!(serial, parallel, "serial and parallel at {depth:?}");
    assert_eq!(ran_serial, ran_parallel);
    (serial, ran_serial)
}

/// `"<atom>.t RUNNING", "<atom>.t SUCCESS(..)"` for each atom that runs.
fn runs(atom: &str, result: &str) -> [String; 2] {
    [
        format!("{atom}.t RUNNING"),
        format!("{atom}.t SUCCESS({result})"),
    ]
}

fn ignored(atom: &str) -> String {
    format!("{atom}.t IGNORE")
}

fn events(parts: Vec<Vec<String>>) -> Vec<String> {
    parts.into_iter().flatten().collect()
}

#[tokio::test]
async fn atom_ignores_the_decided_atom_alone() {
    let (events_seen, ran) = run(Depth::Atom).await;
    assert_eq!(
        events_seen,
        events(vec![
            vec!["outer.f RUNNING".into()],
            runs("a", "1").into(),
            vec![ignored("b")],
            runs("c", "()").into(),
            runs("d", "()").into(),
            runs("s1", "()").into(),
            runs("s2", "()").into(),
            runs("e", "()").into(),
            vec!["outer.f SUCCESS".into()],
        ])
    );
    assert_eq!(ran, ["a", "c", "d", "s1", "s2", "e"]);
}

#[tokio::test]
async fn neighbors_ignores_the_graphs_own_atoms_one_step_on_not_the_nested_flow() {
    let (events_seen, ran) = run(Depth::Neighbors).await;
    assert_eq!(
        events_seen,
        events(vec![
            vec!["outer.f RUNNING".into()],
            runs("a", "1").into(),
            vec![ignored("b"), ignored("c")],
            runs("d", "()").into(),
            runs("s1", "()").into(),
            runs("s2", "()").into(),
            runs("e", "()").into(),
            vec!["outer.f SUCCESS".into()],
        ])
    );
    assert_eq!(ran, ["a", "d", "s1", "s2", "e"]);
}

#[tokio::test]
async fn flow_ignores_what_follows_through_the_graphs_own_atoms_not_the_nested_flow() {
    let (events_seen, ran) = run(Depth::Flow).await;
    assert_eq!(
        events_seen,
        events(vec![
            vec!["outer.f RUNNING".into()],
            runs("a", "1").into(),
            vec![ignored("b"), ignored("c"), ignored("d")],
            runs("s1", "()").into(),
            runs("s2", "()").into(),
            runs("e", "()").into(),
            vec!["outer.f SUCCESS".into()],
        ])
    );
    assert_eq!(ran, ["a", "s1", "s2", "e"]);
}

#[tokio::test]
async fn all_ignores_everything_after_into_the_nested_flow_and_past_the_graph() {
    let (events_seen, ran) = run(Depth::All).await;
    assert_eq!(
        events_seen,
        events(vec![
            vec!["outer.f RUNNING".into()],
            runs("a", "1").into(),
            ["b", "c", "d", "s1", "s2", "e"].map(ignored).into(),
            vec!["outer.f SUCCESS".into()],
        ])
    );
    assert_eq!(ran, ["a"]);
}

#[tokio::test]
async fn neighbors_and_flow_stop_at_the_end_of_the_graph() {
    // The decided atom is the graph's last: what follows the graph runs,
    // but for `All`.
    for (depth, expected) in [
        (Depth::Neighbors, vec!["a", "e"]),
        (Depth::Flow, vec!["a", "e"]),
        (Depth::All, vec!["a"]),
    ] {
        for mode in MODES {
            let ran: Ran = Arc::default();
            let flow = Flow::linear("outer")
                .add(
                    Flow::graph("g")
                        .add(step("a", &ran, true))
                        .add(step("b", &ran, false))
                        .link_if(
                            "a",
                            "b",
                            Decider::new(|r| r.get::<u32>("a") == Some(&2)).depth(depth),
                        ),
                )
                .add(step("e", &ran, false))
                .build()
                .expect("valid");
            let (mut engine, _) = engine(flow, mode);
            engine.run().await.expect("runs");
            assert_eq!(*ran.lock().unwrap(), expected, "{depth:?} on {mode:?}");
        }
    }
}
