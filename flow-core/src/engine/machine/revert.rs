//! Revert: reverting atoms, cancel and suspend, and the outcome of a run.

use super::*;
use crate::compile::NONE;
use crate::engine::state::{AtomState, FlowState, Intention, TransitionError};
use crate::error::{AtomFailure, RunError};
use crate::failure::Failure;
use crate::symbol::Value;
use crate::task::{Args, Outcome, RevertInput};

impl Machine {
    /// Starts reverting atom `i`: what its `revert` is given, and
    /// `REVERTING`.
    #[inline(always)]
    pub(super) fn begin_revert(&mut self, i: u32) -> Result<RevertInput, TransitionError> {
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

    /// After atom `i` was reverted: its predecessors may revert, and a retry
    /// waiting for it may run.
    pub(super) fn after_revert(&mut self, i: u32) -> Result<(), TransitionError> {
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
        if owner != NONE
            && let Some(k) = self.retries.iter().position(|r| r.controller == owner)
        {
            self.retries[k].left = self.retries[k].left.saturating_sub(1);
            if self.retries[k].left == 0 {
                let pending = self.retries.swap_remove(k);
                self.run_again(pending)?;
            }
        }
        Ok(())
    }

    /// With a journal: what a revert returned, if the journal can hold it
    /// exactly; else the revert's failure.
    pub(super) fn storable_revert(
        &self,
        i: u32,
        value: Option<Value>,
    ) -> Result<Option<Value>, Failure> {
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

    /// Atom `i`'s `revert` returned `value`: `REVERTED`, and its predecessors
    /// may revert.
    #[inline(always)]
    pub(super) fn reverted(&mut self, i: u32, value: Option<Value>) -> Result<(), TransitionError> {
        self.revert_results.set(i as usize, value);
        self.set_state(i, AtomState::Reverted)?;
        self.outputs[i as usize] = None;
        if !self.halted {
            self.after_revert(i)?;
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
    pub(super) fn revert_everything(&mut self) {
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

    pub(super) fn atom_failures(
        &self,
        list: impl Iterator<Item = (u32, Failure)>,
    ) -> Vec<AtomFailure> {
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
