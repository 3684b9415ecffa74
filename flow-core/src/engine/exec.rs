//! Running one job: calls the task, turns errors and panics into failures.

use std::panic::{AssertUnwindSafe, catch_unwind};

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
            let work = settle(|| task.execute(args, &ctx));
            let result = match timeout {
                None => work.await,
                Some(limit) => match tokio::time::timeout(limit, work).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure::new(
                        FailureKind::Timeout,
                        format!("task `{}` timed out after {limit:?}", ctx.atom()),
                        "timeout",
                    )),
                },
            };
            Done::Executed(atom, result)
        }
        JobKind::Revert(input) => Done::Reverted(atom, settle(|| task.revert(input, &ctx)).await),
        JobKind::Wait(delay) => wait(atom, delay).await,
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
            started(atom, ctx, called, Done::Executed)
        }
        JobKind::Revert(input) => {
            let called = call(|| task.revert(input, ctx));
            started(atom, ctx, called, Done::Reverted)
        }
        JobKind::Wait(delay) => Started::Later(Box::pin(wait(atom, delay))),
    }
}

/// What [`call`] gave, as a started job: done now, or a future that keeps a
/// clone of the context alive as long as the task's own future runs.
pub(crate) fn started<T: Send + 'static>(
    atom: u32,
    ctx: &Context,
    called: Result<Result<T, Failure>, BoxFuture<'static, Result<T, TaskError>>>,
    done: fn(u32, Result<T, Failure>) -> Done,
) -> Started {
    match called {
        Ok(result) => Started::Now(done(atom, result)),
        Err(future) => {
            let ctx = ctx.clone();
            Started::Later(Box::pin(async move {
                let _ctx = ctx;
                done(atom, finish(future).await)
            }))
        }
    }
}

/// A retry controller's wait before its next attempt.
async fn wait(atom: u32, delay: std::time::Duration) -> Done {
    tokio::time::sleep(delay).await;
    Done::Waited(atom)
}
