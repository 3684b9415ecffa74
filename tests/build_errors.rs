//! Errors found before anything runs (semantics.md section 2.3, scenario S9):
//! one test per `BuildError` variant with its exact message, several problems
//! reported together, and S9 case by case.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flow::{Atom, BuildError, BuildErrors, Flow, FnTask, Method, Missing, Outputs, Signature};

/// A task requiring `symbol: u32`.
fn needs(name: &'static str, symbol: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(Signature::new().requires::<u32>(symbol), |_| {
            Ok(Outputs::new())
        }),
    )
}

/// A task providing `symbol: u32`.
fn gives(name: &'static str, symbol: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(Signature::new().provides::<u32>(symbol), |_| {
            Ok(Outputs::one(1u32))
        }),
    )
}

/// A task requiring `from: u32` and providing `to: u32`.
fn maps(name: &'static str, from: &'static str, to: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(
            Signature::new().requires::<u32>(from).provides::<u32>(to),
            |a| Ok(Outputs::one(*a.get::<u32>(0)?)),
        ),
    )
}

fn noop(name: &'static str) -> Atom {
    Atom::new(name, FnTask::sync(Signature::new(), |_| Ok(Outputs::new())))
}

/// The only error of a flow that must not build.
fn only_error(flow: Flow) -> BuildError {
    let errors = flow.build().expect_err("the flow must not build");
    assert_eq!(errors.errors().len(), 1, "{errors}");
    errors.errors()[0].clone()
}

// ---------------------------------------------------------------------------
// MissingRequirement
// ---------------------------------------------------------------------------

#[test]
fn missing_requirement_nowhere() {
    let err = only_error(Flow::linear("root").add(Flow::linear("inner").add(needs("t", "x"))));
    assert_eq!(
        err,
        BuildError::MissingRequirement {
            atom: "t".into(),
            symbol: "x".into(),
            type_name: "u32".into(),
            method: Method::Execute,
            flow: "root".into(),
            reason: Missing::Nowhere,
        }
    );
    assert_eq!(
        err.to_string(),
        "task `t` requires `x: u32`, but no earlier task in flow `root` provides `x` and the \
         flow does not declare it as an input"
    );
}

#[test]
fn missing_requirement_provider_runs_after() {
    let err = only_error(Flow::linear("f").add(needs("t", "x")).add(gives("p", "x")));
    assert!(matches!(
        &err,
        BuildError::MissingRequirement { reason: Missing::RunsAfter { provider }, .. }
            if provider == "p"
    ));
    assert_eq!(
        err.to_string(),
        "task `t` requires `x: u32`, but `x` is provided only by `p`, which does not run \
         before it: move `p` earlier"
    );
}

#[test]
fn missing_requirement_provider_is_concurrent() {
    let err = only_error(
        Flow::linear("f").add(
            Flow::unordered("group")
                .add(needs("t", "x"))
                .add(gives("p", "x")),
        ),
    );
    assert!(matches!(
        &err,
        BuildError::MissingRequirement { reason: Missing::Concurrent { provider, group }, .. }
            if provider == "p" && group == "group"
    ));
    assert_eq!(
        err.to_string(),
        "task `t` requires `x: u32`, but `x` is provided only by `p`, which runs concurrently \
         with it (same unordered group `group`)"
    );
}

#[test]
fn missing_requirement_of_revert() {
    let task = FnTask::sync(Signature::new().revert_requires::<String>("reason"), |_| {
        Ok(Outputs::new())
    });
    let err = only_error(Flow::linear("f").add(Atom::new("t", task)));
    assert!(matches!(
        &err,
        BuildError::MissingRequirement { method: Method::Revert, symbol, type_name, .. }
            if symbol == "reason" && type_name == "String"
    ));
    assert_eq!(
        err.to_string(),
        "task `t` requires `reason: String` to revert, but no earlier task in flow `f` \
         provides `reason` and the flow does not declare it as an input"
    );
}

#[test]
fn missing_requirement_names_the_rebound_symbol() {
    let err = only_error(
        Flow::linear("f")
            .add(gives("p", "x"))
            .add(needs("t", "x").rebind("x", "other")),
    );
    assert_eq!(
        err.to_string(),
        "task `t` requires `other: u32`, but no earlier task in flow `f` provides `other` and \
         the flow does not declare it as an input"
    );
}

