//! Retry controllers: atoms that own a sub-flow and decide what happens when
//! something in it fails.
//!
//! A controller is attached to a flow with [`Flow::retry`](crate::Flow::retry).
//! It runs before the flow's items and may provide them a symbol (the attempt
//! number, the value to try). When an atom inside fails, the nearest enclosing
//! controller decides:
//!
//! - [`Decision::Retry`]: the sub-flow (and anything after it that ran) is
//!   reverted, the controller goes `RETRYING`, the sub-flow goes back to
//!   `PENDING`, and the controller runs again with its history extended;
//! - [`Decision::Revert`]: the sub-flow is reverted and the controller's own
//!   parent controller decides in turn (at the top: everything is reverted);
//! - [`Decision::RevertAll`]: everything is reverted, whatever the parents say.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use flow::{Atom, Engine, Flow, FnTask, Outputs, Retry, Signature, TaskError};
//! let flaky = FnTask::sync(Signature::new().requires::<u32>("attempt"), |a| {
//!     if *a.get::<u32>(0)? < 3 { Err(TaskError::msg("not yet")) } else { Ok(Outputs::new()) }
//! });
//! let flow = Flow::linear("flaky")
//!     .retry(Retry::times(5).named("r").provides("attempt"))
//!     .add(Atom::new("call", flaky))
//!     .build()
//!     .unwrap();
//! let mut engine = Engine::builder(flow).build();
//! engine.run().await.unwrap();
//! assert_eq!(engine.fetch::<u32>("attempt"), Some(&3));
//! # });
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::failure::{Failure, TaskError};
use crate::symbol::{Data, Name, TypeInfo, Value};
use crate::task::{Args, Failures, Outputs, Signature};

/// What a controller decides after a failure in its sub-flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Revert the sub-flow and run it again.
    Retry,
    /// Revert the sub-flow and let the parent controller decide.
    Revert,
    /// Revert everything.
    RevertAll,
}

/// One attempt of a controller: the value it provided and what failed.
#[derive(Clone, Debug, Default)]
pub struct Attempt {
    /// The value provided to the sub-flow, if the controller provides one.
    pub value: Option<Value>,
    /// The failures of the attempt, keyed by atom name.
    pub failures: Failures,
}

/// A controller's attempts, oldest first. Cleared when the controller is
/// reverted.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub(crate) attempts: Vec<Attempt>,
}

impl History {
    /// The attempts, oldest first.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// How many attempts were made.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// Whether no attempt was made yet.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// The values provided so far, oldest first.
    pub fn values(&self) -> impl Iterator<Item = Option<&Value>> {
        self.attempts.iter().map(|a| a.value.as_ref())
    }
}

/// The policy of a retry controller. The built-in ones are made by [`Retry`]'s
/// constructors; implement this trait for your own.
pub trait RetryStrategy: Send + Sync + 'static {
    /// What the controller requires (and the one symbol it may provide, named
    /// by [`Retry::provides`]). The default requires nothing and provides
    /// nothing.
    fn signature(&self) -> Signature {
        Signature::new()
    }

    /// The type of the value the controller provides, if it provides one.
    fn provides_type(&self) -> Option<TypeInfo> {
        None
    }

    /// Runs before each attempt: returns the value to provide (or nothing).
    ///
    /// # Errors
    /// A controller that fails is a failure like a task's: its own parent
    /// controller decides.
    fn execute(&self, args: &Args, history: &History) -> Result<Option<Value>, TaskError>;

    /// Decides after a failure of the latest attempt (already in `history`).
    fn on_failure(&self, args: &Args, history: &History) -> Decision;
}

/// How long to wait before an attempt after the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backoff {
    /// No wait.
    #[default]
    None,
    /// The same wait before every retry.
    Fixed(Duration),
    /// `base`, then twice as long at each retry, capped at `max`; with
    /// `jitter`, each wait is drawn between half and all of that.
    Exponential {
        /// The first wait.
        base: Duration,
        /// The longest wait.
        max: Duration,
        /// Whether to randomize the waits.
        jitter: bool,
    },
}

