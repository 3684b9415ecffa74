//! Running one job: calls the task, turns errors and panics into failures.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::engine::machine::{Done, Job, JobKind};
use crate::failure::{Failure, FailureKind, TaskError};
use crate::task::{Context, Exec, Runner};

/// Calls a task method, a panic caught as a failure: its result if it
/// finished at once, else the future it returned.
pub(crate) fn call<T>(
    method: impl FnOnce() -> Exec<T>,
) -> Result<Result<T, Failure>, BoxFuture<'static, Result<T, TaskError>>> {
    match catch_unwind(AssertUnwindSafe(method)) {
        Err(payload) => Ok(Err(Failure::from_panic(payload))),
        Ok(Exec::Ready(result)) => Ok(result.map_err(Failure::from_error)),
        Ok(Exec::Future(future)) => Err(future),
    }
}

/// Awaits a task method's future, a panic caught as a failure.
async fn finish<T>(future: BoxFuture<'static, Result<T, TaskError>>) -> Result<T, Failure> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Err(payload) => Err(Failure::from_panic(payload)),
        Ok(result) => result.map_err(Failure::from_error),
    }
}

async fn settle<T>(method: impl FnOnce() -> Exec<T>) -> Result<T, Failure> {
    match call(method) {
        Ok(result) => result,
        Err(future) => finish(future).await,
    }
}

fn timed_out(ctx: &Context, limit: Duration) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!("task `{}` timed out after {limit:?}", ctx.atom()),
        "timeout",
    )
}

async fn run_inline(job: Job) -> Done {
    let Job {
        atom,
        task,
        ctx,
        kind,
        timeout,
        ..
    } = job;
    match kind {
        JobKind::Execute(args) => {
            let started = Instant::now();
            let work = give_up_after_cancel(&ctx, settle(|| task.execute(args, &ctx)));
            let result = match timeout {
                None => work.await,
                // A synchronous task cannot be stopped: if it returns past
                // its limit, it timed out all the same.
                Some(limit) => match tokio::time::timeout(limit, work).await {
                    Ok(_) if started.elapsed() > limit => Err(timed_out(&ctx, limit)),
                    Ok(result) => result,
                    Err(_) => Err(timed_out(&ctx, limit)),
                },
            };
            Done::Executed(atom, result)
        }
        JobKind::Revert(input) => Done::Reverted(atom, settle(|| task.revert(input, &ctx)).await),
        JobKind::Wait(delay) => wait(atom, delay, ctx).await,
    }
}

/// Runs an asynchronous task's `work`; once the run is cancelled, gives the
/// task its grace period to stop, then gives up on it: the future is
/// dropped and the task fails as cancelled.
async fn give_up_after_cancel<T>(
    ctx: &Context,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    if tokio::runtime::Handle::try_current().is_err() {
        return work.await;
    }
    let grace = ctx.grace();
    let deadline = async {
        ctx.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        biased;
        result = work => result,
        () = deadline => Err(Failure::new(
            FailureKind::Cancelled,
            format!(
                "task `{}` did not stop within {grace:?} of the run's cancellation: \
                 the engine gave up on it",
                ctx.atom()
            ),
            "cancelled",
        )),
    }
}

/// The failure reported when a job's tokio task ended without an answer.
pub(crate) fn aborted(atom: u32, executing: bool, why: &dyn std::fmt::Display) -> Done {
    let failure = Failure::new(
        FailureKind::Aborted,
        format!("the task did not finish: {why}"),
        "aborted",
    );
    if executing {
        Done::Executed(atom, Err(failure))
    } else {
        Done::Reverted(atom, Err(failure))
    }
}

/// Runs a job to its end; blocking tasks go to tokio's blocking pool.
pub(crate) async fn run_job(job: Job) -> Done {
    if !job.blocking {
        return run_inline(job).await;
    }
    let atom = job.atom;
    if let Some(limit) = job.timeout {
        // The engine stops waiting at the limit; the blocking thread runs on.
        let name = job.ctx.atom().to_string();
        let mut inner = job;
        inner.timeout = None;
        return match tokio::time::timeout(limit, Box::pin(blocking(inner))).await {
            Ok(done) => done,
            Err(_) => Done::Executed(
                atom,
                Err(Failure::new(
                    FailureKind::Timeout,
                    format!("task `{name}` timed out after {limit:?}"),
                    "timeout",
                )),
            ),
        };
    }
    blocking(job).await
}

async fn blocking(job: Job) -> Done {
    let atom = job.atom;
    let executing = !matches!(job.kind, JobKind::Revert(_));
    // `Engine::run` checked that a runtime is there before handing out jobs.
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return aborted(
            atom,
            executing,
            &"no tokio runtime to run a blocking task on",
        );
    };
    match tokio::task::spawn_blocking(move || handle.block_on(run_inline(job))).await {
        Ok(done) => done,
        Err(e) => aborted(atom, executing, &e),
    }
}

/// A job started by [`start`].
pub(crate) enum Started {
    /// It finished on the spot (a synchronous task).
    Now(Done),
    /// It finishes when this future does.
    Later(BoxFuture<'static, Done>),
}

/// Starts a job: a plain synchronous `execute` or `revert` (no timeout, not
/// blocking) runs to its end at once, with nothing allocated for it; anything
/// else becomes a future.
pub(crate) fn start(job: Job) -> Started {
    if job.blocking || job.timeout.is_some() {
        return Started::Later(Box::pin(run_job(job)));
    }
    let Job {
        atom,
        task,
        ctx,
        kind,
        ..
    } = job;
    start_lent(atom, kind, &task, &ctx)
}

/// Starts a plain job (neither blocking nor under a timeout) with a lent
/// task and context: a synchronous `execute` or `revert` runs to its end
/// with no reference taken; one that returns a future keeps a clone of the
/// context while the future runs.
pub(crate) fn start_lent(atom: u32, kind: JobKind, task: &Runner, ctx: &Context) -> Started {
    match kind {
        JobKind::Execute(args) => {
            let called = call(|| task.execute(args, ctx));
            started(atom, ctx, called, Done::Executed, true)
        }
        JobKind::Revert(input) => {
            let called = call(|| task.revert(input, ctx));
            started(atom, ctx, called, Done::Reverted, false)
        }
        JobKind::Wait(delay) => Started::Later(Box::pin(wait(atom, delay, ctx.clone()))),
    }
}

/// What [`call`] gave, as a started job: done now, or a future that keeps a
/// clone of the context alive as long as the task's own future runs (given
/// up on after a cancel and its grace period when `execute` is set: a
/// revert is never given up on).
pub(crate) fn started<T: Send + 'static>(
    atom: u32,
    ctx: &Context,
    called: Result<Result<T, Failure>, BoxFuture<'static, Result<T, TaskError>>>,
    done: fn(u32, Result<T, Failure>) -> Done,
    execute: bool,
) -> Started {
    match called {
        Ok(result) => Started::Now(done(atom, result)),
        Err(future) => {
            let ctx = ctx.clone();
            Started::Later(Box::pin(async move {
                let result = if execute {
                    give_up_after_cancel(&ctx, finish(future)).await
                } else {
                    finish(future).await
                };
                done(atom, result)
            }))
        }
    }
}

/// A retry controller's wait before its next attempt; a cancel ends it at
/// once.
async fn wait(atom: u32, delay: Duration, ctx: Context) -> Done {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = ctx.cancelled() => {}
    }
    Done::Waited(atom)
}
