//! Several providers of a symbol in a graph flow, ordered by explicit links
//! (issue 36, section 7): the nearest provider ordered before the reader
//! wins, providers with no order between them stay ambiguous, and a cycle
//! made through the links is still reported as a cycle.

mod common;

use common::MODES;
use flow::{
    Atom, BuildError, CaptureListener, CompiledFlow, Engine, Flow, FlowState, FnTask, Outputs,
    Signature,
};

/// Maps `value -> value + 1`.
fn inc(name: &'static str) -> Atom {
    let sig = Signature::new()
        .requires::<u64>("value")
        .provides::<u64>("value");
    Atom::new(
        name,
        FnTask::sync(sig, |a| Ok(Outputs::one(a.get::<u64>(0)? + 1))),
    )
}

/// Provides `value`, reading nothing.
fn give(name: &'static str, value: u64) -> Atom {
    let sig = Signature::new().provides::<u64>("value");
    Atom::new(name, FnTask::sync(sig, move |_| Ok(Outputs::one(value))))
}

/// Reads `value` and provides it times ten as `seen`.
fn reader(name: &'static str) -> Atom {
    let sig = Signature::new()
        .requires::<u64>("value")
        .provides::<u64>("seen");
    Atom::new(
        name,
        FnTask::sync(sig, |a| Ok(Outputs::one(a.get::<u64>(0)? * 10))),
    )
}

/// Runs `flow` with `value = 0` on each engine; the events, which must be
/// the same on each.
async fn run(flow: CompiledFlow) -> Vec<String> {
    let mut runs = run_each(flow).await;
    assert_eq!(runs[0], runs[1], "serial and parallel");
    runs.pop().expect("one run per engine")
}

/// Runs `flow` with `value = 0` on each engine; the events of each.
async fn run_each(flow: CompiledFlow) -> Vec<Vec<String>> {
    let mut runs = Vec::new();
    for mode in MODES {
        let capture = CaptureListener::new();
        let mut engine = Engine::builder(flow.clone())
            .mode(mode)
            .input("value", 0u64)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("the flow runs");
        assert_eq!(engine.state(), FlowState::Success);
        runs.push(capture.events());
    }
    runs
}

/// The single error of building `flow`.
fn only_error(flow: Flow) -> BuildError {
    let err = flow.build().expect_err("invalid");
    assert_eq!(err.errors().len(), 1, "{err}");
    err.errors()[0].clone()
}

#[tokio::test]
async fn a_chain_ordered_by_links_counts_up_from_the_input() {
    let flow = Flow::graph("g")
        .input::<u64>("value")
        .add(inc("a"))
        .add(inc("b"))
        .add(inc("c"))
        .link("a", "b")
        .link("b", "c")
        .build()
        .expect("the links order the providers");
    assert!(flow.predecessors("a").unwrap().is_empty());
    assert_eq!(flow.predecessors("b").unwrap(), ["a"]);
    assert_eq!(flow.predecessors("c").unwrap(), ["b"]);
    assert_eq!(
        run(flow).await,
        [
            "g.f RUNNING",
            "a.t RUNNING",
            "a.t SUCCESS(1)",
            "b.t RUNNING",
            "b.t SUCCESS(2)",
            "c.t RUNNING",
            "c.t SUCCESS(3)",
            "g.f SUCCESS"
        ]
    );
}

#[tokio::test]
async fn the_links_not_the_order_added_decide() {
    // Added c, a, b; linked a -> b -> c.
    let flow = Flow::graph("g")
        .input::<u64>("value")
        .add(inc("c"))
        .add(inc("a"))
        .add(inc("b"))
        .link("b", "c")
        .link("a", "b")
        .build()
        .expect("valid");
    let events = run(flow).await;
    let done: Vec<&str> = (events.iter())
        .filter(|e| e.contains("SUCCESS("))
        .map(String::as_str)
        .collect();
    assert_eq!(done, ["a.t SUCCESS(1)", "b.t SUCCESS(2)", "c.t SUCCESS(3)"]);
}

#[tokio::test]
async fn a_reader_after_the_last_provider_sees_its_value() {
    for linked in [true, false] {
        // `d` linked after `c`; or not linked at all, when the latest of
        // the providers not linked after it, `c`, becomes its predecessor.
        let mut flow = Flow::graph("g")
            .input::<u64>("value")
            .add(inc("a"))
            .add(inc("b"))
            .add(inc("c"))
            .add(reader("d"))
            .link("a", "b")
            .link("b", "c");
        if linked {
            flow = flow.link("c", "d");
        }
        let flow = flow.build().expect("valid");
        assert_eq!(flow.predecessors("d").unwrap(), ["c"], "linked: {linked}");
        let events = run(flow).await;
        assert_eq!(
            events[events.len() - 3..],
            ["d.t RUNNING", "d.t SUCCESS(30)", "g.f SUCCESS"],
            "linked: {linked}"
        );
    }
}

