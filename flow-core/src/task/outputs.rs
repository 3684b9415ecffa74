//! What a task returns: its outputs, the `Exec` that carries them, and the
//! outcome `revert` is told about.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use futures::future::BoxFuture;
use smallvec::SmallVec;

use super::args::Args;
use crate::failure::{Failure, TaskError};
use crate::symbol::{Data, Value};

/// The values a task returns, in the order of its declared outputs.
///
/// ```
/// use flow::Outputs;
/// let out = Outputs::one(5u64);
/// assert_eq!(out.len(), 1);
/// assert_eq!(format!("{out:?}"), "5");
/// let many = Outputs::new().with(1u32).with(3u32);
/// assert_eq!(format!("{many:?}"), "(1, 3)");
/// assert_eq!(format!("{:?}", Outputs::new()), "()");
/// ```
#[derive(Clone, Default)]
pub struct Outputs(pub(crate) SmallVec<[Value; 1]>);

impl Outputs {
    /// No outputs.
    pub fn new() -> Self {
        Outputs(SmallVec::new())
    }

    /// One output.
    pub fn one<T: Data>(value: T) -> Self {
        let mut v = SmallVec::new();
        v.push(Value::new(value));
        Outputs(v)
    }

    /// Appends an output.
    pub fn with<T: Data>(mut self, value: T) -> Self {
        self.0.push(Value::new(value));
        self
    }

    /// Appends an already wrapped output.
    pub fn with_value(mut self, value: Value) -> Self {
        self.0.push(value);
        self
    }

    /// The outputs.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// How many outputs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Value> for Outputs {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Outputs(iter.into_iter().collect())
    }
}

impl fmt::Debug for Outputs {
    /// `()` for none, the value's `Debug` for one, a tuple for several.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("()"),
            [one] => fmt::Debug::fmt(one, f),
            many => {
                let mut t = f.debug_tuple("");
                for v in many {
                    t.field(v);
                }
                t.finish()
            }
        }
    }
}

/// The result of `execute` or `revert`: ready at once, or a future to await.
///
/// Synchronous tasks return [`Exec::Ready`] and cost no allocation; asynchronous
/// ones return a boxed `'static` future (clone what the future needs from the task
/// into it, as with `tower::Service::call`).
pub enum Exec<T = Outputs> {
    /// The task finished already.
    Ready(Result<T, TaskError>),
    /// The task finishes when the future does.
    Future(BoxFuture<'static, Result<T, TaskError>>),
}

impl<T> Exec<T> {
    /// Wraps a future.
    pub fn future<F>(future: F) -> Self
    where
        F: Future<Output = Result<T, TaskError>> + Send + 'static,
    {
        Exec::Future(Box::pin(future))
    }
}

impl<T> fmt::Debug for Exec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exec::Ready(r) => f.write_str(if r.is_ok() { "Ready(Ok)" } else { "Ready(Err)" }),
            Exec::Future(_) => f.write_str("Future"),
        }
    }
}

/// What an atom's execution ended with, as `revert` is told.
///
/// ```
/// use flow::{Failure, Outcome, Outputs, TaskError};
/// let ok = Outcome::Success(Outputs::one(7u32));
/// assert_eq!(ok.output::<u32>(0), Some(&7));
/// assert_eq!(ok.output::<String>(0), None);
/// assert!(ok.failure().is_none());
/// let failed = Outcome::Failure(Failure::from_error(TaskError::msg("disk full")));
/// assert_eq!(failed.output::<u32>(0), None);
/// assert_eq!(failed.failure().map(|f| f.message()), Some("disk full"));
/// ```
#[derive(Clone, Debug)]
pub enum Outcome {
    /// `execute` succeeded with these outputs.
    Success(Outputs),
    /// `execute` failed (this atom is the one that failed).
    Failure(Failure),
}

impl Outcome {
    /// Whether `execute` succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }

    /// The output at `index` (in the order of the task's outputs) when `execute`
    /// succeeded and that output is a `T`; `None` otherwise.
    pub fn output<T: Data>(&self, index: usize) -> Option<&T> {
        match self {
            Outcome::Success(outputs) => outputs.values().get(index)?.downcast_ref(),
            Outcome::Failure(_) => None,
        }
    }

    /// The failure, when this atom's `execute` is the one that failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Success(_) => None,
            Outcome::Failure(failure) => Some(failure),
        }
    }
}

/// The failures of a run, keyed by atom name.
pub type Failures = BTreeMap<String, Failure>;

/// What `revert` receives: the same arguments as `execute` (then the extra revert
/// inputs) and the atom's own outcome. Every failure of the run so far is
/// [`Context::failures`](crate::Context::failures).
#[derive(Clone, Debug)]
pub struct RevertInput {
    /// The arguments of `execute`, followed by the revert-only ones.
    pub args: Args,
    /// The atom's own outcome.
    pub outcome: Outcome,
}
