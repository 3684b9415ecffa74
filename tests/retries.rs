//! Retry controllers: scenarios S5 and S6, the built-in strategies (Times,
//! ForEach, ForEachIn, AlwaysRevert, AlwaysRevertAll, custom), nesting,
//! backoff, `retry_if`, a branch still running when a retry starts, the
//! scope of the provided symbol, and the controller's journal entry; on both
//! engines.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MODES, conditional, engine, failing, pos, progressing};
use flow::{
    Args, Atom, AtomKind, AtomState, Backend, Backoff, BuildError, CaptureListener, Decision,
    Engine, Event, Exec, Flow, FlowState, FnTask, History, Intention, Listener, MemoryBackend,
    Method, Missing, Mode, Outputs, Retry, RetryStrategy, RunError, Signature, TaskError, TypeInfo,
    Value,
};
use serde_json::json;
use tokio::sync::oneshot;

fn s5_flow(times: usize) -> flow::CompiledFlow {
    Flow::linear("flow-1")
        .input::<u32>("y")
        .retry(Retry::times(times).named("r1").provides("x"))
        .add(progressing("task1"))
        .add(conditional("task2"))
        .build()
        .expect("valid flow")
}

const S5: [&str; 21] = [
    "flow-1.f RUNNING",
    "r1.r RUNNING",
    "r1.r SUCCESS(1)",
    "task1.t RUNNING",
    "task1.t SUCCESS(5)",
    "task2.t RUNNING",
    "task2.t FAILURE(Failure: Woot!)",
    "task2.t REVERTING",
    "task2.t REVERTED(())",
    "task1.t REVERTING",
    "task1.t REVERTED(())",
    "r1.r RETRYING",
    "task1.t PENDING",
    "task2.t PENDING",
    "r1.r RUNNING",
    "r1.r SUCCESS(2)",
    "task1.t RUNNING",
    "task1.t SUCCESS(5)",
    "task2.t RUNNING",
    "task2.t SUCCESS(())",
    "flow-1.f SUCCESS",
];

/// With nobody listening the serial engine runs plain tasks on the spot: the
/// controller must still run again from `RETRYING`.
#[tokio::test]
async fn s5_succeeds_on_the_second_attempt_with_nobody_listening() {
    for mode in MODES {
        let mut engine = flow::Engine::builder(s5_flow(4))
            .mode(mode)
            .input("y", 2u32)
            .build();
        engine.run().await.expect("succeeds on the second attempt");
        assert_eq!(engine.attempts("r1"), Some(2), "{mode:?}");
        assert_eq!(engine.attempts("task1"), Some(2), "{mode:?}");
        assert_eq!(engine.attempts("task2"), Some(2), "{mode:?}");
        assert_eq!(engine.fetch::<u32>("x"), Some(&2), "{mode:?}");
        assert_eq!(engine.state(), FlowState::Success, "{mode:?}");
    }
}

#[tokio::test]
async fn s5_times_succeeds_on_the_second_attempt() {
    for mode in MODES {
        let capture = flow::CaptureListener::new();
        let mut engine = flow::Engine::builder(s5_flow(4))
            .mode(mode)
            .input("y", 2u32)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("succeeds on the second attempt");
        assert_eq!(capture.events(), S5, "{mode:?}");
        assert_eq!(
            engine.fetch_all().debug_map(),
            [
                ("x".to_string(), "2".to_string()),
                ("y".to_string(), "2".to_string()),
                ("task1".to_string(), "5".to_string())
            ]
            .into()
        );
        assert_eq!(engine.state(), FlowState::Success);
    }
}

