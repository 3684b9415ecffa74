//! Setting a run up: from the start, after a restart or from the journal;
//! the wait counts, the ready queue's first fill, and the arguments of atoms.

use std::sync::Arc;

use super::*;
use crate::compile::{Graph, NONE, Source};
use crate::engine::exec;
use crate::engine::state::{AtomState, FlowState, Intention, TransitionError};
use crate::symbol::Value;
use crate::task::{Arg, Args, Context, Failures};

impl Machine {
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
    pub(super) fn start_fresh(&mut self) -> bool {
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
    pub(super) fn count_waiting(&mut self, i: u32) {
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

    pub(super) fn push_forward(&mut self, i: u32) {
        self.forward.push(forward_key(&self.g, i));
    }

    /// Whether atom `i` keeps its predecessors from reverting.
    pub(super) fn blocks_revert(&self, i: u32) -> bool {
        let slot = &self.slots[i as usize];
        slot.holds_back_revert(slot.intention == Intention::Revert)
    }

    pub(super) fn count_revert_waits(&mut self, i: u32) {
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
    pub(super) fn set_revert_waits(&mut self, i: u32, w: u32) {
        self.slots[i as usize].rwaiting = w;
        if w == 0 && self.slots[i as usize].needs_undo() {
            self.backward.push(i);
        }
    }

    #[inline(always)]
    pub(super) fn gather_into(&self, sources: &[Source], args: &mut Args) {
        for s in sources {
            args.push(self.arg(s));
        }
    }

    pub(super) fn value(&self, s: &Source) -> Option<Value> {
        match s {
            Source::Output { atom, index } => self.outputs[*atom as usize]
                .as_ref()
                .and_then(|o| o.0.get(*index as usize).cloned()),
            Source::Store(i) => self.store.get(*i as usize).cloned(),
            Source::Injected(v) => Some(v.clone()),
            Source::Absent | Source::Many(_) | Source::Named(_) => None,
        }
    }

    pub(super) fn arg(&self, s: &Source) -> Arg {
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
    pub(super) fn args_of(&self, i: u32) -> Args {
        let sources = self.g.exec_sources(i);
        let mut args = Args::with_capacity(sources.len());
        self.gather_into(sources, &mut args);
        args
    }

    /// Gives the run's context the failures as they are now, if a failure
    /// has come or gone since it was last given them.
    #[inline(always)]
    pub(super) fn publish_failures(&mut self) {
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
}
