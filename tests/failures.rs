//! Failures and how they are captured (semantics.md sections 4, 5 and 8):
//! errors, panics and broken contracts on both engines, typed errors and their
//! causes, a failure while another branch is still running, async and blocking
//! task bodies, progress events and durations.

mod common;

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::{MODES, engine, failing, pos, progressing};
use flow::{
    Atom, AtomState, CaptureListener, CompiledFlow, DurationListener, Engine, Event, Exec, Failure,
    FailureKind, Flow, FlowState, FnTask, Listener, Mode, Outcome, Outputs, RunError, Signature,
    TaskError, Value,
};
use tokio::sync::oneshot;

fn success_flow(name: &'static str) -> flow::CompiledFlow {
    Flow::linear(name)
        .add(progressing("ok1"))
        .add(progressing("ok2"))
        .build()
        .expect("valid flow")
}

/// Runs a small flow that must succeed: the runtime is still usable.
async fn runtime_still_works(mode: Mode) {
    let (mut engine, capture) = engine(success_flow("after"), mode);
    engine.run().await.expect("a later flow runs fine");
    assert_eq!(
        capture.events(),
        [
            "after.f RUNNING",
            "ok1.t RUNNING",
            "ok1.t SUCCESS(5)",
            "ok2.t RUNNING",
            "ok2.t SUCCESS(5)",
            "after.f SUCCESS"
        ]
    );
}

