//! The scheduling core shared by both engines: per-atom states and counters,
//! the ready queue, forward execution and revert. It never awaits; the engines
//! drive it and run the jobs it hands out.

use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::compile::{Graph, Source};
use crate::engine::state::{
    AtomKind, AtomState, FlowState, Intention, TransitionError, check_atom, check_flow,
};
use crate::error::{AtomFailure, RunError};
use crate::failure::{Failure, FailureKind};
use crate::notify::{Detail, Event, Notifier};
use crate::symbol::Value;
use crate::task::{Arg, Args, Context, Failures, Outcome, Outputs, RevertInput, Task};

/// What the machine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Forward,
    Reverting,
    /// A revert failed: nothing new starts.
    Halted,
}

/// Work for an engine to run.
pub(crate) struct Job {
    pub(crate) atom: u32,
    pub(crate) task: Arc<dyn Task>,
    pub(crate) ctx: Context,
    pub(crate) blocking: bool,
    pub(crate) kind: JobKind,
}

pub(crate) enum JobKind {
    Execute(Args),
    Revert(RevertInput),
}

/// A finished job.
pub(crate) enum Done {
    Executed(u32, Result<Outputs, Failure>),
    Reverted(u32, Result<Option<Value>, Failure>),
}

pub(crate) struct Machine {
    pub(crate) g: Arc<Graph>,
    pub(crate) flow_state: FlowState,
    pub(crate) state: Vec<AtomState>,
    pub(crate) intention: Vec<Intention>,
    /// Forward: unfinished predecessors. Revert: successors not yet undone.
    waiting: Vec<u32>,
    pub(crate) attempts: Vec<u32>,
    pub(crate) outputs: Vec<Option<Outputs>>,
    pub(crate) failure: Vec<Option<Failure>>,
    pub(crate) revert_results: Vec<Option<Value>>,
    /// Atoms whose `execute` failed, in the order it happened.
    failed: Vec<u32>,
    pub(crate) revert_failures: Vec<(u32, Failure)>,
    snapshot: Option<Arc<Failures>>,
    ready: BinaryHeap<(i32, u32)>,
    pub(crate) phase: Phase,
    pub(crate) in_flight: usize,
    pub(crate) store: Vec<Value>,
    notifier: Notifier,
    /// Journal bookkeeping: atoms changed since the last flush.
    dirty: Option<Dirty>,
}

#[derive(Default)]
pub(crate) struct Dirty {
    pub(crate) atoms: Vec<u32>,
    marked: Vec<bool>,
    pub(crate) flow: bool,
}

impl Machine {
    pub(crate) fn new(g: Arc<Graph>, notifier: Notifier, journaled: bool) -> Self {
        let n = g.nodes.len();
        Machine {
            flow_state: FlowState::Pending,
            state: vec![AtomState::Pending; n],
            intention: vec![Intention::Execute; n],
            waiting: vec![0; n],
            attempts: vec![0; n],
            outputs: (0..n).map(|_| None).collect(),
            failure: vec![None; n],
            revert_results: vec![None; n],
            failed: Vec::new(),
            revert_failures: Vec::new(),
            snapshot: None,
            ready: BinaryHeap::new(),
            phase: Phase::Forward,
            in_flight: 0,
            store: Vec::new(),
            notifier,
            dirty: journaled.then(|| Dirty {
                atoms: Vec::new(),
                marked: vec![false; n],
                flow: true,
            }),
            g,
        }
    }

