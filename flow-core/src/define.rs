//! What `#[task]` leaves behind: a task's signature as constants, and the small
//! traits its generated code leans on.
//!
//! A task made by `#[task]` implements [`TaskDef`]: its name and, for every input
//! and output, the symbol's name, a stable hash of the name and the type as text.
//! These are `const`, so `flow!` can check a flow's data dependencies while the
//! program compiles; at run time the same task is an ordinary [`Task`].
//!
//! ```
//! use flow::{symbol_hash, InputShape, InputInfo, OutputInfo, TaskInfo};
//! const INFO: TaskInfo = TaskInfo {
//!     name: "backup",
//!     inputs: &[InputInfo::new("db", "DbName", InputShape::Required)],
//!     outputs: &[OutputInfo::new("backup", "Backup")],
//! };
//! assert_eq!(INFO.inputs[0].hash, symbol_hash("db"));
//! assert_eq!(INFO.output("backup").map(|o| o.ty), Some("Backup"));
//! ```

use std::error::Error as StdError;

use crate::failure::TaskError;
use crate::symbol::{Data, Value};
use crate::task::Task;

/// The 64-bit FNV-1a hash of a symbol name: stable across builds, platforms and
/// versions, and computable in `const`.
///
/// ```
/// assert_eq!(flow::symbol_hash(""), 0xcbf2_9ce4_8422_2325);
/// assert_ne!(flow::symbol_hash("db"), flow::symbol_hash("bd"));
/// ```
///
/// Hidden from the documentation: the code `#[task]` and `flow!` generate
/// uses it, and it is not part of the stable API.
#[doc(hidden)]
pub const fn symbol_hash(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// A symbol named in a collection input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolRef {
    /// The symbol's name.
    pub name: &'static str,
    /// `symbol_hash` of the name.
    pub hash: u64,
}

impl SymbolRef {
    /// A reference to symbol `name`.
    pub const fn new(name: &'static str) -> Self {
        SymbolRef {
            name,
            hash: symbol_hash(name),
        }
    }
}

/// How an input of a [`TaskInfo`] is satisfied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputShape {
    /// A provider must run earlier.
    Required,
    /// Passed when a provider runs earlier (an `Option` or `#[default]` parameter).
    Optional,
    /// Gathers the listed symbols, in order, into a `Vec`.
    Collect(&'static [SymbolRef]),
    /// Gathers the listed symbols into a `BTreeMap` keyed by name.
    CollectMap(&'static [SymbolRef]),
    /// Gathers every symbol whose name matches the pattern (`healthy_*`: a
    /// prefix, then `*`) into a `Vec`, in the order of the names.
    Matching(&'static str),
    /// Gathers every symbol whose name matches the pattern into a
    /// `BTreeMap` keyed by name.
    MatchingMap(&'static str),
}

/// One input of a [`TaskInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputInfo {
    /// The parameter's name: the symbol read.
    pub name: &'static str,
    /// `symbol_hash` of the name.
    pub hash: u64,
    /// The symbol's type as written (the element type, for a collection), for
    /// messages.
    pub ty: &'static str,
    /// How the input is satisfied.
    pub shape: InputShape,
}

impl InputInfo {
    /// An input `name: ty`.
    pub const fn new(name: &'static str, ty: &'static str, shape: InputShape) -> Self {
        InputInfo {
            name,
            hash: symbol_hash(name),
            ty,
            shape,
        }
    }
}

/// One output of a [`TaskInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputInfo {
    /// The symbol provided.
    pub name: &'static str,
    /// `symbol_hash` of the name.
    pub hash: u64,
    /// The symbol's type as written, for messages.
    pub ty: &'static str,
}

impl OutputInfo {
    /// An output `name: ty`.
    pub const fn new(name: &'static str, ty: &'static str) -> Self {
        OutputInfo {
            name,
            hash: symbol_hash(name),
            ty,
        }
    }
}

/// A task's signature as constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's name: the function's (or type's) name unless `name = "..."`
    /// says otherwise. Atoms made with [`Atom::of`](crate::Atom::of) take it.
    pub name: &'static str,
    /// The inputs of `execute`, in parameter order.
    pub inputs: &'static [InputInfo],
    /// The outputs, in order.
    pub outputs: &'static [OutputInfo],
}

impl TaskInfo {
    /// The input named `name`.
    pub fn input(&self, name: &str) -> Option<&'static InputInfo> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The output named `name`.
    pub fn output(&self, name: &str) -> Option<&'static OutputInfo> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// A task whose signature is known while the program compiles: what `#[task]`
/// implements.
///
/// The run-time [`Task::signature`] of such a task declares the same inputs and
/// outputs, with their types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task",
    label = "not a task",
    note = "add `#[task]` to the function (or to the `impl` block with `execute`) that defines it",
    note = "the task of a function `f` made by `#[task]` is the value `f {{}}`, not the function `f`"
)]
pub trait TaskDef: Task {
    /// The signature as constants.
    const INFO: TaskInfo;
}

/// Implemented by a task for each symbol it provides: `H` is the
/// `symbol_hash` of the symbol's name and `Ty` its type. `flow!` asks the
/// compiler for `<Provider as Provides<H>>::Ty` to compare types exactly.
///
/// Hidden from the documentation: the code `#[task]` and `flow!` generate
/// implements and names it, and it is not part of the stable API.
#[doc(hidden)]
pub trait Provides<const H: u64> {
    /// The type of the symbol.
    type Ty;
}