impl Backoff {
    /// The wait before attempt `attempt` (1-based; the first attempt never
    /// waits).
    ///
    /// ```
    /// use std::time::Duration;
    /// use flow::Backoff;
    /// let b = Backoff::Exponential { base: Duration::from_millis(100), max: Duration::from_millis(300), jitter: false };
    /// assert_eq!(b.delay(1), Duration::ZERO);
    /// assert_eq!(b.delay(2), Duration::from_millis(100));
    /// assert_eq!(b.delay(3), Duration::from_millis(200));
    /// assert_eq!(b.delay(4), Duration::from_millis(300));
    /// ```
    pub fn delay(&self, attempt: usize) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { base, max, jitter } => {
                let shift = (attempt - 2).min(31) as u32;
                let d = base.saturating_mul(1u32 << shift).min(max);
                if jitter {
                    let half = d / 2;
                    half + half.mul_f64(random_unit())
                } else {
                    d
                }
            }
        }
    }
}

/// A number in `[0, 1)`, from the standard library's randomly seeded hasher.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

type Classifier = Arc<dyn Fn(&Failure) -> bool + Send + Sync>;

/// A retry controller to attach to a flow with [`Flow::retry`](crate::Flow::retry).
///
/// ```
/// use std::time::Duration;
/// use flow::{Backoff, Retry};
/// let r = Retry::times(3)
///     .named("connect-retry")
///     .provides("attempt")
///     .backoff(Backoff::Fixed(Duration::from_secs(1)))
///     .retry_if(|failure| failure.message().contains("timed out"));
/// assert_eq!(r.name(), "connect-retry");
/// ```
#[derive(Clone)]
pub struct Retry {
    pub(crate) name: Name,
    pub(crate) strategy: Arc<dyn RetryStrategy>,
    pub(crate) provides: Option<Name>,
    pub(crate) backoff: Backoff,
    pub(crate) transient: Option<Classifier>,
    pub(crate) exhausted: Decision,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.name)
            .field("provides", &self.provides)
            .field("backoff", &self.backoff)
            .field("exhausted", &self.exhausted)
            .finish_non_exhaustive()
    }
}

struct Times(usize);

impl RetryStrategy for Times {
    fn provides_type(&self) -> Option<TypeInfo> {
        Some(TypeInfo::of::<u32>())
    }

    fn execute(&self, _: &Args, history: &History) -> Result<Option<Value>, TaskError> {
        Ok(Some(Value::new(history.len() as u32 + 1)))
    }

    fn on_failure(&self, _: &Args, history: &History) -> Decision {
        if history.len() < self.0 {
            Decision::Retry
        } else {
            Decision::Revert
        }
    }
}

struct ForEach<T>(Vec<T>);

fn next_value<T: Data + Clone>(
    name: &str,
    values: &[T],
    history: &History,
) -> Result<Option<Value>, TaskError> {
    match values.get(history.len()) {
        Some(v) => Ok(Some(Value::new(v.clone()))),
        None if values.is_empty() => Err(TaskError::msg(format!(
            "`{name}` has no value to try: its list of values is empty"
        ))),
        None => Err(TaskError::msg(format!(
            "`{name}` has tried all {} values",
            values.len()
        ))),
    }
}

impl<T: Data + Clone> RetryStrategy for ForEach<T> {
    fn provides_type(&self) -> Option<TypeInfo> {
        Some(TypeInfo::of::<T>())
    }

    fn execute(&self, _: &Args, history: &History) -> Result<Option<Value>, TaskError> {
        next_value("for_each", &self.0, history)
    }

    fn on_failure(&self, _: &Args, history: &History) -> Decision {
        if history.len() < self.0.len() {
            Decision::Retry
        } else {
            Decision::Revert
        }
    }
}

struct ForEachIn<T> {
    symbol: Name,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: Data + Clone> RetryStrategy for ForEachIn<T> {
    fn signature(&self) -> Signature {
        Signature::new().requires::<Vec<T>>(self.symbol.clone())
    }

    fn provides_type(&self) -> Option<TypeInfo> {
        Some(TypeInfo::of::<T>())
    }

    fn execute(&self, args: &Args, history: &History) -> Result<Option<Value>, TaskError> {
        next_value("for_each_in", args.get::<Vec<T>>(0)?, history)
    }

    fn on_failure(&self, args: &Args, history: &History) -> Decision {
        match args.get::<Vec<T>>(0) {
            Ok(values) if history.len() < values.len() => Decision::Retry,
            _ => Decision::Revert,
        }
    }
}

struct Always(Decision);

impl RetryStrategy for Always {
    fn execute(&self, _: &Args, _: &History) -> Result<Option<Value>, TaskError> {
        Ok(None)
    }

