//! Arguments: the resolved values a task receives, in its signature's order.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use crate::symbol::{Data, Name, Value};

/// An argument could not be read as asked.
///
/// It means the task's body and its declared [`Signature`](crate::Signature) disagree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// No argument at that position.
    #[error("the task has no argument at position {0}: check its signature")]
    OutOfRange(usize),
    /// The argument has another type.
    #[error("argument {index} is a `{actual}`, not a `{expected}`: check its signature")]
    WrongType {
        /// The position.
        index: usize,
        /// The type asked for.
        expected: &'static str,
        /// The type held.
        actual: &'static str,
    },
    /// The argument is a collection, or a single value, unlike what was asked.
    #[error("argument {0} is not of the shape asked for (single value, optional, list or map)")]
    WrongShape(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum Arg {
    One(Value),
    Absent,
    Many(Box<[Value]>),
    Named(Box<[(Name, Value)]>),
}

/// The resolved arguments of one execution, in the order of the signature's inputs
/// (then, for `revert`, its extra inputs).
///
/// ```
/// use flow::Args;
/// let args = Args::from_values([flow::Value::new(3u64)]);
/// assert_eq!(*args.get::<u64>(0).unwrap(), 3);
/// assert!(args.get::<u32>(0).is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Args {
    /// Two inline: an `Args` is moved from the engine to the task, and a
    /// small one moves cheaply.
    pub(super) values: SmallVec<[Arg; 2]>,
}

impl Args {
    /// Arguments made of single values, as when every input is required.
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Self {
        Args {
            values: values.into_iter().map(Arg::One).collect(),
        }
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Args {
            values: SmallVec::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, arg: Arg) {
        self.values.push(arg);
    }

    pub(super) fn arg(&self, index: usize) -> Result<&Arg, ArgError> {
        self.values.get(index).ok_or(ArgError::OutOfRange(index))
    }

    pub(super) fn typed<T: Data>(index: usize, value: &Value) -> Result<&T, ArgError> {
        value
            .downcast_ref::<T>()
            .ok_or_else(|| ArgError::WrongType {
                index,
                expected: std::any::type_name::<T>(),
                actual: value.type_name(),
            })
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The required argument at `index`.
    ///
    /// # Errors
    /// When the position or type disagrees with the signature.
    pub fn get<T: Data>(&self, index: usize) -> Result<&T, ArgError> {
        match self.arg(index)? {
            Arg::One(v) => Self::typed(index, v),
            _ => Err(ArgError::WrongShape(index)),
        }
    }

    /// The optional argument at `index`: `None` when no provider was visible.
    ///
    /// # Errors
    /// When the position or type disagrees with the signature.
    pub fn optional<T: Data>(&self, index: usize) -> Result<Option<&T>, ArgError> {
        match self.arg(index)? {
            Arg::One(v) => Self::typed(index, v).map(Some),
            Arg::Absent => Ok(None),
            _ => Err(ArgError::WrongShape(index)),
        }
    }

    /// The collection argument at `index`, in the listed order.
    ///
    /// # Errors
    /// When the position, shape or type disagrees with the signature.
    pub fn list<T: Data>(&self, index: usize) -> Result<Vec<&T>, ArgError> {
        match self.arg(index)? {
            Arg::Many(vs) => vs.iter().map(|v| Self::typed(index, v)).collect(),
            _ => Err(ArgError::WrongShape(index)),
        }
    }

    /// The map-collection argument at `index`, keyed by symbol name.
    ///
    /// # Errors
    /// When the position, shape or type disagrees with the signature.
    pub fn map<T: Data>(&self, index: usize) -> Result<BTreeMap<&str, &T>, ArgError> {
        match self.arg(index)? {
            Arg::Named(vs) => vs
                .iter()
                .map(|(k, v)| Ok((k.as_ref(), Self::typed(index, v)?)))
                .collect(),
            _ => Err(ArgError::WrongShape(index)),
        }
    }

    /// The single value at `index`, untyped.
    pub fn value(&self, index: usize) -> Option<&Value> {
        match self.values.get(index)? {
            Arg::One(v) => Some(v),
            _ => None,
        }
    }
}