/// What `flow!` reads a task's signature through: `()` implements it for
/// every task `T`, so that an item that is not one is a single error naming
/// it (implemented for `()`, the error points at no type definition).
#[diagnostic::on_unimplemented(
    message = "`{T}` is not a task: add `#[task]` to the function (or to the `impl` block with `execute`) that defines it",
    label = "not a task",
    note = "the task of a function `f` made by `#[task]` is the value `f {{}}`, not the function `f`"
)]
#[doc(hidden)]
pub trait IsTask<T> {
    /// `T`'s signature.
    const INFO: TaskInfo;
}

#[diagnostic::do_not_recommend]
impl<T: TaskDef> IsTask<T> for () {
    const INFO: TaskInfo = T::INFO;
}

/// The error types a task body may return: any
/// `std::error::Error + Send + Sync + 'static`, a
/// `Box<dyn Error + Send + Sync>`, a [`TaskError`], or (feature `anyhow`)
/// an `anyhow::Error`.
///
/// `M` tells the impls apart (a boxed error is not itself an `Error`, and the
/// compiler cannot be told it never will be); it is always inferred.
///
/// ```
/// use flow::{IntoTaskError, TaskError};
/// let boxed: Box<dyn std::error::Error + Send + Sync> = "disk full".into();
/// let e: TaskError = boxed.into_task_error();
/// assert_eq!(e.to_string(), "disk full");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a task",
    label = "this error type",
    note = "a task's error must implement `std::error::Error + Send + Sync + 'static`, be a `Box<dyn Error + Send + Sync>` or `flow::TaskError` (`TaskError::msg` makes one of a message), or `anyhow::Error` with the `anyhow` feature"
)]
pub trait IntoTaskError<M = ViaError> {
    /// Converts into a [`TaskError`].
    fn into_task_error(self) -> TaskError;
}

/// Marks the [`IntoTaskError`] impl for errors that implement
/// `std::error::Error`. Never constructed.
#[doc(hidden)]
#[derive(Debug)]
pub enum ViaError {}

/// Marks the [`IntoTaskError`] impl for [`TaskError`] itself.
#[doc(hidden)]
#[derive(Debug)]
pub enum ViaTaskError {}

/// Marks the [`IntoTaskError`] impl for `Box<dyn Error + Send + Sync>`.
#[doc(hidden)]
#[derive(Debug)]
pub enum ViaBoxed {}

/// Marks the [`IntoTaskError`] impl for `anyhow::Error`.
#[doc(hidden)]
#[derive(Debug)]
pub enum ViaAnyhow {}

// Not listed in the compiler's message about an error type that is none
// of these: the message lists them itself.
#[diagnostic::do_not_recommend]
impl<E: StdError + Send + Sync + 'static> IntoTaskError<ViaError> for E {
    fn into_task_error(self) -> TaskError {
        TaskError::from(self)
    }
}

// Not listed in the compiler's message about an error type that is none
// of these: the message lists them itself.
#[diagnostic::do_not_recommend]
impl IntoTaskError<ViaTaskError> for TaskError {
    fn into_task_error(self) -> TaskError {
        self
    }
}

// Not listed in the compiler's message about an error type that is none
// of these: the message lists them itself.
#[diagnostic::do_not_recommend]
impl IntoTaskError<ViaBoxed> for Box<dyn StdError + Send + Sync + 'static> {
    fn into_task_error(self) -> TaskError {
        TaskError::boxed(self)
    }
}

#[cfg(feature = "anyhow")]
// Not listed in the compiler's message about an error type that is none
// of these: the message lists them itself.
#[diagnostic::do_not_recommend]
impl IntoTaskError<ViaAnyhow> for anyhow::Error {
    fn into_task_error(self) -> TaskError {
        TaskError::from_anyhow(self)
    }
}

/// What a compensating function may return: `()` (it cannot fail) or
/// `Result<T, E>`; an `Ok` value other than `()` is kept as the revert result.
///
/// ```
/// use flow::{RevertReturn, TaskError};
/// assert!(().into_revert_result().unwrap().is_none());
/// assert!(Ok::<(), TaskError>(()).into_revert_result().unwrap().is_none());
/// let kept = Ok::<u32, TaskError>(4).into_revert_result().unwrap().unwrap();
/// assert_eq!(kept.downcast_ref::<u32>(), Some(&4));
/// assert!(Err::<(), _>(TaskError::msg("no")).into_revert_result().is_err());
/// ```
#[diagnostic::on_unimplemented(
    message = "a compensating function cannot return `{Self}`",
    label = "this return type",
    note = "return `()`, or `Result<T, E>` whose error implements `std::error::Error + Send + Sync + 'static`"
)]
pub trait RevertReturn<M = ()> {
    /// The revert result, or the revert's error.
    ///
    /// # Errors
    /// When the compensation failed.
    fn into_revert_result(self) -> Result<Option<Value>, TaskError>;
}

impl RevertReturn for () {
    fn into_revert_result(self) -> Result<Option<Value>, TaskError> {
        Ok(None)
    }
}

impl<T: Data, E: IntoTaskError<M>, M> RevertReturn<M> for Result<T, E> {
    fn into_revert_result(self) -> Result<Option<Value>, TaskError> {
        match self {
            Ok(value) if std::any::TypeId::of::<T>() == std::any::TypeId::of::<()>() => {
                drop(value);
                Ok(None)
            }
            Ok(value) => Ok(Some(Value::new(value))),
            Err(error) => Err(error.into_task_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(symbol_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(symbol_hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