    fn on_failure(&self, _: &Args, _: &History) -> Decision {
        self.0
    }
}

impl Retry {
    /// A controller with a strategy of your own.
    pub fn custom(strategy: impl RetryStrategy) -> Self {
        Retry {
            name: Name::Borrowed("retry"),
            strategy: Arc::new(strategy),
            provides: None,
            backoff: Backoff::None,
            transient: None,
            exhausted: Decision::Revert,
        }
    }

    /// Runs the sub-flow at most `n` times; provides the attempt number (a
    /// `u32`, from 1) under the name given to [`Retry::provides`].
    pub fn times(n: usize) -> Self {
        Retry::custom(Times(n))
    }

    /// Tries each value in turn (duplicates included), providing it under the
    /// name given to [`Retry::provides`]; an empty list fails the controller.
    pub fn for_each<T: Data + Clone>(values: impl IntoIterator<Item = T>) -> Self {
        Retry::custom(ForEach(values.into_iter().collect()))
    }

    /// Like [`Retry::for_each`], with the values read from the input symbol
    /// `symbol: Vec<T>`.
    pub fn for_each_in<T: Data + Clone>(symbol: impl Into<Name>) -> Self {
        Retry::custom(ForEachIn::<T> {
            symbol: symbol.into(),
            _t: std::marker::PhantomData,
        })
    }

    /// Never retries: reverts the sub-flow and lets the parent decide.
    pub fn always_revert() -> Self {
        Retry::custom(Always(Decision::Revert))
    }

    /// Never retries: reverts everything.
    pub fn always_revert_all() -> Self {
        Retry::custom(Always(Decision::RevertAll))
    }

    /// Names the controller (its atom name; the default is `retry`).
    pub fn named(mut self, name: impl Into<Name>) -> Self {
        self.name = name.into();
        self
    }

    /// The controller's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Provides the controller's value to the sub-flow under `symbol`.
    pub fn provides(mut self, symbol: impl Into<Name>) -> Self {
        self.provides = Some(symbol.into());
        self
    }

    /// Waits before each retry, on tokio's timer (no thread is blocked).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Retries only failures `transient` accepts; any other failure is handed
    /// to the parent controller as if the strategy had decided
    /// [`Decision::Revert`].
    pub fn retry_if(
        mut self,
        transient: impl Fn(&Failure) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.transient = Some(Arc::new(transient));
        self
    }

    /// When the strategy gives up (decides [`Decision::Revert`]), revert
    /// everything instead of asking the parent controller.
    pub fn revert_all_when_exhausted(mut self) -> Self {
        self.exhausted = Decision::RevertAll;
        self
    }

    /// The controller's signature: the strategy's inputs, and the provided
    /// symbol when there is one.
    pub(crate) fn signature(&self) -> Signature {
        let mut sig = self.strategy.signature();
        if let (Some(name), Some(ty)) = (&self.provides, self.strategy.provides_type()) {
            sig = sig.provides_typed(name.clone(), ty);
        }
        sig
    }

    /// The decision after a failure, with the classifier and the exhaustion
    /// policy applied.
    pub(crate) fn decide(&self, args: &Args, history: &History, failure: &Failure) -> Decision {
        if let Some(transient) = &self.transient
            && !transient(failure)
        {
            return Decision::Revert;
        }
        match self.strategy.on_failure(args, history) {
            Decision::Revert => self.exhausted,
            d => d,
        }
    }
}

/// Turns a controller's value into the atom's outputs.
pub(crate) fn outputs_of(value: Option<Value>, provides: bool) -> Outputs {
    match (value, provides) {
        (Some(v), true) => Outputs::new().with_value(v),
        _ => Outputs::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_waits_lie_between_half_and_all_of_the_capped_wait() {
        let b = Backoff::Exponential {
            base: Duration::from_millis(100),
            max: Duration::from_millis(250),
            jitter: true,
        };
        for _ in 0..200 {
            let d2 = b.delay(2);
            assert!(
                Duration::from_millis(50) <= d2 && d2 <= Duration::from_millis(100),
                "{d2:?}"
            );
            let d5 = b.delay(5);
            assert!(
                Duration::from_millis(125) <= d5 && d5 <= Duration::from_millis(250),
                "{d5:?}"
            );
        }
        assert_eq!(b.delay(1), Duration::ZERO);
    }
}
