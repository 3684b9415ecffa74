//! The scheduling core shared by both engines: per-atom states and counters,
//! the ready queue, forward execution and revert. It never awaits; the engines
//! drive it and run the jobs it hands out.

mod forward;
mod retry;
mod revert;
mod schedule;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::compile::{Graph, NONE};
use crate::engine::control::Control;
pub(crate) use crate::engine::ready::{Dirty, Ready, Sparse};
use crate::engine::state::{
    AtomState, FlowState, Intention, TransitionError, check_atom, check_flow,
};
pub(crate) use crate::engine::step::{
    Done, Job, JobKind, Plain, PlainDone, PlainJob, Step, check_contract, owned, start_plain,
    start_step, unstorable, with_task,
};
use crate::failure::Failure;
use crate::notify::{Detail, Event, Notifier};
use crate::retry::History;
use crate::symbol::Value;
use crate::task::{Context, ContextShared, Failures, Outputs};

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
        if let Some(d) = &mut self.dirty
            && !d.marked[i as usize]
            && !self.g.nodes[i as usize].is_barrier()
        {
            d.marked[i as usize] = true;
            d.atoms.push(i);
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
}
