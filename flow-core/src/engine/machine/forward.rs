//! Forward steps: which atom runs next, gates and deciders, and what its
//! result changes.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;
use crate::compile::{Gate, NONE};
use crate::decider::{Depth, Results};
use crate::engine::exec;
use crate::engine::state::{AtomState, Intention, TransitionError};
use crate::failure::Failure;
use crate::retry::{Attempt, outputs_of as retry_outputs};
use crate::task::{Args, Failures, Outputs};

impl Machine {
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
    pub(super) fn general(&mut self) -> Result<Plain, TransitionError> {
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
    pub(super) fn begin_execute(&mut self, i: u32) -> Result<Args, TransitionError> {
        let iu = i as usize;
        self.slots[iu].attempts += 1;
        self.set_state(i, AtomState::Running)?;
        let args = self.args_of(i);
        self.notifier.progress(&self.g.nodes[iu].name, i, 0.0);
        Ok(args)
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
    pub(super) fn gate_says_no(&mut self, k: u32) -> Result<bool, TransitionError> {
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
    pub(super) fn ignore(&mut self, gate: &Gate, depth: Depth) -> Result<(), TransitionError> {
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
    pub(super) fn release_successors(&mut self, i: u32) {
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

    /// Atom `i`'s `execute` returned `out`: `SUCCESS` if it is what the atom
    /// declares, and its successors may start; else a contract failure.
    #[inline(always)]
    pub(super) fn executed(&mut self, i: u32, out: Outputs) -> Result<(), TransitionError> {
        if let Err(failure) = check_contract(&self.g, i, &out) {
            return self.execute_failed(i, failure);
        }
        if self.dirty.is_some()
            && let Err(failure) = self.storable(i, &out)
        {
            return self.execute_failed(i, failure);
        }
        self.succeeded(i, out)
    }

    /// With a journal: whether the journal can hold atom `i`'s outputs `out`
    /// exactly, so that a resumed run reads back what the task returned;
    /// else the task's failure, at the moment it returns.
    pub(super) fn storable(&self, i: u32, out: &Outputs) -> Result<(), Failure> {
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
    pub(super) fn succeeded(&mut self, i: u32, out: Outputs) -> Result<(), TransitionError> {
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
    pub(super) fn execute_failed(
        &mut self,
        i: u32,
        failure: Failure,
    ) -> Result<(), TransitionError> {
        self.failure.set(i as usize, Some(failure));
        self.failed.push(i);
        self.published = false;
        self.set_state(i, AtomState::Failure)?;
        self.on_failure(i)
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
}