// ---------------------------------------------------------------------------
// Errors and panics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn task_returning_err_ends_reverted_with_its_message() {
    for mode in MODES {
        let flow = Flow::linear("f")
            .add(progressing("a"))
            .add(failing("bad"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        let err = engine.run().await.expect_err("fails");
        assert!(matches!(&err, RunError::Reverted { flow, .. } if flow == "f"));
        assert_eq!(err.failures().len(), 1);
        assert_eq!(err.failures()[0].atom, "bad");
        assert_eq!(err.failures()[0].failure.message(), "Woot!");
        assert_eq!(err.failures()[0].failure.kind(), FailureKind::Error);
        assert_eq!(err.failures()[0].to_string(), "task `bad` failed: Woot!");
        assert_eq!(
            err.to_string(),
            "flow `f` was reverted: task `bad` failed: Woot!"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
        assert_eq!(
            capture.events(),
            [
                "f.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(5)",
                "bad.t RUNNING",
                "bad.t FAILURE(Failure: Woot!)",
                "bad.t REVERTING",
                "bad.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "f.f REVERTED"
            ],
            "{mode:?}"
        );
        runtime_still_works(mode).await;
    }
}

fn sync_panicker() -> Atom {
    Atom::new("boom", FnTask::sync(Signature::new(), |_| panic!("kaboom")))
}

fn async_panicker() -> Atom {
    Atom::new(
        "boom",
        FnTask::asynchronous(Signature::new(), |args, _| async move {
            tokio::task::yield_now().await;
            if args.is_empty() {
                panic!("kaboom {}", 42);
            }
            Ok(Outputs::new())
        }),
    )
}

fn blocking_panicker() -> Atom {
    Atom::new(
        "boom",
        FnTask::sync(Signature::new().blocking(), |_| {
            panic!("kaboom on the pool")
        }),
    )
}

#[tokio::test]
async fn panicking_task_ends_reverted_with_the_panic_message() {
    for mode in MODES {
        for (panicker, message) in [
            (sync_panicker(), "panicked: kaboom"),
            (async_panicker(), "panicked: kaboom 42"),
            (blocking_panicker(), "panicked: kaboom on the pool"),
        ] {
            let flow = Flow::linear("f")
                .add(progressing("a"))
                .add(panicker)
                .build()
                .expect("valid flow");
            let (mut engine, capture) = engine(flow, mode);
            let err = engine.run().await.expect_err("fails");
            assert!(matches!(&err, RunError::Reverted { flow, .. } if flow == "f"));
            assert_eq!(err.failures().len(), 1);
            let failure = &err.failures()[0].failure;
            assert_eq!(err.failures()[0].atom, "boom");
            assert_eq!(failure.message(), message, "{mode:?}");
            assert_eq!(failure.kind(), FailureKind::Panic);
            assert_eq!(failure.type_name(), "panic");
            assert_eq!(
                err.to_string(),
                format!("flow `f` was reverted: task `boom` failed: {message}")
            );
            let events = capture.events();
            assert_eq!(
                events[3..],
                [
                    "boom.t RUNNING".to_string(),
                    format!("boom.t FAILURE(Failure: {message})"),
                    "boom.t REVERTING".to_string(),
                    "boom.t REVERTED(())".to_string(),
                    "a.t REVERTING".to_string(),
                    "a.t REVERTED(())".to_string(),
                    "f.f REVERTED".to_string(),
                ],
                "{mode:?}"
            );
            runtime_still_works(mode).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_failures_are_all_reported() {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let failer = |name: &'static str, message: &'static str| {
        let barrier = barrier.clone();
        Atom::new(
            name,
            FnTask::asynchronous(Signature::new(), move |_, _| {
                let barrier = barrier.clone();
                async move {
                    // Both are running before either fails.
                    barrier.wait().await;
                    Err(TaskError::msg(message))
                }
            }),
        )
    };
    let flow = Flow::unordered("both")
        .add(failer("x", "X broke"))
        .add(failer("y", "Y broke"))
        .build()
        .expect("valid flow");
    let (mut engine, capture) = engine(flow, Mode::Parallel(4));
    let err = tokio::time::timeout(Duration::from_secs(30), engine.run())
        .await
        .expect("both ran at once")
        .expect_err("fails");
    let failures: BTreeSet<(String, String)> = err
        .failures()
        .iter()
        .map(|f| (f.atom.clone(), f.failure.message().to_string()))
        .collect();
    assert_eq!(err.failures().len(), 2);
    assert_eq!(
        failures,
        BTreeSet::from([
            ("x".to_string(), "X broke".to_string()),
            ("y".to_string(), "Y broke".to_string())
        ])
    );
    let text = err.to_string();
    assert!(
        text == "flow `both` was reverted: task `x` failed: X broke; task `y` failed: Y broke"
            || text
                == "flow `both` was reverted: task `y` failed: Y broke; task `x` failed: X broke",
        "{text}"
    );
    let events = capture.events();
    for x in ["x", "y"] {
        let upper = x.to_uppercase();
        let failure = format!("{x}.t FAILURE(Failure: {upper} broke)");
        assert!(pos(&events, &format!("{x}.t RUNNING")) < pos(&events, &failure));
        assert!(pos(&events, &failure) < pos(&events, &format!("{x}.t REVERTED(())")));
    }
    assert_eq!(events.len(), 10, "{events:#?}");
    assert_eq!(engine.state(), FlowState::Reverted);
}

// ---------------------------------------------------------------------------
// Typed errors
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct NoSpace;

impl fmt::Display for NoSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no space left on device")
    }
}

impl Error for NoSpace {}

#[derive(Debug)]
struct WriteFailed(NoSpace);

impl fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("write failed")
    }
}

impl Error for WriteFailed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
struct DiskFull {
    device: String,
    source: WriteFailed,
}

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk full on {}", self.device)
    }
}

impl Error for DiskFull {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

fn check_disk_full(failure: &Failure) {
    assert_eq!(failure.message(), "disk full on sda");
    assert_eq!(failure.kind(), FailureKind::Error);
    assert_eq!(failure.type_name(), std::any::type_name::<DiskFull>());
    assert_eq!(
        failure.causes(),
        ["write failed", "no space left on device"]
    );
    assert_eq!(failure.to_string(), "Failure: disk full on sda");
    let typed = failure.downcast_ref::<DiskFull>().expect("the typed error");
    assert_eq!(typed.device, "sda");
    assert!(failure.downcast_ref::<NoSpace>().is_none());
}

#[tokio::test]
async fn typed_error_is_recoverable_with_its_causes() {
    for mode in MODES {
        let seen: Arc<Mutex<Vec<Failure>>> = Arc::default();
        let record = seen.clone();
        let task = FnTask::sync(Signature::new(), |_| {
            Err(DiskFull {
                device: "sda".into(),
                source: WriteFailed(NoSpace),
            })?
        })
        .on_revert_sync(move |input| {
            if let Outcome::Failure(f) = &input.outcome {
                record.lock().unwrap().push(f.clone());
            }
            Ok(None)
        });
        let flow = Flow::linear("typed")
            .add(Atom::new("disk", task))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).build();
        let err = engine.run().await.expect_err("fails");
        assert_eq!(err.failures().len(), 1);
        check_disk_full(&err.failures()[0].failure);
        check_disk_full(engine.failure("disk").expect("recorded"));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "revert is told its own failure");
        check_disk_full(&seen[0]);
    }
}

