//! The work the scheduling core hands an engine: a step with its task and
//! context, ready to run anywhere, and what comes back.

use std::time::Duration;

use crate::compile::Graph;
use crate::engine::exec;
use crate::failure::{Failure, FailureKind};
use crate::symbol::Value;
use crate::task::{Args, Context, Outputs, RevertInput, Runner};

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
    pub(crate) attempt: u32,
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
    pub(crate) atom: u32,
    pub(crate) attempt: u32,
    pub(crate) args: Args,
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
pub(crate) fn check_contract(g: &Graph, i: u32, out: &Outputs) -> Result<(), Failure> {
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
pub(crate) fn contract_broken(g: &Graph, i: u32, out: &Outputs, wrong: Option<usize>) -> Failure {
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
pub(crate) fn unstorable(atom: &str, what: &str, e: &crate::symbol::CodecError) -> Failure {
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
pub(crate) fn with_task<R>(task: &Option<Runner>, f: impl FnOnce(&Runner) -> R) -> R {
    match task {
        Some(task) => f(task),
        None => f(&Runner::nothing()),
    }
}

/// `step` as a job that holds its node's task (`task`, or one that does
/// nothing) and `ctx`, a context pointed at it.
pub(crate) fn owned(step: Step, task: &Option<Runner>, ctx: Context) -> Job {
    Job {
        atom: step.atom,
        task: task.clone().unwrap_or_else(Runner::nothing),
        ctx,
        blocking: step.blocking,
        timeout: step.timeout,
        kind: step.kind,
    }
}
