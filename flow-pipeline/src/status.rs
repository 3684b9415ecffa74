//! Definitions in the store, and the state of a run as operators know it: a
//! view over the journal's atom states, not a second record.
//!
//! A run of a pipeline carries its definition's hash among its inputs
//! (`pipeline:definition`), and [`Pipeline::save`] keeps the definition in
//! the store under that hash; so [`pipeline_status`] needs nothing but the
//! store and the run's id.

use std::fmt;

use flow_core::{
    AtomDetail, AtomState, Backend, Definition, FlowDetail, FlowId, FlowState, StorageError,
};

use crate::error::Problems;
use crate::model::Pipeline;
use crate::run::task::DEFINITION;

/// How a step stands in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepState {
    /// Some step it depends on has not succeeded.
    Waiting,
    /// Every step it depends on succeeded (or was skipped): ready to start.
    Pending,
    /// Its command runs.
    Running,
    /// Its command ended with status 0.
    Succeeded,
    /// Its command failed (after its retries), or its undo did.
    Failed,
    /// Its undo runs.
    Reverting,
    /// It was undone (or, having failed, its revert is done).
    Reverted,
    /// It did not run: a condition left it out, or the run ended before it
    /// could start.
    Skipped,
}

impl StepState {
    /// The word operators read: `waiting`, `pending`, `running`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Waiting => "waiting",
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Reverting => "reverting",
            StepState::Reverted => "reverted",
            StepState::Skipped => "skipped",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunState {
    /// Not ended (running, suspended, or caught by a crash and not resumed).
    Running,
    /// Ended with a failure (reverted, or a revert that failed).
    Failed,
    /// Every step succeeded.
    Finished,
}

impl RunState {
    /// `running`, `failed` or `finished`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Failed => "failed",
            RunState::Finished => "finished",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepStatus {
    /// The step's name.
    pub name: String,
    /// How it stands.
    pub state: StepState,
    /// The steps it depends on.
    pub depends_on: Vec<String>,
    /// Whether it has an undo command.
    pub has_undo: bool,
    /// How many times its command was started.
    pub attempts: u32,
}

/// A run of a pipeline, as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineStatus {
    /// The run.
    pub run: FlowId,
    /// The pipeline's name.
    pub pipeline: String,
    /// The hash of the definition it ran.
    pub definition: String,
    /// How the run stands.
    pub state: RunState,
    /// Every step, in the order of the definition.
    pub steps: Vec<StepStatus>,
}

/// Why a run's status cannot be told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The store failed (an unknown run is [`StorageError::NotFound`]).
    #[error("cannot read run {run}: {source}")]
    Storage {
        /// The run.
        run: FlowId,
        /// What the store said.
        source: StorageError,
    },
    /// The store failed while reading a definition.
    #[error("cannot read definition {definition}: {source}")]
    ReadDefinition {
        /// The definition's hash.
        definition: String,
        /// What the store said.
        source: StorageError,
    },
    /// The run is not a run of a pipeline (its inputs name no definition).
    #[error("run {run} is not a run of a pipeline: its inputs name no definition")]
    NotAPipeline {
        /// The run.
        run: FlowId,
    },
    /// The store does not hold the definition the run ran.
    #[error(
        "run {run} ran definition {definition}, which the store does not hold: save it with \
         Pipeline::save before running"
    )]
    MissingDefinition {
        /// The run.
        run: FlowId,
        /// The definition's hash.
        definition: String,
    },
    /// The stored definition is not a pipeline this version reads.
    #[error("the stored definition {definition} does not read as a pipeline: {problems}")]
    Definition {
        /// The definition's hash.
        definition: String,
        /// Its problems.
        problems: Problems,
    },
}

impl Pipeline {
    /// Keeps this definition in `backend` under its [`hash`](Pipeline::hash)
    /// (saving it again changes nothing: a definition is never changed in
    /// place, a changed file is another definition).
    ///
    /// # Errors
    /// What the store says.
    pub async fn save(&self, backend: &dyn Backend) -> Result<(), StorageError> {
        let definition = Definition::new(self.name(), crate::FORMAT, self.source());
        backend.save_definition(definition).await
    }

    /// The pipeline whose definition `backend` holds under `hash`, if it does.
    ///
    /// # Errors
    /// What the store says; [`StatusError::Definition`] when the definition is
    /// not a pipeline this version reads.
    pub async fn load(backend: &dyn Backend, hash: &str) -> Result<Option<Pipeline>, StatusError> {
        let stored =
            backend
                .load_definition(hash)
                .await
                .map_err(|source| StatusError::ReadDefinition {
                    definition: hash.to_string(),
                    source,
                })?;
        let Some(d) = stored else {
            return Ok(None);
        };
        Pipeline::from_str(format!("{} ({hash})", d.name), &d.body)
            .map(Some)
            .map_err(|problems| StatusError::Definition {
                definition: hash.to_string(),
                problems,
            })
    }
}

