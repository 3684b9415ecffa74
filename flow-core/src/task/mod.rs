//! The task trait, signatures, and what a task receives and returns.
//!
//! Tasks are usually written with the `#[task]` attribute of the `flow` crate. This
//! module is the run-time form underneath it: a [`Task`] declares a [`Signature`]
//! (what it requires and provides, as named, typed symbols), and the engine hands
//! it resolved [`Args`] in the declared order.

mod args;
mod context;
mod fn_task;
pub(crate) mod outputs;
mod signature;
#[cfg(test)]
mod tests;

use crate::symbol::Value;
pub(crate) use args::Arg;
pub use args::{ArgError, Args};
pub use context::Context;
pub(crate) use context::{AtomNames, ContextShared};
pub use fn_task::FnTask;
pub(crate) use fn_task::Runner;
pub use outputs::{Exec, Failures, Outcome, Outputs, RevertInput};
pub use signature::{InputKind, InputSpec, Signature};

/// A unit of work with an optional compensation.
///
/// Most tasks are written with `#[task]`. Implement the trait by hand to decide
/// everything at run time, or use [`FnTask`] for closures.
///
/// ```
/// use flow::{Args, Context, Exec, Outputs, Signature, Task};
///
/// struct Double;
/// impl Task for Double {
///     fn signature(&self) -> Signature {
///         Signature::new().requires::<u64>("x").provides::<u64>("doubled")
///     }
///     fn execute(&self, args: Args, _ctx: &Context) -> Exec {
///         Exec::Ready(args.get::<u64>(0).map(|x| Outputs::one(x * 2)).map_err(Into::into))
///     }
/// }
/// ```
pub trait Task: Send + Sync + 'static {
    /// What the task requires and provides. Called once, when the flow is built.
    fn signature(&self) -> Signature;

    /// Does the work. `args` follow the order of [`Signature::inputs`]; the outputs
    /// must follow [`Signature::outputs`] (a task that breaks this fails with
    /// [`FailureKind::Contract`](crate::FailureKind::Contract)).
    fn execute(&self, args: Args, ctx: &Context) -> Exec;

    /// Undoes the work. The default does nothing and returns no result.
    fn revert(&self, input: RevertInput, ctx: &Context) -> Exec<Option<Value>> {
        let _ = (input, ctx);
        Exec::Ready(Ok(None))
    }
}
