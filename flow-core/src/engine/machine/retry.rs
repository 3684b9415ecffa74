//! Retry controllers: a failure recorded, the controller asked, its sub-flow
//! reverted and run again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::*;
use crate::compile::NONE;
use crate::engine::state::{AtomState, Intention, TransitionError};
use crate::retry::{Decision, History};

impl Machine {
    pub(super) fn record_failure(&mut self, controller: u32, atom: u32) {
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
    pub(super) fn on_failure(&mut self, x: u32) -> Result<(), TransitionError> {
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
    pub(super) fn begin_retry(&mut self, r: u32) -> Result<(), TransitionError> {
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
    pub(super) fn run_again(&mut self, pending: PendingRetry) -> Result<(), TransitionError> {
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
}
