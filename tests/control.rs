//! Suspending, cancelling and timing out runs, and the attempt number tasks
//! see, on both engines.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MODES, engine, failing, progressing};
use flow::{
    Atom, Exec, FailureKind, Flow, FlowState, FnTask, Outputs, Retry, RunError, RunHandle,
    Signature, TaskError,
};

type Slot = Arc<Mutex<Option<RunHandle>>>;

/// `before`, in order, then `SUSPENDING` and `SUSPENDED`. The serial engine sees
/// the request once the running atom is done; the parallel one may see it
/// while the atom still runs, so `SUSPENDING` may come before the atom's last
/// event, never before its first.
fn assert_suspended(events: &[String], before: &[&str], mode: flow::Mode) {
    let suspending = common::pos(events, "f.f SUSPENDING");
    let mut expected: Vec<String> = before.iter().map(ToString::to_string).collect();
    expected.push("f.f SUSPENDED".into());
    let mut rest = events.to_vec();
    rest.remove(suspending);
    assert_eq!(rest, expected, "{mode:?}");
    assert_eq!(events.last().map(String::as_str), Some("f.f SUSPENDED"));
    if mode == flow::Mode::Serial {
        assert_eq!(suspending, before.len(), "{events:?}");
    } else {
        assert!(suspending >= before.len() - 1, "{events:?}");
    }
}

/// A task that suspends the run it belongs to.
fn suspender(name: &'static str, slot: &Slot) -> Atom {
    let slot = slot.clone();
    Atom::new(
        name,
        FnTask::sync(Signature::new(), move |_| {
            if let Some(h) = slot.lock().unwrap().as_ref() {
                h.suspend();
            }
            Ok(Outputs::new())
        }),
    )
}