#[tokio::test]
async fn the_nearest_provider_before_the_reader_wins_over_a_later_unlinked_one() {
    // a -> r and a -> b: `b` is later than `a`, but only `a` is linked
    // before `r`.
    let flow = Flow::graph("g")
        .input::<u64>("value")
        .add(inc("a"))
        .add(inc("b"))
        .add(reader("r"))
        .link("a", "r")
        .link("a", "b")
        .build()
        .expect("valid");
    assert_eq!(flow.predecessors("r").unwrap(), ["a"]);
    // `b` and `r` may run at once on the parallel engine.
    for events in run_each(flow).await {
        assert!(
            events.contains(&"r.t SUCCESS(10)".to_string()),
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn a_nested_flow_takes_its_place_in_the_chain() {
    let flow = Flow::graph("g")
        .input::<u64>("value")
        .add(inc("a"))
        .add(Flow::linear("sub").add(inc("s")))
        .add(inc("c"))
        .link("a", "sub")
        .link("sub", "c")
        .build()
        .expect("valid");
    let events = run(flow).await;
    let done: Vec<&str> = (events.iter())
        .filter(|e| e.contains("SUCCESS("))
        .map(String::as_str)
        .collect();
    assert_eq!(done, ["a.t SUCCESS(1)", "s.t SUCCESS(2)", "c.t SUCCESS(3)"]);
}

#[tokio::test]
async fn a_provider_linked_after_the_reader_is_not_read_when_the_inputs_provide() {
    let flow = Flow::graph("g")
        .input::<u64>("value")
        .add(inc("a"))
        .add(inc("b"))
        .link("a", "b")
        .build()
        .expect("`a` reads the input, `b` reads `a`");
    let events = run(flow).await;
    assert_eq!(events[2], "a.t SUCCESS(1)");
    assert_eq!(events[4], "b.t SUCCESS(2)");
}

fn ambiguous(atom: &str, providers: &[&str]) -> BuildError {
    BuildError::AmbiguousProvider {
        atom: atom.into(),
        symbol: "value".into(),
        providers: providers.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn two_providers_with_no_order_between_them_stay_ambiguous() {
    let message = "task `r` requires `value`, but several tasks with no order between them \
                   provide it: `p1`, `p2`; rename an output with `provides_as` or rebind the \
                   input";
    // No links at all; both linked before the reader; both linked from a
    // common start.
    let cases = [
        Flow::graph("g")
            .add(give("p1", 1))
            .add(give("p2", 2))
            .add(reader("r")),
        Flow::graph("g")
            .add(give("p1", 1))
            .add(give("p2", 2))
            .add(reader("r"))
            .link("p1", "r")
            .link("p2", "r"),
        Flow::graph("g")
            .input::<u64>("value")
            .add(inc("start"))
            .add(inc("p1"))
            .add(inc("p2"))
            .add(reader("r"))
            .link("start", "p1")
            .link("start", "p2")
            .link("p1", "r")
            .link("p2", "r"),
    ];
    for flow in cases {
        let err = only_error(flow);
        assert_eq!(err, ambiguous("r", &["p1", "p2"]));
        assert_eq!(err.to_string(), message);
    }
    // a -> b, and x unlinked: `b` and `x` are the latest, `a` is not named.
    let err = only_error(
        Flow::graph("g")
            .add(give("a", 1))
            .add(give("b", 2))
            .add(give("x", 3))
            .add(reader("r"))
            .link("a", "b"),
    );
    assert_eq!(err, ambiguous("r", &["b", "x"]));
}

#[test]
fn a_cycle_made_through_the_links_is_still_a_cycle() {
    for input in [true, false] {
        let mut flow = Flow::graph("g")
            .add(inc("a"))
            .add(inc("b"))
            .add(inc("c"))
            .link("a", "b")
            .link("b", "c")
            .link("c", "a");
        if input {
            flow = flow.input::<u64>("value");
        }
        let err = only_error(flow);
        assert_eq!(
            err,
            BuildError::Cycle {
                flow: "g".into(),
                atoms: vec!["a".into(), "b".into(), "c".into()],
            },
            "input: {input}"
        );
        assert_eq!(
            err.to_string(),
            "graph flow `g` has a cycle: `a` -> `b` -> `c` -> `a`; remove a link or an input \
             that closes it"
        );
    }
    // With no input, the first of a chain can only read what runs after it.
    let err = only_error(
        Flow::graph("g")
            .add(inc("a"))
            .add(inc("b"))
            .add(inc("c"))
            .link("a", "b")
            .link("b", "c"),
    );
    assert_eq!(
        err,
        BuildError::Cycle {
            flow: "g".into(),
            atoms: vec!["a".into(), "b".into(), "c".into()],
        }
    );
}
