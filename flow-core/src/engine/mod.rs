//! Engines: run a compiled flow forward, and revert it on failure.
//!
//! One [`Engine`] type runs in either mode:
//! - **serial**: one atom at a time, in a fully deterministic order (dependencies,
//!   then priority, then declaration order);
//! - **parallel**: up to `max_concurrency` atoms at once, as tasks of the
//!   caller's tokio runtime (it never creates a runtime of its own).
//!
//! Both follow the same rules, from the same scheduling core: an atom starts when
//! all its predecessors succeeded; on a failure every atom that ran is reverted,
//! each only after all of its successors were; atoms already running when the
//! failure happens finish first, then are reverted too.

pub(crate) mod control;
mod exec;
pub(crate) mod machine;
mod pool;
mod resume;
pub mod state;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::task::JoinSet;

use crate::compile::CompiledFlow;
use crate::error::RunError;
use crate::failure::Failure;
use crate::notify::{Listener, Notifier};
use crate::storage::{
    AtomDetail, Backend, FlowDetail, FlowId, LogBook, LogbookId, StorageError, now_unix,
};
use crate::symbol::{Data, Store, Value};
use crate::task::Outputs;
use control::RunHandle;
use machine::Machine;
use state::{AtomState, FlowState};

/// How an engine schedules atoms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One atom at a time, deterministic order.
    Serial,
    /// Up to this many atoms at once (at least 1).
    Parallel(usize),
}

/// Configures an [`Engine`].
///
/// ```
/// use flow_core::{Engine, Flow, CaptureListener};
/// let flow = Flow::linear("empty").build().unwrap();
/// let engine = Engine::builder(flow)
///     .parallel(4)
///     .listener(CaptureListener::new())
///     .build();
/// # let _ = engine;
/// ```
#[must_use]
pub struct EngineBuilder {
    flow: CompiledFlow,
    store: Store,
    mode: Mode,
    listeners: Vec<Arc<dyn Listener>>,
    backend: Option<Arc<dyn Backend>>,
    logbook: Option<LogbookId>,
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("flow", &self.flow)
            .field("mode", &self.mode)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The run's inputs (replacing any set before).
    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// Adds one input to the store.
    pub fn input<T: Data>(mut self, name: impl Into<String>, value: T) -> Self {
        self.store.insert(name, value);
        self
    }

    /// Adds one already wrapped input to the store.
    pub fn input_value(mut self, name: impl Into<String>, value: Value) -> Self {
        self.store.insert_value(name, value);
        self
    }

    /// Runs one atom at a time, in a deterministic order (the default).
    pub fn serial(mut self) -> Self {
        self.mode = Mode::Serial;
        self
    }

    /// Runs up to `max_concurrency` atoms at once (0 is taken as 1).
    pub fn parallel(mut self, max_concurrency: usize) -> Self {
        self.mode = Mode::Parallel(max_concurrency.max(1));
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = match mode {
            Mode::Parallel(n) => Mode::Parallel(n.max(1)),
            m => m,
        };
        self
    }

