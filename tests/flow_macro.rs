//! `flow!` at run time: the typed API (`run`, `engine`, `outputs`,
//! `compiled`), every syntax form (rebinding, injected constants, `as` labels,
//! impl-block tasks given as struct literals or `Type = expr`, nested linear,
//! unordered and graph groups, links with and without deciders, priorities,
//! retry groups providing a symbol), reverting in reverse dependency order,
//! tasks from other modules and from another crate, and a task with many
//! inputs; on the serial and the parallel engine where order allows.

mod common;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use common::{MODES, pos};
use flow::{
    AtomState, CaptureListener, Decider, FlowState, Mode, Outcome, Results, Retry, RunError,
    TaskError, TypedFlow, flow, task,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Locks a mutex, ignoring poisoning (a failed assertion elsewhere).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A log shared by impl-block tasks, to see what ran and in which order.
type Log = Arc<Mutex<Vec<String>>>;

/// The lines logged so far.
fn lines(log: &Log) -> Vec<String> {
    lock(log).clone()
}

/// The atom names of a typed flow, in declaration order.
fn atom_names<I, O>(flow: &TypedFlow<I, O>) -> Vec<String>
where
    I: flow::checked::FlowInputs,
    O: flow::checked::FlowOutputs,
{
    flow.compiled()
        .expect("the flow builds")
        .atom_names()
        .map(String::from)
        .collect()
}

/// The `RUNNING` events of atoms, in order: which atoms started, by name.
fn started(events: &[String]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.strip_suffix(".t RUNNING"))
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

#[task(provides = stopped)]
fn stop_server(server: &str) -> String {
    format!("stopped {server}")
}

#[task(provides = backup)]
fn backup_database(db: &str) -> String {
    format!("{db}.bak")
}

#[task(provides = migrated)]
fn upgrade_database(backup: &str, version: u32, retries: u32) -> String {
    format!("{backup} -> v{version} ({retries} retries)")
}

#[task(provides = report)]
fn summarize(stopped: &str, migrated: &str) -> String {
    format!("{stopped}; {migrated}")
}

#[task(provides = pong)]
fn ping() -> u32 {
    42
}

#[task(provides = value)]
fn increment(value: u32) -> u32 {
    value + 1
}

#[task(provides = product)]
fn multiply(value: u32, factor: u32) -> u32 {
    value * factor
}

#[task(provides = factor)]
fn pick_factor() -> u32 {
    10
}

#[task(provides = greeting)]
fn greet(name: &str, punctuation: &str) -> String {
    format!("hello {name}{punctuation}")
}

#[task(name = "nightly-backup", provides = archive)]
fn archive_database(db: &str) -> String {
    format!("{db}.tar")
}

#[task(provides = staged)]
fn stage(item: &str) -> String {
    format!("{item} staged")
}

#[task]
fn explode(staged: &str) -> Result<(), TaskError> {
    Err(TaskError::msg(format!("cannot ship `{staged}`")))
}

#[task]
fn step_a() {}

#[task]
fn step_b() {}

#[task]
fn step_c() {}

#[task]
fn step_d() {}

/// An impl-block task that logs what it does, under its tag.
#[derive(Clone, Debug, Default)]
struct Recorder {
    log: Log,
    tag: &'static str,
}

#[task(provides = recorded)]
impl Recorder {
    fn execute(&self, item: &str) -> String {
        let line = format!("{} {item}", self.tag);
        lock(&self.log).push(line.clone());
        line
    }

    fn revert(&self, item: &str, outcome: &Outcome) {
        let done = outcome.output::<String>(0).cloned();
        lock(&self.log).push(format!("undo {} {item} {done:?}", self.tag));
    }
}

/// An impl-block task that always fails, logging that it tried.
#[derive(Clone, Debug, Default)]
struct Breaker {
    log: Log,
}

#[task]
impl Breaker {
    fn execute(&self, recorded: &str) -> Result<(), TaskError> {
        lock(&self.log).push(format!("break after `{recorded}`"));
        Err(TaskError::msg("broken"))
    }
}

// ---------------------------------------------------------------------------
// The typed API
// ---------------------------------------------------------------------------

#[tokio::test]
async fn run_returns_the_declared_outputs_in_declaration_order() {
    let upgrade = flow! {
        upgrade(server: String, version: u32, main_db: String) -> (report: String, backup: String) {
            stop_server,
            backup_database(db = main_db),
            upgrade_database(retries = 3),
            summarize,
        }
    };
    let _: &TypedFlow<(String, u32, String), (String, String)> = &upgrade;
    let (report, backup) = upgrade
        .run(("web1".to_string(), 7, "main".to_string()))
        .await
        .expect("runs");
    assert_eq!(report, "stopped web1; main.bak -> v7 (3 retries)");
    assert_eq!(backup, "main.bak");
    // The same flow value runs again, with other inputs.
    let again = upgrade
        .run(("web2".to_string(), 8, "aux".to_string()))
        .await
        .expect("runs again");
    assert_eq!(
        again,
        (
            "stopped web2; aux.bak -> v8 (3 retries)".to_string(),
            "aux.bak".to_string()
        )
    );
}

#[tokio::test]
async fn a_declared_output_may_be_a_declared_input() {
    let echo = flow! {
        echo(version: u32, db: String) -> (backup: String, version: u32) {
            backup_database,
        }
    };
    assert_eq!(
        echo.run((7, "main".to_string())).await.expect("runs"),
        ("main.bak".to_string(), 7)
    );
}

#[tokio::test]
async fn zero_inputs_and_zero_outputs() {
    let pinger = flow! {
        pinger() {
            ping,
        }
    };
    let _: &TypedFlow<(), ()> = &pinger;
    let empty = flow! { empty() -> () {} };
    let _: &TypedFlow<(), ()> = &empty;
    let () = empty.run(()).await.expect("runs");
    assert_eq!(empty.compiled().expect("builds").len(), 0);
    let () = pinger.run(()).await.expect("runs");
    let mut engine = pinger.engine(()).expect("builds").build();
    engine.run().await.expect("runs");
    assert_eq!(engine.fetch::<u32>("pong"), Some(&42));
    assert_eq!(pinger.outputs(&engine), Some(()));

    // No inputs, one output.
    let answer = flow! {
        answer() -> (pong: u32) {
            ping,
        }
    };
    let _: &TypedFlow<(), (u32,)> = &answer;
    assert_eq!(answer.run(()).await.expect("runs"), (42,));

    // Inputs, no outputs: the `-> (...)` part is optional.
    let silent = flow! {
        silent(value: u32) {
            increment,
        }
    };
    let _: &TypedFlow<(u32,), ()> = &silent;
    let mut engine = silent.engine((1,)).expect("builds").build();
    engine.run().await.expect("runs");
    assert_eq!(engine.fetch::<u32>("value"), Some(&2));
}

#[tokio::test]
async fn an_engine_from_the_typed_flow_runs_on_both_engines_and_yields_the_outputs() {
    let upgrade = flow! {
        upgrade(server: String, version: u32, db: String) -> (report: String) {
            stop_server,
            backup_database,
            upgrade_database(retries = 1),
            summarize,
        }
    };
    for mode in MODES {
        let capture = CaptureListener::new();
        let mut engine = upgrade
            .engine(("web1".to_string(), 2, "main".to_string()))
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        // Before the run, nothing is there.
        assert_eq!(upgrade.outputs(&engine), None, "{mode:?}");
        engine.run().await.expect("runs");
        assert_eq!(
            upgrade.outputs(&engine),
            Some(("stopped web1; main.bak -> v2 (1 retries)".to_string(),)),
            "{mode:?}"
        );
        assert_eq!(
            capture.events(),
            [
                "upgrade.f RUNNING",
                "stop_server.t RUNNING",
                "stop_server.t SUCCESS(\"stopped web1\")",
                "backup_database.t RUNNING",
                "backup_database.t SUCCESS(\"main.bak\")",
                "upgrade_database.t RUNNING",
                "upgrade_database.t SUCCESS(\"main.bak -> v2 (1 retries)\")",
                "summarize.t RUNNING",
                "summarize.t SUCCESS(\"stopped web1; main.bak -> v2 (1 retries)\")",
                "upgrade.f SUCCESS",
            ],
            "{mode:?}"
        );
    }
    // `parallel(n)` on the builder, as well as `mode`.
    let mut engine = upgrade
        .engine(("web3".to_string(), 3, "x".to_string()))
        .expect("builds")
        .parallel(4)
        .build();
    engine.run().await.expect("runs");
    assert_eq!(
        upgrade.outputs(&engine),
        Some(("stopped web3; x.bak -> v3 (1 retries)".to_string(),))
    );
}

#[tokio::test]
async fn a_reverted_run_returns_reverted_and_has_no_outputs() {
    let ship = flow! {
        ship(item: String) -> (staged: String) {
            stage,
            explode,
        }
    };
    let err = ship.run(("box".to_string(),)).await.unwrap_err();
    match &err {
        RunError::Reverted { flow, failures } => {
            assert_eq!(flow, "ship");
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].atom, "explode");
            assert_eq!(failures[0].failure.message(), "cannot ship `box staged`");
        }
        other => panic!("expected `Reverted`, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "flow `ship` was reverted: task `explode` failed: cannot ship `box staged`"
    );
    for mode in MODES {
        let mut engine = ship
            .engine(("crate".to_string(),))
            .expect("builds")
            .mode(mode)
            .build();
        let err = engine.run().await.unwrap_err();
        assert!(
            matches!(&err, RunError::Reverted { flow, .. } if flow == "ship"),
            "{mode:?}: {err:?}"
        );
        assert_eq!(engine.state(), FlowState::Reverted, "{mode:?}");
        assert_eq!(engine.atom_state("stage"), Some(AtomState::Reverted));
        // `staged` was produced, then reverted: the output is gone.
        assert_eq!(ship.outputs(&engine), None, "{mode:?}");
    }
}

