//! Duplicate names among the items of a flow (issue 36, section 7): two
//! sibling sub-flows, or a sub-flow and a sibling atom, are refused by
//! `Flow::build` as `DuplicateName`, each pair once, with both paths, said
//! once when they are one (sibling items of one name; a
//! flow's path ends with `/`). Atom names stay unique across the whole tree;
//! flows of the same name in different places are fine.

use flow::{Atom, BuildError, Flow, FnTask, Outputs, Retry, Signature};

fn atom(name: &str) -> Atom {
    Atom::new(
        name.to_string(),
        FnTask::sync(Signature::new(), |_| Ok(Outputs::new())),
    )
}

/// The errors of building `flow`, with their messages.
fn errors(flow: Flow) -> Vec<(BuildError, String)> {
    let err = flow.build().expect_err("invalid");
    (err.errors().iter())
        .map(|e| (e.clone(), e.to_string()))
        .collect()
}

fn duplicate(name: &str, first: &str, second: &str) -> BuildError {
    BuildError::DuplicateName {
        name: name.into(),
        first: first.into(),
        second: second.into(),
    }
}

#[test]
fn two_sibling_sub_flows_with_one_name() {
    let flow = Flow::linear("root")
        .add(Flow::linear("s").add(atom("a")))
        .add(Flow::unordered("s").add(atom("b")));
    assert_eq!(
        errors(flow),
        [(
            duplicate("s", "root/s/", "root/s/"),
            "two flows are named `s` at `root/s/`: the items of a flow need distinct names, \
             rename one"
                .to_string()
        )]
    );
}

#[test]
fn a_sub_flow_named_like_a_sibling_atom() {
    let flow = Flow::linear("root")
        .add(atom("x"))
        .add(Flow::linear("x").add(atom("a")));
    assert_eq!(
        errors(flow),
        [(
            duplicate("x", "root/x", "root/x/"),
            "an atom and a flow are named `x`, at `root/x` and at `root/x/`: the items of a \
             flow need distinct names, rename one"
                .to_string()
        )]
    );
    // The flow first, in a graph.
    let flow = Flow::graph("g")
        .add(Flow::linear("x").add(atom("a")))
        .add(atom("x"));
    assert_eq!(
        errors(flow),
        [(
            duplicate("x", "g/x/", "g/x"),
            "a flow and an atom are named `x`, at `g/x/` and at `g/x`: the items of a flow \
             need distinct names, rename one"
                .to_string()
        )]
    );
}

#[test]
fn a_sub_flow_named_like_the_retry_controller_of_its_flow() {
    let flow = Flow::linear("r")
        .retry(Retry::times(2).named("again"))
        .add(Flow::linear("again").add(atom("a")));
    assert_eq!(
        errors(flow),
        [(
            duplicate("again", "r/again", "r/again/"),
            "an atom and a flow are named `again`, at `r/again` and at `r/again/`: the items of \
             a flow need distinct names, rename one"
                .to_string()
        )]
    );
}

#[test]
fn each_later_holder_is_paired_with_the_first_deep_in_the_tree() {
    let flow = Flow::linear("root").add(
        Flow::unordered("sub")
            .add(Flow::linear("y").add(atom("a")))
            .add(Flow::graph("y").add(atom("b")))
            .add(atom("c"))
            .add(Flow::linear("y").add(atom("d"))),
    );
    let found: Vec<BuildError> = errors(flow).into_iter().map(|(e, _)| e).collect();
    assert_eq!(
        found,
        [
            duplicate("y", "root/sub/y/", "root/sub/y/"),
            duplicate("y", "root/sub/y/", "root/sub/y/"),
        ]
    );
}

#[test]
fn sub_flows_holding_one_atom_name_are_two_errors_each_once() {
    let flow = Flow::linear("root")
        .add(Flow::linear("s").add(atom("x")))
        .add(Flow::linear("s").add(atom("x")));
    assert_eq!(
        errors(flow),
        [
            (
                duplicate("x", "root/s/x", "root/s/x"),
                "two atoms are named `x` at `root/s/x`: names must be unique in a flow tree, \
                 rename one"
                    .to_string()
            ),
            (
                duplicate("s", "root/s/", "root/s/"),
                "two flows are named `s` at `root/s/`: the items of a flow need distinct names, \
                 rename one"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn flows_of_one_name_in_different_places_are_fine() {
    let flow = Flow::linear("root")
        .add(Flow::linear("a").add(Flow::linear("common").add(atom("x"))))
        .add(Flow::linear("b").add(Flow::linear("common").add(atom("y"))))
        .add(Flow::linear("root").add(atom("z")))
        .build()
        .expect("names repeat only in different flows");
    assert_eq!(flow.atom_names().collect::<Vec<_>>(), ["x", "y", "z"]);
}