#[tokio::test]
async fn s6_retries_exhausted() {
    for mode in MODES {
        let capture = flow::CaptureListener::new();
        let mut engine = flow::Engine::builder(s5_flow(2))
            .mode(mode)
            .input("y", 4u32)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.expect_err("exhausted");
        assert_eq!(
            err.to_string(),
            "flow `flow-1` was reverted: task `task2` failed: Woot!"
        );
        let mut expected: Vec<&str> = S5[..16].to_vec();
        expected.extend([
            "task1.t RUNNING",
            "task1.t SUCCESS(5)",
            "task2.t RUNNING",
            "task2.t FAILURE(Failure: Woot!)",
            "task2.t REVERTING",
            "task2.t REVERTED(())",
            "task1.t REVERTING",
            "task1.t REVERTED(())",
            "r1.r REVERTING",
            "r1.r REVERTED(())",
            "flow-1.f REVERTED",
        ]);
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(
            engine.fetch_all().debug_map(),
            [("y".to_string(), "4".to_string())].into()
        );
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The results of the `SUCCESS` events of `who` (`"r.r"`, `"t.t"`), in order.
fn successes(events: &[String], who: &str) -> Vec<String> {
    let prefix = format!("{who} SUCCESS(");
    events
        .iter()
        .filter_map(|e| e.strip_prefix(&prefix)?.strip_suffix(')'))
        .map(str::to_string)
        .collect()
}

/// Requires `x: u32`; succeeds (providing nothing) only when `ok(x)`, else fails
/// with `x = <x> does not work`.
fn needs_x(name: &'static str, ok: fn(u32) -> bool) -> Atom {
    Atom::new(
        name,
        FnTask::sync(Signature::new().requires::<u32>("x"), move |a| {
            let x = *a.get::<u32>(0)?;
            if ok(x) {
                Ok(Outputs::new())
            } else {
                Err(TaskError::msg(format!("x = {x} does not work")))
            }
        }),
    )
}

/// The events of atom `name` that failed with `message` and was reverted.
fn failed_and_reverted(name: &str, message: &str) -> [String; 4] {
    [
        format!("{name}.t RUNNING"),
        format!("{name}.t FAILURE(Failure: {message})"),
        format!("{name}.t REVERTING"),
        format!("{name}.t REVERTED(())"),
    ]
}

/// The events of controller `r` going back for another attempt, with its
/// sub-flow's atoms `reset` back to `PENDING`.
fn retrying(r: &str, reset: &[&str], value: &str) -> Vec<String> {
    let mut v = vec![format!("{r}.r RETRYING")];
    v.extend(reset.iter().map(|a| a.to_string()));
    v.push(format!("{r}.r RUNNING"));
    v.push(format!("{r}.r SUCCESS({value})"));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// ForEach, ForEachIn
// ---------------------------------------------------------------------------

#[tokio::test]
async fn for_each_tries_every_value_in_order_duplicates_included_then_reverts() {
    for mode in MODES {
        let flow = Flow::linear("fe")
            .retry(
                Retry::for_each(vec![3u32, 2, 3, 5])
                    .named("r")
                    .provides("x"),
            )
            .add(needs_x("t", |_| false))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        let err = engine.run().await.expect_err("every value fails");
        let events = capture.events();
        assert_eq!(successes(&events, "r.r"), ["3", "2", "3", "5"], "{mode:?}");

        let mut expected: Vec<String> = vec!["fe.f RUNNING".into(), "r.r RUNNING".into()];
        expected.push("r.r SUCCESS(3)".into());
        for (k, x) in [3, 2, 3, 5].into_iter().enumerate() {
            if k > 0 {
                expected.extend(retrying("r", &["t.t PENDING"], &x.to_string()));
            }
            expected.extend(failed_and_reverted("t", &format!("x = {x} does not work")));
        }
        expected.extend([
            "r.r REVERTING".into(),
            "r.r REVERTED(())".into(),
            "fe.f REVERTED".into(),
        ]);
        assert_eq!(events, expected, "{mode:?}");
        assert_eq!(
            err.to_string(),
            "flow `fe` was reverted: task `t` failed: x = 5 does not work"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
        assert_eq!(engine.atom_state("r"), Some(AtomState::Reverted));
        assert_eq!(engine.attempts("r"), Some(4));
        assert_eq!(engine.fetch::<u32>("x"), None);
    }
}

#[tokio::test]
async fn for_each_over_an_empty_list_fails_the_controller_clearly() {
    const MESSAGE: &str = "`for_each` has no value to try: its list of values is empty";
    for mode in MODES {
        let flow = Flow::linear("fe")
            .retry(Retry::for_each(Vec::<u32>::new()).named("r").provides("x"))
            .add(needs_x("t", |_| true))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        let err = engine.run().await.expect_err("nothing to try");
        let RunError::Reverted { flow, failures } = &err else {
            panic!("expected Reverted, got {err:?}");
        };
        assert_eq!(flow, "fe");
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].atom, "r");
        assert_eq!(failures[0].failure.message(), MESSAGE);
        assert_eq!(err.failures()[0].atom, "r");
        assert_eq!(
            capture.events(),
            [
                "fe.f RUNNING",
                "r.r RUNNING",
                &format!("r.r FAILURE(Failure: {MESSAGE})"),
                "r.r REVERTING",
                "r.r REVERTED(())",
                "fe.f REVERTED",
            ],
            "{mode:?}: the sub-flow never ran"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
        assert_eq!(engine.attempts("t"), Some(0));
        assert_eq!(engine.atom_state("t"), Some(AtomState::Pending));
    }
}

#[tokio::test]
async fn for_each_in_reads_its_values_from_an_input() {
    for mode in MODES {
        let flow = Flow::linear("fei")
            .input::<Vec<u32>>("values")
            .retry(Retry::for_each_in::<u32>("values").named("r").provides("x"))
            .add(needs_x("seven", |x| x == 7))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::new();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("values", vec![1u32, 7, 9])
            .listener(capture.clone())
            .build();
        engine.run().await.expect("7 works");
        let mut expected: Vec<String> = ["fei.f RUNNING", "r.r RUNNING", "r.r SUCCESS(1)"]
            .map(String::from)
            .into();
        expected.extend(failed_and_reverted("seven", "x = 1 does not work"));
        expected.extend(retrying("r", &["seven.t PENDING"], "7"));
        expected.extend([
            "seven.t RUNNING".into(),
            "seven.t SUCCESS(())".into(),
            "fei.f SUCCESS".into(),
        ]);
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(engine.attempts("r"), Some(2));
        assert_eq!(engine.fetch::<u32>("x"), Some(&7));
        assert_eq!(engine.state(), FlowState::Success);
    }
}

#[tokio::test]
async fn for_each_in_over_an_empty_input_fails_the_controller_clearly() {
    for mode in MODES {
        let flow = Flow::linear("fei")
            .input::<Vec<u32>>("values")
            .retry(Retry::for_each_in::<u32>("values").named("r").provides("x"))
            .add(needs_x("t", |_| true))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("values", Vec::<u32>::new())
            .build();
        let err = engine.run().await.expect_err("nothing to try");
        assert_eq!(
            err.to_string(),
            "flow `fei` was reverted: task `r` failed: `for_each_in` has no value to try: its \
             list of values is empty"
        );
        assert_eq!(engine.attempts("t"), Some(0), "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// Nested controllers
// ---------------------------------------------------------------------------

fn nested(inner: Retry) -> flow::CompiledFlow {
    Flow::linear("nested")
        .retry(Retry::times(2).named("outer").provides("o"))
        .add(
            Flow::linear("inner-flow")
                .retry(inner.named("inner").provides("i"))
                .add(failing("t")),
        )
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn an_exhausted_inner_controller_hands_over_to_the_outer_one() {
    for mode in MODES {
        let (mut engine, capture) = engine(nested(Retry::times(2)), mode);
        let err = engine.run().await.expect_err("everything exhausted");
        assert_eq!(
            err.to_string(),
            "flow `nested` was reverted: task `t` failed: Woot!"
        );
        let events = capture.events();
        assert_eq!(
            successes(&events, "inner.r"),
            ["1", "2", "1", "2"],
            "{mode:?}"
        );
        assert_eq!(successes(&events, "outer.r"), ["1", "2"], "{mode:?}");

        // One pass of the outer sub-flow: the inner controller's two attempts.
        let inner_twice = |outer: &str| {
            let mut v: Vec<String> = vec![
                format!("outer.r RUNNING"),
                format!("outer.r SUCCESS({outer})"),
                "inner.r RUNNING".into(),
                "inner.r SUCCESS(1)".into(),
            ];
            v.extend(failed_and_reverted("t", "Woot!"));
            v.extend(retrying("inner", &["t.t PENDING"], "2"));
            v.extend(["t.t RUNNING".into(), "t.t FAILURE(Failure: Woot!)".into()]);
            v.extend(["t.t REVERTING".into(), "t.t REVERTED(())".into()]);
            v.extend(["inner.r REVERTING".into(), "inner.r REVERTED(())".into()]);
            v
        };
        let mut expected = vec!["nested.f RUNNING".to_string()];
        expected.extend(inner_twice("1"));
        expected.extend([
            "outer.r RETRYING".into(),
            "inner.r PENDING".into(),
            "t.t PENDING".into(),
        ]);
        expected.extend(inner_twice("2"));
        expected.extend([
            "outer.r REVERTING".into(),
            "outer.r REVERTED(())".into(),
            "nested.f REVERTED".into(),
        ]);
        assert_eq!(events, expected, "{mode:?}");
        assert_eq!(engine.state(), FlowState::Reverted);
        assert_eq!(engine.attempts("inner"), Some(4));
        assert_eq!(engine.attempts("outer"), Some(2));
    }
}

/// `Times(n)` that logs the history it is shown.
struct Recording {
    n: usize,
    log: Arc<Mutex<Vec<String>>>,
}

impl RetryStrategy for Recording {
    fn provides_type(&self) -> Option<TypeInfo> {
        Some(TypeInfo::of::<u32>())
    }

    fn execute(&self, _: &Args, history: &History) -> Result<Option<Value>, TaskError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("execute after {}", history.len()));
        Ok(Some(Value::new(history.len() as u32 + 1)))
    }

    fn on_failure(&self, _: &Args, history: &History) -> Decision {
        let values: Vec<String> = history
            .values()
            .map(|v| format!("{:?}", v.and_then(Value::downcast_ref::<u32>)))
            .collect();
        let failed: Vec<String> = history
            .attempts()
            .iter()
            .map(|a| {
                a.failures
                    .iter()
                    .map(|(k, f)| format!("{k}: {}", f.message()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        self.log.lock().unwrap().push(format!(
            "decide after {}: values {values:?}, failures {failed:?}",
            history.len()
        ));
        if history.len() < self.n {
            Decision::Retry
        } else {
            Decision::Revert
        }
    }
}

#[tokio::test]
async fn history_is_cleared_when_the_controller_is_reverted() {
    for mode in MODES {
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = Retry::custom(Recording {
            n: 2,
            log: log.clone(),
        });
        let (mut engine, capture) = engine(nested(inner), mode);
        engine.run().await.expect_err("everything exhausted");
        let one_pass = [
            "execute after 0",
            r#"decide after 1: values ["Some(1)"], failures ["t: Woot!"]"#,
            "execute after 1",
            r#"decide after 2: values ["Some(1)", "Some(2)"], failures ["t: Woot!", "t: Woot!"]"#,
        ];
        let expected: Vec<&str> = one_pass.iter().chain(&one_pass).copied().collect();
        assert_eq!(*log.lock().unwrap(), expected, "{mode:?}");
        assert_eq!(
            successes(&capture.events(), "inner.r"),
            ["1", "2", "1", "2"]
        );
    }
}

// ---------------------------------------------------------------------------
// RevertAll
// ---------------------------------------------------------------------------

fn revert_all_inside_times(inner: Retry) -> flow::CompiledFlow {
    Flow::linear("all")
        .retry(Retry::times(3).named("outer").provides("n"))
        .add(progressing("a"))
        .add(
            Flow::linear("inner-flow")
                .retry(inner.named("inner"))
                .add(failing("t")),
        )
        .build()
        .expect("valid flow")
}

fn reverted_at_once(inner_value: &str) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "all.f RUNNING".into(),
        "outer.r RUNNING".into(),
        "outer.r SUCCESS(1)".into(),
        "a.t RUNNING".into(),
        "a.t SUCCESS(5)".into(),
        "inner.r RUNNING".into(),
        format!("inner.r SUCCESS({inner_value})"),
    ];
    v.extend(failed_and_reverted("t", "Woot!"));
    v.extend(
        [
            "inner.r REVERTING",
            "inner.r REVERTED(())",
            "a.t REVERTING",
            "a.t REVERTED(())",
            "outer.r REVERTING",
            "outer.r REVERTED(())",
            "all.f REVERTED",
        ]
        .map(String::from),
    );
    v
}

#[tokio::test]
async fn always_revert_all_overrides_a_parent_times() {
    for mode in MODES {
        let (mut engine, capture) =
            engine(revert_all_inside_times(Retry::always_revert_all()), mode);
        let err = engine.run().await.expect_err("reverted at once");
        let events = capture.events();
        assert_eq!(successes(&events, "outer.r"), ["1"], "{mode:?}");
        assert_eq!(events, reverted_at_once("()"), "{mode:?}");
        assert_eq!(
            err.to_string(),
            "flow `all` was reverted: task `t` failed: Woot!"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
    }
}

#[tokio::test]
async fn revert_all_when_exhausted_overrides_a_parent_times() {
    for mode in MODES {
        let inner = Retry::times(1).provides("i").revert_all_when_exhausted();
        let (mut engine, capture) = engine(revert_all_inside_times(inner), mode);
        engine.run().await.expect_err("reverted at once");
        let events = capture.events();
        assert_eq!(successes(&events, "outer.r"), ["1"], "{mode:?}");
        assert_eq!(events, reverted_at_once("1"), "{mode:?}");
        assert_eq!(engine.state(), FlowState::Reverted);

        // Without it, the exhausted inner controller lets the outer one retry.
        let inner = Retry::times(1).provides("i");
        let (mut plain, capture) = common::engine(revert_all_inside_times(inner), mode);
        plain.run().await.expect_err("exhausted");
        let events = capture.events();
        assert_eq!(successes(&events, "outer.r"), ["1", "2", "3"], "{mode:?}");
        assert_eq!(successes(&events, "inner.r"), ["1", "1", "1"], "{mode:?}");
    }
}

#[tokio::test]
async fn always_revert_hands_over_to_the_parent() {
    for mode in MODES {
        let (mut engine, capture) = engine(revert_all_inside_times(Retry::always_revert()), mode);
        engine.run().await.expect_err("exhausted");
        let events = capture.events();
        assert_eq!(successes(&events, "outer.r"), ["1", "2", "3"], "{mode:?}");
        assert_eq!(
            successes(&events, "inner.r"),
            ["()", "()", "()"],
            "{mode:?}"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
    }
}

// ---------------------------------------------------------------------------
// A revert failure while retrying
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_revert_failure_during_a_retry_ends_the_flow_in_failure() {
    for mode in MODES {
        let bad_undo = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()))
            .on_revert_sync(|_| Err(TaskError::msg("cannot undo")));
        let flow = Flow::linear("stuck")
            .retry(Retry::times(3).named("r").provides("n"))
            .add(Atom::new("a", bad_undo))
            .add(failing("b"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        let err = engine.run().await.expect_err("revert failed");
        let RunError::RevertFailed {
            flow,
            revert_failures,
            failures,
        } = &err
        else {
            panic!("expected RevertFailed, got {err:?}");
        };
        assert_eq!(flow, "stuck");
        assert_eq!(revert_failures.len(), 1);
        assert_eq!(revert_failures[0].atom, "a");
        assert_eq!(revert_failures[0].failure.message(), "cannot undo");
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].atom, "b");
        assert_eq!(
            err.to_string(),
            "flow `stuck` failed and could not be fully reverted: task `a` failed: cannot undo; \
             after: task `b` failed: Woot!"
        );
        let events = capture.events();
        assert_eq!(
            strs(&events),
            [
                "stuck.f RUNNING",
                "r.r RUNNING",
                "r.r SUCCESS(1)",
                "a.t RUNNING",
                "a.t SUCCESS(())",
                "b.t RUNNING",
                "b.t FAILURE(Failure: Woot!)",
                "b.t REVERTING",
                "b.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERT_FAILURE(Failure: cannot undo)",
                "stuck.f FAILURE",
            ],
            "{mode:?}"
        );
        assert!(!events.iter().any(|e| e.contains("RETRYING")), "{mode:?}");
        assert_eq!(successes(&events, "r.r"), ["1"]);
        assert_eq!(engine.state(), FlowState::Failure);
        assert_eq!(engine.attempts("r"), Some(1));
    }
}

// ---------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------

/// Requires the attempt number `n: u32`; fails while it is below `good`.
fn fails_until(good: u32) -> Atom {
    Atom::new(
        "flaky",
        FnTask::sync(Signature::new().requires::<u32>("n"), move |a| {
            let n = *a.get::<u32>(0)?;
            if n < good {
                Err(TaskError::msg(format!("attempt {n} failed")))
            } else {
                Ok(Outputs::new())
            }
        }),
    )
}

async fn elapsed_with(backoff: Backoff, times: usize, mode: Mode) -> Duration {
    let flow = Flow::linear("wait")
        .retry(
            Retry::times(times)
                .named("r")
                .provides("n")
                .backoff(backoff),
        )
        .add(fails_until(times as u32))
        .build()
        .expect("valid flow");
    let (mut engine, capture) = engine(flow, mode);
    let start = tokio::time::Instant::now();
    engine.run().await.expect("the last attempt succeeds");
    let elapsed = start.elapsed();
    let expected: Vec<String> = (1..=times).map(|n| n.to_string()).collect();
    assert_eq!(successes(&capture.events(), "r.r"), expected, "{mode:?}");
    assert_eq!(engine.attempts("flaky"), Some(times as u32));
    elapsed
}

#[tokio::test(start_paused = true)]
async fn fixed_backoff_waits_before_each_retry_on_tokio_time() {
    for mode in MODES {
        let elapsed = elapsed_with(Backoff::Fixed(Duration::from_secs(10)), 3, mode).await;
        assert_eq!(elapsed, Duration::from_secs(20), "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_doubles_up_to_its_cap() {
    let backoff = Backoff::Exponential {
        base: Duration::from_secs(1),
        max: Duration::from_secs(3),
        jitter: false,
    };
    for mode in MODES {
        let elapsed = elapsed_with(backoff, 4, mode).await;
        assert_eq!(elapsed, Duration::from_secs(1 + 2 + 3), "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn no_backoff_means_no_wait() {
    for mode in MODES {
        let elapsed = elapsed_with(Backoff::None, 3, mode).await;
        assert_eq!(elapsed, Duration::ZERO, "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// retry_if
// ---------------------------------------------------------------------------

fn classified(message: fn(u32) -> Option<&'static str>) -> flow::CompiledFlow {
    Flow::linear("cls")
        .retry(
            Retry::times(3)
                .named("r")
                .provides("n")
                .retry_if(|failure| failure.message().contains("transient")),
        )
        .add(Atom::new(
            "t",
            FnTask::sync(
                Signature::new().requires::<u32>("n"),
                move |a| match message(*a.get::<u32>(0)?) {
                    Some(m) => Err(TaskError::msg(m)),
                    None => Ok(Outputs::new()),
                },
            ),
        ))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn retry_if_does_not_retry_a_permanent_failure() {
    for mode in MODES {
        let (mut engine, capture) = engine(classified(|_| Some("permanent: disk gone")), mode);
        let err = engine.run().await.expect_err("not retried");
        let mut expected: Vec<String> = ["cls.f RUNNING", "r.r RUNNING", "r.r SUCCESS(1)"]
            .map(String::from)
            .into();
        expected.extend(failed_and_reverted("t", "permanent: disk gone"));
        expected.extend(["r.r REVERTING", "r.r REVERTED(())", "cls.f REVERTED"].map(String::from));
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(
            err.to_string(),
            "flow `cls` was reverted: task `t` failed: permanent: disk gone"
        );
        assert_eq!(engine.attempts("t"), Some(1));
        assert_eq!(engine.state(), FlowState::Reverted);
    }
}

#[tokio::test]
async fn retry_if_retries_a_transient_failure() {
    for mode in MODES {
        let (mut engine, capture) = engine(
            classified(|n| (n == 1).then_some("transient: try again")),
            mode,
        );
        engine.run().await.expect("the retry succeeds");
        let mut expected: Vec<String> = ["cls.f RUNNING", "r.r RUNNING", "r.r SUCCESS(1)"]
            .map(String::from)
            .into();
        expected.extend(failed_and_reverted("t", "transient: try again"));
        expected.extend(retrying("r", &["t.t PENDING"], "2"));
        expected.extend(["t.t RUNNING", "t.t SUCCESS(())", "cls.f SUCCESS"].map(String::from));
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(engine.attempts("t"), Some(2));
        assert_eq!(engine.state(), FlowState::Success);
    }
}

#[tokio::test]
async fn retry_if_stops_at_the_first_permanent_failure() {
    for mode in MODES {
        // Transient on attempt 1, permanent on attempt 2: two attempts only.
        let (mut engine, _) = engine(
            classified(|n| Some(if n == 1 { "transient" } else { "permanent" })),
            mode,
        );
        let err = engine.run().await.expect_err("not retried twice");
        assert_eq!(
            err.to_string(),
            "flow `cls` was reverted: task `t` failed: permanent"
        );
        assert_eq!(engine.attempts("t"), Some(2), "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// A failure while another branch is running
// ---------------------------------------------------------------------------

/// Sends on `tx` when it sees the event `event`.
struct OnEvent {
    event: String,
    tx: Mutex<Option<oneshot::Sender<()>>>,
}

impl Listener for OnEvent {
    fn on_event(&self, event: &Event<'_>) {
        if event.to_string() == self.event {
            if let Some(tx) = self.tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> T {
    slot.lock().unwrap().take().expect("used once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_branch_is_finished_and_reverted_before_the_retry() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let started_tx = Mutex::new(Some(started_tx));
    let release_rx = Mutex::new(Some(release_rx));
    let started_rx = Mutex::new(Some(started_rx));

    // Attempt 1 blocks until released; attempt 2 finishes at once.
    let slow = FnTask::new(Signature::new(), move |_, ctx| {
        if ctx.attempt() > 1 {
            return Exec::Ready(Ok(Outputs::new()));
        }
        let started = take(&started_tx);
        let release = take(&release_rx);
        Exec::future(async move {
            started.send(()).expect("the failing branch waits");
            release.await.expect("released by the listener");
            Ok(Outputs::new())
        })
    });
    // Attempt 1 fails once `slow` runs; attempt 2 succeeds.
    let fails = FnTask::new(Signature::new(), move |_, ctx| {
        if ctx.attempt() > 1 {
            return Exec::Ready(Ok(Outputs::new()));
        }
        let started = take(&started_rx);
        Exec::future(async move {
            started.await.expect("slow started");
            Err(TaskError::msg("Woot!"))
        })
    });
    let flow = Flow::linear("race")
        .retry(Retry::times(2).named("r").provides("n"))
        .add(
            Flow::unordered("g")
                .add(Atom::new("slow", slow))
                .add(Atom::new("fails", fails)),
        )
        .build()
        .expect("valid flow");
    let capture = CaptureListener::new();
    let mut engine = Engine::builder(flow)
        .mode(Mode::Parallel(4))
        .listener(capture.clone())
        .listener(OnEvent {
            event: "fails.t FAILURE(Failure: Woot!)".into(),
            tx: Mutex::new(Some(release_tx)),
        })
        .build();
    tokio::time::timeout(Duration::from_secs(30), engine.run())
        .await
        .expect("no deadlock")
        .expect("the second attempt succeeds");

    let events = capture.events();
    let retry_at = pos(&events, "r.r RETRYING");
    // Fixed: the start, and the reset after the first attempt is undone.
    assert_eq!(
        strs(&events[..3]),
        ["race.f RUNNING", "r.r RUNNING", "r.r SUCCESS(1)"]
    );
    assert_eq!(
        strs(&events[retry_at..retry_at + 5]),
        [
            "r.r RETRYING",
            "slow.t PENDING",
            "fails.t PENDING",
            "r.r RUNNING",
            "r.r SUCCESS(2)"
        ]
    );
    assert_eq!(events.last().map(String::as_str), Some("race.f SUCCESS"));
    // In any order: attempt 1 of both branches, all undone before RETRYING...
    let mut first: Vec<&str> = strs(&events[3..retry_at]);
    first.sort_unstable();
    let mut expected_first: Vec<&str> = vec![
        "fails.t FAILURE(Failure: Woot!)",
        "fails.t REVERTED(())",
        "fails.t REVERTING",
        "fails.t RUNNING",
        "slow.t REVERTED(())",
        "slow.t REVERTING",
        "slow.t RUNNING",
        "slow.t SUCCESS(())",
    ];
    expected_first.sort_unstable();
    assert_eq!(first, expected_first, "{events:#?}");
    // ...and attempt 2 of both.
    let mut second: Vec<&str> = strs(&events[retry_at + 5..events.len() - 1]);
    second.sort_unstable();
    assert_eq!(
        second,
        [
            "fails.t RUNNING",
            "fails.t SUCCESS(())",
            "slow.t RUNNING",
            "slow.t SUCCESS(())"
        ],
        "{events:#?}"
    );
    // Happens-before.
    let slow_running_again = retry_at
        + 5
        + events[retry_at + 5..]
            .iter()
            .position(|e| e == "slow.t RUNNING")
            .expect("slow runs again");
    assert!(pos(&events, "slow.t RUNNING") < pos(&events, "fails.t FAILURE(Failure: Woot!)"));
    assert!(
        pos(&events, "fails.t FAILURE(Failure: Woot!)") < pos(&events, "slow.t SUCCESS(())"),
        "slow was released by the failure: {events:#?}"
    );
    assert!(pos(&events, "slow.t SUCCESS(())") < pos(&events, "slow.t REVERTED(())"));
    assert!(pos(&events, "slow.t REVERTED(())") < retry_at);
    assert!(pos(&events, "fails.t REVERTED(())") < retry_at);
    assert!(retry_at < slow_running_again);
    assert_eq!(engine.attempts("slow"), Some(2));
    assert_eq!(engine.attempts("fails"), Some(2));
    assert_eq!(engine.state(), FlowState::Success);
}

// ---------------------------------------------------------------------------
// Scope of the provided symbol; building
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_provided_symbol_is_visible_to_later_siblings_after_success() {
    for mode in MODES {
        let after = FnTask::sync(
            Signature::new()
                .requires::<u32>("x")
                .provides::<u32>("after"),
            |a| Ok(Outputs::one(a.get::<u32>(0)? * 10)),
        );
        let flow = Flow::linear("scoped")
            .add(
                Flow::linear("sub")
                    .retry(Retry::times(3).named("r").provides("x"))
                    .add(needs_x("inside", |x| x == 2)),
            )
            .add(Atom::new("after", after))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect("succeeds on attempt 2");
        let mut expected: Vec<String> = ["scoped.f RUNNING", "r.r RUNNING", "r.r SUCCESS(1)"]
            .map(String::from)
            .into();
        expected.extend(failed_and_reverted("inside", "x = 1 does not work"));
        expected.extend(retrying("r", &["inside.t PENDING"], "2"));
        expected.extend(
            [
                "inside.t RUNNING",
                "inside.t SUCCESS(())",
                "after.t RUNNING",
                "after.t SUCCESS(20)",
                "scoped.f SUCCESS",
            ]
            .map(String::from),
        );
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(engine.fetch::<u32>("after"), Some(&20));
        assert_eq!(engine.fetch::<u32>("x"), Some(&2));
    }
}

#[test]
fn the_provided_symbol_is_not_visible_before_the_controlled_flow() {
    let err = Flow::linear("scoped")
        .add(needs_x("before", |_| true))
        .add(
            Flow::linear("sub")
                .retry(Retry::times(3).named("r").provides("x"))
                .add(progressing("inside")),
        )
        .build()
        .expect_err("x is provided later");
    assert_eq!(
        err.errors(),
        [BuildError::MissingRequirement {
            atom: "before".into(),
            symbol: "x".into(),
            type_name: "u32".into(),
            method: Method::Execute,
            flow: "scoped".into(),
            reason: Missing::RunsAfter {
                provider: "r".into()
            },
        }]
    );
}

#[test]
fn a_retry_on_an_empty_flow_is_a_build_error() {
    let err = Flow::linear("root")
        .add(progressing("a"))
        .add(Flow::linear("empty").retry(Retry::times(2).named("r")))
        .build()
        .expect_err("nothing to control");
    assert_eq!(
        err.errors(),
        [BuildError::EmptyRetry {
            retry: "r".into(),
            flow: "empty".into(),
        }]
    );
    assert_eq!(
        err.to_string(),
        "flow `root` is invalid: retry controller `r` of flow `empty` has nothing to control: \
         add atoms to the flow, or remove the controller"
    );
}

// ---------------------------------------------------------------------------
// The journal
// ---------------------------------------------------------------------------

/// Sets every `backtrace` in `json` to null: whether one is captured depends on
/// `RUST_BACKTRACE`.
/// An atom's metadata without the times of its execute and revert (checked
/// by the journal's own tests).
fn without_times(meta: &mut serde_json::Value) {
    if let Some(map) = meta.as_object_mut() {
        for key in [
            "started_at",
            "ended_at",
            "revert_started_at",
            "revert_ended_at",
        ] {
            map.remove(key);
        }
    }
}

fn without_backtraces(json: &mut serde_json::Value) {
    match json {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "backtrace" {
                    *v = serde_json::Value::Null;
                } else {
                    without_backtraces(v);
                }
            }
        }
        serde_json::Value::Array(list) => list.iter_mut().for_each(without_backtraces),
        _ => {}
    }
}

async fn journaled_controller(times: usize, y: u32, mode: Mode) -> flow::AtomDetail {
    let journal = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(s5_flow(times))
        .mode(mode)
        .input("y", y)
        .storage(journal.clone())
        .build();
    let _ = engine.run().await;
    let (_, atoms) = journal.load_flow(engine.run_id()).await.unwrap();
    atoms
        .into_iter()
        .find(|a| a.name == "r1")
        .expect("the controller is journaled")
}

#[tokio::test]
async fn the_journal_records_the_controller_and_its_history() {
    for mode in MODES {
        let mut r1 = journaled_controller(4, 2, mode).await;
        assert_eq!(r1.kind, AtomKind::Retry, "{mode:?}");
        assert_eq!(r1.state, AtomState::Success);
        assert_eq!(r1.intention, Intention::Execute);
        assert_eq!(r1.result, Some(json!([2])));
        assert_eq!(r1.attempts, 2);
        without_backtraces(&mut r1.meta);
        without_times(&mut r1.meta);
        assert_eq!(
            r1.meta,
            json!({
                "history": [
                    {
                        "value": 1,
                        "failures": {
                            "task2": {
                                "kind": "Error",
                                "message": "Woot!",
                                "type_name": "flow_core::failure::Message",
                                "causes": [],
                                "backtrace": null
                            }
                        }
                    },
                    { "value": 2, "failures": {} }
                ]
            }),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn the_journal_shows_the_history_cleared_once_the_controller_is_reverted() {
    for mode in MODES {
        let mut r1 = journaled_controller(2, 4, mode).await;
        assert_eq!(r1.kind, AtomKind::Retry, "{mode:?}");
        assert_eq!(r1.state, AtomState::Reverted);
        assert_eq!(r1.intention, Intention::Revert);
        assert_eq!(r1.result, None);
        without_times(&mut r1.meta);
        assert_eq!(r1.meta, json!({}), "no history: {mode:?}");
    }
}

#[tokio::test]
async fn a_failing_inner_controller_is_resolved_by_the_outer_one() {
    const MESSAGE: &str = "`for_each` has no value to try: its list of values is empty";
    for mode in MODES {
        let flow = Flow::linear("nested")
            .retry(Retry::times(2).named("outer").provides("o"))
            .add(
                Flow::linear("inner-flow")
                    .retry(
                        Retry::for_each(Vec::<u32>::new())
                            .named("inner")
                            .provides("x"),
                    )
                    .add(needs_x("t", |_| true)),
            )
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        let err = engine
            .run()
            .await
            .expect_err("the inner controller always fails");
        let failed = format!("inner.r FAILURE(Failure: {MESSAGE})");
        let pass = |outer: &str| {
            [
                "outer.r RUNNING".to_string(),
                format!("outer.r SUCCESS({outer})"),
                "inner.r RUNNING".into(),
                failed.clone(),
                "inner.r REVERTING".into(),
                "inner.r REVERTED(())".into(),
            ]
        };
        let mut expected = vec!["nested.f RUNNING".to_string()];
        expected.extend(pass("1"));
        expected.extend(["outer.r RETRYING".into(), "inner.r PENDING".into()]);
        expected.extend(pass("2"));
        expected.extend(
            [
                "outer.r REVERTING",
                "outer.r REVERTED(())",
                "nested.f REVERTED",
            ]
            .map(String::from),
        );
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(err.failures()[0].atom, "inner");
        assert_eq!(engine.attempts("t"), Some(0));
    }
}

/// A controller on a graph flow: the graph's order is kept on every attempt.
#[tokio::test]
async fn a_controller_on_a_graph_flow_retries_it() {
    for mode in MODES {
        let use_attempt = flow::FnTask::sync(
            flow::Signature::new()
                .requires::<u32>("n")
                .requires::<u32>("k"),
            |a| {
                if a.get::<u32>(0)? == &2 {
                    Ok(flow::Outputs::new())
                } else {
                    Err(flow::TaskError::msg("Woot!"))
                }
            },
        );
        let flow = Flow::graph("g")
            .retry(Retry::times(3).named("r").provides("n"))
            .add(flow::Atom::new("last", use_attempt))
            .add(progressing("k"))
            .build()
            .expect("valid flow");
        let capture = flow::CaptureListener::atoms_only();
        let mut engine = flow::Engine::builder(flow)
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("second attempt succeeds");
        let events = capture.events();
        let runs: Vec<&String> = events.iter().filter(|e| e.ends_with("RUNNING")).collect();
        assert_eq!(
            runs,
            [
                "r.r RUNNING",
                "k.t RUNNING",
                "last.t RUNNING",
                "r.r RUNNING",
                "k.t RUNNING",
                "last.t RUNNING"
            ],
            "{mode:?}"
        );
    }
}

/// A RevertAll from one branch is never downgraded by a Retry from a parallel
/// branch: both branches fail at the same moment; everything is reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_all_is_never_downgraded_by_a_parallel_retry() {
    for _ in 0..20 {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let failing_together = |barrier: Arc<tokio::sync::Barrier>| {
            flow::FnTask::asynchronous(flow::Signature::new(), move |_, ctx| {
                let barrier = barrier.clone();
                async move {
                    // The first attempts fail at the same moment; a retry that
                    // wins the race fails again at once.
                    if ctx.attempt() == 1 {
                        barrier.wait().await;
                    }
                    Err(flow::TaskError::msg("Woot!"))
                }
            })
        };
        let flow = Flow::unordered("both")
            .add(
                Flow::linear("all")
                    .retry(Retry::always_revert_all().named("ra"))
                    .add(flow::Atom::new("x", failing_together(barrier.clone()))),
            )
            .add(
                Flow::linear("again")
                    .retry(Retry::times(3).named("rt"))
                    .add(flow::Atom::new("y", failing_together(barrier.clone()))),
            )
            .build()
            .expect("valid flow");
        let capture = flow::CaptureListener::new();
        let mut engine = flow::Engine::builder(flow)
            .parallel(4)
            .listener(capture.clone())
            .build();
        let err = tokio::time::timeout(std::time::Duration::from_secs(30), engine.run())
            .await
            .expect("no hang")
            .expect_err("reverted");
        assert!(matches!(err, flow::RunError::Reverted { .. }), "{err}");
        assert_eq!(engine.state(), FlowState::Reverted);
        let events = capture.events();
        for atom in ["ra.r", "rt.r", "x.t", "y.t"] {
            assert!(
                events.contains(&format!("{atom} REVERTED(())")),
                "{atom}: {events:#?}"
            );
        }
        assert_eq!(events.last().map(String::as_str), Some("both.f REVERTED"));
    }
}
