//! Running a pipeline in the foreground: `flow run`, `resume`, `rerun`, and
//! `cancel` of a run nobody holds. The run's events go to a view (live on a
//! terminal, plain lines elsewhere); Ctrl-C cancels the run, a second one
//! leaves it for `flow resume`.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use flow::RunError;
use flow_cli::ops::{
    self, Access, ActiveRun, Cancel, OpsError, RunEvent, RunOptions, Store, show_run,
};
use tokio::signal::unix::{SignalKind, signal};

use super::args::{EngineArgs, ParamArgs};
use super::live::Live;
use super::plain::Plain;
use super::{StoreArgs, exit, note, out, prompt};

/// What shows a run as it goes.
pub(crate) trait View {
    /// A line that stays (above the live lines, on a terminal).
    fn line(&mut self, text: &str);
    /// The run's next event.
    fn event(&mut self, event: &RunEvent);
    /// How many steps had succeeded before a resumed run was taken up.
    fn done_before(&mut self, _steps: usize) {}
    /// The run has ended (or was left): stop drawing, and print `last`
    /// under what was drawn.
    fn close(&mut self, last: &str);
}

fn options(engine: &EngineArgs) -> RunOptions {
    RunOptions::default().jobs(engine.jobs).lease(engine.lease)
}

/// `flow run FILE -p ...`.
pub(crate) async fn run(
    store: &StoreArgs,
    file: &Path,
    params: &ParamArgs,
    engine: &EngineArgs,
) -> Result<u8, OpsError> {
    let pipeline = flow_pipeline::Pipeline::from_path(file)?;
    let Some(values) = prompt::values(&pipeline, params)? else {
        return Ok(exit::INTERRUPTED);
    };
    let store = store.open(Access::Create).await?;
    let active = ops::start_run(&store, &pipeline, &values, &options(engine)).await?;
    Ok(drive(&store, active, engine.plain, false).await)
}

/// `flow resume RUN`.
pub(crate) async fn resume(
    store: &StoreArgs,
    run: &str,
    wait: Option<Duration>,
    engine: &EngineArgs,
) -> Result<u8, OpsError> {
    let store = store.open(Access::Existing).await?;
    let run = store.resolve_run(run).await?;
    let options = options(engine).wait_for_lease(wait.unwrap_or_default());
    let active = ops::resume_run(&store, run, &options).await?;
    Ok(drive(&store, active, engine.plain, false).await)
}

/// `flow rerun RUN`.
pub(crate) async fn rerun(
    store: &StoreArgs,
    run: &str,
    engine: &EngineArgs,
) -> Result<u8, OpsError> {
    let store = store.open(Access::Existing).await?;
    let run = store.resolve_run(run).await?;
    let active = ops::rerun(&store, run, &options(engine)).await?;
    out!("rerun of run {run}");
    Ok(drive(&store, active, engine.plain, false).await)
}

/// `flow cancel RUN`.
pub(crate) async fn cancel(
    store: &StoreArgs,
    run: &str,
    wait: bool,
    engine: &EngineArgs,
) -> Result<u8, OpsError> {
    let store = store.open(Access::Existing).await?;
    let run = store.resolve_run(run).await?;
    match ops::cancel_run(&store, run, &options(engine)).await? {
        Cancel::JobCancelled { job } => {
            out!("cancelled job {job} before any conductor took it: nothing ran (run {run})");
            Ok(exit::OK)
        }
        Cancel::Requested { owner } => {
            out!(
                "asked `{owner}`, which runs run {run}, to cancel it: it stops the running \
                 steps and reverts what ran"
            );
            if !wait {
                return Ok(exit::OK);
            }
            let ended = wait_for_end(&store, run).await?;
            out!("run {run} ended: {ended}");
            Ok(match ended {
                ops::RunStatus::Reverted => exit::OK,
                _ => exit::FAILED,
            })
        }
        Cancel::TakenUp(active) => {
            out!("nobody was running run {run}: reverting what it ran, here");
            Ok(drive(&store, *active, engine.plain, true).await)
        }
    }
}