    /// Registers a listener.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Registers a shared listener.
    pub fn listener_arc(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Journals the run to `backend`.
    pub fn storage(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Files the run in this logbook (a new one is made otherwise).
    pub fn logbook(mut self, logbook: LogbookId) -> Self {
        self.logbook = Some(logbook);
        self
    }

    /// Makes the engine.
    pub fn build(self) -> Engine {
        let n = self.flow.0.nodes.len();
        let progress: Option<Arc<[AtomicU32]>> = self
            .backend
            .as_ref()
            .map(|_| (0..n).map(|_| AtomicU32::new(0)).collect());
        let notifier = Notifier::new(self.listeners, progress.clone());
        let control = control::Control::new();
        let machine = Machine::new(
            self.flow.0.clone(),
            notifier,
            self.backend.is_some(),
            control,
        );
        let journal = self.backend.map(|backend| Journal {
            backend,
            logbook: self.logbook,
            started: false,
            versions: vec![0; n],
            progress: progress.unwrap_or_else(|| Arc::from(Vec::new())),
            definition: None,
        });
        Engine {
            flow: self.flow,
            store: self.store,
            mode: self.mode,
            machine,
            journal,
            run_id: FlowId::new(),
        }
    }
}

/// What the serial engine awaits between jobs that finish on the spot.
enum Awaited {
    /// A job to start once the journal has recorded that it starts.
    Flush(Box<machine::Job>),
    /// A started job's future.
    Job(futures::future::BoxFuture<'static, machine::Done>),
}

struct Journal {
    backend: Arc<dyn Backend>,
    logbook: Option<LogbookId>,
    started: bool,
    versions: Vec<u64>,
    progress: Arc<[AtomicU32]>,
    definition: Option<serde_json::Value>,
}

impl Journal {
    /// The flow's atoms, as stored with the run: `[["name", "TASK"], ..]`.
    fn definition(&mut self, m: &Machine) -> serde_json::Value {
        self.definition
            .get_or_insert_with(|| {
                let g = &m.g;
                serde_json::Value::Array(
                    g.nodes[..g.atoms]
                        .iter()
                        .map(|n| serde_json::json!([n.name.as_ref(), n.kind().as_str()]))
                        .collect(),
                )
            })
            .clone()
    }

    fn encode(m: &Machine, i: u32, outputs: &Outputs) -> Result<serde_json::Value, StorageError> {
        let node = &m.g.nodes[i as usize];
        let mut list = Vec::with_capacity(outputs.len());
        for (k, v) in outputs.values().iter().enumerate() {
            list.push(v.encode().map_err(|source| StorageError::Encode {
                atom: node.name.to_string(),
                symbol: node.output_name(k).to_string(),
                source,
            })?);
        }
        Ok(serde_json::Value::Array(list))
    }

    /// An atom's metadata: a controller's history
    /// (`{"history": [{"value": .., "failures": {..}}]}`), and the controller
    /// whose retry is reverting the atom (`{"owner": name}`).
    fn meta(m: &Machine, i: u32) -> Result<serde_json::Value, StorageError> {
        let mut meta = serde_json::Map::new();
        let owner = m.slots[i as usize].owner;
        if owner != crate::compile::NONE {
            meta.insert(
                "owner".into(),
                serde_json::Value::String(m.g.nodes[owner as usize].name.to_string()),
            );
        }
        if let Some(history) = Self::history(m, i)? {
            meta.insert("history".into(), history);
        }
        Ok(if meta.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Object(meta)
        })
    }

    fn history(m: &Machine, i: u32) -> Result<Option<serde_json::Value>, StorageError> {
        let Some(history) = m.histories.get(&i) else {
            return Ok(None);
        };
        let mut attempts = Vec::with_capacity(history.len());
        for attempt in history.attempts() {
            let value = match &attempt.value {
                Some(v) => v.encode().map_err(|source| StorageError::Encode {
                    atom: m.g.nodes[i as usize].name.to_string(),
                    symbol: "retry value".into(),
                    source,
                })?,
                None => serde_json::Value::Null,
            };
            let failures = serde_json::to_value(&attempt.failures).unwrap_or_default();
            attempts.push(serde_json::json!({ "value": value, "failures": failures }));
        }
        Ok(Some(serde_json::Value::Array(attempts)))
    }

    fn detail(&mut self, m: &Machine, i: u32) -> Result<AtomDetail, StorageError> {
        let iu = i as usize;
        self.versions[iu] += 1;
        let result = m.outputs[iu]
            .as_ref()
            .map(|o| Self::encode(m, i, o))
            .transpose()?;
        let revert_result = match m.revert_results.get(iu) {
            Some(v) => Some(v.encode().map_err(|source| StorageError::Encode {
                atom: m.g.nodes[iu].name.to_string(),
                symbol: "revert result".into(),
                source,
            })?),
            None => None,
        };
        let revert_failure = m
            .revert_failures
            .iter()
            .rev()
            .find(|(a, _)| *a == i)
            .map(|(_, f)| f.clone());
        Ok(AtomDetail {
            name: m.g.nodes[iu].name.to_string(),
            kind: m.g.nodes[iu].kind(),
            state: m.slots[iu].state,
            intention: m.slots[iu].intention,
            result,
            failure: m.failure.get(iu).cloned(),
            revert_result,
            revert_failure,
            progress: self
                .progress
                .get(iu)
                .map_or(0.0, |p| f32::from_bits(p.load(Ordering::Relaxed))),
            attempts: m.slots[iu].attempts,
            version: self.versions[iu],
            meta: Self::meta(m, i)?,
        })
    }

    async fn flush(
        &mut self,
        m: &mut Machine,
        run_id: FlowId,
        store: &Store,
    ) -> Result<(), StorageError> {
        let (atoms, flow_changed) = m.take_dirty();
        if !self.started {
            self.started = true;
            let id = self.logbook.unwrap_or_default();
            self.logbook = Some(id);
            let now = now_unix();
            self.backend
                .save_logbook(LogBook {
                    id,
                    name: m.g.name.to_string(),
                    created_at: now,
                    updated_at: now,
                    meta: serde_json::Value::Null,
                })
                .await?;
        }
        if flow_changed {
            let mut inputs = serde_json::Map::new();
            for (k, v) in store.iter() {
                let json = v.encode().map_err(|source| StorageError::Encode {
                    atom: "<inputs>".into(),
                    symbol: k.to_string(),
                    source,
                })?;
                inputs.insert(k.to_string(), json);
            }
            let definition = self.definition(m);
            self.backend
                .save_flow(FlowDetail {
                    id: run_id,
                    logbook: self.logbook.unwrap_or_default(),
                    name: m.g.name.to_string(),
                    state: m.flow_state,
                    meta: serde_json::json!({
                        "inputs": inputs,
                        "atoms": definition,
                        "revert_all": m.revert_all,
                        "cancelled": m.cancelled,
                    }),
                    updated_at: now_unix(),
                })
                .await?;
        }
        if !atoms.is_empty() {
            let details = atoms
                .into_iter()
                .map(|i| self.detail(m, i))
                .collect::<Result<Vec<_>, _>>()?;
            self.backend.save_atoms(run_id, details).await?;
        }
        Ok(())
    }
}

/// Runs a compiled flow, and reverts it on failure.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use flow_core::{Atom, Engine, Flow, FlowState, FnTask, Outputs, Signature};
///
/// let inc = || FnTask::sync(
///     Signature::new().requires::<u64>("value").provides::<u64>("value"),
///     |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)),
/// );
/// let flow = Flow::linear("count")
///     .input::<u64>("value")
///     .add(Atom::new("a", inc()))
///     .add(Atom::new("b", inc()))
///     .build()
///     .unwrap();
/// let mut engine = Engine::builder(flow).input("value", 0u64).build();
/// engine.run().await.unwrap();
/// assert_eq!(engine.state(), FlowState::Success);
/// assert_eq!(engine.fetch::<u64>("value"), Some(&2));
/// # });
/// ```
pub struct Engine {
    flow: CompiledFlow,
    store: Store,
    mode: Mode,
    machine: Machine,
    journal: Option<Journal>,
    run_id: FlowId,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("flow", &self.flow)
            .field("mode", &self.mode)
            .field("state", &self.machine.flow_state)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts configuring an engine for `flow` (serial, no listener, no journal).
    pub fn builder(flow: CompiledFlow) -> EngineBuilder {
        EngineBuilder {
            flow,
            store: Store::new(),
            mode: Mode::Serial,
            listeners: Vec::new(),
            backend: None,
            logbook: None,
        }
    }

    /// The flow this engine runs.
    pub fn flow(&self) -> &CompiledFlow {
        &self.flow
    }

    /// A handle to suspend or cancel this engine's run from elsewhere.
    pub fn handle(&self) -> RunHandle {
        RunHandle(self.machine.control.clone())
    }

    /// The run's id in the journal.
    pub fn run_id(&self) -> FlowId {
        self.run_id
    }

    /// The flow's state.
    pub fn state(&self) -> FlowState {
        self.machine.flow_state
    }

    /// The run's inputs.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn index(&self, atom: &str) -> Option<usize> {
        self.flow.0.index_of(atom).map(|i| i as usize)
    }

    /// An atom's state, or `None` for an unknown atom.
    pub fn atom_state(&self, atom: &str) -> Option<AtomState> {
        Some(self.machine.slots.get(self.index(atom)?)?.state)
    }

    /// An atom's outputs, while it is `Success` (not after it was reverted).
    ///
    /// A revert is handed the outputs it undoes. Without storage they move to
    /// it, so an atom shows none from the moment its revert starts, even if
    /// that revert fails; with storage they stay until the revert is done.
    pub fn outputs(&self, atom: &str) -> Option<&Outputs> {
        self.machine.outputs.get(self.index(atom)?)?.as_ref()
    }

    /// An atom's failure, if its `execute` failed.
    pub fn failure(&self, atom: &str) -> Option<&Failure> {
        self.machine.failure.get(self.index(atom)?)
    }

    /// What an atom's `revert` returned, once reverted.
    pub fn revert_result(&self, atom: &str) -> Option<&Value> {
        self.machine.revert_results.get(self.index(atom)?)
    }

    /// How many times an atom's `execute` was started.
    pub fn attempts(&self, atom: &str) -> Option<u32> {
        Some(self.machine.slots.get(self.index(atom)?)?.attempts)
    }

    /// The value a symbol has now: the latest (in declaration order) atom that
    /// published it and has not been reverted, else the store.
    pub fn fetch<T: Data>(&self, name: &str) -> Option<&T> {
        self.fetch_value(name)?.downcast_ref()
    }

    /// Output `k` of atom `atom` (by position), when it succeeded and was not
    /// reverted.
    pub(crate) fn output_at(&self, atom: usize, k: usize) -> Option<&Value> {
        self.machine.outputs.get(atom)?.as_ref()?.values().get(k)
    }

    /// Like [`Engine::fetch`], untyped.
    pub fn fetch_value(&self, name: &str) -> Option<&Value> {
        let g = &self.flow.0;
        for i in (0..g.atoms).rev() {
            if let Some(Some(out)) = self.machine.outputs.get(i) {
                if let Some(k) = g.nodes[i].output_position(name) {
                    return out.values().get(k);
                }
            }
        }
        self.store.value(name)
    }

    /// Every visible symbol: the store, overlaid with the outputs of atoms that
    /// succeeded and were not reverted.
    pub fn fetch_all(&self) -> Store {
        let mut all = self.store.clone();
        let g = &self.flow.0;
        for i in 0..g.atoms {
            if let Some(Some(out)) = self.machine.outputs.get(i) {
                for (k, v) in out.values().iter().enumerate() {
                    all.insert_value(g.nodes[i].output_name(k), v.clone());
                }
            }
        }
        all
    }

    /// Puts the flow and every atom back to `Pending`, forgetting results and
    /// failures. Needed after a run that ended `Failure`.
    pub fn reset(&mut self) {
        self.machine.reset();
    }

    fn load_inputs(&self) -> Result<Vec<Value>, RunError> {
        let mut values = Vec::with_capacity(self.flow.0.inputs.len());
        for spec in &self.flow.0.inputs {
            let Some(v) = self.store.value(spec.name()) else {
                return Err(RunError::MissingInput {
                    flow: self.flow.name().to_string(),
                    symbol: spec.name().to_string(),
                    type_name: crate::compile::short_type(spec.ty().name()),
                });
            };
            if v.type_id() != spec.ty().id() {
                return Err(RunError::InputType {
                    flow: self.flow.name().to_string(),
                    symbol: spec.name().to_string(),
                    expected: crate::compile::short_type(spec.ty().name()),
                    actual: crate::compile::short_type(v.type_name()),
                });
            }
            values.push(v.clone());
        }
        Ok(values)
    }

    fn check_runtime(&self) -> Result<(), RunError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Ok(());
        }
        let why = if matches!(self.mode, Mode::Parallel(_)) {
            "in parallel"
        } else if self.flow.0.nodes.iter().any(|n| n.blocking()) {
            "its blocking tasks"
        } else {
            return Ok(());
        };
        Err(RunError::NoRuntime {
            flow: self.flow.name().to_string(),
            why,
        })
    }

    async fn flush(&mut self) -> Result<(), StorageError> {
        match &mut self.journal {
            Some(j) => j.flush(&mut self.machine, self.run_id, &self.store).await,
            None => Ok(()),
        }
    }

    /// Runs the flow.
    ///
    /// - A flow that ended `Success` is not run again: this returns `Ok` at once.
    /// - A flow that ended `Reverted` starts over.
    /// - A flow that ended `Failure` returns [`RunError::NeedsReset`].
    /// - A run whose future was dropped part-way continues where it stopped:
    ///   atoms that were running run again.
    /// - A suspended run continues where it stopped, forward or in revert.
    ///
    /// # Errors
    /// [`RunError::Reverted`] with every original failure when the flow was
    /// reverted (retry controllers having given up); [`RunError::RevertFailed`]
    /// when a revert failed; [`RunError::Suspended`] when a
    /// [`RunHandle::suspend`] stopped it (not a failure: run again);
    /// [`RunError::Cancelled`] when [`RunHandle::cancel`] stopped it and what
    /// had run was reverted; input and journal errors before or while running.
    pub async fn run(&mut self) -> Result<(), RunError> {
        if self.machine.is_vacant() {
            // A parallel run's future was forgotten while its workers held the
            // machine: what it did is out of reach, so the run starts over.
            self.machine = self.machine.fresh(self.journal.is_some());
        }
        match self.machine.flow_state {
            FlowState::Success => return Ok(()),
            FlowState::Failure => {
                return Err(RunError::NeedsReset {
                    flow: self.flow.name().to_string(),
                });
            }
            FlowState::Reverted => self.machine.restart()?,
            _ => {}
        }
        self.check_runtime()?;
        self.machine.store = self.load_inputs()?;
        match self.machine.flow_state {
            FlowState::Running => self.machine.recover_interrupted(),
            _ => self.machine.set_flow(FlowState::Running)?,
        }
        self.machine.schedule();
        let driven = match self.mode {
            Mode::Serial => self.drive_serial().await,
            Mode::Parallel(max) if self.journal.is_none() => {
                pool::drive(&mut self.machine, max).await
            }
            Mode::Parallel(max) => self.drive_parallel(max).await,
        };
        if let Err(e) = driven {
            self.machine.control.clear();
            return Err(e);
        }
        let result = if self.machine.suspending && !self.machine.is_complete() {
            self.machine.suspended()?;
            Err(RunError::Suspended {
                flow: self.flow.name().to_string(),
            })
        } else {
            self.machine.suspending = false;
            self.machine.finish()
        };
        self.machine.control.clear();
        self.flush().await?;
        result
    }

    async fn drive_serial(&mut self) -> Result<(), RunError> {
        while let Some(wait) = self.run_at_once()? {
            let done = match wait {
                Awaited::Flush(job) => {
                    self.flush().await?;
                    match exec::start(*job) {
                        exec::Started::Now(done) => done,
                        exec::Started::Later(future) => future.await,
                    }
                }
                Awaited::Job(future) => future.await,
            };
            self.machine.complete(done)?;
        }
        Ok(())
    }

    /// Runs the serial engine's jobs that finish on the spot (synchronous
    /// tasks: no future is made) until one needs awaiting, or none is left.
    ///
    /// Kept out of `drive_serial` so that a job never crosses an `await` on
    /// this path: the async function would copy it into its state and out.
    /// Without a journal, plain tasks run inside the machine
    /// ([`Machine::run_plain`](machine::Machine::run_plain)), which hands
    /// back only what it does not run itself.
    fn run_at_once(&mut self) -> Result<Option<Awaited>, RunError> {
        loop {
            let step = if self.journal.is_none() {
                // Applies requests to cancel or suspend before each task.
                match self.machine.run_plain()? {
                    machine::Plain::Idle => return Ok(None),
                    machine::Plain::Step(step) => step,
                    machine::Plain::Later(future) => return Ok(Some(Awaited::Job(future))),
                }
            } else {
                self.machine.apply_requests()?;
                let Some(step) = self.machine.next_step()? else {
                    return Ok(None);
                };
                step
            };
            if self.journal.is_some() {
                // The journal records that the job started before it runs.
                return Ok(Some(Awaited::Flush(Box::new(self.machine.own(step)))));
            }
            match self.machine.start(step) {
                exec::Started::Now(done) => self.machine.complete(done)?,
                exec::Started::Later(future) => return Ok(Some(Awaited::Job(future))),
            }
        }
    }

    async fn drive_parallel(&mut self, max: usize) -> Result<(), RunError> {
        let mut set = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, (u32, bool)> = HashMap::new();
        let control = self.machine.control.clone();
        loop {
            self.machine.apply_requests()?;
            let mut started = Vec::new();
            while self.machine.in_flight < max {
                match self.machine.next_job()? {
                    Some(job) => started.push(job),
                    None => break,
                }
            }
            self.flush().await?;
            for job in started {
                let key = (job.atom, !matches!(job.kind, machine::JobKind::Revert(_)));
                let handle = set.spawn(exec::run_job(job));
                running.insert(handle.id(), key);
            }
            let next = tokio::select! {
                next = set.join_next_with_id() => next,
                () = control.wake.notified() => continue,
            };
            let done = match next {
                None => break,
                Some(Ok((id, done))) => {
                    running.remove(&id);
                    done
                }
                Some(Err(e)) => match running.remove(&e.id()) {
                    Some((atom, executing)) => exec::aborted(atom, executing, &e),
                    None => continue,
                },
            };
            self.machine.complete(done)?;
        }
        Ok(())
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>(_: &T) {}
    fn check(e: &mut Engine) {
        is_send(&e.run());
    }
    let _ = check;
}

#[cfg(test)]
mod tests {
    use super::*;
    use machine::Done;

    #[test]
    fn done_is_reported_for_unknown_ids() {
        let d = exec::aborted(3, true, &"gone");
        assert!(matches!(d, Done::Executed(3, Err(_))));
    }
}