#[tokio::test]
async fn suspend_mid_flow_and_resume_to_success() {
    for mode in MODES {
        let slot: Slot = Arc::default();
        let flow = Flow::linear("f")
            .add(suspender("a", &slot))
            .add(progressing("b"))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        *slot.lock().unwrap() = Some(engine.handle());
        let err = engine.run().await.expect_err("suspended");
        assert!(matches!(err, RunError::Suspended { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "flow `f` was suspended: run it again to continue"
        );
        assert_eq!(engine.state(), FlowState::Suspended);
        assert_suspended(
            &capture.events(),
            &["f.f RUNNING", "a.t RUNNING", "a.t SUCCESS(())"],
            mode,
        );
        *slot.lock().unwrap() = None;
        capture.clear();
        engine.run().await.expect("resumes");
        assert_eq!(
            capture.events(),
            [
                "f.f RUNNING",
                "b.t RUNNING",
                "b.t SUCCESS(5)",
                "f.f SUCCESS"
            ],
            "{mode:?}"
        );
        assert_eq!(
            engine.attempts("a"),
            Some(1),
            "a finished atom is not run again"
        );
    }
}

#[tokio::test]
async fn suspend_during_revert_and_resume_to_reverted() {
    for mode in MODES {
        let slot: Slot = Arc::default();
        let in_revert = slot.clone();
        let fails = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("Woot!")))
            .on_revert_sync(move |_| {
                if let Some(h) = in_revert.lock().unwrap().as_ref() {
                    h.suspend();
                }
                Ok(None)
            });
        let flow = Flow::linear("f")
            .add(progressing("a"))
            .add(Atom::new("b", fails))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        *slot.lock().unwrap() = Some(engine.handle());
        let err = engine.run().await.expect_err("suspended");
        assert!(matches!(err, RunError::Suspended { .. }), "{err}");
        assert_suspended(
            &capture.events(),
            &[
                "f.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(5)",
                "b.t RUNNING",
                "b.t FAILURE(Failure: Woot!)",
                "b.t REVERTING",
                "b.t REVERTED(())",
            ],
            mode,
        );
        *slot.lock().unwrap() = None;
        capture.clear();
        let err = engine.run().await.expect_err("reverted");
        assert_eq!(
            err.to_string(),
            "flow `f` was reverted: task `b` failed: Woot!"
        );
        assert_eq!(
            capture.events(),
            [
                "f.f RUNNING",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "f.f REVERTED"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_run_whose_task_watches_the_token() {
    for mode in MODES {
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watcher = FnTask::new(Signature::new(), move |_, ctx| {
            let ctx = ctx.clone();
            let started = started_tx.clone();
            Exec::future(async move {
                let _ = started.send(());
                ctx.cancelled().await;
                assert!(ctx.is_cancelled());
                Err(TaskError::msg("stopped: the run was cancelled"))
            })
        });
        let flow = Flow::linear("c")
            .add(progressing("a"))
            .add(Atom::new("watcher", watcher))
            .add(progressing("never"))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        let handle = engine.handle();
        let canceller = tokio::spawn(async move {
            started_rx.recv().await.expect("the watcher starts");
            handle.cancel();
        });
        let err = tokio::time::timeout(Duration::from_secs(30), engine.run())
            .await
            .expect("no hang")
            .expect_err("cancelled");
        canceller.await.unwrap();
        assert!(matches!(err, RunError::Cancelled { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "flow `c` was cancelled and what had run was reverted; meanwhile: task `watcher` \
             failed: stopped: the run was cancelled"
        );
        assert_eq!(
            capture.events(),
            [
                "c.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(5)",
                "watcher.t RUNNING",
                "watcher.t FAILURE(Failure: stopped: the run was cancelled)",
                "watcher.t REVERTING",
                "watcher.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "c.f REVERTED"
            ],
            "{mode:?}"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
        assert!(
            !engine.handle().is_cancelled(),
            "the request is forgotten once handled"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_exceeding_its_timeout_fails_and_is_reverted() {
    for mode in MODES {
        let slow = FnTask::asynchronous(Signature::new(), |_, _| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Outputs::new())
        });
        let flow = Flow::linear("t")
            .add(progressing("a"))
            .add(Atom::new("slow", slow).timeout(Duration::from_secs(1)))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        let start = tokio::time::Instant::now();
        let err = engine.run().await.expect_err("timed out");
        assert_eq!(start.elapsed(), Duration::from_secs(1), "{mode:?}");
        let failure = &err.failures()[0].failure;
        assert_eq!(failure.kind(), FailureKind::Timeout);
        assert_eq!(failure.message(), "task `slow` timed out after 1s");
        assert_eq!(
            capture.events(),
            [
                "t.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(5)",
                "slow.t RUNNING",
                "slow.t FAILURE(Failure: task `slow` timed out after 1s)",
                "slow.t REVERTING",
                "slow.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "t.f REVERTED"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_task_within_its_timeout_succeeds() {
    let quick = FnTask::asynchronous(Signature::new().provides::<u32>("n"), |_, _| async {
        Ok(Outputs::one(3u32))
    });
    let flow = Flow::linear("q")
        .add(Atom::new("quick", quick).timeout(Duration::from_secs(60)))
        .build()
        .unwrap();
    let (mut engine, _) = engine(flow, flow::Mode::Serial);
    engine.run().await.unwrap();
    assert_eq!(engine.fetch::<u32>("n"), Some(&3));
}

#[tokio::test]
async fn the_context_gives_the_attempt_number() {
    for mode in MODES {
        let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
        let record = seen.clone();
        let flaky = FnTask::new(Signature::new(), move |_, ctx| {
            record.lock().unwrap().push(ctx.attempt());
            Exec::Ready(if ctx.attempt() < 3 {
                Err(TaskError::msg("not yet"))
            } else {
                Ok(Outputs::new())
            })
        });
        let flow = Flow::linear("a")
            .retry(Retry::times(5))
            .add(Atom::new("flaky", flaky))
            .build()
            .unwrap();
        let (mut engine, _) = engine(flow, mode);
        engine.run().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3], "{mode:?}");
        assert_eq!(engine.attempts("flaky"), Some(3));
    }
}

#[tokio::test]
async fn a_cancelled_run_reverts_even_what_does_not_watch_the_token() {
    for mode in MODES {
        let slot: Slot = Arc::default();
        let in_task = slot.clone();
        let cancels = FnTask::sync(Signature::new(), move |_| {
            if let Some(h) = in_task.lock().unwrap().as_ref() {
                h.cancel();
            }
            Ok(Outputs::new())
        });
        let flow = Flow::linear("x")
            .add(progressing("a"))
            .add(Atom::new("cancels", cancels))
            .add(failing("never"))
            .build()
            .unwrap();
        let (mut engine, capture) = engine(flow, mode);
        *slot.lock().unwrap() = Some(engine.handle());
        let err = engine.run().await.expect_err("cancelled");
        assert_eq!(
            err.to_string(),
            "flow `x` was cancelled and what had run was reverted"
        );
        assert_eq!(
            capture.events(),
            [
                "x.f RUNNING",
                "a.t RUNNING",
                "a.t SUCCESS(5)",
                "cancels.t RUNNING",
                "cancels.t SUCCESS(())",
                "cancels.t REVERTING",
                "cancels.t REVERTED(())",
                "a.t REVERTING",
                "a.t REVERTED(())",
                "x.f REVERTED"
            ],
            "{mode:?}"
        );
    }
}