/// Looks at run `run` until it has ended.
async fn wait_for_end(store: &Store, run: flow::FlowId) -> Result<ops::RunStatus, OpsError> {
    let mut watch = flow::storage::RunWatch::new(store.backend().clone(), run);
    loop {
        watch
            .next(Duration::from_millis(200))
            .await
            .map_err(OpsError::Store)?;
        if watch.ended() {
            let state = watch.state().unwrap_or(flow::FlowState::Running);
            return Ok(ops::RunStatus::of(state));
        }
    }
}

/// Runs `active` to its end in the foreground, showing it; returns the exit
/// code (with `cancelling`, a run that ends cancelled did what was asked).
pub(crate) async fn drive(
    store: &Store,
    mut active: ActiveRun,
    plain: bool,
    cancelling: bool,
) -> u8 {
    let live = !plain && std::io::stdout().is_terminal();
    let total = active.pipeline().steps().len();
    let mut view: Box<dyn View> = if live {
        Box::new(Live::new(active.pipeline(), active.log_dir()))
    } else {
        Box::new(Plain::new(active.pipeline(), active.log_dir()))
    };
    let id = active.id();
    let name = active.pipeline().name().to_string();
    view.line(&format!("run {id} of {name} ({total} steps)"));
    view.line(&format!("logs {}", active.log_dir().display()));
    if active.resumed()
        && let Ok(before) = show_run(store, id, 0).await
    {
        let done: Vec<&str> = (before.steps.iter())
            .filter(|s| s.state == "succeeded")
            .map(|s| s.name.as_str())
            .collect();
        view.line(&format!(
            "taken up where it stopped: {} of {total} steps had succeeded{}",
            done.len(),
            if done.is_empty() {
                String::new()
            } else {
                format!(" ({})", done.join(", "))
            }
        ));
        view.done_before(done.len());
    }
    let handle = active.handle();
    let Some(mut events) = active.take_events() else {
        return exit::FAILED;
    };
    let mut interrupt = match signal(SignalKind::interrupt()) {
        Ok(s) => Some(s),
        Err(e) => {
            view.line(&format!("(Ctrl-C cannot be caught here: {e})"));
            None
        }
    };
    let started = Instant::now();
    let mut interrupts = 0;
    let result = {
        let running = active.run();
        tokio::pin!(running);
        loop {
            tokio::select! {
                result = &mut running => break Some(result),
                Some(event) = events.recv() => view.event(&event),
                Some(()) = async { interrupt.as_mut()?.recv().await } => {
                    interrupts += 1;
                    if interrupts > 1 {
                        break None;
                    }
                    handle.cancel();
                    view.line("cancelling: reverting what ran (Ctrl-C again leaves it for `flow resume`)");
                }
            }
        }
    };
    while let Ok(event) = events.try_recv() {
        view.event(&event);
    }
    let Some(result) = result else {
        active.abandon().await;
        view.close("");
        note!(
            "left run {id} as it was: `flow resume {id}` takes it up (and finishes a cancel \
             under way; steps still running go on, and the resume stops them first)"
        );
        return exit::INTERRUPTED;
    };
    let took = ops::short_duration(started.elapsed());
    let (line, code) = match &result {
        Ok(()) => (format!("{name} succeeded in {took}"), exit::OK),
        Err(RunError::Cancelled { .. }) => (
            format!("{name} was cancelled, and what had run was reverted"),
            if interrupts > 0 {
                exit::INTERRUPTED
            } else if cancelling {
                exit::OK
            } else {
                exit::FAILED
            },
        ),
        Err(RunError::Reverted { .. }) => (
            format!(
                "{name} failed, and what had run was reverted\n  flow show {id}   shows why\n  \
                 flow rerun {id}  runs it again"
            ),
            exit::FAILED,
        ),
        Err(RunError::RevertFailed { .. }) => (
            format!(
                "{name} failed, and reverting it failed too\n  flow show {id}   shows what is \
                 left to clean up"
            ),
            exit::FAILED,
        ),
        Err(RunError::Suspended { .. }) => (
            format!("{name} was suspended: `flow resume {id}` continues it"),
            exit::FAILED,
        ),
        Err(RunError::OwnershipLost { .. }) => (
            format!("run {id} was taken over by another process, which goes on with it"),
            exit::REFUSED,
        ),
        Err(e) => (format!("{name}: {e}"), exit::FAILED),
    };
    view.close(&line);
    code
}