// ---------------------------------------------------------------------------
// TypeMismatch
// ---------------------------------------------------------------------------

#[test]
fn type_mismatch_with_a_provider_atom() {
    let p = Atom::new(
        "p",
        FnTask::sync(Signature::new().provides::<String>("x"), |_| {
            Ok(Outputs::one(String::new()))
        }),
    );
    let err = only_error(Flow::linear("f").add(p).add(needs("t", "x")));
    assert_eq!(
        err,
        BuildError::TypeMismatch {
            atom: "t".into(),
            symbol: "x".into(),
            expected: "u32".into(),
            provider: "p".into(),
            provided: "String".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "task `t` requires `x: u32`, but its provider `p` provides `x` as `String`: make the \
         types agree, or rebind the input to another symbol"
    );
}

#[test]
fn type_mismatch_with_the_flow_inputs() {
    let err = only_error(
        Flow::linear("f")
            .input::<Vec<String>>("x")
            .add(needs("t", "x")),
    );
    assert_eq!(
        err.to_string(),
        "task `t` requires `x: u32`, but its provider `the flow's inputs` provides `x` as \
         `Vec<String>`: make the types agree, or rebind the input to another symbol"
    );
}

#[test]
fn type_mismatch_with_an_injected_value() {
    let err = only_error(Flow::linear("f").add(needs("t", "x").inject("x", 3u64)));
    assert_eq!(
        err.to_string(),
        "task `t` requires `x: u32`, but its provider `an injected value` provides `x` as \
         `u64`: make the types agree, or rebind the input to another symbol"
    );
}

// ---------------------------------------------------------------------------
// AmbiguousProvider
// ---------------------------------------------------------------------------

#[test]
fn ambiguous_provider_in_a_graph() {
    let err = only_error(
        Flow::graph("g")
            .add(gives("p1", "x"))
            .add(needs("t", "x"))
            .add(gives("p2", "x")),
    );
    assert_eq!(
        err,
        BuildError::AmbiguousProvider {
            atom: "t".into(),
            symbol: "x".into(),
            providers: vec!["p1".into(), "p2".into()],
        }
    );
    assert_eq!(
        err.to_string(),
        "task `t` requires `x`, but several tasks with no order between them provide it: \
         `p1`, `p2`; rename an output with `provides_as` or rebind the input"
    );
}

#[test]
fn two_providers_nobody_requires_are_fine() {
    let flow = Flow::graph("g")
        .add(gives("p1", "x"))
        .add(gives("p2", "x"))
        .build()
        .expect("nobody requires `x`");
    assert_eq!(flow.len(), 2);
}

#[test]
fn ambiguous_provider_from_an_unordered_group() {
    let err = only_error(
        Flow::linear("f")
            .add(
                Flow::unordered("u")
                    .add(gives("p1", "x"))
                    .add(gives("p2", "x")),
            )
            .add(needs("t", "x")),
    );
    assert_eq!(
        err.to_string(),
        "task `t` requires `x`, but several tasks with no order between them provide it: \
         `p1`, `p2`; rename an output with `provides_as` or rebind the input"
    );
}

// ---------------------------------------------------------------------------
// Cycle
// ---------------------------------------------------------------------------

#[test]
fn cycle_of_inferred_and_explicit_links() {
    // a -> b and b -> c are inferred from the data; c -> a is explicit.
    let err = only_error(
        Flow::graph("g")
            .add(noop("d"))
            .add(gives("a", "x"))
            .add(maps("b", "x", "y"))
            .add(needs("c", "y"))
            .link("c", "a"),
    );
    assert_eq!(
        err,
        BuildError::Cycle {
            flow: "g".into(),
            atoms: vec!["a".into(), "b".into(), "c".into()],
        }
    );
    assert_eq!(
        err.to_string(),
        "graph flow `g` has a cycle: `a` -> `b` -> `c` -> `a`; remove a link or an input that \
         closes it"
    );
}

#[test]
fn cycle_starts_at_its_first_item_and_follows_the_links() {
    let err = only_error(
        Flow::graph("g")
            .add(needs("c", "y"))
            .add(maps("b", "x", "y"))
            .add(gives("a", "x"))
            .link("c", "a"),
    );
    assert_eq!(
        err.to_string(),
        "graph flow `g` has a cycle: `c` -> `a` -> `b` -> `c`; remove a link or an input that \
         closes it"
    );
}

// ---------------------------------------------------------------------------
// DuplicateName, UnknownLink, ConflictingInput, UnknownParameter
// ---------------------------------------------------------------------------

#[test]
fn duplicate_name_in_different_sub_flows() {
    let err = only_error(
        Flow::linear("root")
            .add(Flow::linear("s1").add(noop("a")))
            .add(Flow::unordered("s2").add(Flow::linear("deep").add(noop("a")))),
    );
    assert_eq!(
        err,
        BuildError::DuplicateName {
            name: "a".into(),
            first: "root/s1/a".into(),
            second: "root/s2/deep/a".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "two atoms are named `a`, at `root/s1/a` and at `root/s2/deep/a`: names must be unique \
         in a flow tree, rename one"
    );
}

#[test]
fn unknown_link_target() {
    let err = only_error(
        Flow::graph("g")
            .add(noop("a"))
            .add(noop("b"))
            .link("a", "ghost"),
    );
    assert_eq!(
        err,
        BuildError::UnknownLink {
            flow: "g".into(),
            from: "a".into(),
            to: "ghost".into(),
            unknown: "ghost".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "graph flow `g` links `a` -> `ghost`, but `ghost` is not an item of that graph: link \
         only atoms or flows added to it"
    );
}

#[test]
fn unknown_link_source() {
    let err = only_error(Flow::graph("g").add(noop("a")).link("ghost", "a"));
    assert_eq!(
        err.to_string(),
        "graph flow `g` links `ghost` -> `a`, but `ghost` is not an item of that graph: link \
         only atoms or flows added to it"
    );
}

#[test]
fn conflicting_input_declarations() {
    let err = only_error(
        Flow::linear("f")
            .input::<u32>("x")
            .add(Flow::linear("sub").input::<String>("x").add(noop("t"))),
    );
    assert_eq!(
        err,
        BuildError::ConflictingInput {
            symbol: "x".into(),
            first: "u32".into(),
            second: "String".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "the flow input `x` is declared as `u32` and as `String`: declare it once"
    );
}

#[test]
fn the_same_input_declared_twice_with_one_type_is_fine() {
    let flow = Flow::linear("f")
        .input::<u32>("x")
        .add(Flow::linear("sub").input::<u32>("x").add(needs("t", "x")))
        .build()
        .expect("one type");
    assert_eq!(flow.inputs().len(), 1);
}

#[test]
fn unknown_parameter_injected() {
    let err = only_error(
        Flow::linear("f")
            .input::<u32>("x")
            .add(needs("t", "x").inject("nope", 1u32)),
    );
    assert_eq!(
        err,
        BuildError::UnknownParameter {
            atom: "t".into(),
            what: "injects",
            name: "nope".into(),
            kind: "input",
            hint: "its inputs are `x`".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "atom `t` injects `nope`, but its task has no such input: its inputs are `x`"
    );
}

#[test]
fn unknown_parameter_rebound() {
    let err = only_error(Flow::linear("f").add(noop("t").rebind("nope", "x")));
    assert_eq!(
        err.to_string(),
        "atom `t` rebinds `nope`, but its task has no such input: it has no inputs"
    );
}

#[test]
fn unknown_parameter_renamed_output() {
    let err = only_error(Flow::linear("f").add(gives("t", "y").provides_as("nope", "z")));
    assert_eq!(
        err.to_string(),
        "atom `t` renames `nope`, but its task has no such output: its outputs are `y`"
    );
    let err = only_error(Flow::linear("f").add(noop("t").provides_as("nope", "z")));
    assert_eq!(
        err.to_string(),
        "atom `t` renames `nope`, but its task has no such output: it has no outputs"
    );
}

// ---------------------------------------------------------------------------
// All problems together
// ---------------------------------------------------------------------------

#[test]
fn every_problem_is_reported_together() {
    let errors: BuildErrors = Flow::linear("many")
        .add(Flow::linear("s1").add(noop("a")))
        .add(Flow::linear("s2").add(needs("a", "m")))
        .add(Flow::graph("g").add(noop("b")).link("b", "ghost"))
        .build()
        .expect_err("three problems");
    assert_eq!(errors.flow(), "many");
    assert_eq!(errors.errors().len(), 3);
    assert!(matches!(
        errors.errors()[0],
        BuildError::DuplicateName { .. }
    ));
    assert!(matches!(
        errors.errors()[1],
        BuildError::MissingRequirement { .. }
    ));
    assert!(matches!(errors.errors()[2], BuildError::UnknownLink { .. }));
    assert_eq!(
        errors.to_string(),
        "flow `many` has 3 problems:\n  \
         - two atoms are named `a`, at `many/s1/a` and at `many/s2/a`: names must be unique in \
         a flow tree, rename one\n  \
         - task `a` requires `m: u32`, but no earlier task in flow `many` provides `m` and the \
         flow does not declare it as an input\n  \
         - graph flow `g` links `b` -> `ghost`, but `ghost` is not an item of that graph: link \
         only atoms or flows added to it"
    );
    let messages: Vec<String> = errors.into_iter().map(|e| e.to_string()).collect();
    assert_eq!(messages.len(), 3);
}

#[test]
fn several_problems_of_one_atom_in_input_order() {
    let t = Atom::new(
        "t",
        FnTask::sync(
            Signature::new()
                .requires::<u32>("missing")
                .requires::<String>("x"),
            |_| Ok(Outputs::new()),
        ),
    );
    let errors = Flow::linear("f")
        .add(gives("p", "x"))
        .add(t)
        .build()
        .expect_err("two problems");
    let messages: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "task `t` requires `missing: u32`, but no earlier task in flow `f` provides \
             `missing` and the flow does not declare it as an input",
            "task `t` requires `x: String`, but its provider `p` provides `x` as `u32`: make \
             the types agree, or rebind the input to another symbol",
        ]
    );
}

#[test]
fn one_problem_displays_on_one_line() {
    let errors = Flow::linear("f")
        .add(needs("t", "x"))
        .build()
        .expect_err("one problem");
    assert_eq!(
        errors.to_string(),
        "flow `f` is invalid: task `t` requires `x: u32`, but no earlier task in flow `f` \
         provides `x` and the flow does not declare it as an input"
    );
}

// ---------------------------------------------------------------------------
// S9
// ---------------------------------------------------------------------------

#[test]
fn s9_errors_before_running() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = |name: &'static str, sig: Signature| {
        let runs = runs.clone();
        Atom::new(
            name,
            FnTask::sync(sig, move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(Outputs::new())
            }),
        )
    };
    let u32_out = || Signature::new().provides::<u32>("x");

    // A task that requires a symbol nobody provides.
    let err = only_error(
        Flow::linear("s9").add(counted("t", Signature::new().requires::<u32>("nobody"))),
    );
    assert!(matches!(
        err,
        BuildError::MissingRequirement {
            reason: Missing::Nowhere,
            ..
        }
    ));

    // The same symbol with another type.
    let err = only_error(
        Flow::linear("s9")
            .add(counted("p", u32_out()))
            .add(counted("t", Signature::new().requires::<String>("x"))),
    );
    assert!(matches!(err, BuildError::TypeMismatch { .. }));

    // Two providers in one graph of a symbol someone there requires.
    let err = only_error(
        Flow::graph("s9")
            .add(counted("p1", u32_out()))
            .add(counted("p2", u32_out()))
            .add(counted("t", Signature::new().requires::<u32>("x"))),
    );
    assert!(matches!(err, BuildError::AmbiguousProvider { .. }));

    // A cycle made of inferred and explicit links.
    let err = only_error(
        Flow::graph("s9")
            .add(counted("p", u32_out()))
            .add(counted("t", Signature::new().requires::<u32>("x")))
            .link("t", "p"),
    );
    assert_eq!(
        err,
        BuildError::Cycle {
            flow: "s9".into(),
            atoms: vec!["p".into(), "t".into()],
        }
    );

    // Two atoms named `a` in different sub-flows.
    let err = only_error(
        Flow::linear("s9")
            .add(Flow::linear("one").add(counted("a", Signature::new())))
            .add(Flow::graph("two").add(counted("a", Signature::new()))),
    );
    assert_eq!(
        err,
        BuildError::DuplicateName {
            name: "a".into(),
            first: "s9/one/a".into(),
            second: "s9/two/a".into(),
        }
    );

    // A link naming an atom that is not in the graph.
    let err = only_error(
        Flow::graph("s9")
            .add(counted("a", Signature::new()))
            .link("a", "missing"),
    );
    assert!(matches!(err, BuildError::UnknownLink { ref unknown, .. } if unknown == "missing"));

    assert_eq!(runs.load(Ordering::SeqCst), 0, "no task ran");
}
