//! Conditional links: deciders and their depth, on both engines.

mod common;

use std::sync::{Arc, Mutex};

use common::{MODES, engine, failing};
use flow::{
    Atom, AtomState, BuildError, Decider, Depth, Flow, FlowState, FnTask, Outputs, Signature,
};

type Ran = Arc<Mutex<Vec<String>>>;

/// A task that records that it ran and provides `value` under `provides`.
fn step(name: &'static str, ran: &Ran, provides: Option<(&'static str, u32)>) -> Atom {
    let ran = ran.clone();
    let sig = match provides {
        Some((symbol, _)) => Signature::new().provides::<u32>(symbol),
        None => Signature::new(),
    };
    Atom::new(
        name,
        FnTask::sync(sig, move |_| {
            ran.lock().unwrap().push(name.to_string());
            Ok(match provides {
                Some((_, v)) => Outputs::one(v),
                None => Outputs::new(),
            })
        }),
    )
}

/// `linear [ graph g [ a -> b (decider: x == 2) -> c -> d ], e ]`, with `a`
/// providing `x = 1`, so the decider says no.
fn depth_flow(depth: Depth, ran: &Ran) -> flow::CompiledFlow {
    Flow::linear("outer")
        .add(
            Flow::graph("g")
                .add(step("a", ran, Some(("x", 1))))
                .add(step("b", ran, None))
                .add(step("c", ran, None))
                .add(step("d", ran, None))
                .link_if(
                    "a",
                    "b",
                    Decider::new(|r| r.get::<u32>("a") == Some(&2)).depth(depth),
                )
                .link("b", "c")
                .link("c", "d"),
        )
        .add(step("e", ran, None))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn each_depth_ignores_its_region() {
    let cases = [
        (Depth::Atom, vec!["a", "c", "d", "e"], vec!["b"]),
        (Depth::Neighbors, vec!["a", "d", "e"], vec!["b", "c"]),
        (Depth::Flow, vec!["a", "e"], vec!["b", "c", "d"]),
        (Depth::All, vec!["a"], vec!["b", "c", "d", "e"]),
    ];
    for mode in MODES {
        for (depth, expected_ran, expected_ignored) in &cases {
            let ran: Ran = Arc::default();
            let (mut engine, capture) = engine(depth_flow(*depth, &ran), mode);
            engine.run().await.expect("ignoring is not failing");
            assert_eq!(engine.state(), FlowState::Success);
            assert_eq!(*ran.lock().unwrap(), *expected_ran, "{mode:?} {depth:?}");
            let ignored: Vec<String> = capture
                .events()
                .into_iter()
                .filter_map(|e| e.strip_suffix(".t IGNORE").map(String::from))
                .collect();
            assert_eq!(ignored, *expected_ignored, "{mode:?} {depth:?}");
            for name in expected_ignored {
                assert_eq!(engine.atom_state(name), Some(AtomState::Ignore));
            }
        }
    }
}

#[tokio::test]
async fn a_yes_runs_the_target() {
    for mode in MODES {
        let ran: Ran = Arc::default();
        let flow = Flow::graph("g")
            .add(step("a", &ran, Some(("x", 2))))
            .add(step("b", &ran, None))
            .link_if("a", "b", Decider::new(|r| r.get::<u32>("a") == Some(&2)))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.unwrap();
        assert_eq!(*ran.lock().unwrap(), ["a", "b"]);
        assert!(!capture.events().iter().any(|e| e.contains("IGNORE")));
    }
}

#[tokio::test]
async fn in_a_diamond_one_no_of_two_ignores_the_target() {
    for mode in MODES {
        let ran: Ran = Arc::default();
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let (seen_l, seen_r) = (seen.clone(), seen.clone());
        let flow = Flow::graph("diamond")
            .add(step("top", &ran, None))
            .add(step("left", &ran, Some(("l", 1))))
            .add(step("right", &ran, Some(("r", 2))))
            .add(step("bottom", &ran, None))
            .link("top", "left")
            .link("top", "right")
            .link_if(
                "left",
                "bottom",
                Decider::new(move |r| {
                    seen_l
                        .lock()
                        .unwrap()
                        .push(r.atoms().map(String::from).collect());
                    r.get::<u32>("left") == Some(&1)
                }),
            )
            .link_if(
                "right",
                "bottom",
                Decider::new(move |r| {
                    seen_r
                        .lock()
                        .unwrap()
                        .push(r.atoms().map(String::from).collect());
                    r.get::<u32>("right") == Some(&1)
                })
                .depth(Depth::Atom),
            )
            .build()
            .unwrap();
        let (mut engine, _) = engine(flow, mode);
        engine.run().await.unwrap();
        let mut ran = ran.lock().unwrap().clone();
        ran.sort();
        assert_eq!(ran, ["left", "right", "top"], "{mode:?}");
        assert_eq!(engine.atom_state("bottom"), Some(AtomState::Ignore));
        // Each decider saw the results of both incoming decider links.
        assert_eq!(
            *seen.lock().unwrap(),
            vec![vec!["left".to_string(), "right".to_string()]; 2],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn an_ignored_atom_is_skipped_during_revert() {
    for mode in MODES {
        let ran: Ran = Arc::default();
        let flow = Flow::linear("f")
            .add(
                Flow::graph("g")
                    .add(step("a", &ran, Some(("x", 1))))
                    .add(step("skipped", &ran, None))
                    .link_if("a", "skipped", Decider::new(|_| false).depth(Depth::Atom)),
            )
            .add(failing("boom"))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect_err("boom fails");
        let events = capture.events();
        assert_eq!(
            events,
            [
                "f.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(1)",
                "skipped.t IGNORE",
                "boom.t RUNNING",
                "boom.t FAILURE(Failure: Woot!)",
                "boom.t REVERTING",
                "boom.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "f.f REVERTED"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.atom_state("skipped"), Some(AtomState::Ignore));
        // A new run starts over, the ignored atom included.
        capture.clear();
        engine.run().await.expect_err("boom fails again");
        assert!(capture.events().contains(&"skipped.t PENDING".to_string()));
    }
}

#[test]
fn a_decider_link_must_start_at_an_atom() {
    let ran: Ran = Arc::default();
    let err = Flow::graph("g")
        .add(Flow::linear("sub").add(step("a", &ran, None)))
        .add(step("b", &ran, None))
        .link_if("sub", "b", Decider::new(|_| true))
        .build()
        .unwrap_err();
    assert_eq!(
        err.errors(),
        [BuildError::DeciderFromFlow {
            flow: "g".into(),
            from: "sub".into(),
            to: "b".into()
        }]
    );
    assert_eq!(
        err.errors()[0].to_string(),
        "graph flow `g` has a decider on the link `sub` -> `b`, but `sub` is a flow: a decider \
         reads an atom's result, so link from an atom"
    );
}