#[test]
fn compiled_lists_the_atoms_in_declaration_order_under_their_names() {
    let log = Log::default();
    let release = flow! {
        release(server: String, db: String, value: u32, item: String) {
            stop_server,
            archive_database,
            increment as bump,
            unordered checks {
                backup_database,
                Recorder { log: log.clone(), tag: "r" },
            },
            graph {
                multiply(factor = 2),
            },
        }
    };
    let compiled = release.compiled().expect("builds");
    assert_eq!(compiled.name(), "release");
    assert_eq!(compiled.len(), 6);
    assert_eq!(
        atom_names(&release),
        [
            "stop_server",
            "nightly-backup",
            "bump",
            "backup_database",
            "Recorder",
            "multiply"
        ]
    );
    let inputs: Vec<&str> = compiled.inputs().iter().map(|s| s.name()).collect();
    assert_eq!(inputs, ["server", "db", "value", "item"]);
    assert_eq!(compiled.predecessors("bump").unwrap(), ["nightly-backup"]);
}

#[tokio::test]
async fn a_declared_output_ignored_by_a_decider_is_missing_outputs() {
    let gated = flow! {
        gated(value: u32, open: bool) -> (product: u32) {
            graph gate {
                pass_through,
                multiply(factor = 3);
                pass_through -> multiply if Decider::new(|r: &Results| r.get::<bool>("pass_through") == Some(&true)),
            },
        }
    };
    assert_eq!(gated.run((5, true)).await.expect("open"), (15,));
    let err = gated.run((5, false)).await.unwrap_err();
    assert!(
        matches!(&err, RunError::MissingOutputs { flow } if flow == "gated"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "flow `gated` finished without all of its declared outputs: a decider skipped a task \
         that provides one; read the outputs with `Engine::fetch` instead"
    );
}

#[task(provides = verdict)]
fn pass_through(open: bool) -> bool {
    open
}

// ---------------------------------------------------------------------------
// Rebinding and injected constants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_rebound_input_reads_another_symbol() {
    let rebinding = flow! {
        rebinding(db: String, spare_db: String, server: String) -> (backup: String, stopped: String) {
            backup_database(db = spare_db),
            stop_server(server = backup),
        }
    };
    for mode in MODES {
        let mut engine = rebinding
            .engine(("main".to_string(), "spare".to_string(), "web".to_string()))
            .expect("builds")
            .mode(mode)
            .build();
        engine.run().await.expect("runs");
        // `db` reads `spare_db`, not the flow input `db`; `server` reads the
        // output `backup`, not the flow input `server`.
        assert_eq!(
            rebinding.outputs(&engine),
            Some(("spare.bak".to_string(), "stopped spare.bak".to_string())),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn an_injected_constant_is_typed_as_the_input_and_wins_over_every_provider() {
    let base = 4u32;
    let injected = flow! {
        injected(value: u32, factor: u32, name: String) -> (product: u32, greeting: String) {
            pick_factor,
            // `factor` is provided by the flow input and by `pick_factor`; the
            // constant wins. The literal `3` is typed as the input, a `u32`.
            multiply(factor = 3),
            // Any expression, evaluated when the flow is made.
            greet(punctuation = "!".repeat(base as usize)),
        }
    };
    for mode in MODES {
        let mut engine = injected
            .engine((7, 5, "ann".to_string()))
            .expect("builds")
            .mode(mode)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            injected.outputs(&engine),
            Some((21, "hello ann!!!!".to_string())),
            "{mode:?}"
        );
        // The other providers of `factor` are untouched.
        assert_eq!(engine.fetch::<u32>("factor"), Some(&10), "{mode:?}");
    }
    // A local variable is injected when written as an expression (a bare
    // identifier would rebind the input to the symbol of that name).
    let factor = base * 2;
    let local = flow! {
        local(value: u32) -> (product: u32) {
            multiply(factor = { factor }),
        }
    };
    assert_eq!(local.run((3,)).await.expect("runs"), (24,));
}

// ---------------------------------------------------------------------------
// Labels and impl-block tasks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn as_labels_rename_atoms_so_a_task_can_appear_twice() {
    let twice = flow! {
        twice(value: u32) -> (value: u32) {
            increment as first,
            increment as second,
        }
    };
    assert_eq!(atom_names(&twice), ["first", "second"]);
    for mode in MODES {
        let capture = CaptureListener::atoms_only();
        let mut engine = twice
            .engine((5,))
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(twice.outputs(&engine), Some((7,)), "{mode:?}");
        assert_eq!(
            capture.events(),
            [
                "first.t RUNNING",
                "first.t SUCCESS(6)",
                "second.t RUNNING",
                "second.t SUCCESS(7)",
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn impl_block_tasks_as_struct_literals_and_as_values() {
    for mode in MODES {
        let log = Log::default();
        let second = Recorder {
            log: log.clone(),
            tag: "second",
        };
        let recorders = flow! {
            recorders(item: String) -> (recorded: String) {
                Recorder { log: log.clone(), tag: "first" } as first,
                Recorder = second.clone(),
                Recorder { tag: "third", ..second.clone() } as third,
                Recorder as fourth = Recorder { log: log.clone(), tag: "fourth" },
            }
        };
        assert_eq!(
            atom_names(&recorders),
            ["first", "Recorder", "third", "fourth"]
        );
        let mut engine = recorders
            .engine(("box".to_string(),))
            .expect("builds")
            .mode(mode)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            recorders.outputs(&engine),
            Some(("fourth box".to_string(),)),
            "{mode:?}"
        );
        assert_eq!(
            lines(&log),
            ["first box", "second box", "third box", "fourth box"],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn impl_block_tasks_are_reverted_in_reverse_order_with_their_outcome() {
    for mode in MODES {
        let log = Log::default();
        let shipping = flow! {
            shipping(item: String) {
                Recorder { log: log.clone(), tag: "pack" } as pack,
                Recorder { log: log.clone(), tag: "label" } as label,
                Breaker = Breaker { log: log.clone() },
            }
        };
        let mut engine = shipping
            .engine(("cup".to_string(),))
            .expect("builds")
            .mode(mode)
            .build();
        let err = engine.run().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "flow `shipping` was reverted: task `Breaker` failed: broken",
            "{mode:?}"
        );
        assert_eq!(
            lines(&log),
            [
                "pack cup",
                "label cup",
                "break after `label cup`",
                "undo label cup Some(\"label cup\")",
                "undo pack cup Some(\"pack cup\")",
            ],
            "{mode:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Groups, links and deciders
// ---------------------------------------------------------------------------

#[task(provides = l1)]
fn left_a(seed: u32) -> u32 {
    seed + 1
}

#[task(provides = left)]
fn left_b(l1: u32) -> u32 {
    l1 * 2
}

#[task(provides = right)]
fn right_b(r1: u32) -> u32 {
    r1 * 10
}

#[task(provides = r1)]
fn right_a(seed: u32) -> u32 {
    seed + 2
}

#[task(provides = middle)]
fn middle(seed: u32) -> u32 {
    seed * 100
}

#[task(provides = total)]
fn combine(left: u32, right: u32, middle: u32) -> u32 {
    left + right + middle
}

#[tokio::test]
async fn nested_linear_unordered_and_graph_groups() {
    let nested = flow! {
        nested(seed: u32) -> (total: u32) {
            unordered fan {
                linear left { left_a, left_b },
                graph right { right_b, right_a },
                linear { middle },
            },
            combine,
        }
    };
    assert_eq!(
        atom_names(&nested),
        [
            "left_a", "left_b", "right_b", "right_a", "middle", "combine"
        ]
    );
    for mode in MODES {
        let capture = CaptureListener::atoms_only();
        let mut engine = nested
            .engine((1,))
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        // left = (1 + 1) * 2, right = (1 + 2) * 10, middle = 1 * 100.
        assert_eq!(nested.outputs(&engine), Some((134,)), "{mode:?}");
        let events = capture.events();
        // The graph runs `right_a` before `right_b`, which reads its `r1`;
        // the linear group keeps its order; `combine` waits for them all.
        assert!(pos(&events, "left_a.t SUCCESS(2)") < pos(&events, "left_b.t RUNNING"));
        assert!(pos(&events, "right_a.t SUCCESS(3)") < pos(&events, "right_b.t RUNNING"));
        for done in [
            "left_b.t SUCCESS(4)",
            "right_b.t SUCCESS(30)",
            "middle.t SUCCESS(100)",
        ] {
            assert!(
                pos(&events, done) < pos(&events, "combine.t RUNNING"),
                "{mode:?}"
            );
        }
        if mode == Mode::Serial {
            assert_eq!(
                started(&events),
                [
                    "left_a", "left_b", "right_a", "right_b", "middle", "combine"
                ]
            );
        }
    }
}

#[tokio::test]
async fn graph_links_order_items_without_data() {
    let linked = flow! {
        linked() {
            graph wiring {
                step_a,
                step_b,
                step_c;
                step_c -> step_a,
                step_b -> step_c,
            },
        }
    };
    // Links between an atom and a named group.
    let to_group = flow! {
        to_group() {
            graph wiring {
                step_a,
                linear tail { step_b, step_c },
                step_d;
                tail -> step_a,
                step_d -> tail,
            },
        }
    };
    for mode in MODES {
        let capture = CaptureListener::atoms_only();
        let mut engine = linked
            .engine(())
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            started(&capture.events()),
            ["step_b", "step_c", "step_a"],
            "{mode:?}"
        );

        let capture = CaptureListener::atoms_only();
        let mut engine = to_group
            .engine(())
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            started(&capture.events()),
            ["step_d", "step_b", "step_c", "step_a"],
            "{mode:?}"
        );
    }
    assert_eq!(
        linked.compiled().unwrap().predecessors("step_a").unwrap(),
        ["step_c"]
    );
}

#[tokio::test]
async fn a_decider_that_says_no_ignores_the_target() {
    let gate = flow! {
        gate(open: bool) {
            graph wiring {
                pass_through,
                step_a,
                step_b;
                pass_through -> step_a if Decider::new(|r: &Results| r.get::<bool>("pass_through") == Some(&true)),
                pass_through -> step_b,
            },
        }
    };
    for mode in MODES {
        for open in [true, false] {
            let capture = CaptureListener::atoms_only();
            let mut engine = gate
                .engine((open,))
                .expect("builds")
                .mode(mode)
                .listener(capture.clone())
                .build();
            engine.run().await.expect("runs");
            assert_eq!(engine.state(), FlowState::Success);
            let events = capture.events();
            assert_eq!(
                events[..2],
                [
                    "pass_through.t RUNNING".to_string(),
                    format!("pass_through.t SUCCESS({open})")
                ],
                "{mode:?}"
            );
            if open {
                assert_eq!(engine.atom_state("step_a"), Some(AtomState::Success));
                assert_eq!(started(&events), ["pass_through", "step_a", "step_b"]);
                assert!(!events.iter().any(|e| e.contains("IGNORE")), "{events:?}");
            } else {
                assert_eq!(engine.atom_state("step_a"), Some(AtomState::Ignore));
                assert_eq!(started(&events), ["pass_through", "step_b"]);
                let ignored: Vec<&String> =
                    events.iter().filter(|e| e.ends_with("IGNORE")).collect();
                assert_eq!(ignored, ["step_a.t IGNORE"], "{mode:?}");
            }
            assert_eq!(engine.atom_state("step_b"), Some(AtomState::Success));
        }
    }
}

#[tokio::test]
async fn links_name_items_by_label_while_atoms_keep_their_task_names() {
    // `archive_database` is named `nightly-backup` by its `#[task]`: links
    // use the label written in the flow, deciders read the atom's name.
    let labelled = flow! {
        labelled(db: String) {
            graph wiring {
                step_a as first,
                step_b as second,
                archive_database;
                second -> first,
                archive_database -> second if Decider::new(|r: &Results| {
                    r.get::<String>("nightly-backup").map(String::as_str) == Some("keep.tar")
                }),
            },
        }
    };
    assert_eq!(atom_names(&labelled), ["first", "second", "nightly-backup"]);
    let compiled = labelled.compiled().expect("builds");
    assert_eq!(compiled.predecessors("first").unwrap(), ["second"]);
    assert_eq!(compiled.predecessors("second").unwrap(), ["nightly-backup"]);
    for mode in MODES {
        for (db, ran) in [
            ("keep", vec!["nightly-backup", "second", "first"]),
            ("drop", vec!["nightly-backup"]),
        ] {
            let capture = CaptureListener::atoms_only();
            let mut engine = labelled
                .engine((db.to_string(),))
                .expect("builds")
                .mode(mode)
                .listener(capture.clone())
                .build();
            engine.run().await.expect("runs");
            assert_eq!(started(&capture.events()), ran, "{mode:?} {db}");
            if db == "drop" {
                // The default depth ignores the target and what comes after it.
                assert_eq!(engine.atom_state("second"), Some(AtomState::Ignore));
                assert_eq!(engine.atom_state("first"), Some(AtomState::Ignore));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Priorities
// ---------------------------------------------------------------------------

#[task(priority = 7)]
fn urgent() {}

const HIGH: i32 = 4;

#[tokio::test]
async fn priorities_order_ready_atoms_on_the_serial_engine() {
    let prioritized = flow! {
        prioritized() {
            unordered {
                step_a,
                #[priority(HIGH + 1)] step_b,
                #[priority(9)] step_c,
                urgent,
                #[priority(-1)] urgent as demoted,
                step_d,
            },
        }
    };
    let capture = CaptureListener::atoms_only();
    let mut engine = prioritized
        .engine(())
        .expect("builds")
        .serial()
        .listener(capture.clone())
        .build();
    engine.run().await.expect("runs");
    // 9, then the task's own default 7, then 5, then 0 in declaration order,
    // then -1.
    assert_eq!(
        started(&capture.events()),
        ["step_c", "urgent", "step_b", "step_a", "step_d", "demoted"]
    );
}

// ---------------------------------------------------------------------------
// Retry groups
// ---------------------------------------------------------------------------

#[task(provides = deployed)]
fn flaky_deploy(app: &str, attempt: u32) -> Result<String, TaskError> {
    if attempt < 3 {
        Err(TaskError::msg(format!("attempt {attempt} failed")))
    } else {
        Ok(format!("{app} deployed on attempt {attempt}"))
    }
}

#[tokio::test]
async fn a_retry_group_provides_the_attempt_and_runs_its_tasks_again() {
    let rollout = flow! {
        rollout(app: String) -> (deployed: String) {
            #[retry(Retry::times(3), provides(attempt: u32))]
            linear verify {
                flaky_deploy,
            },
        }
    };
    assert_eq!(atom_names(&rollout), ["verify.retry", "flaky_deploy"]);
    for mode in MODES {
        let capture = CaptureListener::atoms_only();
        let mut engine = rollout
            .engine(("shop".to_string(),))
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("succeeds on the third attempt");
        assert_eq!(
            rollout.outputs(&engine),
            Some(("shop deployed on attempt 3".to_string(),)),
            "{mode:?}"
        );
        assert_eq!(engine.attempts("flaky_deploy"), Some(3), "{mode:?}");
        assert_eq!(engine.fetch::<u32>("attempt"), Some(&3), "{mode:?}");
        let mut expected = Vec::new();
        for attempt in 1..=2 {
            expected.extend([
                "verify.retry.r RUNNING".to_string(),
                format!("verify.retry.r SUCCESS({attempt})"),
                "flaky_deploy.t RUNNING".to_string(),
                format!("flaky_deploy.t FAILURE(Failure: attempt {attempt} failed)"),
                "flaky_deploy.t REVERTING".to_string(),
                "flaky_deploy.t REVERTED(())".to_string(),
                "verify.retry.r RETRYING".to_string(),
                "flaky_deploy.t PENDING".to_string(),
            ]);
        }
        expected.extend([
            "verify.retry.r RUNNING".to_string(),
            "verify.retry.r SUCCESS(3)".to_string(),
            "flaky_deploy.t RUNNING".to_string(),
            "flaky_deploy.t SUCCESS(\"shop deployed on attempt 3\")".to_string(),
        ]);
        assert_eq!(capture.events(), expected, "{mode:?}");
    }
    // The typed run gives the same result.
    assert_eq!(
        rollout.run(("cart".to_string(),)).await.expect("runs"),
        ("cart deployed on attempt 3".to_string(),)
    );
}

#[tokio::test]
async fn an_exhausted_retry_group_reverts_the_flow() {
    let rollout = flow! {
        rollout(app: String) -> (deployed: String) {
            stage(item = app),
            #[retry(Retry::times(2).named("twice"), provides(attempt: u32))]
            linear verify {
                flaky_deploy,
            },
        }
    };
    assert_eq!(atom_names(&rollout), ["stage", "twice", "flaky_deploy"]);
    let capture = CaptureListener::atoms_only();
    let mut engine = rollout
        .engine(("shop".to_string(),))
        .expect("builds")
        .listener(capture.clone())
        .build();
    let err = engine.run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "flow `rollout` was reverted: task `flaky_deploy` failed: attempt 2 failed"
    );
    assert_eq!(engine.attempts("flaky_deploy"), Some(2));
    assert_eq!(rollout.outputs(&engine), None);
    let events = capture.events();
    assert_eq!(
        events[events.len() - 8..],
        [
            "flaky_deploy.t RUNNING",
            "flaky_deploy.t FAILURE(Failure: attempt 2 failed)",
            "flaky_deploy.t REVERTING",
            "flaky_deploy.t REVERTED(())",
            "twice.r REVERTING",
            "twice.r REVERTED(())",
            "stage.t REVERTING",
            "stage.t REVERTED(())",
        ][..]
    );
}

#[tokio::test]
async fn two_retry_groups_with_named_controllers() {
    // A controller is an atom, named after its group unless the strategy is
    // named: names given to the strategies are kept.
    let both = flow! {
        both(app: String) -> (deployed: String) {
            #[retry(Retry::times(3).named("first-retry"), provides(attempt: u32))]
            linear first { flaky_deploy as first_deploy },
            #[retry(Retry::times(3).named("second-retry"), provides(attempt: u32))]
            linear second { flaky_deploy as second_deploy },
        }
    };
    assert_eq!(
        atom_names(&both),
        [
            "first-retry",
            "first_deploy",
            "second-retry",
            "second_deploy"
        ]
    );
    let mut engine = both.engine(("shop".to_string(),)).expect("builds").build();
    engine.run().await.expect("runs");
    assert_eq!(
        both.outputs(&engine),
        Some(("shop deployed on attempt 3".to_string(),))
    );
    assert_eq!(engine.attempts("first_deploy"), Some(3));
    assert_eq!(engine.attempts("second_deploy"), Some(3));
}

#[tokio::test]
async fn a_retry_type_the_strategy_does_not_provide_is_a_build_error_at_run_time() {
    // What `flow!` cannot see while compiling: `Retry::times` provides a
    // `u32`, the group declares a `String`.
    let wrong = flow! {
        wrong(app: String) {
            #[retry(Retry::times(3), provides(attempt: String))]
            linear verify { greet(name = app, punctuation = attempt) },
        }
    };
    let errors = wrong.compiled().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "flow `wrong` is invalid: task `greet` requires `attempt: String`, but its provider \
         `verify.retry` provides `attempt` as `u32`: make the types agree, or rebind the input to \
         another symbol"
    );
    let err = wrong.run(("shop".to_string(),)).await.unwrap_err();
    assert!(matches!(&err, RunError::Build(e) if e == errors), "{err:?}");
    assert!(matches!(
        wrong.engine(("shop".to_string(),)),
        Err(RunError::Build(_))
    ));
}

// ---------------------------------------------------------------------------
// Reverting
// ---------------------------------------------------------------------------

#[task(provides = a_out)]
fn node_a() -> u32 {
    1
}

#[task(provides = c_out)]
fn node_c(a_out: u32) -> u32 {
    a_out + 1
}

#[task]
fn node_b(c_out: u32) -> Result<(), TaskError> {
    Err(TaskError::msg(format!("refusing {c_out}")))
}

#[tokio::test]
async fn a_failure_reverts_in_reverse_dependency_order() {
    // Declared a, b, c; the data orders them a, c, b: the revert is b, c, a.
    let unwind = flow! {
        unwind() {
            graph g { node_a, node_b, node_c },
        }
    };
    for mode in MODES {
        let capture = CaptureListener::atoms_only();
        let mut engine = unwind
            .engine(())
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.unwrap_err();
        assert!(matches!(err, RunError::Reverted { .. }), "{err:?}");
        assert_eq!(
            capture.events(),
            [
                "node_a.t RUNNING",
                "node_a.t SUCCESS(1)",
                "node_c.t RUNNING",
                "node_c.t SUCCESS(2)",
                "node_b.t RUNNING",
                "node_b.t FAILURE(Failure: refusing 2)",
                "node_b.t REVERTING",
                "node_b.t REVERTED(())",
                "node_c.t REVERTING",
                "node_c.t REVERTED(())",
                "node_a.t REVERTING",
                "node_a.t REVERTED(())",
            ],
            "{mode:?}"
        );
    }
}

#[task]
fn fail_after(backup: &str, archive: &str) -> Result<(), TaskError> {
    Err(TaskError::msg(format!(
        "no room for {backup} and {archive}"
    )))
}

#[tokio::test]
async fn a_failure_after_an_unordered_group_reverts_it_before_what_ran_earlier() {
    let upgrade = flow! {
        upgrade(server: String, db: String) {
            stop_server,
            unordered copies { backup_database, archive_database },
            fail_after,
        }
    };
    for mode in MODES {
        let capture = CaptureListener::atoms_only();
        let mut engine = upgrade
            .engine(("web".to_string(), "main".to_string()))
            .expect("builds")
            .mode(mode)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "flow `upgrade` was reverted: task `fail_after` failed: no room for main.bak and main.tar"
        );
        let events = capture.events();
        let reverted: Vec<&str> = events
            .iter()
            .filter_map(|e| e.strip_suffix(".t REVERTED(())"))
            .collect();
        assert_eq!(reverted.len(), 4, "{events:?}");
        assert_eq!(reverted[0], "fail_after", "{mode:?}");
        assert_eq!(reverted[3], "stop_server", "{mode:?}");
        let mut middle = reverted[1..3].to_vec();
        middle.sort_unstable();
        assert_eq!(middle, ["backup_database", "nightly-backup"], "{mode:?}");
        if mode == Mode::Serial {
            assert_eq!(
                events,
                [
                    "stop_server.t RUNNING",
                    "stop_server.t SUCCESS(\"stopped web\")",
                    "backup_database.t RUNNING",
                    "backup_database.t SUCCESS(\"main.bak\")",
                    "nightly-backup.t RUNNING",
                    "nightly-backup.t SUCCESS(\"main.tar\")",
                    "fail_after.t RUNNING",
                    "fail_after.t FAILURE(Failure: no room for main.bak and main.tar)",
                    "fail_after.t REVERTING",
                    "fail_after.t REVERTED(())",
                    "nightly-backup.t REVERTING",
                    "nightly-backup.t REVERTED(())",
                    "backup_database.t REVERTING",
                    "backup_database.t REVERTED(())",
                    "stop_server.t REVERTING",
                    "stop_server.t REVERTED(())",
                ]
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Tasks from other modules and from another crate
// ---------------------------------------------------------------------------

#[allow(unreachable_pub)]
mod ops {
    use flow::task;
    use serde::{Deserialize, Serialize};

    /// Another name for `String`.
    pub type Label = String;

    /// A backup.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Snapshot {
        pub db: String,
        pub generation: u32,
    }

    #[task(provides = snapshot)]
    pub fn backup(db: &Label, generation: u32) -> Snapshot {
        Snapshot {
            db: db.clone(),
            generation,
        }
    }

    #[task(provides = label)]
    pub fn describe(snapshot: &Snapshot) -> Label {
        format!("{}@{}", snapshot.db, snapshot.generation)
    }

    pub mod deep {
        use flow::task;

        #[task(provides = shouted)]
        pub fn shout(label: String) -> String {
            label.to_uppercase()
        }
    }
}

#[tokio::test]
async fn tasks_from_other_modules_by_path_with_type_aliases() {
    let modules = flow! {
        modules(db: ops::Label) -> (shouted: String, snapshot: ops::Snapshot, label: String) {
            ops::backup(generation = 3),
            ops::describe,
            ops::deep::shout,
        }
    };
    assert_eq!(atom_names(&modules), ["backup", "describe", "shout"]);
    for mode in MODES {
        let mut engine = modules
            .engine(("main".to_string(),))
            .expect("builds")
            .mode(mode)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            modules.outputs(&engine),
            Some((
                "MAIN@3".to_string(),
                ops::Snapshot {
                    db: "main".to_string(),
                    generation: 3
                },
                "main@3".to_string()
            )),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn tasks_from_another_crate() {
    use flow_test_tasks::{DbName, Deploy};
    for mode in MODES {
        let deploy = Deploy::default();
        let foreign = flow! {
            foreign(db: DbName, part_a: u64, part_b: u64, part_c: u64, host: String, app: String)
                -> (backup: String, total: u64, labels: Vec<String>, checked: String, version: u32)
            {
                flow_test_tasks::backup_name(generation = 2),
                unordered measure {
                    flow_test_tasks::total_size,
                    flow_test_tasks::label_parts(prefix = "p".to_string()),
                },
                flow_test_tasks::check,
                flow_test_tasks::journal(log = vec!["x".to_string()]),
                Deploy { log: deploy.log.clone() },
            }
        };
        assert_eq!(
            atom_names(&foreign),
            [
                "backup_name",
                "total_size",
                "label_parts",
                "check_host",
                "journal",
                "Deploy"
            ]
        );
        let mut engine = foreign
            .engine((
                DbName("main".to_string()),
                1,
                20,
                300,
                "db1".to_string(),
                "shop".to_string(),
            ))
            .expect("builds")
            .mode(mode)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            foreign.outputs(&engine),
            Some((
                "main.2.bak".to_string(),
                321,
                vec!["p:part_a=1".to_string(), "p:part_b=20".to_string()],
                "db1".to_string(),
                4
            )),
            "{mode:?}"
        );
        assert_eq!(*lock(&deploy.log), ["deploy shop #1"], "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// Many inputs
// ---------------------------------------------------------------------------

#[task(provides = (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9))]
fn spread(seed: u32) -> (u32, u32, u32, u32, u32, u32, u32, u32, u32, u32) {
    (
        seed,
        seed + 1,
        seed + 2,
        seed + 3,
        seed + 4,
        seed + 5,
        seed + 6,
        seed + 7,
        seed + 8,
        seed + 9,
    )
}

#[task(provides = all)]
#[allow(clippy::too_many_arguments)]
fn wide(
    a0: u32,
    a1: u32,
    a2: u32,
    a3: u32,
    a4: u32,
    a5: u32,
    a6: u32,
    a7: u32,
    a8: u32,
    a9: u32,
    a10: u32,
    a11: u32,
    a12: u32,
    a13: u32,
    a14: u32,
    a15: u32,
    a16: u32,
    a17: u32,
    a18: u32,
    a19: u32,
) -> Vec<u32> {
    vec![
        a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
    ]
}

#[tokio::test]
async fn a_task_with_twenty_inputs() {
    let many = flow! {
        many(seed: u32, a10: u32, a11: u32, a12: u32, a13: u32, x: u32, y: u32) -> (all: Vec<u32>) {
            spread,
            wide(a14 = 14, a15 = 15, a16 = 16, a17 = 17, a18 = x, a19 = y),
        }
    };
    for mode in MODES {
        let mut engine = many
            .engine((100, 10, 11, 12, 13, 18, 19))
            .expect("builds")
            .mode(mode)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            many.outputs(&engine),
            Some((vec![
                100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 10, 11, 12, 13, 14, 15, 16, 17,
                18, 19
            ],)),
            "{mode:?}"
        );
    }
}

#[task(provides = all24)]
#[allow(clippy::too_many_arguments)]
fn wide24(
    a0: u32,
    a1: u32,
    a2: u32,
    a3: u32,
    a4: u32,
    a5: u32,
    a6: u32,
    a7: u32,
    a8: u32,
    a9: u32,
    a10: u32,
    a11: u32,
    a12: u32,
    a13: u32,
    a14: u32,
    a15: u32,
    a16: u32,
    a17: u32,
    a18: u32,
    a19: u32,
    a20: u32,
    a21: u32,
    a22: u32,
    a23: u32,
) -> u32 {
    [
        a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
        a20, a21, a22, a23,
    ]
    .iter()
    .sum()
}

#[tokio::test]
async fn a_task_with_as_many_inputs_as_flow_checks() {
    let many = flow! {
        many(seed: u32) -> (all24: u32) {
            spread,
            wide24(
                a10 = 1, a11 = 1, a12 = 1, a13 = 1, a14 = 1, a15 = 1, a16 = 1,
                a17 = 1, a18 = 1, a19 = 1, a20 = 1, a21 = 1, a22 = seed, a23 = seed,
            ),
        }
    };
    // 10 * 100 + (0 + ... + 9) from `spread`, 12 ones, twice the seed.
    assert_eq!(many.run((100,)).await.expect("runs"), (1257,));
}

#[tokio::test]
async fn a_symbol_listed_by_a_collection_can_be_rebound() {
    let collected = flow! {
        collected(part_a: u64, extra: u64, part_c: u64, other_c: u64) -> (total: u64) {
            flow_test_tasks::total_size(part_b = extra, part_c = other_c),
        }
    };
    assert_eq!(collected.run((1, 20, 5, 300)).await.expect("runs"), (321,));
}