    fn mark(&mut self, i: u32) {
        if let Some(d) = &mut self.dirty {
            if !d.marked[i as usize] {
                d.marked[i as usize] = true;
                d.atoms.push(i);
            }
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
    fn set_state(&mut self, i: u32, to: AtomState) -> Result<(), TransitionError> {
        let node = &self.g.nodes[i as usize];
        if node.is_barrier() {
            self.state[i as usize] = to;
            return Ok(());
        }
        check_atom(AtomKind::Task, &node.name, self.state[i as usize], to)?;
        self.state[i as usize] = to;
        self.mark(i);
        self.announce(i);
        Ok(())
    }

    /// A state change outside the table: resets and resumption only.
    fn force_state(&mut self, i: u32, to: AtomState) {
        if self.state[i as usize] != to {
            self.state[i as usize] = to;
            if !self.g.nodes[i as usize].is_barrier() {
                self.mark(i);
                self.announce(i);
            }
        }
    }

    fn set_intention(&mut self, i: u32, to: Intention) {
        if self.intention[i as usize] != to {
            self.intention[i as usize] = to;
            if !self.g.nodes[i as usize].is_barrier() {
                self.mark(i);
            }
        }
    }

    fn announce(&self, i: u32) {
        if !self.notifier.listening() {
            return;
        }
        let iu = i as usize;
        let state = self.state[iu];
        let detail = match state {
            AtomState::Success => self.outputs[iu]
                .as_ref()
                .map_or(Detail::None, Detail::Result),
            AtomState::Failure => self.failure[iu]
                .as_ref()
                .map_or(Detail::None, Detail::Failure),
            AtomState::Reverted => Detail::Reverted(self.revert_results[iu].as_ref()),
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
            kind: AtomKind::Task,
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
        for f in &mut self.failure {
            *f = None;
        }
        for r in &mut self.revert_results {
            *r = None;
        }
        self.failed.clear();
        self.revert_failures.clear();
        self.snapshot = None;
        self.ready.clear();
        self.phase = Phase::Forward;
    }

    /// A reverted run starts over: atoms back to `Pending`, then the flow.
    pub(crate) fn restart(&mut self) -> Result<(), TransitionError> {
        for i in 0..self.state.len() as u32 {
            if self.state[i as usize] != AtomState::Pending {
                self.set_state(i, AtomState::Pending)?;
            }
            self.set_intention(i, Intention::Execute);
        }
        self.clear_results();
        self.set_flow(FlowState::Pending)
    }

    /// Everything back to `Pending`, whatever the states were.
    pub(crate) fn reset(&mut self) {
        for i in 0..self.state.len() as u32 {
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
    /// again.
    pub(crate) fn recover_interrupted(&mut self) {
        for i in 0..self.state.len() as u32 {
            match self.state[i as usize] {
                AtomState::Running => {
                    self.outputs[i as usize] = None;
                    self.force_state(i, AtomState::Pending);
                }
                AtomState::Reverting => {
                    let back = if self.failure[i as usize].is_some() {
                        AtomState::Failure
                    } else {
                        AtomState::Success
                    };
                    self.force_state(i, back);
                }
                _ => {}
            }
        }
        self.in_flight = 0;
    }

    /// Fills the counters and the ready queue from the current states.
    pub(crate) fn schedule(&mut self) {
        self.ready.clear();
        if self.phase == Phase::Halted {
            return;
        }
        if self.intention.contains(&Intention::Revert) {
            self.begin_revert_counters();
            return;
        }
        self.phase = Phase::Forward;
        let n = self.state.len() as u32;
        for i in 0..n {
            let mut w = 0;
            for &p in self.g.preds(i) {
                if !matches!(
                    self.state[p as usize],
                    AtomState::Success | AtomState::Ignore
                ) {
                    w += 1;
                }
            }
            self.waiting[i as usize] = w;
            if w == 0 && self.state[i as usize] == AtomState::Pending {
                self.push_forward(i);
            }
        }
    }

    fn push_forward(&mut self, i: u32) {
        let prio = self.g.nodes[i as usize].priority;
        self.ready.push((prio, u32::MAX - i));
    }

    fn push_revert(&mut self, i: u32) {
        self.ready.push((0, i));
    }

    fn begin_revert_counters(&mut self) {
        self.phase = Phase::Reverting;
        self.ready.clear();
        let n = self.state.len() as u32;
        for i in 0..n {
            let mut w = 0;
            for &s in self.g.succs(i) {
                if matches!(
                    self.state[s as usize],
                    AtomState::Running
                        | AtomState::Success
                        | AtomState::Failure
                        | AtomState::Reverting
                ) {
                    w += 1;
                }
            }
            self.waiting[i as usize] = w;
            if w == 0 && self.state[i as usize].has_executed() {
                self.push_revert(i);
            }
        }
    }

    fn start_revert(&mut self) {
        for i in 0..self.state.len() as u32 {
            self.set_intention(i, Intention::Revert);
        }
        self.begin_revert_counters();
    }

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
            Source::Many(list) => Arg::Many(list.iter().filter_map(|s| self.value(s)).collect()),
            Source::Named(list) => Arg::Named(
                list.iter()
                    .filter_map(|(n, s)| Some((n.clone(), self.value(s)?)))
                    .collect(),
            ),
            other => self.value(other).map_or(Arg::Absent, Arg::One),
        }
    }

    fn context(&self, i: u32) -> Context {
        let node = &self.g.nodes[i as usize];
        Context::new(
            node.name.clone(),
            i,
            self.attempts[i as usize],
            self.notifier.clone(),
        )
    }

    fn failures_snapshot(&mut self) -> Arc<Failures> {
        if let Some(s) = &self.snapshot {
            return s.clone();
        }
        let map: Failures = self
            .failed
            .iter()
            .filter_map(|&a| {
                let f = self.failure[a as usize].clone()?;
                Some((self.g.nodes[a as usize].name.to_string(), f))
            })
            .collect();
        let s = Arc::new(map);
        self.snapshot = Some(s.clone());
        s
    }

    /// The next job to run, if one is ready.
    pub(crate) fn next_job(&mut self) -> Result<Option<Job>, TransitionError> {
        while let Some((_, key)) = self.ready.pop() {
            match self.phase {
                Phase::Halted => return Ok(None),
                Phase::Forward => {
                    let i = u32::MAX - key;
                    let g = self.g.clone();
                    let node = &g.nodes[i as usize];
                    let Some(task) = &node.task else {
                        self.state[i as usize] = AtomState::Success;
                        self.release_successors(i);
                        continue;
                    };
                    self.attempts[i as usize] += 1;
                    self.set_state(i, AtomState::Running)?;
                    let sources = g.exec_sources(i);
                    let mut args = Args::with_capacity(sources.len());
                    self.gather_into(sources, &mut args);
                    let ctx = self.context(i);
                    ctx.progress(0.0);
                    self.in_flight += 1;
                    return Ok(Some(Job {
                        atom: i,
                        task: task.clone(),
                        ctx,
                        blocking: node.blocking,
                        kind: JobKind::Execute(args),
                    }));
                }
                Phase::Reverting => {
                    let i = key;
                    let g = self.g.clone();
                    let node = &g.nodes[i as usize];
                    let Some(task) = &node.task else {
                        self.state[i as usize] = AtomState::Reverted;
                        self.release_predecessors(i);
                        continue;
                    };
                    let outcome = match &self.failure[i as usize] {
                        Some(f) if self.state[i as usize] == AtomState::Failure => {
                            Outcome::Failure(f.clone())
                        }
                        _ => Outcome::Success(self.outputs[i as usize].clone().unwrap_or_default()),
                    };
                    self.set_state(i, AtomState::Reverting)?;
                    let sources = g.revert_sources(i);
                    let mut args = Args::with_capacity(sources.len());
                    self.gather_into(sources, &mut args);
                    let failures = self.failures_snapshot();
                    let ctx = self.context(i);
                    self.in_flight += 1;
                    return Ok(Some(Job {
                        atom: i,
                        task: task.clone(),
                        ctx,
                        blocking: node.blocking,
                        kind: JobKind::Revert(RevertInput {
                            args,
                            outcome,
                            failures,
                        }),
                    }));
                }
            }
        }
        Ok(None)
    }

    fn release_successors(&mut self, i: u32) {
        let g = self.g.clone();
        for &s in g.succs(i) {
            let w = &mut self.waiting[s as usize];
            *w -= 1;
            if *w == 0 && self.state[s as usize] == AtomState::Pending {
                self.push_forward(s);
            }
        }
    }

    fn release_predecessors(&mut self, i: u32) {
        let g = self.g.clone();
        for &p in g.preds(i) {
            let w = &mut self.waiting[p as usize];
            *w = w.saturating_sub(1);
            if *w == 0 && self.state[p as usize].has_executed() {
                self.push_revert(p);
            }
        }
    }

    fn check_contract(&self, i: u32, out: Outputs) -> Result<Outputs, Failure> {
        let node = &self.g.nodes[i as usize];
        let declared = node.signature.outputs();
        if out.len() != declared.len() {
            return Err(Failure::new(
                FailureKind::Contract,
                format!(
                    "task `{}` returned {} value(s) but declares {} output(s)",
                    node.name,
                    out.len(),
                    declared.len()
                ),
                "contract",
            ));
        }
        for (k, (v, spec)) in out.0.iter().zip(declared.iter()).enumerate() {
            if v.type_id() != spec.ty().id() {
                return Err(Failure::new(
                    FailureKind::Contract,
                    format!(
                        "task `{}` returned a `{}` for output `{}`, which it declares as `{}`",
                        node.name,
                        crate::compile::short_type(v.type_name()),
                        node.output_name(k),
                        crate::compile::short_type(spec.ty().name())
                    ),
                    "contract",
                ));
            }
        }
        Ok(out)
    }

    /// Records a finished job.
    pub(crate) fn complete(&mut self, done: Done) -> Result<(), TransitionError> {
        self.in_flight -= 1;
        match done {
            Done::Executed(i, result) => {
                let result = result.and_then(|out| self.check_contract(i, out));
                match result {
                    Ok(out) => {
                        self.outputs[i as usize] = Some(out);
                        self.set_state(i, AtomState::Success)?;
                        self.notifier
                            .progress(&self.g.nodes[i as usize].name, i, 1.0);
                        match self.phase {
                            Phase::Forward => self.release_successors(i),
                            Phase::Reverting => {
                                if self.waiting[i as usize] == 0 {
                                    self.push_revert(i);
                                }
                            }
                            Phase::Halted => {}
                        }
                    }
                    Err(failure) => {
                        self.failure[i as usize] = Some(failure);
                        self.failed.push(i);
                        self.snapshot = None;
                        self.set_state(i, AtomState::Failure)?;
                        match self.phase {
                            Phase::Forward => self.start_revert(),
                            Phase::Reverting => {
                                if self.waiting[i as usize] == 0 {
                                    self.push_revert(i);
                                }
                            }
                            Phase::Halted => {}
                        }
                    }
                }
            }
            Done::Reverted(i, result) => match result {
                Ok(value) => {
                    self.revert_results[i as usize] = value;
                    self.set_state(i, AtomState::Reverted)?;
                    self.outputs[i as usize] = None;
                    if self.phase == Phase::Reverting {
                        self.release_predecessors(i);
                    }
                }
                Err(failure) => {
                    self.revert_failures.push((i, failure));
                    self.set_state(i, AtomState::RevertFailure)?;
                    self.phase = Phase::Halted;
                    self.ready.clear();
                }
            },
        }
        Ok(())
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
        let failures = || {
            self.atom_failures(
                self.failed
                    .iter()
                    .filter_map(|&a| Some((a, self.failure[a as usize].clone()?))),
            )
        };
        match self.phase {
            Phase::Forward => {
                self.set_flow(FlowState::Success)?;
                Ok(())
            }
            Phase::Reverting => {
                let failures = failures();
                self.set_flow(FlowState::Reverted)?;
                Err(RunError::Reverted {
                    flow: self.g.name.to_string(),
                    failures,
                })
            }
            Phase::Halted => {
                let failures = failures();
                let revert_failures = self.atom_failures(self.revert_failures.iter().cloned());
                self.set_flow(FlowState::Failure)?;
                Err(RunError::RevertFailed {
                    flow: self.g.name.to_string(),
                    revert_failures,
                    failures,
                })
            }
        }
    }
}
