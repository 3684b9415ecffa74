//! Running pipelines: a new run, a run taken up again, a run started anew
//! with the values of an earlier one. The caller drives the run: in the
//! foreground (awaiting [`ActiveRun::run`] while it shows the events), or in
//! the background (spawning it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use flow::{
    AtomKind, AtomState, Backend, Detail, Engine, EngineBuilder, Event, FlowId, FlowState,
    Listener, ResumeError, RunError, RunHandle,
};
use flow_pipeline::{Params, Pipeline};

use super::inspect::RunStatus;
use super::stored::StoredRun;
use super::time::format_time;
use super::{OpsError, Store};

/// How runs started from here are run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunOptions {
    /// How many steps may run at once (default 4).
    pub jobs: usize,
    /// How long the claim of this process on the run lasts unless renewed
    /// (default 10 s): after a crash, the time before another process may
    /// take the run up.
    pub lease: Duration,
    /// How often the claim is renewed (default 1 s): also how soon a request
    /// to cancel made through the store (`flow cancel`) is seen.
    pub renew_every: Duration,
    /// How long to wait for the lease of another process to run out before
    /// taking a run up (default: no wait).
    pub wait_for_lease: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 4,
            lease: Duration::from_secs(10),
            renew_every: Duration::from_secs(1),
            wait_for_lease: Duration::ZERO,
        }
    }
}

impl RunOptions {
    /// Sets how many steps may run at once.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Sets the length of the claim on the run (its renewal is kept at most a
    /// third of it).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self.renew_every = self.renew_every.min(self.lease / 3);
        self
    }

    /// Sets how long to wait for another process's lease.
    pub fn wait_for_lease(mut self, wait: Duration) -> Self {
        self.wait_for_lease = wait;
        self
    }

    fn apply(&self, builder: EngineBuilder, events: UnboundedSender<RunEvent>) -> EngineBuilder {
        builder
            .listener(EventSender(events))
            .parallel(self.jobs)
            .lease(self.lease)
            .renew_every(self.renew_every)
            .wait_for_lease(self.wait_for_lease)
    }
}

/// What happens in a run, as it happens: sent by [`ActiveRun`] to whoever
/// shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RunEvent {
    /// The run's state changed.
    Run {
        /// Its state now.
        state: FlowState,
    },
    /// A step's state changed.
    Step {
        /// The step.
        step: String,
        /// Its state now.
        state: AtomState,
        /// With `FAILURE` and `REVERT_FAILURE`: the failure's message.
        failure: Option<String>,
    },
}

/// Turns the engine's events into [`RunEvent`]s.
struct EventSender(UnboundedSender<RunEvent>);

impl Listener for EventSender {
    fn on_event(&self, event: &Event<'_>) {
        let sent = match event {
            Event::Flow { state, .. } => RunEvent::Run { state: *state },
            Event::Atom {
                atom,
                kind: AtomKind::Task,
                state,
                detail,
            } => RunEvent::Step {
                step: (*atom).to_string(),
                state: *state,
                failure: match detail {
                    Detail::Failure(f) => Some(f.message().to_string()),
                    _ => None,
                },
            },
            _ => return,
        };
        // Nobody listening any more is no reason to stop the run.
        let _ = self.0.send(sent);
    }

    fn wants_progress(&self) -> bool {
        false
    }
}

/// A run of a pipeline, ready to run (or to go on running).
pub struct ActiveRun {
    engine: Engine,
    pipeline: Pipeline,
    log_dir: PathBuf,
    events: Option<UnboundedReceiver<RunEvent>>,
    backend: Arc<dyn Backend>,
    resumed: bool,
}

impl std::fmt::Debug for ActiveRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveRun")
            .field("run", &self.engine.run_id())
            .field("pipeline", &self.pipeline.name())
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

impl ActiveRun {
    /// The run's id.
    pub fn id(&self) -> FlowId {
        self.engine.run_id()
    }

    /// The pipeline it runs.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The directory of its logs.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Whether it was taken up from the store (else it is new).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// A handle to cancel (or suspend) the run from elsewhere: a cancel
    /// stops the running steps and reverts what ran.
    pub fn handle(&self) -> RunHandle {
        self.engine.handle()
    }

    /// The run's events, from now on (once: later calls return `None`).
    pub fn take_events(&mut self) -> Option<UnboundedReceiver<RunEvent>> {
        self.events.take()
    }

    /// Runs it to its end: `Ok` when every step succeeded.
    ///
    /// The future may be dropped part-way (a second Ctrl-C): then call
    /// [`ActiveRun::abandon`], and the run is left for `flow resume`.
    ///
    /// # Errors
    /// The engine's: [`RunError::Reverted`] when a step failed and what had
    /// run was undone, [`RunError::Cancelled`], [`RunError::RevertFailed`],
    /// ...
    pub async fn run(&mut self) -> Result<(), RunError> {
        self.engine.run().await
    }