// ---------------------------------------------------------------------------
// Contract
// ---------------------------------------------------------------------------

#[tokio::test]
async fn wrong_number_of_outputs_is_a_contract_failure() {
    fn flow_of_one() -> CompiledFlow {
        let task = FnTask::sync(
            Signature::new().provides::<u32>("n"),
            |_| Ok(Outputs::new()),
        );
        Flow::linear("c")
            .add(Atom::new("t", task))
            .build()
            .expect("valid flow")
    }
    for mode in MODES {
        let (mut engine, capture) = engine(flow_of_one(), mode);
        let err = engine.run().await.expect_err("fails");
        let failure = &err.failures()[0].failure;
        assert_eq!(failure.kind(), FailureKind::Contract);
        assert_eq!(
            failure.message(),
            "task `t` returned 0 value(s) but declares 1 output(s)"
        );
        assert_eq!(
            capture.events(),
            [
                "c.f RUNNING",
                "t.t RUNNING",
                "t.t FAILURE(Failure: task `t` returned 0 value(s) but declares 1 output(s))",
                "t.t REVERTING",
                "t.t REVERTED(())",
                "c.f REVERTED"
            ],
            "{mode:?}"
        );
        // With nobody listening (the engines' paths for plain tasks).
        let mut engine = Engine::builder(flow_of_one()).mode(mode).build();
        let err = engine.run().await.expect_err("fails");
        let failure = &err.failures()[0].failure;
        assert_eq!(failure.kind(), FailureKind::Contract, "{mode:?}");
        assert_eq!(
            failure.message(),
            "task `t` returned 0 value(s) but declares 1 output(s)"
        );
        assert_eq!(engine.state(), FlowState::Reverted, "{mode:?}");
        assert_eq!(engine.atom_state("t"), Some(AtomState::Reverted));
    }
}

