//! Tasks made of closures ([`FnTask`](crate::FnTask)), and the runner the
//! engines call.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Task;
use super::args::Args;
use super::context::Context;
use super::outputs::{Exec, Outputs, RevertInput};
use super::signature::Signature;
use crate::failure::TaskError;
use crate::symbol::Value;

pub(super) type ExecFn = dyn Fn(Args, &Context) -> Exec + Send + Sync;
pub(super) type RevertFn = dyn Fn(RevertInput, &Context) -> Exec<Option<Value>> + Send + Sync;

/// A body of an [`FnTask`], shared by its clones.
///
/// A closure that captures nothing is a zero-sized value that needs no
/// drop: it is kept by a `'static` reference, which costs no allocation
/// (leaking a zero-sized box frees nothing) and no reference count. Any
/// other closure is counted.
pub(super) enum Body<F: ?Sized + 'static> {
    Static(&'static F),
    Counted(Arc<F>),
}

impl<F: ?Sized> Clone for Body<F> {
    fn clone(&self) -> Self {
        match self {
            Body::Static(f) => Body::Static(f),
            Body::Counted(f) => Body::Counted(Arc::clone(f)),
        }
    }
}

impl<F: ?Sized> std::ops::Deref for Body<F> {
    type Target = F;

    fn deref(&self) -> &F {
        match self {
            Body::Static(f) => f,
            Body::Counted(f) => f,
        }
    }
}

/// Whether a closure of type `F` can be kept by a `'static` reference.
pub(super) const fn is_free<F>() -> bool {
    std::mem::size_of::<F>() == 0 && !std::mem::needs_drop::<F>()
}

/// The [`Body`] of closure `$f` of type `$F`, coerced to the `dyn` type the
/// caller expects (a macro: a function cannot be generic over that
/// coercion).
macro_rules! body {
    ($F:ty, $f:expr) => {
        if is_free::<$F>() {
            Body::Static(Box::leak(Box::new($f)))
        } else {
            Body::Counted(Arc::new($f))
        }
    };
}

/// A task made of closures and a signature.
///
/// ```
/// use flow::{FnTask, Outputs, Signature, TaskError};
/// let inc = FnTask::sync(
///     Signature::new().requires::<u64>("value").provides::<u64>("value"),
///     |args| Ok(Outputs::one(args.get::<u64>(0)? + 1)),
/// )
/// .on_revert_sync(|input| {
///     println!("undoing {:?}", input.outcome);
///     Ok(None)
/// });
/// # let _ = inc;
/// ```
#[derive(Clone)]
pub struct FnTask {
    pub(super) signature: Signature,
    pub(super) body: FnBody,
}

/// The closures of an [`FnTask`].
#[derive(Clone)]
pub(crate) struct FnBody {
    pub(super) execute: Body<ExecFn>,
    pub(super) revert: Option<Body<RevertFn>>,
}

/// The body of a task with nothing to do: what stands in for the task of a
/// node that has none.
pub(super) static NOTHING: &ExecFn = &|_, _| Exec::Ready(Ok(Outputs::new()));

/// What runs an atom: the closures of an [`FnTask`], held in place (no
/// allocation, and no reference count for a closure that captures nothing),
/// or any other task, shared.
#[derive(Clone)]
pub(crate) enum Runner {
    Fn(FnBody),
    Shared(Arc<dyn Task>),
}

impl Runner {
    /// A runner whose `execute` provides nothing and whose `revert` does
    /// nothing.
    pub(crate) fn nothing() -> Self {
        Runner::Fn(FnBody {
            execute: Body::Static(NOTHING),
            revert: None,
        })
    }

    /// The signature and runner of `task`: an [`FnTask`] is taken apart
    /// (its signature moved, not copied); any other task is shared.
    pub(crate) fn hold<T: Task>(task: T) -> (Signature, Runner) {
        let mut slot = Some(task);
        let any = &mut slot as &mut dyn std::any::Any;
        if let Some(f) = any.downcast_mut::<Option<FnTask>>().and_then(Option::take) {
            return (f.signature, Runner::Fn(f.body));
        }
        match slot {
            Some(task) => (task.signature(), Runner::Shared(Arc::new(task))),
            // Not reached: only an `FnTask` is taken out of the slot.
            None => (Signature::new(), Runner::nothing()),
        }
    }

    /// Runs the task's `execute`.
    pub(crate) fn execute(&self, args: Args, ctx: &Context) -> Exec {
        match self {
            Runner::Fn(f) => f.execute(args, ctx),
            Runner::Shared(t) => t.execute(args, ctx),
        }
    }

    /// Runs the task's `revert`.
    pub(crate) fn revert(&self, input: RevertInput, ctx: &Context) -> Exec<Option<Value>> {
        match self {
            Runner::Fn(f) => f.revert(input, ctx),
            Runner::Shared(t) => t.revert(input, ctx),
        }
    }
}

impl FnBody {
    pub(super) fn execute(&self, args: Args, ctx: &Context) -> Exec {
        (self.execute)(args, ctx)
    }

    pub(super) fn revert(&self, input: RevertInput, ctx: &Context) -> Exec<Option<Value>> {
        match &self.revert {
            Some(f) => f(input, ctx),
            None => Exec::Ready(Ok(None)),
        }
    }
}

impl FnTask {
    /// A task whose `execute` is `f`.
    pub fn new<F>(signature: Signature, f: F) -> Self
    where
        F: Fn(Args, &Context) -> Exec + Send + Sync + 'static,
    {
        FnTask {
            signature,
            body: FnBody {
                execute: body!(F, f),
                revert: None,
            },
        }
    }

    /// A task whose synchronous body is `f`.
    pub fn sync(
        signature: Signature,
        f: impl Fn(&Args) -> Result<Outputs, TaskError> + Send + Sync + 'static,
    ) -> Self {
        FnTask::new(signature, move |args, _| Exec::Ready(f(&args)))
    }

    /// A task whose asynchronous body is `f`.
    pub fn asynchronous<F, Fut>(signature: Signature, f: F) -> Self
    where
        F: Fn(Args, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outputs, TaskError>> + Send + 'static,
    {
        FnTask::new(signature, move |args, ctx| {
            Exec::future(f(args, ctx.clone()))
        })
    }

    /// Sets the compensation.
    pub fn on_revert<F>(mut self, f: F) -> Self
    where
        F: Fn(RevertInput, &Context) -> Exec<Option<Value>> + Send + Sync + 'static,
    {
        self.body.revert = Some(body!(F, f));
        self
    }

    /// Sets a synchronous compensation.
    pub fn on_revert_sync(
        self,
        f: impl Fn(&RevertInput) -> Result<Option<Value>, TaskError> + Send + Sync + 'static,
    ) -> Self {
        self.on_revert(move |input, _| Exec::Ready(f(&input)))
    }
}

impl fmt::Debug for FnTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTask")
            .field("signature", &self.signature)
            .field("has_revert", &self.body.revert.is_some())
            .finish()
    }
}

impl Task for FnTask {
    fn signature(&self) -> Signature {
        self.signature.clone()
    }

    fn execute(&self, args: Args, ctx: &Context) -> Exec {
        self.body.execute(args, ctx)
    }

    fn revert(&self, input: RevertInput, ctx: &Context) -> Exec<Option<Value>> {
        self.body.revert(input, ctx)
    }
}