    /// Gives the run back to the store without finishing it, so that
    /// another process may take it up at once (`flow resume`).
    pub async fn abandon(mut self) {
        if let Some(lease) = self.engine.detach_lease() {
            let _ = self.backend.release_flow(&lease).await;
        }
    }
}

/// Makes a new run of `pipeline` with `params`, in `store`: saves the
/// definition in the store (so that the run can be shown, resumed and run
/// again from the store alone), and builds its engine. The run is in the
/// store once [`ActiveRun::run`] has started.
///
/// # Errors
/// [`OpsError::Problems`] when the values do not fit the parameters; what
/// the store says.
pub async fn start_run(
    store: &Store,
    pipeline: &Pipeline,
    params: &Params,
    options: &RunOptions,
) -> Result<ActiveRun, OpsError> {
    let run = pipeline.to_flow(params, &store.settings())?;
    pipeline
        .save(&**store.backend())
        .await
        .map_err(OpsError::Store)?;
    let log_dir = run.log_dir().to_path_buf();
    let builder = run.engine().map_err(|e| OpsError::Build {
        pipeline: pipeline.name().to_string(),
        detail: e.to_string(),
    })?;
    let (tx, rx) = unbounded_channel();
    let engine = options
        .apply(builder.storage(store.backend().clone()), tx)
        .build();
    Ok(ActiveRun {
        engine,
        pipeline: pipeline.clone(),
        log_dir,
        events: Some(rx),
        backend: store.backend().clone(),
        resumed: false,
    })
}

/// Takes run `run` up where it stopped (after a crash, a second Ctrl-C, a
/// suspend), with the definition it ran, from the store.
///
/// # Errors
/// [`OpsError::Ended`] for a run that has ended; [`OpsError::Held`] while
/// another process holds it; [`OpsError::NotAPipeline`]; what the store
/// says.
pub async fn resume_run(
    store: &Store,
    run: FlowId,
    options: &RunOptions,
) -> Result<ActiveRun, OpsError> {
    let stored = StoredRun::load(store, run).await?;
    let status = RunStatus::of(stored.detail.state);
    if status.ended() {
        return Err(OpsError::Ended {
            run,
            state: status.as_str(),
            hint: "`flow rerun` starts a new run with the same definition and values",
        });
    }
    let pipeline = stored.require_pipeline("resumed")?.clone();
    let active = take_up(store, &stored, &pipeline, options, false).await?;
    Ok(active)
}

/// Builds an engine that takes stored run `stored` up; with `cancel`, the
/// run is cancelled before anything starts (what had run is reverted).
pub(crate) async fn take_up(
    store: &Store,
    stored: &StoredRun,
    pipeline: &Pipeline,
    options: &RunOptions,
    cancel: bool,
) -> Result<ActiveRun, OpsError> {
    let run = stored.detail.id;
    let settings = store.settings();
    let flow = pipeline
        .flow(&settings)
        .build()
        .map_err(|e| OpsError::Build {
            pipeline: pipeline.name().to_string(),
            detail: e.to_string(),
        })?;
    let (tx, rx) = unbounded_channel();
    let builder = options.apply(Engine::builder(flow).storage(store.backend().clone()), tx);
    let engine = builder.resume(run).await.map_err(|e| match e {
        ResumeError::Owned {
            owner, expires_at, ..
        } => OpsError::Held {
            run,
            owner,
            until: format_time(expires_at),
        },
        ResumeError::Storage { source, .. } => OpsError::storage(source, store.location()),
        other => OpsError::Resume {
            run,
            source: Box::new(other),
        },
    })?;
    if cancel {
        engine.handle().cancel();
    }
    let log_dir = stored
        .log_dir(store)
        .unwrap_or_else(|| store.logs().to_path_buf());
    Ok(ActiveRun {
        engine,
        pipeline: pipeline.clone(),
        log_dir,
        events: Some(rx),
        backend: store.backend().clone(),
        resumed: true,
    })
}

/// Makes a new run of the definition that run `run` ran, with the values it
/// was given.
///
/// # Errors
/// [`OpsError::NotAPipeline`]; [`OpsError::MissingDefinition`]; what the
/// store says.
pub async fn rerun(
    store: &Store,
    run: FlowId,
    options: &RunOptions,
) -> Result<ActiveRun, OpsError> {
    let stored = StoredRun::load(store, run).await?;
    let pipeline = stored.require_pipeline("run again")?;
    let params = stored.params(pipeline);
    start_run(store, pipeline, &params, options).await
}

/// The pipeline that run `run` ran, and the values it was given, by name
/// (for a page that shows a form to start it again).
///
/// # Errors
/// As [`rerun`].
pub async fn run_definition(
    store: &Store,
    run: FlowId,
) -> Result<(Pipeline, serde_json::Map<String, serde_json::Value>), OpsError> {
    let stored = StoredRun::load(store, run).await?;
    let pipeline = stored.require_pipeline("run again")?.clone();
    Ok((pipeline, stored.params_json()))
}
