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

mod builder;
pub(crate) mod control;
mod exec;
mod integrity;
pub(crate) mod journal;
mod lease;
pub(crate) mod machine;
mod pool;
mod ready;
mod resume;
pub mod state;
mod step;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::compile::CompiledFlow;
use crate::error::RunError;
use crate::failure::Failure;
use crate::storage::{FlowId, StorageError};
use crate::symbol::{Data, Store, Value};
use crate::task::Outputs;
pub use builder::EngineBuilder;
use control::RunHandle;
use journal::Journal;
pub(crate) use lease::default_owner;
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

/// What the serial engine awaits between jobs that finish on the spot.
enum Awaited {
    /// A job to start once the journal has recorded that it starts.
    Flush(Box<machine::Job>),
    /// A started job's future.
    Job(futures::future::BoxFuture<'static, machine::Done>),
}

/// Runs a compiled flow, and reverts it on failure.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use flow::{Atom, Engine, Flow, FlowState, FnTask, Outputs, Signature};
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
    /// Taken up from the journal in a final state: `run` returns the
    /// recorded outcome until [`Engine::restart`] is called.
    recorded: bool,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(j) = &mut self.journal {
            j.release_now();
        }
    }
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
            owner: None,
            lease: lease::DEFAULT_LEASE,
            renew_every: None,
            wait_for_lease: Duration::ZERO,
            cancel_grace: control::DEFAULT_GRACE,
            keep_claim: false,
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
            if let Some(Some(out)) = self.machine.outputs.get(i)
                && let Some(k) = g.nodes[i].output_position(name)
            {
                return out.values().get(k);
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
    /// failures: the next [`run`](Engine::run) starts from the beginning.
    /// Needed after a run that ended `Failure`, and to run again a run taken
    /// up from the journal in a final state.
    pub fn reset(&mut self) {
        self.recorded = false;
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

    async fn flush(&mut self) -> Result<(), RunError> {
        let Some(j) = &mut self.journal else {
            return Ok(());
        };
        j.flush(&mut self.machine, self.run_id, &self.store)
            .await
            .map_err(|e| self.journal_error(e))
    }

    /// A journal error as the run reports it: a run that is no longer this
    /// engine's has an error of its own.
    fn journal_error(&self, e: StorageError) -> RunError {
        match e {
            StorageError::OwnershipLost {
                run,
                fence,
                current,
                holder,
            } => RunError::OwnershipLost {
                flow: self.flow.name().to_string(),
                run,
                fence,
                current,
                holder,
            },
            other => RunError::Storage(other),
        }
    }

    /// Gives the run back to the store, if this engine holds it (and was
    /// not told to keep its claim).
    async fn release(&mut self) {
        if let Some(j) = &mut self.journal
            && !j.keep_claim
        {
            j.release().await;
        }
    }

    /// The claim this engine holds on its run, as last renewed, if it holds
    /// one.
    pub fn lease(&self) -> Option<crate::storage::Lease> {
        self.journal.as_ref().and_then(|j| j.lease())
    }

    /// Stops holding the run without giving it back, and returns the lease
    /// (for an engine built with [`EngineBuilder::keep_claim`], whose caller
    /// gives the run back itself, for example with
    /// [`JobBoard::complete_job`](crate::storage::JobBoard::complete_job)).
    /// The lease is no longer renewed.
    pub fn detach_lease(&mut self) -> Option<crate::storage::Lease> {
        self.journal.as_mut().and_then(Journal::detach)
    }

    /// Runs the flow.
    ///
    /// - A flow that ended `Success` is not run again: this returns `Ok` at once.
    /// - A flow that ended `Reverted` starts over, unless the engine took it
    ///   up from the journal ([`EngineBuilder::resume`]) in that state: then,
    ///   as for any run taken up in a final state, this returns the recorded
    ///   outcome and runs nothing; call [`Engine::reset`] first to run it
    ///   again from the start.
    /// - A flow that ended `Failure` returns [`RunError::NeedsReset`].
    /// - A run whose future was dropped part-way continues where it stopped:
    ///   atoms that were running run again.
    /// - A suspended run continues where it stopped, forward or in revert.
    ///
    /// With a journal, the engine claims the run in the store before it
    /// starts anything (see [`Backend`](crate::Backend)), renews its lease while it works,
    /// and gives the run back when this returns.
    ///
    /// # Errors
    /// [`RunError::Reverted`] with every original failure when the flow was
    /// reverted (retry controllers having given up); [`RunError::RevertFailed`]
    /// when a revert failed; [`RunError::Suspended`] when a
    /// [`RunHandle::suspend`] stopped it (not a failure: run again);
    /// [`RunError::Cancelled`] when [`RunHandle::cancel`] stopped it and what
    /// had run was reverted; [`RunError::OwnershipLost`] when another engine
    /// claimed the run meanwhile (this one then starts nothing more); input
    /// and journal errors before or while running.
    pub async fn run(&mut self) -> Result<(), RunError> {
        let span = tracing::info_span!(
            target: "flow",
            "run",
            run = %self.run_id,
            flow = self.flow.name()
        );
        tracing::Instrument::instrument(self.run_inner(), span).await
    }

    async fn run_inner(&mut self) -> Result<(), RunError> {
        if self.recorded {
            return self.machine.outcome();
        }
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
        if let Some(j) = &mut self.journal
            && j.needs_claim()
        {
            let claimed = j.claim_stored(self.run_id, &self.machine.control).await;
            claimed.map_err(|e| self.journal_error(e))?;
        }
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
            self.release().await;
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
        let flushed = self.flush().await;
        self.release().await;
        flushed?;
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
                let handle = set.spawn(tracing::Instrument::in_current_span(exec::run_job(job)));
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
