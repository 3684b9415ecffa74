//! The scheduling core shared by both engines: per-atom states and counters,
//! the ready queue, forward execution and revert. It never awaits; the engines
//! drive it and run the jobs it hands out.

use std::collections::{BinaryHeap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::compile::{Gate, Graph, NONE, Source};
use crate::decider::{Depth, Results};
use crate::engine::control::Control;
use crate::engine::exec;
use crate::engine::state::{
    AtomState, FlowState, Intention, TransitionError, check_atom, check_flow,
};
use crate::error::{AtomFailure, RunError};
use crate::failure::{Failure, FailureKind};
use crate::notify::{Detail, Event, Notifier};
use crate::retry::{Attempt, Decision, History, outputs_of as retry_outputs};
use crate::symbol::Value;
use crate::task::{
    Arg, Args, Context, ContextShared, Failures, Outcome, Outputs, RevertInput, Runner,
};

/// Work for an engine to run, ready to be sent anywhere: it holds its task
/// and context.
pub(crate) struct Job {
    pub(crate) atom: u32,
    pub(crate) task: Runner,
    pub(crate) ctx: Context,
    pub(crate) blocking: bool,
    /// How long `execute` may run.
    pub(crate) timeout: Option<Duration>,
    pub(crate) kind: JobKind,
}

/// Work for an engine to run, as the machine hands it out: the task and the
/// context stay with the machine, so that a job run on the spot takes no
/// reference to either ([`Machine::start`]); [`Machine::own`] makes it a
/// [`Job`] when it has to travel.
pub(crate) struct Step {
    pub(crate) atom: u32,
    attempt: u32,
    pub(crate) blocking: bool,
    /// How long `execute` may run.
    pub(crate) timeout: Option<Duration>,
    pub(crate) kind: JobKind,
}

pub(crate) enum JobKind {
    Execute(Args),
    Revert(RevertInput),
    /// A retry controller waits before its next attempt.
    Wait(Duration),
}

/// A finished job.
pub(crate) enum Done {
    Executed(u32, Result<Outputs, Failure>),
    Reverted(u32, Result<Option<Value>, Failure>),
    Waited(u32),
}

/// Where [`Machine::run_plain`] stopped.
pub(crate) enum Plain {
    /// Nothing is ready.
    Idle,
    /// The next piece of work is not a plain task: start it as any other.
    Step(Step),
    /// A task returned a future; the run goes on when it is done.
    Later(futures::future::BoxFuture<'static, Done>),
}

/// A plain task to execute ([`Node::is_plain`](crate::compile::Node::is_plain)),
/// as the machine hands it to a parallel worker ([`Machine::take_into`]):
/// smaller than a [`Step`], and finished with [`Machine::accept`] once the
/// worker has checked its outputs.
pub(crate) struct PlainJob {
    atom: u32,
    attempt: u32,
    args: Args,
}

/// How a [`PlainJob`] went.
pub(crate) enum PlainDone {
    /// It succeeded and its outputs are what it declares.
    Checked(u32, Outputs),
    /// Anything else: a failure, or a future.
    Other(exec::Started),
}

/// Runs `job`, an atom of graph `g`, with `lent`, a context of the run
/// pointed at it, and checks its outputs against its contract, away from
/// the machine.
pub(crate) fn start_plain(g: &Graph, lent: &mut Context, job: PlainJob) -> PlainDone {
    let PlainJob {
        atom,
        attempt,
        args,
    } = job;
    lent.point(atom, attempt);
    let called = with_task(&g.nodes[atom as usize].task, |task| {
        exec::call(lent, "execute", || task.execute(args, lent))
    });
    match called {
        Ok(Ok(out)) => match check_contract(g, atom, &out) {
            Ok(()) => PlainDone::Checked(atom, out),
            Err(failure) => {
                PlainDone::Other(exec::Started::Now(Done::Executed(atom, Err(failure))))
            }
        },
        other => PlainDone::Other(exec::started(atom, lent, other, Done::Executed, true)),
    }
}

/// Starts `step`, an atom of graph `g`, with `lent`, a context of the run
/// pointed at it: a synchronous task runs to its end here and nothing is
/// cloned for it; a task that must travel (blocking, or under a time limit)
/// takes its own task and context and becomes a future.
///
/// A parallel worker holds its own graph and context, so that the steps it
/// runs touch no reference count shared with the other workers.
pub(crate) fn start_step(g: &Graph, lent: &mut Context, step: Step) -> exec::Started {
    let task = &g.nodes[step.atom as usize].task;
    lent.point(step.atom, step.attempt);
    if step.blocking || step.timeout.is_some() {
        return exec::start(owned(step, task, lent.clone()));
    }
    with_task(task, |task| {
        exec::start_lent(step.atom, step.kind, task, lent)
    })
}

/// Whether `out` is what atom `i` of graph `g` declares: as many values, of
/// the declared types.
#[inline(always)]
fn check_contract(g: &Graph, i: u32, out: &Outputs) -> Result<(), Failure> {
    let declared = g.nodes[i as usize].signature.outputs();
    if out.len() != declared.len() {
        return Err(contract_broken(g, i, out, None));
    }
    for (k, (v, spec)) in out.0.iter().zip(declared.iter()).enumerate() {
        if v.type_id() != spec.ty().id() {
            return Err(contract_broken(g, i, out, Some(k)));
        }
    }
    Ok(())
}

/// The failure of atom `i` of graph `g` when it returned `out`, the wrong
/// number of values or (`wrong`) a value of the wrong type.
#[cold]
#[inline(never)]
fn contract_broken(g: &Graph, i: u32, out: &Outputs, wrong: Option<usize>) -> Failure {
    let node = &g.nodes[i as usize];
    let declared = node.signature.outputs();
    let message = match wrong {
        None => format!(
            "task `{}` returned {} value(s) but declares {} output(s)",
            node.name,
            out.len(),
            declared.len()
        ),
        Some(k) => format!(
            "task `{}` returned a `{}` for output `{}`, which it declares as `{}`",
            node.name,
            crate::compile::short_type(out.0[k].type_name()),
            node.output_name(k),
            crate::compile::short_type(declared[k].ty().name())
        ),
    };
    Failure::new(FailureKind::Contract, message, "contract")
}

/// The failure of task `atom` whose `what` the journal cannot hold exactly.
#[cold]
fn unstorable(atom: &str, what: &str, e: &crate::symbol::CodecError) -> Failure {
    Failure::new(
        FailureKind::Unstorable,
        format!(
            "task `{atom}` returned a {what} that the journal cannot store exactly ({}): \
             return a type whose JSON reads back as the same value",
            e.reason()
        ),
        "unstorable",
    )
}

/// Calls `f` with a node's task, or with one that does nothing for a node
/// that has none (a barrier).
fn with_task<R>(task: &Option<Runner>, f: impl FnOnce(&Runner) -> R) -> R {
    match task {
        Some(task) => f(task),
        None => f(&Runner::nothing()),
    }
}

/// `step` as a job that holds its node's task (`task`, or one that does
/// nothing) and `ctx`, a context pointed at it.
fn owned(step: Step, task: &Option<Runner>, ctx: Context) -> Job {
    Job {
        atom: step.atom,
        task: task.clone().unwrap_or_else(Runner::nothing),
        ctx,
        blocking: step.blocking,
        timeout: step.timeout,
        kind: step.kind,
    }
}

/// A retry whose sub-flow is being reverted before it runs again.
struct PendingRetry {
    controller: u32,
    /// The atoms to revert and reset, the sub-flow and what runs after it.
    scope: Vec<u32>,
    /// How many of them still have to be reverted.
    left: usize,
}

pub(crate) struct Machine {
    pub(crate) g: Arc<Graph>,
    pub(crate) flow_state: FlowState,
    /// The per-atom scheduling state, one cache-friendly record per atom.
    pub(crate) slots: Vec<Slot>,
    pub(crate) outputs: Vec<Option<Outputs>>,
    pub(crate) failure: Sparse<Failure>,
    pub(crate) revert_results: Sparse<Value>,
    /// Atoms whose `execute` failed, in the order it happened.
    pub(crate) failed: Vec<u32>,
    pub(crate) revert_failures: Vec<(u32, Failure)>,
    /// Whether the run's context holds the failures as they are now
    /// ([`Context::failures`]): cleared whenever a failure comes or goes,
    /// and made good before the next revert starts.
    published: bool,
    forward: Ready<(i32, u32)>,
    backward: Ready<u32>,
    /// Controllers whose wait before the next attempt is due.
    waits: Vec<(u32, Duration)>,
    retries: Vec<PendingRetry>,
    pub(crate) histories: FxHashMap<u32, History>,
    /// A revert failed: nothing new starts.
    pub(crate) halted: bool,
    /// Everything is being reverted.
    pub(crate) revert_all: bool,
    /// The run was cancelled.
    pub(crate) cancelled: bool,
    /// The run is suspending: nothing new starts.
    pub(crate) suspending: bool,
    pub(crate) control: Arc<Control>,
    pub(crate) in_flight: usize,
    pub(crate) store: Vec<Value>,
    notifier: Notifier,
    /// What the contexts handed to tasks share.
    contexts: Arc<ContextShared>,
    /// The context lent to a task run on the spot, pointed at its atom.
    lent: Context,
    /// Journal bookkeeping: atoms changed since the last flush.
    dirty: Option<Dirty>,
    /// In debug builds, with listeners: the state each atom was last
    /// announced in, so that every announced change is checked against the
    /// state table (the whole test suite runs this check).
    #[cfg(debug_assertions)]
    announced: Vec<std::sync::atomic::AtomicU8>,
}

/// One optional value per atom, for what most runs never set (failures,
/// revert results): nothing is allocated or written until the first value,
/// so a run that neither fails nor reverts with a result touches none of it.
pub(crate) struct Sparse<T> {
    len: usize,
    /// Empty, or `len` long.
    items: Vec<Option<T>>,
}

impl<T> Sparse<T> {
    fn new(len: usize) -> Self {
        Sparse {
            len,
            items: Vec::new(),
        }
    }

    /// Atom `i`'s value, if it has one.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)?.as_ref()
    }

    /// Sets (or, with `None`, clears) atom `i`'s value.
    pub(crate) fn set(&mut self, i: usize, value: Option<T>) {
        if self.items.is_empty() {
            if value.is_none() {
                return;
            }
            self.items.resize_with(self.len, || None);
        }
        self.items[i] = value;
    }

    /// Clears every value.
    fn clear(&mut self) {
        self.items.clear();
    }
}

#[derive(Default)]
pub(crate) struct Dirty {
    pub(crate) atoms: Vec<u32>,
    marked: Vec<bool>,
    pub(crate) flow: bool,
}

/// A max-queue for ready atoms that costs O(1) for keys pushed in falling
/// order, the common case (atoms become ready in declaration order going
/// forward, in reverse order going back); other keys go to a heap.
struct Ready<T> {
    /// Falling from front to back.
    run: VecDeque<T>,
    heap: BinaryHeap<T>,
}

impl<T> Default for Ready<T> {
    fn default() -> Self {
        Ready {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord + Copy> Ready<T> {
    fn push(&mut self, key: T) {
        match self.run.back() {
            Some(&last) if key > last => self.heap.push(key),
            _ => self.run.push_back(key),
        }
    }

    fn pop(&mut self) -> Option<T> {
        match (self.run.front(), self.heap.peek()) {
            (Some(a), Some(b)) if b > a => self.heap.pop(),
            (Some(_), _) => self.run.pop_front(),
            (None, _) => self.heap.pop(),
        }
    }

    fn is_empty(&self) -> bool {
        self.run.is_empty() && self.heap.is_empty()
    }

    /// Room for `n` more keys pushed in falling order, the common case.
    fn reserve(&mut self, n: usize) {
        self.run.reserve_exact(n);
    }

    fn clear(&mut self) {
        self.run.clear();
        self.heap.clear();
    }
}

/// What the scheduler keeps per atom (values are kept apart).
#[derive(Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) state: AtomState,
    pub(crate) intention: Intention,
    /// An ignored atom already passed by a revert (it holds its predecessors
    /// back until everything after it is undone).
    passed: bool,
    /// Predecessors not yet `Success` or `Ignore`.
    waiting: u32,
    /// For atoms to revert: successors not yet undone.
    rwaiting: u32,
    /// For atoms being reverted for a retry: its controller; else `NONE`.
    pub(crate) owner: u32,
    /// How many times `execute` was started.
    pub(crate) attempts: u32,
}

impl Slot {
    /// Whether the atom still has to be undone (or, ignored, passed) by a revert.
    fn needs_undo(&self) -> bool {
        self.state.has_executed() || (self.state == AtomState::Ignore && !self.passed)
    }

    /// Whether this atom, as a successor, keeps its predecessors from being
    /// reverted: it ran and is not undone yet, or (`marked` for revert) it
    /// was ignored and the revert has not passed it.
    #[inline(always)]
    fn holds_back_revert(&self, marked: bool) -> bool {
        active(self.state) || (marked && self.state == AtomState::Ignore && !self.passed)
    }
}

/// Atom `i`'s place in the forward queue, a max-queue: higher priority
/// first, then declaration order.
#[inline(always)]
fn forward_key(g: &Graph, i: u32) -> (i32, u32) {
    let priority = if g.prioritized {
        g.nodes[i as usize].priority()
    } else {
        0
    };
    (priority, u32::MAX - i)
}

fn active(s: AtomState) -> bool {
    matches!(
        s,
        AtomState::Running | AtomState::Success | AtomState::Failure | AtomState::Reverting
    )
}

impl Machine {
    pub(crate) fn new(
        g: Arc<Graph>,
        notifier: Notifier,
        journaled: bool,
        control: Arc<Control>,
    ) -> Self {
        let n = g.nodes.len();
        let contexts = ContextShared::new(g.clone(), notifier.clone(), control.clone());
        let dirty = journaled.then(|| Dirty {
            atoms: Vec::new(),
            marked: vec![false; n],
            flow: true,
        });
        Machine::with_slots(n, g, notifier, control, contexts, dirty)
    }

    /// A machine with no atoms that stands in while the parallel engine's
    /// workers hold the real one. Checked by [`Machine::is_vacant`].
    pub(crate) fn vacant(like: &Machine) -> Self {
        let mut m = Machine::with_slots(
            0,
            like.g.clone(),
            like.notifier.clone(),
            like.control.clone(),
            like.contexts.clone(),
            None,
        );
        m.flow_state = like.flow_state;
        m
    }

    /// A pending machine for the flow `g` with `n` atoms' state (all of
    /// them, or none for a stand-in).
    fn with_slots(
        n: usize,
        g: Arc<Graph>,
        notifier: Notifier,
        control: Arc<Control>,
        contexts: Arc<ContextShared>,
        dirty: Option<Dirty>,
    ) -> Self {
        Machine {
            flow_state: FlowState::Pending,
            slots: vec![
                Slot {
                    state: AtomState::Pending,
                    intention: Intention::Execute,
                    passed: false,
                    waiting: 0,
                    rwaiting: 0,
                    owner: NONE,
                    attempts: 0,
                };
                n
            ],
            outputs: (0..n).map(|_| None).collect(),
            failure: Sparse::new(n),
            revert_results: Sparse::new(n),
            failed: Vec::new(),
            revert_failures: Vec::new(),
            published: false,
            forward: Ready::default(),
            backward: Ready::default(),
            waits: Vec::new(),
            retries: Vec::new(),
            histories: FxHashMap::default(),
            halted: false,
            revert_all: false,
            cancelled: false,
            suspending: false,
            control,
            in_flight: 0,
            store: Vec::new(),
            lent: Context::new(contexts.clone(), 0, 0),
            contexts,
            #[cfg(debug_assertions)]
            announced: if notifier.listening() {
                (0..n)
                    .map(|_| std::sync::atomic::AtomicU8::new(AtomState::Pending as u8))
                    .collect()
            } else {
                Vec::new()
            },
            notifier,
            dirty,
            g,
        }
    }

    /// A new machine for the same flow, listeners and control.
    pub(crate) fn fresh(&self, journaled: bool) -> Self {
        Machine::new(
            self.g.clone(),
            self.notifier.clone(),
            journaled,
            self.control.clone(),
        )
    }

    /// Whether this is a stand-in left by a parallel run whose future was
    /// forgotten (never dropped), which kept the real machine.
    pub(crate) fn is_vacant(&self) -> bool {
        self.slots.len() != self.g.nodes.len()
    }

    /// Whether a job may be ready (a cheap check; `next_job` decides).
    pub(crate) fn may_have_work(&self) -> bool {
        let queued =
            !self.forward.is_empty() || !self.backward.is_empty() || !self.waits.is_empty();
        queued && !self.halted && !self.suspending
    }

    fn mark(&mut self, i: u32) {
        if let Some(d) = &mut self.dirty {
            if !d.marked[i as usize] && !self.g.nodes[i as usize].is_barrier() {
                d.marked[i as usize] = true;
                d.atoms.push(i);
            }
        }
    }

    /// The flow's record changed (its state, or how it is being reverted).
    fn mark_flow(&mut self) {
        if let Some(d) = &mut self.dirty {
            d.flow = true;
        }
    }

    /// The atoms and flow changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> (Vec<u32>, bool) {
        match &mut self.dirty {
            Some(d) => {
                for &i in &d.atoms {
                    d.marked[i as usize] = false;
                }
                let flow = std::mem::replace(&mut d.flow, false);
                (std::mem::take(&mut d.atoms), flow)
            }
            None => (Vec::new(), false),
        }
    }

    /// The only place an atom's state changes.
    #[inline(always)]
    fn set_state(&mut self, i: u32, to: AtomState) -> Result<(), TransitionError> {
        let node = &self.g.nodes[i as usize];
        if node.is_barrier() {
            self.slots[i as usize].state = to;
            return Ok(());
        }
        check_atom(node.kind(), &node.name, self.slots[i as usize].state, to)?;
        self.slots[i as usize].state = to;
        self.mark(i);
        if self.notifier.listening() {
            self.announce(i);
        }
        Ok(())
    }

    /// A state change outside the table, announced: an explicit reset only.
    fn force_state(&mut self, i: u32, to: AtomState) {
        if self.slots[i as usize].state != to {
            self.rewind(i, to);
            if !self.g.nodes[i as usize].is_barrier() && self.notifier.listening() {
                self.emit_atom(i);
            }
        }
    }

    /// Puts atom `i` back to `to` without announcing it: the bookkeeping of
    /// recovery (an atom caught running is pending again, one caught
    /// reverting is what it was before its revert) and of a controller
    /// caught waiting for its next attempt when its sub-flow is reverted.
    /// Listeners see the atom's next real transition from where they last
    /// saw it; the journal records where it is.
    fn rewind(&mut self, i: u32, to: AtomState) {
        if self.slots[i as usize].state != to {
            self.slots[i as usize].state = to;
            if !self.g.nodes[i as usize].is_barrier() {
                self.mark(i);
            }
            #[cfg(debug_assertions)]
            if let Some(seen) = self.announced.get(i as usize) {
                seen.store(to as u8, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// In debug builds: takes the atoms' states as announced (a run taken up
    /// from the journal: its listeners see each atom's next change from
    /// there).
    pub(crate) fn sync_announced(&self) {
        #[cfg(debug_assertions)]
        for (seen, slot) in self.announced.iter().zip(&self.slots) {
            seen.store(slot.state as u8, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// In debug builds: checks that announcing `state` for atom `i` follows
    /// the state table from the state it was last announced in (or rewound
    /// to), unless `forced` (an explicit reset).
    #[cfg(debug_assertions)]
    fn check_announced(&self, i: u32, state: AtomState, forced: bool) {
        let Some(seen) = self.announced.get(i as usize) else {
            return;
        };
        let before = seen.swap(state as u8, std::sync::atomic::Ordering::Relaxed);
        let before = AtomState::ALL[usize::from(before)];
        let kind = self.g.nodes[i as usize].kind();
        assert!(
            forced || crate::engine::state::atom_transition_allowed(kind, before, state),
            "atom `{}` was announced {before} then {state}: not a move of the state table",
            self.g.nodes[i as usize].name
        );
    }

    #[inline]
    fn set_intention(&mut self, i: u32, to: Intention) {
        if self.slots[i as usize].intention != to {
            self.slots[i as usize].intention = to;
            self.mark(i);
        }
    }

    fn announce(&self, i: u32) {
        if !self.notifier.listening() {
            return;
        }
        #[cfg(debug_assertions)]
        self.check_announced(i, self.slots[i as usize].state, false);
        self.emit_atom(i);
    }

    /// Tells the listeners atom `i`'s state.
    fn emit_atom(&self, i: u32) {
        let iu = i as usize;
        let state = self.slots[iu].state;
        let detail = match state {
            AtomState::Success => self.outputs[iu]
                .as_ref()
                .map_or(Detail::None, Detail::Result),
            AtomState::Failure => self.failure.get(iu).map_or(Detail::None, Detail::Failure),
            AtomState::Reverted => Detail::Reverted(self.revert_results.get(iu)),
            AtomState::RevertFailure => self
                .revert_failures
                .iter()
                .rev()
                .find(|(a, _)| *a == i)
                .map_or(Detail::None, |(_, f)| Detail::Failure(f)),
            _ => Detail::None,
        };
        self.notifier.emit(&Event::Atom {
            atom: &self.g.nodes[iu].name,
            kind: self.g.nodes[iu].kind(),
            state,
            detail,
        });
    }

    /// The only place the flow's state changes.
    pub(crate) fn set_flow(&mut self, to: FlowState) -> Result<(), TransitionError> {
        check_flow(&self.g.name, self.flow_state, to)?;
        self.force_flow(to);
        Ok(())
    }

    fn force_flow(&mut self, to: FlowState) {
        self.flow_state = to;
        if let Some(d) = &mut self.dirty {
            d.flow = true;
        }
        if self.notifier.listening() {
            self.notifier.emit(&Event::Flow {
                flow: &self.g.name,
                state: to,
            });
        }
    }

    fn clear_results(&mut self) {
        for o in &mut self.outputs {
            *o = None;
        }
        self.failure.clear();
        self.revert_results.clear();
        for slot in &mut self.slots {
            slot.owner = NONE;
            slot.passed = false;
        }
        self.failed.clear();
        self.revert_failures.clear();
        self.contexts.publish_failures(Failures::new());
        self.published = true;
        self.forward.clear();
        self.backward.clear();
        self.waits.clear();
        self.retries.clear();
        self.histories.clear();
        self.halted = false;
        self.revert_all = false;
        self.cancelled = false;
        self.suspending = false;
    }

    /// A reverted run starts over: atoms back to `Pending`, then the flow.
    pub(crate) fn restart(&mut self) -> Result<(), TransitionError> {
        for i in 0..self.slots.len() as u32 {
            if self.slots[i as usize].state != AtomState::Pending {
                self.set_state(i, AtomState::Pending)?;
            }
            self.set_intention(i, Intention::Execute);
        }
        self.clear_results();
        self.set_flow(FlowState::Pending)
    }

    /// Everything back to `Pending`, whatever the states were.
    pub(crate) fn reset(&mut self) {
        for i in 0..self.slots.len() as u32 {
            self.force_state(i, AtomState::Pending);
            self.set_intention(i, Intention::Execute);
        }
        self.clear_results();
        if self.flow_state != FlowState::Pending {
            self.force_flow(FlowState::Pending);
        }
    }

    /// Continues a run that was interrupted (its future dropped, or its process
    /// gone): atoms caught `Running` run again, atoms caught `Reverting` revert
    /// again, a controller caught `Retrying` runs again.
    pub(crate) fn recover_interrupted(&mut self) {
        for i in 0..self.slots.len() as u32 {
            match self.slots[i as usize].state {
                AtomState::Running => {
                    self.outputs[i as usize] = None;
                    self.rewind(i, AtomState::Pending);
                }
                AtomState::Reverting => {
                    let back = if self.failure.get(i as usize).is_some() {
                        AtomState::Failure
                    } else {
                        AtomState::Success
                    };
                    self.rewind(i, back);
                }
                _ => {}
            }
        }
        self.in_flight = 0;
        let waits = std::mem::take(&mut self.waits);
        for (r, _) in waits {
            self.push_forward(r);
        }
    }

    /// Takes up a run loaded from the journal: atoms caught `Running` run again,
    /// atoms caught `Reverting` revert again, the retries whose sub-flows were
    /// being reverted go on, and failures not yet resolved are resolved.
    pub(crate) fn restored(&mut self) -> Result<(), TransitionError> {
        self.recover_interrupted();
        let n = self.slots.len() as u32;
        let mut scopes: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for i in 0..n {
            let slot = &mut self.slots[i as usize];
            if slot.owner != NONE && slot.intention == Intention::Revert && !self.revert_all {
                scopes.entry(slot.owner).or_default().push(i);
            } else {
                slot.owner = NONE;
            }
        }
        for (controller, scope) in scopes {
            let left = scope.iter().filter(|&&i| self.blocks_revert(i)).count();
            let pending = PendingRetry {
                controller,
                scope,
                left,
            };
            if left == 0 {
                self.run_again(pending)?;
            } else {
                self.retries.push(pending);
            }
        }
        if !self.revert_all && !self.halted {
            for i in 0..n {
                let slot = &self.slots[i as usize];
                if slot.state == AtomState::Failure && slot.intention == Intention::Execute {
                    self.on_failure(i)?;
                }
            }
        }
        Ok(())
    }

    /// For a run from the start, every atom pending and to execute: sets
    /// each atom to wait for all its predecessors and queues those with
    /// none, in one pass. Returns `false`, with nothing queued, for any
    /// other run.
    fn start_fresh(&mut self) -> bool {
        // Without priorities the roots' keys fall as their indices rise, so
        // they all queue in order: room for them in one allocation.
        self.forward.reserve(self.g.roots);
        let counts = self.g.pred_off.windows(2).map(|w| w[1] - w[0]);
        for (i, (slot, waiting)) in (0..u32::MAX).zip(self.slots.iter_mut().zip(counts)) {
            if slot.state != AtomState::Pending || slot.intention != Intention::Execute {
                self.forward.clear();
                return false;
            }
            slot.waiting = waiting;
            if waiting == 0 {
                self.forward.push(forward_key(&self.g, i));
            }
        }
        true
    }

    /// Fills the counters and the ready queues from the current states.
    pub(crate) fn schedule(&mut self) {
        self.forward.clear();
        self.backward.clear();
        if self.halted {
            return;
        }
        if self.start_fresh() {
            return;
        }
        for i in 0..self.slots.len() as u32 {
            let iu = i as usize;
            self.count_waiting(i);
            let ready_state = self.slots[iu].state == AtomState::Pending
                || (self.slots[iu].state == AtomState::Retrying
                    && self.waits.iter().all(|(r, _)| *r != i));
            if self.slots[iu].intention == Intention::Execute
                && self.slots[iu].waiting == 0
                && ready_state
            {
                self.push_forward(i);
            }
            if self.slots[iu].intention == Intention::Revert {
                self.count_revert_waits(i);
            }
        }
    }

    /// Counts the predecessors of `i` that are not done (`Success` or `Ignore`).
    fn count_waiting(&mut self, i: u32) {
        let w = self
            .g
            .preds(i)
            .iter()
            .filter(|&&p| {
                !matches!(
                    self.slots[p as usize].state,
                    AtomState::Success | AtomState::Ignore
                )
            })
            .count() as u32;
        self.slots[i as usize].waiting = w;
    }

    fn push_forward(&mut self, i: u32) {
        self.forward.push(forward_key(&self.g, i));
    }

    /// Whether atom `i` keeps its predecessors from reverting.
    fn blocks_revert(&self, i: u32) -> bool {
        let slot = &self.slots[i as usize];
        slot.holds_back_revert(slot.intention == Intention::Revert)
    }

    fn count_revert_waits(&mut self, i: u32) {
        let w = self
            .g
            .succs(i)
            .iter()
            .filter(|&&s| self.blocks_revert(s))
            .count() as u32;
        self.set_revert_waits(i, w);
    }

    /// Atom `i` waits for `w` successors before it may revert; with none, it
    /// is ready to, if it has anything to undo.
    #[inline(always)]
    fn set_revert_waits(&mut self, i: u32, w: u32) {
        self.slots[i as usize].rwaiting = w;
        if w == 0 && self.slots[i as usize].needs_undo() {
            self.backward.push(i);
        }
    }

    #[inline(always)]
    fn gather_into(&self, sources: &[Source], args: &mut Args) {
        for s in sources {
            args.push(self.arg(s));
        }
    }

    fn value(&self, s: &Source) -> Option<Value> {
        match s {
            Source::Output { atom, index } => self.outputs[*atom as usize]
                .as_ref()
                .and_then(|o| o.0.get(*index as usize).cloned()),
            Source::Store(i) => self.store.get(*i as usize).cloned(),
            Source::Injected(v) => Some(v.clone()),
            Source::Absent | Source::Many(_) | Source::Named(_) => None,
        }
    }

    fn arg(&self, s: &Source) -> Arg {
        match s {
            // The common case first, without the detour through an `Option`.
            Source::Output { atom, index } => {
                match (self.outputs[*atom as usize].as_ref()).and_then(|o| o.0.get(*index as usize))
                {
                    Some(v) => Arg::One(v.clone()),
                    None => Arg::Absent,
                }
            }
            Source::Many(list) => Arg::Many(list.iter().filter_map(|s| self.value(s)).collect()),
            Source::Named(list) => Arg::Named(
                list.iter()
                    .filter_map(|(n, s)| Some((n.clone(), self.value(s)?)))
                    .collect(),
            ),
            other => self.value(other).map_or(Arg::Absent, Arg::One),
        }
    }

    #[inline(always)]
    fn args_of(&self, i: u32) -> Args {
        let sources = self.g.exec_sources(i);
        let mut args = Args::with_capacity(sources.len());
        self.gather_into(sources, &mut args);
        args
    }

    /// Gives the run's context the failures as they are now, if a failure
    /// has come or gone since it was last given them.
    #[inline(always)]
    fn publish_failures(&mut self) {
        if self.published {
            return;
        }
        let map: Failures = self
            .failed
            .iter()
            .filter_map(|&a| {
                let f = self.failure.get(a as usize)?.clone();
                Some((self.g.nodes[a as usize].name.to_string(), f))
            })
            .collect();
        self.contexts.publish_failures(map);
        self.published = true;
    }

    /// The next job to run, if one is ready, holding its task and context
    /// (see [`Machine::next_step`]).
    pub(crate) fn next_job(&mut self) -> Result<Option<Job>, TransitionError> {
        Ok(self.next_step()?.map(|step| self.own(step)))
    }

    /// Makes `step` a job that holds its task and context.
    pub(crate) fn own(&self, step: Step) -> Job {
        let task = &self.g.nodes[step.atom as usize].task;
        let ctx = Context::new(self.contexts.clone(), step.atom, step.attempt);
        owned(step, task, ctx)
    }

    /// Starts `step` with its task and a lent context: a synchronous task
    /// runs to its end here; anything else takes its own references and
    /// becomes a future.
    pub(crate) fn start(&mut self, step: Step) -> exec::Started {
        start_step(&self.g, &mut self.lent, step)
    }

    /// What a worker needs to start steps away from the machine
    /// ([`start_step`]): the run's graph, and a context to lend.
    pub(crate) fn lender(&self) -> (Arc<Graph>, Context) {
        (self.g.clone(), self.lent.clone())
    }

    /// Runs ready tasks to their end here, for as long as the next piece of
    /// work is a plain task ([`Node::is_plain`](crate::compile::Node::is_plain))
    /// to execute or revert: the serial engine's path for the common case,
    /// which makes no [`Step`] and no [`Done`] for a task that succeeds at
    /// once. Anything else (a wait, a barrier, a retry controller, a gate)
    /// goes the way of [`Machine::next_step`]; both paths share the steps of
    /// starting and finishing an atom, which announce its states and
    /// progress to the listeners, so they keep one behaviour and one order
    /// of events.
    /// Requests to cancel or suspend are applied before each task, as
    /// between the steps of the general path.
    pub(crate) fn run_plain(&mut self) -> Result<Plain, TransitionError> {
        loop {
            self.apply_requests()?;
            if self.halted || self.suspending || !self.waits.is_empty() {
                return self.general();
            }
            // Reverts go first, as in `next_step`.
            let (i, key) = match self.backward.pop() {
                Some(i) => (i, None),
                None => match self.forward.pop() {
                    Some(key) => (u32::MAX - key.1, Some(key)),
                    None => return Ok(Plain::Idle),
                },
            };
            let iu = i as usize;
            if !self.g.nodes[iu].is_plain() {
                // The largest key: it comes out first again. (A retry
                // controller may start again from `Retrying`, which only
                // `next_step` knows.)
                match key {
                    Some(key) => self.forward.push(key),
                    None => self.backward.push(i),
                }
                return self.general();
            }
            let slot = self.slots[iu];
            let started = if key.is_some() {
                // An entry queued before a retry reset its atom may outlive
                // the reset: only an atom whose predecessors are done starts.
                if slot.intention != Intention::Execute
                    || slot.state != AtomState::Pending
                    || slot.waiting != 0
                {
                    continue;
                }
                let args = self.begin_execute(i)?;
                // As `start_plain` does, without its result in between: going
                // through it costs this loop 20 instructions per task.
                self.lent.point(i, self.slots[iu].attempts);
                let called = with_task(&self.g.nodes[iu].task, |task| {
                    exec::call(&self.lent, "execute", || task.execute(args, &self.lent))
                });
                match called {
                    Ok(Ok(out)) => {
                        self.executed(i, out)?;
                        continue;
                    }
                    other => exec::started(i, &self.lent, other, Done::Executed, true),
                }
            } else {
                if slot.intention != Intention::Revert || !slot.needs_undo() {
                    continue;
                }
                if slot.state == AtomState::Ignore {
                    self.slots[iu].passed = true;
                    self.after_revert(i)?;
                    continue;
                }
                let input = self.begin_revert(i)?;
                self.lent.point(i, slot.attempts);
                let called = with_task(&self.g.nodes[iu].task, |task| {
                    exec::call(&self.lent, "revert", || task.revert(input, &self.lent))
                });
                match called {
                    Ok(Ok(value)) => {
                        self.reverted(i, value)?;
                        continue;
                    }
                    other => exec::started(i, &self.lent, other, Done::Reverted, false),
                }
            };
            // A failure, or a future: recorded as any finished job is.
            self.in_flight += 1;
            match started {
                exec::Started::Now(done) => self.complete(done)?,
                exec::Started::Later(future) => return Ok(Plain::Later(future)),
            }
        }
    }

    /// What [`Machine::run_plain`] leaves to the general path.
    fn general(&mut self) -> Result<Plain, TransitionError> {
        Ok(self.next_step()?.map_or(Plain::Idle, Plain::Step))
    }

    /// Takes work for a parallel worker: plain tasks to execute, up to `n`
    /// of them, go to `plain` while nobody listens (and no revert or wait
    /// goes first); otherwise the next piece of work goes to `steps`, as
    /// [`Machine::next_step`] makes it. Returns whether it took anything.
    pub(crate) fn take_into(
        &mut self,
        plain: &mut Vec<PlainJob>,
        steps: &mut Vec<Step>,
        n: usize,
    ) -> Result<bool, TransitionError> {
        if !(self.halted || self.suspending)
            && self.waits.is_empty()
            && self.backward.is_empty()
            && !self.notifier.listening()
        {
            // Taking a plain task changes none of the conditions above.
            let mut took = 0;
            while let Some(key) = self.forward.pop() {
                let i = u32::MAX - key.1;
                let iu = i as usize;
                if !self.g.nodes[iu].is_plain() {
                    // The largest key: `next_step` takes it first.
                    self.forward.push(key);
                    break;
                }
                let slot = self.slots[iu];
                // An entry queued before a retry reset its atom may outlive
                // the reset: only an atom whose predecessors are done starts.
                if slot.intention != Intention::Execute
                    || slot.state != AtomState::Pending
                    || slot.waiting != 0
                {
                    continue;
                }
                let args = self.begin_execute(i)?;
                self.in_flight += 1;
                plain.push(PlainJob {
                    atom: i,
                    attempt: self.slots[iu].attempts,
                    args,
                });
                took += 1;
                if took == n {
                    break;
                }
            }
            if took > 0 {
                return Ok(true);
            }
        }
        Ok(match self.next_step()? {
            Some(step) => {
                steps.push(step);
                true
            }
            None => false,
        })
    }

    /// Starts executing atom `i`: one attempt more, `RUNNING`, and its
    /// arguments.
    #[inline(always)]
    fn begin_execute(&mut self, i: u32) -> Result<Args, TransitionError> {
        let iu = i as usize;
        self.slots[iu].attempts += 1;
        self.set_state(i, AtomState::Running)?;
        let args = self.args_of(i);
        self.notifier.progress(&self.g.nodes[iu].name, i, 0.0);
        Ok(args)
    }

    /// Starts reverting atom `i`: what its `revert` is given, and
    /// `REVERTING`.
    #[inline(always)]
    fn begin_revert(&mut self, i: u32) -> Result<RevertInput, TransitionError> {
        let iu = i as usize;
        let sources = self.g.revert_sources(i);
        let mut args = Args::with_capacity(sources.len());
        self.gather_into(sources, &mut args);
        let outcome = match self.failure.get(iu) {
            Some(f) if self.slots[iu].state == AtomState::Failure => Outcome::Failure(f.clone()),
            // Outputs are only shown while `Success`: unless a journal must
            // keep them until the revert is done, they move to the revert.
            _ if self.dirty.is_none() => {
                Outcome::Success(self.outputs[iu].take().unwrap_or_default())
            }
            _ => Outcome::Success(self.outputs[iu].clone().unwrap_or_default()),
        };
        self.set_state(i, AtomState::Reverting)?;
        self.publish_failures();
        Ok(RevertInput { args, outcome })
    }

    /// The next piece of work, if one is ready. Reverts go first; barriers
    /// and retry controllers are handled on the spot.
    pub(crate) fn next_step(&mut self) -> Result<Option<Step>, TransitionError> {
        if self.halted || self.suspending {
            return Ok(None);
        }
        if let Some((r, delay)) = self.waits.pop() {
            self.in_flight += 1;
            return Ok(Some(Step {
                atom: r,
                attempt: self.slots[r as usize].attempts,
                blocking: false,
                timeout: None,
                kind: JobKind::Wait(delay),
            }));
        }
        while let Some(i) = self.backward.pop() {
            let iu = i as usize;
            if self.slots[iu].intention != Intention::Revert || !self.slots[iu].needs_undo() {
                continue;
            }
            if self.slots[iu].state == AtomState::Ignore {
                self.slots[iu].passed = true;
                self.after_revert(i)?;
                continue;
            }
            let node = &self.g.nodes[iu];
            if node.is_barrier() {
                self.slots[iu].state = AtomState::Reverted;
                self.after_revert(i)?;
                continue;
            }
            if node.retry().is_some() {
                self.set_state(i, AtomState::Reverting)?;
                self.histories.remove(&i);
                self.revert_results.set(iu, None);
                self.set_state(i, AtomState::Reverted)?;
                self.outputs[iu] = None;
                self.after_revert(i)?;
                if self.halted {
                    return Ok(None);
                }
                continue;
            }
            let blocking = node.blocking();
            let input = self.begin_revert(i)?;
            self.in_flight += 1;
            return Ok(Some(Step {
                atom: i,
                attempt: self.slots[iu].attempts,
                blocking,
                timeout: None,
                kind: JobKind::Revert(input),
            }));
        }
        while let Some((_, key)) = self.forward.pop() {
            let i = u32::MAX - key;
            let iu = i as usize;
            let node = &self.g.nodes[iu];
            let is_controller = node.retry().is_some();
            let retrying = self.slots[iu].state == AtomState::Retrying && is_controller;
            if self.slots[iu].intention != Intention::Execute
                || !(self.slots[iu].state == AtomState::Pending || retrying)
                || self.slots[iu].waiting != 0
            {
                continue;
            }
            if node.is_barrier() {
                self.slots[iu].state = AtomState::Success;
                self.release_successors(i);
                continue;
            }
            let gate = node.gate();
            if gate != NONE && self.gate_says_no(gate)? {
                continue;
            }
            if is_controller {
                let g = self.g.clone();
                let Some(controller) = g.nodes[iu].retry() else {
                    continue;
                };
                let retry = &controller.0;
                self.slots[iu].attempts += 1;
                self.set_state(i, AtomState::Running)?;
                let args = self.args_of(i);
                let history = self.histories.entry(i).or_default();
                let result =
                    catch_unwind(AssertUnwindSafe(|| retry.strategy.execute(&args, history)));
                let done = match result {
                    Ok(Ok(value)) => {
                        history.attempts.push(Attempt {
                            value: value.clone(),
                            failures: Failures::new(),
                        });
                        Ok(retry_outputs(value, retry.provides.is_some()))
                    }
                    Ok(Err(e)) => Err(Failure::from_error(e)),
                    Err(panic) => Err(Failure::from_panic(panic)),
                };
                self.in_flight += 1;
                self.complete(Done::Executed(i, done))?;
                // Its failure may have queued reverts: choose again from the top.
                return self.next_step();
            }
            let node = &self.g.nodes[iu];
            let (blocking, timeout) = (node.blocking(), node.timeout());
            let args = self.begin_execute(i)?;
            self.in_flight += 1;
            return Ok(Some(Step {
                atom: i,
                attempt: self.slots[iu].attempts,
                blocking,
                timeout,
                kind: JobKind::Execute(args),
            }));
        }
        Ok(None)
    }

    /// Runs the deciders of gate `k`; on a "no", ignores the region of the
    /// widest depth among the "no" votes and says so.
    fn gate_says_no(&mut self, k: u32) -> Result<bool, TransitionError> {
        let g = self.g.clone();
        let gate = &g.gates[k as usize];
        let mut results = Results::default();
        for (source, _) in &gate.deciders {
            if let Some(out) = &self.outputs[*source as usize] {
                results
                    .map
                    .insert(g.nodes[*source as usize].name.to_string(), out.clone());
            }
        }
        let mut widest: Option<Depth> = None;
        for (_, decider) in &gate.deciders {
            let yes = catch_unwind(AssertUnwindSafe(|| (decider.decide)(&results))).unwrap_or_else(
                |_| {
                    tracing::error!(target: "flow", "a decider panicked; taken as a no");
                    false
                },
            );
            if !yes {
                widest = widest.max(Some(decider.depth));
            }
        }
        let Some(depth) = widest else {
            return Ok(false);
        };
        self.ignore(gate, depth)?;
        Ok(true)
    }

    /// Ignores the atoms the deciders of `gate` guard and, by `depth`, what
    /// follows them (see [`Depth`] for each rule): every successor for
    /// `All`; for `Flow` the atoms of the gate's graph flow reached through
    /// its own atoms only, for `Neighbors` its own atoms one step away (a
    /// nested flow is another flow: its atoms are not the graph's own, and
    /// neither are those after the graph); nothing more for `Atom`. The
    /// engine's internal joins are passed through, never ignored.
    fn ignore(&mut self, gate: &Gate, depth: Depth) -> Result<(), TransitionError> {
        let g = self.g.clone();
        let (region, graph) = (gate.region, gate.graph);
        // An atom of the graph flow itself, not of a flow nested in it.
        let own = |s: u32| {
            let k = gate.nested.partition_point(|&(_, end)| end <= s);
            graph.0 <= s && s < graph.1 && gate.nested.get(k).is_none_or(|&(start, _)| s < start)
        };
        let mut seen = vec![false; self.slots.len()];
        let mut list: Vec<u32> = (region.0..region.1).collect();
        for &i in &list {
            seen[i as usize] = true;
        }
        let mut queue: VecDeque<u32> = if depth == Depth::Atom {
            VecDeque::new()
        } else {
            list.iter().copied().collect()
        };
        while let Some(i) = queue.pop_front() {
            for &s in g.succs(i) {
                if std::mem::replace(&mut seen[s as usize], true) {
                    continue;
                }
                if g.nodes[s as usize].is_barrier() {
                    queue.push_back(s);
                    continue;
                }
                match depth {
                    Depth::All => queue.push_back(s),
                    Depth::Flow if own(s) => queue.push_back(s),
                    Depth::Neighbors if own(s) => {}
                    _ => continue,
                }
                list.push(s);
            }
        }
        list.sort_unstable();
        let mut ignored = Vec::with_capacity(list.len());
        for i in list {
            if self.slots[i as usize].state == AtomState::Pending {
                self.set_state(i, AtomState::Ignore)?;
                self.set_intention(i, Intention::Ignore);
                ignored.push(i);
            }
        }
        for i in ignored {
            self.release_successors(i);
        }
        Ok(())
    }

    #[inline(always)]
    fn release_successors(&mut self, i: u32) {
        let Self {
            g, slots, forward, ..
        } = self;
        for &s in g.succs(i) {
            let slot = &mut slots[s as usize];
            slot.waiting = slot.waiting.saturating_sub(1);
            if slot.waiting == 0
                && slot.state == AtomState::Pending
                && slot.intention == Intention::Execute
            {
                forward.push(forward_key(g, s));
            }
        }
    }

    /// After atom `i` was reverted: its predecessors may revert, and a retry
    /// waiting for it may run.
    fn after_revert(&mut self, i: u32) -> Result<(), TransitionError> {
        let Self {
            g, slots, backward, ..
        } = self;
        for &p in g.preds(i) {
            let slot = &mut slots[p as usize];
            if slot.intention == Intention::Revert {
                slot.rwaiting = slot.rwaiting.saturating_sub(1);
                if slot.rwaiting == 0 && slot.needs_undo() {
                    backward.push(p);
                }
            }
        }
        let owner = self.slots[i as usize].owner;
        if owner != NONE {
            if let Some(k) = self.retries.iter().position(|r| r.controller == owner) {
                self.retries[k].left = self.retries[k].left.saturating_sub(1);
                if self.retries[k].left == 0 {
                    let pending = self.retries.swap_remove(k);
                    self.run_again(pending)?;
                }
            }
        }
        Ok(())
    }

    /// Atom `i`'s `execute` returned `out`: `SUCCESS` if it is what the atom
    /// declares, and its successors may start; else a contract failure.
    #[inline(always)]
    fn executed(&mut self, i: u32, out: Outputs) -> Result<(), TransitionError> {
        if let Err(failure) = check_contract(&self.g, i, &out) {
            return self.execute_failed(i, failure);
        }
        if self.dirty.is_some() {
            if let Err(failure) = self.storable(i, &out) {
                return self.execute_failed(i, failure);
            }
        }
        self.succeeded(i, out)
    }

    /// With a journal: whether the journal can hold atom `i`'s outputs `out`
    /// exactly, so that a resumed run reads back what the task returned;
    /// else the task's failure, at the moment it returns.
    fn storable(&self, i: u32, out: &Outputs) -> Result<(), Failure> {
        let node = &self.g.nodes[i as usize];
        for (k, v) in out.values().iter().enumerate() {
            if let Err(e) = v.encode() {
                return Err(unstorable(
                    &node.name,
                    &format!("output `{}`", node.output_name(k)),
                    &e,
                ));
            }
        }
        Ok(())
    }

    /// With a journal: what a revert returned, if the journal can hold it
    /// exactly; else the revert's failure.
    fn storable_revert(&self, i: u32, value: Option<Value>) -> Result<Option<Value>, Failure> {
        match &value {
            Some(v) if self.dirty.is_some() => match v.encode() {
                Ok(_) => Ok(value),
                Err(e) => Err(unstorable(
                    &self.g.nodes[i as usize].name,
                    "revert result",
                    &e,
                )),
            },
            _ => Ok(value),
        }
    }

    /// Records [`PlainJob`]s that succeeded, their outputs already checked
    /// against their contracts ([`PlainDone::Checked`]), emptying `done`.
    pub(crate) fn accept(&mut self, done: &mut Vec<(u32, Outputs)>) -> Result<(), TransitionError> {
        for (i, out) in done.drain(..) {
            self.in_flight -= 1;
            self.succeeded(i, out)?;
        }
        Ok(())
    }

    /// Atom `i` returned `out`, which is what it declares: `SUCCESS`, and
    /// its successors may start.
    #[inline(always)]
    fn succeeded(&mut self, i: u32, out: Outputs) -> Result<(), TransitionError> {
        let iu = i as usize;
        self.outputs[iu] = Some(out);
        self.set_state(i, AtomState::Success)?;
        self.notifier.progress(&self.g.nodes[iu].name, i, 1.0);
        if self.slots[iu].intention == Intention::Execute {
            self.release_successors(i);
        } else if self.slots[iu].rwaiting == 0 {
            self.backward.push(i);
        }
        Ok(())
    }

    /// Atom `i`'s `execute` failed.
    fn execute_failed(&mut self, i: u32, failure: Failure) -> Result<(), TransitionError> {
        self.failure.set(i as usize, Some(failure));
        self.failed.push(i);
        self.published = false;
        self.set_state(i, AtomState::Failure)?;
        self.on_failure(i)
    }

    /// Atom `i`'s `revert` returned `value`: `REVERTED`, and its predecessors
    /// may revert.
    #[inline(always)]
    fn reverted(&mut self, i: u32, value: Option<Value>) -> Result<(), TransitionError> {
        self.revert_results.set(i as usize, value);
        self.set_state(i, AtomState::Reverted)?;
        self.outputs[i as usize] = None;
        if !self.halted {
            self.after_revert(i)?;
        }
        Ok(())
    }

    /// Records a finished job.
    pub(crate) fn complete(&mut self, done: Done) -> Result<(), TransitionError> {
        self.in_flight -= 1;
        match done {
            Done::Waited(r) => {
                if self.slots[r as usize].intention == Intention::Execute && !self.halted {
                    self.push_forward(r);
                }
            }
            Done::Executed(i, result) => match result {
                Ok(out) => self.executed(i, out)?,
                Err(failure) => self.execute_failed(i, failure)?,
            },
            Done::Reverted(i, result) => match result.and_then(|v| self.storable_revert(i, v)) {
                Ok(value) => self.reverted(i, value)?,
                Err(failure) => {
                    self.revert_failures.push((i, failure));
                    self.set_state(i, AtomState::RevertFailure)?;
                    self.halted = true;
                    self.forward.clear();
                    self.backward.clear();
                    self.waits.clear();
                    self.retries.clear();
                }
            },
        }
        Ok(())
    }

    fn record_failure(&mut self, controller: u32, atom: u32) {
        let Some(failure) = self.failure.get(atom as usize).cloned() else {
            return;
        };
        let name = self.g.nodes[atom as usize].name.to_string();
        self.mark(controller);
        if let Some(last) = self
            .histories
            .entry(controller)
            .or_default()
            .attempts
            .last_mut()
        {
            last.failures.insert(name, failure);
        }
    }

    /// Resolves a failure of atom `x`: the nearest enclosing controller
    /// decides, then its parent, and so on; at the top, everything reverts.
    fn on_failure(&mut self, x: u32) -> Result<(), TransitionError> {
        let xu = x as usize;
        if self.halted {
            return Ok(());
        }
        if self.slots[xu].intention == Intention::Revert {
            // Already being undone (a retry or a revert of everything).
            if self.slots[xu].owner != NONE {
                self.record_failure(self.slots[xu].owner, x);
            }
            if self.slots[xu].rwaiting == 0 {
                self.backward.push(x);
            }
            return Ok(());
        }
        let Some(failure) = self.failure.get(xu).cloned() else {
            return Ok(());
        };
        let g = self.g.clone();
        let mut r = g.nodes[xu].enclosing;
        while r != NONE {
            let Some(controller) = g.nodes[r as usize].retry() else {
                break;
            };
            let retry = &controller.0;
            self.record_failure(r, x);
            let args = self.args_of(r);
            let history = self.histories.entry(r).or_default();
            let decision =
                catch_unwind(AssertUnwindSafe(|| retry.decide(&args, history, &failure)))
                    .unwrap_or(Decision::RevertAll);
            match decision {
                Decision::Retry => return self.begin_retry(r),
                Decision::RevertAll => break,
                Decision::Revert => r = g.nodes[r as usize].enclosing,
            }
        }
        self.revert_everything();
        Ok(())
    }

    /// Reverts controller `r`'s sub-flow and everything after it that ran,
    /// then runs `r` again.
    fn begin_retry(&mut self, r: u32) -> Result<(), TransitionError> {
        let g = self.g.clone();
        let Some(controller) = g.nodes[r as usize].retry() else {
            return Ok(());
        };
        let (start, end) = &controller.1;
        let n = self.slots.len();
        let mut in_scope = vec![false; n];
        let mut scope: Vec<u32> = (*start..*end).collect();
        for &i in &scope {
            in_scope[i as usize] = true;
        }
        let mut k = 0;
        while k < scope.len() {
            let i = scope[k];
            for &s in g.succs(i) {
                if !in_scope[s as usize] && s != r {
                    in_scope[s as usize] = true;
                    scope.push(s);
                }
            }
            k += 1;
        }
        // A retry of an outer controller takes over the retries inside it.
        self.retries.retain(|p| !in_scope[p.controller as usize]);
        self.waits.retain(|(c, _)| !in_scope[*c as usize]);
        let mut left = 0;
        for &i in &scope {
            self.set_intention(i, Intention::Revert);
            self.slots[i as usize].owner = r;
            self.mark(i);
            if self.blocks_revert(i) {
                left += 1;
            }
            if self.slots[i as usize].state == AtomState::Retrying {
                self.rewind(i, AtomState::Success);
                left += 1;
            }
        }
        for &i in &scope {
            self.count_revert_waits(i);
        }
        let pending = PendingRetry {
            controller: r,
            scope,
            left,
        };
        if left == 0 {
            self.run_again(pending)
        } else {
            self.retries.push(pending);
            Ok(())
        }
    }

    /// The sub-flow of a retry is undone: reset it and run the controller again.
    fn run_again(&mut self, pending: PendingRetry) -> Result<(), TransitionError> {
        let r = pending.controller;
        self.set_state(r, AtomState::Retrying)?;
        for &i in &pending.scope {
            let iu = i as usize;
            if self.slots[iu].state != AtomState::Pending {
                self.set_state(i, AtomState::Pending)?;
            }
            self.set_intention(i, Intention::Execute);
            self.slots[iu].owner = NONE;
            self.mark(i);
            self.slots[iu].passed = false;
            self.outputs[iu] = None;
            self.failure.set(iu, None);
            self.revert_results.set(iu, None);
        }
        self.failed
            .retain(|a| self.failure.get(*a as usize).is_some());
        self.published = false;
        for &i in &pending.scope {
            self.count_waiting(i);
        }
        let g = self.g.clone();
        let attempt = self.histories.get(&r).map_or(0, History::len) + 1;
        let delay = match g.nodes[r as usize].retry() {
            Some(controller) => controller.0.backoff.delay(attempt),
            None => Duration::ZERO,
        };
        if delay.is_zero() {
            self.push_forward(r);
        } else {
            self.waits.push((r, delay));
        }
        Ok(())
    }

    /// Acts on the suspend and cancel requests made through the run's handle.
    #[inline]
    pub(crate) fn apply_requests(&mut self) -> Result<(), TransitionError> {
        if self.control.cancel_requested() {
            self.cancel();
        }
        if self.control.suspend_requested() {
            self.suspend()?;
        }
        Ok(())
    }

    /// Cancels the run: everything that ran is reverted.
    pub(crate) fn cancel(&mut self) {
        if !self.cancelled {
            self.cancelled = true;
            self.mark_flow();
            if !self.halted {
                self.revert_everything();
            }
        }
    }

    /// Starts suspending: the flow goes `Suspending`, nothing new starts.
    pub(crate) fn suspend(&mut self) -> Result<(), TransitionError> {
        if !self.suspending && self.flow_state == FlowState::Running {
            self.suspending = true;
            self.set_flow(FlowState::Suspending)?;
        }
        Ok(())
    }

    /// Whether the run has nothing left to do (so a suspension came too late
    /// to matter).
    pub(crate) fn is_complete(&self) -> bool {
        if self.halted {
            return true;
        }
        if self.revert_all {
            return !self.slots.iter().any(|s| active(s.state));
        }
        self.slots
            .iter()
            .all(|s| matches!(s.state, AtomState::Success | AtomState::Ignore))
    }

    /// Stops a suspending run: the flow goes `Suspended`.
    pub(crate) fn suspended(&mut self) -> Result<(), TransitionError> {
        self.suspending = false;
        self.set_flow(FlowState::Suspended)
    }

    /// Every atom is to be reverted, whatever any controller says.
    fn revert_everything(&mut self) {
        self.revert_all = true;
        self.retries.clear();
        self.waits.clear();
        self.forward.clear();
        self.mark_flow();
        self.backward.clear();
        // One pass: each atom is marked, and what holds it back counted, in
        // the same visit. A successor is judged as it is once marked (to be
        // reverted, and `SUCCESS` if it was `RETRYING`), whether or not the
        // pass has reached it yet.
        for i in 0..self.slots.len() as u32 {
            let iu = i as usize;
            self.set_intention(i, Intention::Revert);
            if self.slots[iu].owner != NONE {
                self.slots[iu].owner = NONE;
                self.mark(i);
            }
            if self.slots[iu].state == AtomState::Retrying {
                self.rewind(i, AtomState::Success);
            }
            let slots = &self.slots;
            let w = (self.g.succs(i).iter())
                .filter(|&&s| {
                    let slot = &slots[s as usize];
                    slot.state == AtomState::Retrying || slot.holds_back_revert(true)
                })
                .count() as u32;
            self.set_revert_waits(i, w);
        }
    }

    fn atom_failures(&self, list: impl Iterator<Item = (u32, Failure)>) -> Vec<AtomFailure> {
        list.map(|(a, failure)| AtomFailure {
            atom: self.g.nodes[a as usize].name.to_string(),
            failure,
        })
        .collect()
    }

    /// Ends the run once nothing is ready or in flight.
    pub(crate) fn finish(&mut self) -> Result<(), RunError> {
        let done = self
            .slots
            .iter()
            .all(|s| matches!(s.state, AtomState::Success | AtomState::Ignore));
        let end = if self.halted {
            FlowState::Failure
        } else if done && !self.revert_all {
            FlowState::Success
        } else {
            FlowState::Reverted
        };
        self.set_flow(end)?;
        self.outcome()
    }

    /// What a run that ended returns: `Ok` for a success, else the error
    /// that says how it ended, with its failures.
    pub(crate) fn outcome(&self) -> Result<(), RunError> {
        let failures = self.atom_failures(
            self.failed
                .iter()
                .filter_map(|&a| Some((a, self.failure.get(a as usize)?.clone()))),
        );
        let flow = self.g.name.to_string();
        match self.flow_state {
            FlowState::Failure => Err(RunError::RevertFailed {
                flow,
                revert_failures: self.atom_failures(self.revert_failures.iter().cloned()),
                failures,
            }),
            FlowState::Reverted if self.cancelled => Err(RunError::Cancelled { flow, failures }),
            FlowState::Reverted => Err(RunError::Reverted { flow, failures }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AtomState, Control, Machine, Notifier, Ready, Sparse};
    use crate::{Atom, Flow, FnTask, Outputs, Signature};

    /// An atom reading `reads` and providing `provides`, all `u64`.
    fn atom(name: &'static str, reads: &[&'static str], provides: &'static str) -> Atom {
        let sig = reads
            .iter()
            .fold(Signature::new(), |sig, &r| sig.requires::<u64>(r))
            .provides::<u64>(provides);
        Atom::new(name, FnTask::sync(sig, |_| Ok(Outputs::one(1u64))))
    }

    /// The atoms in the forward queue, in the order they would start.
    fn drain_forward(m: &mut Machine) -> Vec<u32> {
        std::iter::from_fn(|| m.forward.pop())
            .map(|(_, key)| u32::MAX - key)
            .collect()
    }

    /// A run from the start queues the atoms with no predecessor in
    /// declaration order, each atom waiting for all its predecessors, and
    /// the compiled graph knows how many there are; a run that is not from
    /// the start is counted from the atoms' states instead.
    #[test]
    fn a_run_from_the_start_queues_the_roots_in_order() {
        for prioritized in [false, true] {
            // `a`, `b` and `c` read nothing; `d` reads `a` and `b`; `e` reads `d`.
            let c = atom("c", &[], "vc");
            // With a priority, `c` goes first.
            let c = if prioritized { c.priority(5) } else { c };
            let flow = Flow::graph("g")
                .add(atom("a", &[], "va"))
                .add(atom("b", &[], "vb"))
                .add(c)
                .add(atom("d", &["va", "vb"], "vd"))
                .add(atom("e", &["vd"], "ve"));
            let g = flow.build().expect("a valid flow").0;
            assert_eq!(g.roots, 3);
            assert_eq!(g.prioritized, prioritized);
            let (first, then) = if prioritized {
                ([2, 0, 1], [2, 0])
            } else {
                ([0, 1, 2], [0, 2])
            };
            let notifier = Notifier::new(Vec::new(), None);
            let mut m = Machine::new(g, notifier, false, Control::new());
            m.schedule();
            let waiting: Vec<u32> = m.slots.iter().map(|s| s.waiting).collect();
            assert_eq!(waiting, [0, 0, 0, 2, 1], "prioritized: {prioritized}");
            assert_eq!(drain_forward(&mut m), first);

            // `b` done: the pass from the start queues `a` before it finds
            // `b`, and must take it back.
            m.slots[1].state = AtomState::Success;
            m.schedule();
            let waiting: Vec<u32> = m.slots.iter().map(|s| s.waiting).collect();
            assert_eq!(waiting, [0, 0, 0, 1, 1], "prioritized: {prioritized}");
            assert_eq!(drain_forward(&mut m), then);
        }
    }

    /// Debug builds check every announced state change against the table:
    /// a state written past `set_state` and then announced is caught.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(
        expected = "atom `a` was announced PENDING then SUCCESS: not a move of the state table"
    )]
    fn an_announced_change_outside_the_table_is_caught_in_debug_builds() {
        let flow = Flow::linear("f")
            .add(atom("a", &[], "va"))
            .build()
            .expect("a valid flow");
        let notifier = Notifier::new(
            vec![std::sync::Arc::new(crate::CaptureListener::new())],
            None,
        );
        let mut m = Machine::new(flow.0, notifier, false, Control::new());
        m.slots[0].state = AtomState::Success;
        m.announce(0);
    }

    /// Nothing is allocated until a value is set; clearing a value or all of
    /// them leaves the others as they were, or none.
    #[test]
    fn sparse_allocates_on_the_first_value() {
        let mut s: Sparse<u32> = Sparse::new(4);
        s.set(2, None);
        assert_eq!(s.items.capacity(), 0);
        assert_eq!(s.get(2), None);
        assert_eq!(s.get(9), None);
        s.set(1, Some(10));
        s.set(3, Some(30));
        assert_eq!(s.items.len(), 4);
        assert_eq!(
            (0..4).map(|i| s.get(i).copied()).collect::<Vec<_>>(),
            [None, Some(10), None, Some(30)]
        );
        s.set(1, None);
        assert_eq!(
            (0..4).map(|i| s.get(i).copied()).collect::<Vec<_>>(),
            [None, None, None, Some(30)]
        );
        s.clear();
        assert_eq!(s.items.len(), 0);
        assert_eq!(s.get(3), None);
        s.set(0, Some(1));
        assert_eq!(
            (0..4).map(|i| s.get(i).copied()).collect::<Vec<_>>(),
            [Some(1), None, None, None]
        );
    }

    /// Pops in the order a binary heap would, whatever the order of pushes.
    #[test]
    fn ready_pops_the_largest_first() {
        let mut seed = 7u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let mut ready = Ready::default();
            let mut heap = std::collections::BinaryHeap::new();
            let mut popped = (Vec::new(), Vec::new());
            for step in 0..300u64 {
                // Mostly falling keys, as the engine pushes them, with some
                // out of order and some repeated.
                let key = match next() % 4 {
                    0 => next() % 500,
                    _ => 1000 - step - round % 3,
                };
                ready.push(key);
                heap.push(key);
                if next() % 3 == 0 {
                    popped.0.push(ready.pop());
                    popped.1.push(heap.pop());
                }
            }
            while let Some(k) = heap.pop() {
                popped.1.push(Some(k));
                popped.0.push(ready.pop());
            }
            assert!(ready.is_empty());
            assert_eq!(ready.pop(), None);
            assert_eq!(popped.0, popped.1, "round {round}");
        }
    }
}