#[tokio::test]
async fn wrong_output_type_is_a_contract_failure() {
    for mode in MODES {
        let task = FnTask::sync(
            Signature::new().provides::<u32>("n").provides::<u32>("m"),
            |_| Ok(Outputs::new().with(1u32).with("two".to_string())),
        );
        let flow = Flow::linear("c")
            .add(Atom::new("t", task))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow).mode(mode).build();
        let err = engine.run().await.expect_err("fails");
        let failure = &err.failures()[0].failure;
        assert_eq!(failure.kind(), FailureKind::Contract);
        assert_eq!(
            failure.message(),
            "task `t` returned a `String` for output `m`, which it declares as `u32`"
        );
        assert!(engine.outputs("t").is_none());
        assert_eq!(engine.fetch::<u32>("n"), None);
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

/// What a revert was told: its outcome's text and the names of the failed atoms.
type RevertLog = Arc<Mutex<Vec<(String, Vec<String>)>>>;

fn take<T>(slot: &Mutex<Option<T>>) -> T {
    slot.lock().unwrap().take().expect("used once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_branch_finishes_and_is_reverted_after_a_failure() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let started_tx = Arc::new(Mutex::new(Some(started_tx)));
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let started_rx = Arc::new(Mutex::new(Some(started_rx)));
    let seen: RevertLog = Arc::default();

    let record = seen.clone();
    let slow = FnTask::asynchronous(Signature::new().provides::<u32>("slow"), move |_, _| {
        let started = take(&started_tx);
        let release = take(&release_rx);
        async move {
            started.send(()).expect("the failing branch waits");
            // Only released once the engine has recorded the other failure.
            release.await.expect("released by the listener");
            Ok(Outputs::one(7u32))
        }
    })
    .on_revert(move |input, ctx| {
        let outcome = match &input.outcome {
            Outcome::Success(out) => format!("{out:?}"),
            Outcome::Failure(f) => f.to_string(),
        };
        let failures = ctx.failures().keys().cloned().collect();
        record.lock().unwrap().push((outcome, failures));
        Exec::Ready(Ok(None))
    });
    let fails = FnTask::asynchronous(Signature::new(), move |_, _| {
        let started = take(&started_rx);
        async move {
            started.await.expect("slow started");
            Err(TaskError::msg("Woot!"))
        }
    });
    let flow = Flow::linear("race")
        .add(progressing("first"))
        .add(
            Flow::unordered("u")
                .add(Atom::new("slow", slow))
                .add(Atom::new("fails", fails)),
        )
        .add(progressing("after"))
        .build()
        .expect("valid flow");
    let capture = CaptureListener::new();
    let mut engine = Engine::builder(flow)
        .parallel(4)
        .listener(capture.clone())
        .listener(OnEvent {
            event: "fails.t FAILURE(Failure: Woot!)".into(),
            tx: Mutex::new(Some(release_tx)),
        })
        .build();
    let err = tokio::time::timeout(Duration::from_secs(30), engine.run())
        .await
        .expect("no deadlock")
        .expect_err("fails");
    assert_eq!(
        err.to_string(),
        "flow `race` was reverted: task `fails` failed: Woot!"
    );
    let events = capture.events();
    let mut expected = vec![
        "race.f RUNNING",
        "first.t RUNNING",
        "first.t SUCCESS(5)",
        "slow.t RUNNING",
        "slow.t SUCCESS(7)",
        "slow.t REVERTING",
        "slow.t REVERTED(())",
        "fails.t RUNNING",
        "fails.t FAILURE(Failure: Woot!)",
        "fails.t REVERTING",
        "fails.t REVERTED(())",
        "first.t REVERTING",
        "first.t REVERTED(())",
        "race.f REVERTED",
    ];
    expected.sort_unstable();
    let mut got = events.clone();
    got.sort_unstable();
    assert_eq!(got, expected);
    let order = [
        "race.f RUNNING",
        "first.t SUCCESS(5)",
        "slow.t RUNNING",
        "fails.t FAILURE(Failure: Woot!)",
        "slow.t SUCCESS(7)",
        "slow.t REVERTING",
        "slow.t REVERTED(())",
        "first.t REVERTING",
        "first.t REVERTED(())",
        "race.f REVERTED",
    ];
    for pair in order.windows(2) {
        assert!(
            pos(&events, pair[0]) < pos(&events, pair[1]),
            "`{}` before `{}` in {events:#?}",
            pair[0],
            pair[1]
        );
    }
    assert!(pos(&events, "fails.t RUNNING") < pos(&events, "fails.t FAILURE(Failure: Woot!)"));
    assert!(pos(&events, "fails.t REVERTED(())") < pos(&events, "first.t REVERTING"));
    assert_eq!(engine.atom_state("after"), Some(AtomState::Pending));
    assert_eq!(engine.atom_state("slow"), Some(AtomState::Reverted));
    assert_eq!(
        *seen.lock().unwrap(),
        [("7".to_string(), vec!["fails".to_string()])]
    );
}

// ---------------------------------------------------------------------------
// Async and blocking bodies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn async_tasks_run_and_revert_on_both_engines() {
    for mode in MODES {
        let a = FnTask::asynchronous(Signature::new().provides::<u32>("n"), |_, _| async {
            tokio::task::yield_now().await;
            Ok(Outputs::one(20u32))
        });
        let b = FnTask::asynchronous(
            Signature::new().requires::<u32>("n").provides::<u32>("m"),
            |args, _| async move {
                tokio::task::yield_now().await;
                Ok(Outputs::one(args.get::<u32>(0)? + 1))
            },
        )
        .on_revert(|input, _| {
            Exec::future(async move {
                tokio::task::yield_now().await;
                let n = *input.args.get::<u32>(0)?;
                Ok(Some(Value::new(format!("undone {n}"))))
            })
        });
        let flow = Flow::linear("async")
            .add(Atom::new("a", a))
            .add(Atom::new("b", b))
            .add(failing("c"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect_err("c fails");
        assert_eq!(
            capture.events(),
            [
                "async.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(20)",
                "b.t RUNNING",
                "b.t SUCCESS(21)",
                "c.t RUNNING",
                "c.t FAILURE(Failure: Woot!)",
                "c.t REVERTING",
                "c.t REVERTED(())",
                "b.t REVERTING",
                "b.t REVERTED(\"undone 20\")",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "async.f REVERTED"
            ],
            "{mode:?}"
        );
        assert_eq!(
            engine
                .revert_result("b")
                .and_then(|v| v.downcast_ref::<String>())
                .map(String::as_str),
            Some("undone 20")
        );
    }
}

type Threads = Arc<Mutex<Vec<(String, ThreadId)>>>;

fn thread_recorder(name: &'static str, blocking: bool, threads: &Threads) -> Atom {
    let sig = if blocking {
        Signature::new().blocking()
    } else {
        Signature::new()
    };
    let (exec, revert) = (threads.clone(), threads.clone());
    Atom::new(
        name,
        FnTask::sync(sig, move |_| {
            exec.lock()
                .unwrap()
                .push((format!("{name} execute"), std::thread::current().id()));
            Ok(Outputs::new())
        })
        .on_revert_sync(move |_| {
            revert
                .lock()
                .unwrap()
                .push((format!("{name} revert"), std::thread::current().id()));
            Ok(None)
        }),
    )
}

// A current-thread runtime: everything async runs on the test's thread, so a
// body seen on another thread ran on the blocking pool.
#[tokio::test]
async fn blocking_tasks_run_on_the_blocking_pool_on_both_engines() {
    let here = std::thread::current().id();
    for mode in MODES {
        let threads: Threads = Arc::default();
        let blocking_async = FnTask::asynchronous(
            Signature::new().blocking().provides::<bool>("elsewhere"),
            move |_, _| async move { Ok(Outputs::one(std::thread::current().id() != here)) },
        );
        let flow = Flow::linear("blocking")
            .add(thread_recorder("inline", false, &threads))
            .add(thread_recorder("blocker", true, &threads))
            .add(Atom::new("blocking_async", blocking_async))
            .add(failing("fail"))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect_err("fail fails");
        assert_eq!(
            capture.events()[..7],
            [
                "blocking.f RUNNING",
                "inline.t RUNNING",
                "inline.t SUCCESS(())",
                "blocker.t RUNNING",
                "blocker.t SUCCESS(())",
                "blocking_async.t RUNNING",
                "blocking_async.t SUCCESS(true)",
            ],
            "{mode:?}"
        );
        let threads = threads.lock().unwrap();
        let names: Vec<&str> = threads.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "inline execute",
                "blocker execute",
                "blocker revert",
                "inline revert"
            ]
        );
        let on_test_thread: Vec<bool> = threads.iter().map(|(_, id)| *id == here).collect();
        assert_eq!(on_test_thread, [true, false, false, true], "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// Progress and durations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn progress_is_reported_and_clamped() {
    for mode in MODES {
        let reporter = FnTask::new(Signature::new(), |_, ctx| {
            ctx.progress(0.5);
            ctx.progress(1.5);
            ctx.progress(-2.0);
            ctx.progress(f32::NAN);
            Exec::Ready(Ok(Outputs::new()))
        });
        let async_reporter = FnTask::asynchronous(Signature::new(), |_, ctx| async move {
            tokio::task::yield_now().await;
            ctx.progress(0.25);
            Ok(Outputs::new())
        });
        let flow = Flow::linear("p")
            .add(Atom::new("t", reporter))
            .add(Atom::new("u", async_reporter))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::new().with_progress();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "p.f RUNNING",
                "t.t RUNNING",
                "t.t PROGRESS(0)",
                "t.t PROGRESS(0.5)",
                "t.t PROGRESS(1)",
                "t.t PROGRESS(0)",
                "t.t PROGRESS(0)",
                "t.t SUCCESS(())",
                "t.t PROGRESS(1)",
                "u.t RUNNING",
                "u.t PROGRESS(0)",
                "u.t PROGRESS(0.25)",
                "u.t SUCCESS(())",
                "u.t PROGRESS(1)",
                "p.f SUCCESS"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn progress_is_not_captured_unless_asked() {
    let reporter = FnTask::new(Signature::new(), |_, ctx| {
        ctx.progress(0.5);
        Exec::Ready(Ok(Outputs::new()))
    });
    let flow = Flow::linear("p")
        .add(Atom::new("t", reporter))
        .build()
        .expect("valid flow");
    let (mut engine, capture) = engine(flow, Mode::Serial);
    engine.run().await.expect("runs");
    assert_eq!(
        capture.events(),
        [
            "p.f RUNNING",
            "t.t RUNNING",
            "t.t SUCCESS(())",
            "p.f SUCCESS"
        ]
    );
}

/// Keeps every event it is sent as text; asks for progress events or not.
struct Record {
    progress: bool,
    events: Mutex<Vec<String>>,
}

impl Listener for Record {
    fn on_event(&self, event: &Event<'_>) {
        self.events.lock().unwrap().push(event.to_string());
    }

    fn wants_progress(&self) -> bool {
        self.progress
    }
}

#[tokio::test]
async fn progress_goes_only_to_listeners_that_want_it() {
    // Names of every kind of length the capture listener keeps: short, at
    // and past its inline limit of 16 bytes, and with multibyte characters.
    let names = [
        "a",
        "abc",
        "four",
        "seven!!",
        "eight-by",
        "exactly-sixteen!",
        "seventeen-bytes!!",
        "ü",
        "ünï",
        "ünï-cödé",
        "ünïcödé-ünïcödé!",
    ];
    for mode in MODES {
        let mut flow = Flow::linear("names-of-every-length");
        for name in names {
            let reporter = FnTask::new(Signature::new(), |_, ctx| {
                ctx.progress(0.5);
                Exec::Ready(Ok(Outputs::new()))
            });
            flow = flow.add(Atom::new(name, reporter));
        }
        let flow = flow.build().expect("valid flow");
        let all = Arc::new(Record {
            progress: true,
            events: Mutex::new(Vec::new()),
        });
        let states = Arc::new(Record {
            progress: false,
            events: Mutex::new(Vec::new()),
        });
        let capture = CaptureListener::new().with_progress();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .listener_arc(all.clone())
            .listener_arc(states.clone())
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");

        let mut expected_states = vec!["names-of-every-length.f RUNNING".to_string()];
        let mut expected_all = expected_states.clone();
        for name in names {
            expected_states.push(format!("{name}.t RUNNING"));
            expected_states.push(format!("{name}.t SUCCESS(())"));
            expected_all.extend([
                format!("{name}.t RUNNING"),
                format!("{name}.t PROGRESS(0)"),
                format!("{name}.t PROGRESS(0.5)"),
                format!("{name}.t SUCCESS(())"),
                format!("{name}.t PROGRESS(1)"),
            ]);
        }
        expected_states.push("names-of-every-length.f SUCCESS".to_string());
        expected_all.push("names-of-every-length.f SUCCESS".to_string());
        assert_eq!(*states.events.lock().unwrap(), expected_states, "{mode:?}");
        assert_eq!(*all.events.lock().unwrap(), expected_all, "{mode:?}");
        assert_eq!(capture.events(), expected_all, "{mode:?}");
        assert_eq!(expected_all.len(), 2 + 5 * names.len());
    }
}

#[tokio::test]
async fn durations_are_recorded_for_execute_and_revert() {
    for mode in MODES {
        let flow = Flow::linear("d")
            .add(progressing("a"))
            .add(progressing("b"))
            .add(failing("fail"))
            .build()
            .expect("valid flow");
        let (mut engine, durations) = engine_with_durations(flow, mode);
        engine.run().await.expect_err("fails");
        let names =
            |m: std::collections::BTreeMap<String, Duration>| m.into_keys().collect::<Vec<_>>();
        assert_eq!(names(durations.execute_durations()), ["a", "b", "fail"]);
        assert_eq!(names(durations.revert_durations()), ["a", "b", "fail"]);

        let (mut ok, ok_durations) = engine_with_durations(success_flow("ok"), mode);
        ok.run().await.expect("runs");
        assert_eq!(names(ok_durations.execute_durations()), ["ok1", "ok2"]);
        assert_eq!(names(ok_durations.revert_durations()), Vec::<String>::new());
    }
}

fn engine_with_durations(flow: flow::CompiledFlow, mode: Mode) -> (Engine, DurationListener) {
    let durations = DurationListener::new();
    let engine = Engine::builder(flow)
        .mode(mode)
        .listener(durations.clone())
        .build();
    (engine, durations)
}
