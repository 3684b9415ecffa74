//! Following a run from another process: what changed in its record since
//! the last look.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{AtomDetail, Backend, FlowDetail, FlowId, StorageError};
use crate::engine::state::{AtomState, FlowState};

/// A change of a stored run, as a [`RunWatch`] sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RunChange {
    /// The run's state changed.
    Flow {
        /// The new state.
        state: FlowState,
    },
    /// An atom's record changed.
    Atom {
        /// The atom.
        name: String,
        /// Its state now.
        state: AtomState,
        /// How many times its `execute` started.
        attempts: u32,
        /// Its record now.
        detail: Box<AtomDetail>,
    },
}

/// Follows a stored run, run by any process, by reading its record again:
/// in-process listeners see every event of a run; a watch sees where each
/// atom is at each look (states a step went through between two looks are
/// not seen).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use flow::storage::{RunChange, RunWatch};
/// use flow::{Atom, Backend, Engine, Flow, FlowState, FnTask, MemoryBackend, Outputs, Signature};
///
/// let store = Arc::new(MemoryBackend::new());
/// let t = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
/// let flow = Flow::linear("f").add(Atom::new("t", t)).build().unwrap();
/// let mut engine = Engine::builder(flow).storage(store.clone()).build();
/// engine.run().await.unwrap();
///
/// let mut watch = RunWatch::new(store, engine.run_id());
/// let first = watch.poll().await.unwrap(); // everything, the first time
/// assert!(matches!(first.last(), Some(RunChange::Flow { state: FlowState::Success })));
/// assert!(matches!(&first[0], RunChange::Atom { name, attempts: 1, .. } if name == "t"));
/// assert!(watch.poll().await.unwrap().is_empty()); // nothing since
/// assert!(watch.ended());
/// # });
/// ```
#[derive(Debug)]
pub struct RunWatch {
    backend: Arc<dyn Backend>,
    run: FlowId,
    flow: Option<FlowState>,
    atoms: HashMap<String, u64>,
}

impl RunWatch {
    /// A watch of run `run` in `backend`, which has seen nothing yet.
    pub fn new(backend: Arc<dyn Backend>, run: FlowId) -> Self {
        RunWatch {
            backend,
            run,
            flow: None,
            atoms: HashMap::new(),
        }
    }

    /// The run's state at the last look, if any.
    pub fn state(&self) -> Option<FlowState> {
        self.flow
    }

    /// Whether the run had ended at the last look.
    pub fn ended(&self) -> bool {
        matches!(
            self.flow,
            Some(FlowState::Success | FlowState::Reverted | FlowState::Failure)
        )
    }

    /// What changed since the last look (everything, at the first): atoms in
    /// name order, then the run's state.
    ///
    /// # Errors
    /// When the run cannot be read.
    pub async fn poll(&mut self) -> Result<Vec<RunChange>, StorageError> {
        let (flow, atoms) = self.backend.load_flow(self.run).await?;
        Ok(self.diff(&flow, atoms))
    }

    fn diff(&mut self, flow: &FlowDetail, mut atoms: Vec<AtomDetail>) -> Vec<RunChange> {
        atoms.sort_by(|a, b| a.name.cmp(&b.name));
        let mut changes = Vec::new();
        for a in atoms {
            if self.atoms.get(&a.name) != Some(&a.version) {
                self.atoms.insert(a.name.clone(), a.version);
                changes.push(RunChange::Atom {
                    name: a.name.clone(),
                    state: a.state,
                    attempts: a.attempts,
                    detail: Box::new(a),
                });
            }
        }
        if self.flow != Some(flow.state) {
            self.flow = Some(flow.state);
            changes.push(RunChange::Flow { state: flow.state });
        }
        changes
    }

    /// Waits for the next changes, looking every `every`; returns at once
    /// with nothing when the run has ended and nothing changed.
    ///
    /// # Errors
    /// When the run cannot be read.
    pub async fn next(&mut self, every: Duration) -> Result<Vec<RunChange>, StorageError> {
        loop {
            let changes = self.poll().await?;
            if !changes.is_empty() || self.ended() {
                return Ok(changes);
            }
            tokio::time::sleep(every).await;
        }
    }
}