/// How run `run` of a pipeline stands: each step's state, read from the
/// journal, and the definition the run ran, read from the store.
///
/// # Errors
/// See [`StatusError`].
pub async fn pipeline_status(
    backend: &dyn Backend,
    run: FlowId,
) -> Result<PipelineStatus, StatusError> {
    let (detail, atoms) = backend
        .load_flow(run)
        .await
        .map_err(|source| StatusError::Storage { run, source })?;
    let Some(hash) = detail
        .meta
        .get("inputs")
        .and_then(|i| i.get(DEFINITION))
        .and_then(|h| h.as_str())
        .map(str::to_string)
    else {
        return Err(StatusError::NotAPipeline { run });
    };
    let pipeline =
        Pipeline::load(backend, &hash)
            .await?
            .ok_or_else(|| StatusError::MissingDefinition {
                run,
                definition: hash.clone(),
            })?;
    Ok(status_of(&pipeline, &detail, &atoms))
}

/// How a run of `pipeline` stands, from its record and its atoms as the
/// store gave them: what [`pipeline_status`] returns, for a caller that has
/// read them already (and the definition the run ran).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// # mod flow { pub use flow_core::*; pub use flow_pipeline as pipeline; }
/// use flow::{Backend, MemoryBackend};
/// use flow::pipeline::{Params, Pipeline, Settings, StepState, status_of};
///
/// let p = Pipeline::from_str("p.yaml", "
/// name: p
/// steps:
///   - {name: hello, command: [echo, hi]}
/// ").unwrap();
/// let store = Arc::new(MemoryBackend::new());
/// let logs = tempfile::tempdir().unwrap();
/// let run = p.to_flow(&Params::new(), &Settings::new(logs.path())).unwrap();
/// let mut engine = run.engine().unwrap().storage(store.clone()).build();
/// engine.run().await.unwrap();
/// let (detail, atoms) = store.load_flow(engine.run_id()).await.unwrap();
/// let status = status_of(&p, &detail, &atoms);
/// assert_eq!(status.steps[0].state, StepState::Succeeded);
/// assert_eq!(status.definition, p.hash());
/// # });
/// ```
pub fn status_of(pipeline: &Pipeline, detail: &FlowDetail, atoms: &[AtomDetail]) -> PipelineStatus {
    let run = detail.id;
    let hash = detail
        .meta
        .get("inputs")
        .and_then(|i| i.get(DEFINITION))
        .and_then(|h| h.as_str())
        .map_or_else(|| pipeline.hash().to_string(), str::to_string);
    let atom = |name: &str| atoms.iter().find(|a| a.name == name);
    let done = |name: &str| {
        atom(name).is_some_and(|a| matches!(a.state, AtomState::Success | AtomState::Ignore))
    };
    let ended = matches!(
        detail.state,
        FlowState::Success | FlowState::Failure | FlowState::Reverted
    );
    let steps = pipeline
        .steps()
        .iter()
        .map(|s| {
            let a = atom(s.name());
            let state = match a.map(|a| a.state) {
                None | Some(AtomState::Pending) => {
                    if ended {
                        StepState::Skipped
                    } else if s.depends_on().all(done) {
                        StepState::Pending
                    } else {
                        StepState::Waiting
                    }
                }
                Some(AtomState::Running) => StepState::Running,
                Some(AtomState::Success) => StepState::Succeeded,
                Some(AtomState::Failure | AtomState::RevertFailure) => StepState::Failed,
                Some(AtomState::Reverting) => StepState::Reverting,
                Some(AtomState::Reverted) => StepState::Reverted,
                Some(AtomState::Ignore) => StepState::Skipped,
                // A retry controller's state: steps are never one.
                Some(_) => StepState::Running,
            };
            StepStatus {
                name: s.name().to_string(),
                state,
                depends_on: s.depends_on().map(str::to_string).collect(),
                has_undo: s.has_undo(),
                attempts: a.map_or(0, |a| a.attempts),
            }
        })
        .collect();
    let state = match detail.state {
        FlowState::Success => RunState::Finished,
        FlowState::Failure | FlowState::Reverted => RunState::Failed,
        _ => RunState::Running,
    };
    PipelineStatus {
        run,
        pipeline: pipeline.name().to_string(),
        definition: hash,
        state,
        steps,
    }
}
