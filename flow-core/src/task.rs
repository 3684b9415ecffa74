//! The task trait, signatures, and what a task receives and returns.
//!
//! Tasks are usually written with the `#[task]` attribute of the `flow` crate. This
//! module is the run-time form underneath it: a [`Task`] declares a [`Signature`]
//! (what it requires and provides, as named, typed symbols), and the engine hands
//! it resolved [`Args`] in the declared order.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use smallvec::SmallVec;

use crate::engine::control::Control;
use crate::failure::{Failure, TaskError};
use crate::notify::Notifier;
use crate::symbol::{Data, Name, SymbolSpec, TypeInfo, Value};

/// How an input is satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputKind {
    /// A provider must be visible, else the flow does not build.
    Required,
    /// Passed when a provider is visible, absent otherwise.
    Optional,
    /// Gathers the listed symbols, all of the input's type, in the listed order.
    Collect(Box<[Name]>),
    /// Gathers the listed symbols into a map keyed by symbol name.
    CollectMap(Box<[Name]>),
}

/// One input of a task: the parameter's name, its type and how it is satisfied.
///
/// For collections the type is the element type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    name: Name,
    ty: TypeInfo,
    kind: InputKind,
}

impl InputSpec {
    /// The parameter's name (the symbol read, unless rebound at the use site).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type required (the element type, for collections).
    pub fn ty(&self) -> TypeInfo {
        self.ty
    }

    /// How the input is satisfied.
    pub fn kind(&self) -> &InputKind {
        &self.kind
    }
}

/// What a task requires and provides.
///
/// ```
/// use flow::Signature;
/// let sig = Signature::new()
///     .requires::<u64>("x")
///     .optional::<String>("label")
///     .collect::<u32>("sizes", ["a", "b"])
///     .provides::<u64>("y");
/// assert_eq!(sig.inputs().len(), 3);
/// assert_eq!(sig.outputs()[0].to_string(), "y: u64");
/// ```
///
/// Cloning is cheap: a signature is shared, and copied only when a shared one is
/// changed.
// Counted with `triomphe`'s `Arc`, which keeps no weak count: changing a
// signature only this handle holds, as each builder step does, reads the
// count rather than swapping it atomically.
#[derive(Clone, Debug, Default)]
pub struct Signature(triomphe::Arc<SignatureData>);

/// A signature's list: the first element inline, in the signature's own
/// allocation; most tasks read one symbol and provide one.
type List<T> = SmallVec<[T; 1]>;

/// Makes room for one more element, doubling: signatures are small and live
/// as long as their flow, so no room is left unused by default.
fn grow<T>(v: &mut List<T>) -> &mut List<T> {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len());
    }
    v
}

#[derive(Clone, Debug, Default)]
struct SignatureData {
    inputs: List<InputSpec>,
    outputs: List<SymbolSpec>,
    /// What few tasks set, apart so that a plain signature stays small.
    more: Option<Box<SignatureMore>>,
}

#[derive(Clone, Debug, Default)]
struct SignatureMore {
    revert_inputs: Vec<InputSpec>,
    blocking: bool,
    priority: i32,
    timeout: Option<std::time::Duration>,
}

impl Signature {
    /// A signature with no inputs and no outputs.
    pub fn new() -> Self {
        Signature::default()
    }

    #[inline]
    fn data(&mut self) -> &mut SignatureData {
        triomphe::Arc::make_mut(&mut self.0)
    }

    fn more(&mut self) -> &mut SignatureMore {
        self.data().more.get_or_insert_with(Box::default)
    }

    fn input(mut self, name: impl Into<Name>, ty: TypeInfo, kind: InputKind) -> Self {
        grow(&mut self.data().inputs).push(InputSpec {
            name: name.into(),
            ty,
            kind,
        });
        self
    }

    /// Adds a required input `name: T`.
    pub fn requires<T: Data>(self, name: impl Into<Name>) -> Self {
        self.input(name, TypeInfo::of::<T>(), InputKind::Required)
    }

    /// Adds an optional input `name: T`: absent when no provider is visible.
    pub fn optional<T: Data>(self, name: impl Into<Name>) -> Self {
        self.input(name, TypeInfo::of::<T>(), InputKind::Optional)
    }

    /// Adds a collection input `name` that gathers the symbols `symbols`, each a
    /// `T`, in that order.
    pub fn collect<T: Data>(
        self,
        name: impl Into<Name>,
        symbols: impl IntoIterator<Item = impl Into<Name>>,
    ) -> Self {
        let names = symbols.into_iter().map(Into::into).collect();
        self.input(name, TypeInfo::of::<T>(), InputKind::Collect(names))
    }

    /// Adds a collection input `name` that gathers the symbols `symbols`, each a
    /// `T`, into a map keyed by symbol name.
    pub fn collect_map<T: Data>(
        self,
        name: impl Into<Name>,
        symbols: impl IntoIterator<Item = impl Into<Name>>,
    ) -> Self {
        let names = symbols.into_iter().map(Into::into).collect();
        self.input(name, TypeInfo::of::<T>(), InputKind::CollectMap(names))
    }

    /// Adds an input `name: T` that only `revert` receives, after the inputs of
    /// `execute`.
    pub fn revert_requires<T: Data>(mut self, name: impl Into<Name>) -> Self {
        self.more().revert_inputs.push(InputSpec {
            name: name.into(),
            ty: TypeInfo::of::<T>(),
            kind: InputKind::Required,
        });
        self
    }

    /// Adds an output `name: T`. Outputs are returned in the order declared.
    pub fn provides<T: Data>(mut self, name: impl Into<Name>) -> Self {
        grow(&mut self.data().outputs).push(SymbolSpec::of::<T>(name));
        self
    }

    pub(crate) fn provides_typed(mut self, name: impl Into<Name>, ty: TypeInfo) -> Self {
        grow(&mut self.data().outputs).push(SymbolSpec::new(name, ty));
        self
    }

    /// Marks the task as blocking: its body runs on tokio's blocking pool.
    pub fn blocking(mut self) -> Self {
        self.more().blocking = true;
        self
    }

    /// Sets the priority an atom of this task gets unless its use site says
    /// otherwise ([`Atom::priority`](crate::Atom::priority)).
    ///
    /// ```
    /// let sig = flow::Signature::new().priority(3);
    /// assert_eq!(sig.default_priority(), 3);
    /// ```
    pub fn priority(mut self, priority: i32) -> Self {
        self.more().priority = priority;
        self
    }

    /// Sets the timeout an atom of this task gets unless its use site says
    /// otherwise ([`Atom::timeout`](crate::Atom::timeout)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let sig = flow::Signature::new().timeout(Duration::from_secs(30));
    /// assert_eq!(sig.default_timeout(), Some(Duration::from_secs(30)));
    /// ```
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.more().timeout = Some(timeout);
        self
    }

    /// The priority an atom of this task gets by default (0 unless set).
    pub fn default_priority(&self) -> i32 {
        self.0.more.as_ref().map_or(0, |m| m.priority)
    }

    /// The timeout an atom of this task gets by default (none unless set).
    pub fn default_timeout(&self) -> Option<std::time::Duration> {
        self.0.more.as_ref().and_then(|m| m.timeout)
    }

    /// The inputs of `execute`, in order.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.0.inputs
    }

    /// The extra inputs of `revert`, in order.
    pub fn revert_inputs(&self) -> &[InputSpec] {
        self.0.more.as_ref().map_or(&[], |m| &m.revert_inputs)
    }

    /// The outputs, in order.
    pub fn outputs(&self) -> &[SymbolSpec] {
        &self.0.outputs
    }

    /// Whether the task body blocks its thread.
    pub fn is_blocking(&self) -> bool {
        self.0.more.as_ref().is_some_and(|m| m.blocking)
    }
}

/// An argument could not be read as asked.
///
/// It means the task's body and its declared [`Signature`] disagree.
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
    values: SmallVec<[Arg; 2]>,
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

    fn arg(&self, index: usize) -> Result<&Arg, ArgError> {
        self.values.get(index).ok_or(ArgError::OutOfRange(index))
    }

    fn typed<T: Data>(index: usize, value: &Value) -> Result<&T, ArgError> {
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
/// [`Context::failures`].
#[derive(Clone, Debug)]
pub struct RevertInput {
    /// The arguments of `execute`, followed by the revert-only ones.
    pub args: Args,
    /// The atom's own outcome.
    pub outcome: Outcome,
}

/// What a task can see of the run it is part of: its name, the attempt number,
/// and a way to report progress.
///
/// Cloning is cheap; clone it into an async body that needs it.
#[derive(Clone)]
pub struct Context {
    shared: Arc<ContextShared>,
    index: u32,
    attempt: u32,
}

/// What every context of one run shares: handing a context to a task costs
/// one reference count.
pub(crate) struct ContextShared {
    /// Where the atom's name is.
    names: Names,
    notifier: Notifier,
    control: Arc<Control>,
    /// The run's failures as of the latest revert started: the engine
    /// replaces them before a revert whenever a failure has come or gone
    /// since, so that a revert costs no reference count of its own.
    failures: Mutex<Arc<Failures>>,
}

enum Names {
    /// The run's graph, indexed by the context's atom.
    Graph(Arc<crate::compile::Graph>),
    /// A detached context's own name.
    Detached(Arc<str>),
}

impl ContextShared {
    pub(crate) fn new(
        graph: Arc<crate::compile::Graph>,
        notifier: Notifier,
        control: Arc<Control>,
    ) -> Arc<Self> {
        Arc::new(ContextShared {
            names: Names::Graph(graph),
            notifier,
            control,
            failures: Mutex::default(),
        })
    }

    /// Makes `failures` what [`Context::failures`] returns.
    pub(crate) fn publish_failures(&self, failures: Failures) {
        *self.failures.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(failures);
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("atom", &self.atom())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(shared: Arc<ContextShared>, index: u32, attempt: u32) -> Self {
        Context {
            shared,
            index,
            attempt,
        }
    }

    /// Points a lent context at another atom and attempt.
    pub(crate) fn point(&mut self, index: u32, attempt: u32) {
        self.index = index;
        self.attempt = attempt;
    }

    /// Whether the run was cancelled: a long task should stop early and
    /// return an error.
    pub fn is_cancelled(&self) -> bool {
        self.shared.control.cancel_requested()
    }

    /// Resolves when the run is cancelled; use it in a `tokio::select!`
    /// beside the task's work.
    pub async fn cancelled(&self) {
        self.shared
            .control
            .cancelled_token()
            .cancelled_owned()
            .await;
    }

    /// How long this task may go on after a cancel before the engine gives
    /// up on it.
    pub(crate) fn grace(&self) -> std::time::Duration {
        self.shared.control.grace
    }

    /// A context for calling a task's body directly, outside any engine (unit
    /// tests of task bodies).
    ///
    /// ```
    /// let ctx = flow::Context::detached("probe");
    /// assert_eq!(ctx.atom(), "probe");
    /// assert_eq!(ctx.attempt(), 1);
    /// ctx.progress(0.5); // nobody listens: a no-op
    /// ```
    pub fn detached(atom: &str) -> Self {
        let shared = ContextShared {
            names: Names::Detached(Arc::from(atom)),
            notifier: Notifier::default(),
            control: Control::new(),
            failures: Mutex::default(),
        };
        Context::new(Arc::new(shared), 0, 1)
    }

    /// The atom's name.
    pub fn atom(&self) -> &str {
        match &self.shared.names {
            Names::Graph(g) => g.nodes.get(self.index as usize).map_or("", |n| &n.name),
            Names::Detached(name) => name,
        }
    }

    /// Which execution of this atom this is, from 1: it grows each time the atom
    /// is run again (a new run after a revert, or a resumed run).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Every failure of the run so far, keyed by atom name: what a `revert`
    /// is undoing after. The engine brings it up to date before each revert
    /// it starts; during `execute` it holds the failures as of the latest
    /// revert (none before the first), and a detached context has none.
    ///
    /// Asking takes a lock and a reference count, so a revert that does not
    /// need the failures costs nothing for them.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::{Arc, Mutex};
    /// use flow::{Atom, Engine, Exec, Flow, FnTask, Outputs, Signature, TaskError};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let undo = FnTask::sync(Signature::new(), |_| Ok(Outputs::new())).on_revert(
    ///     move |_, ctx| {
    ///         let failures = ctx.failures();
    ///         log.lock().unwrap().extend(failures.keys().cloned());
    ///         Exec::Ready(Ok(None))
    ///     },
    /// );
    /// let fail = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("no")));
    /// let flow = Flow::linear("f")
    ///     .add(Atom::new("undo", undo))
    ///     .add(Atom::new("fail", fail))
    ///     .build()
    ///     .unwrap();
    /// Engine::builder(flow).build().run().await.unwrap_err();
    /// assert_eq!(*seen.lock().unwrap(), ["fail"]);
    /// assert!(flow::Context::detached("probe").failures().is_empty());
    /// # });
    /// ```
    pub fn failures(&self) -> Arc<Failures> {
        self.shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reports progress, clamped to `0.0..=1.0`. The engine itself reports `0.0`
    /// when the task starts and `1.0` when it ends.
    pub fn progress(&self, progress: f32) {
        self.shared
            .notifier
            .progress(self.atom(), self.index, progress);
    }
}

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

type ExecFn = dyn Fn(Args, &Context) -> Exec + Send + Sync;
type RevertFn = dyn Fn(RevertInput, &Context) -> Exec<Option<Value>> + Send + Sync;

/// A body of an [`FnTask`], shared by its clones.
///
/// A closure that captures nothing is a zero-sized value that needs no
/// drop: it is kept by a `'static` reference, which costs no allocation
/// (leaking a zero-sized box frees nothing) and no reference count. Any
/// other closure is counted.
enum Body<F: ?Sized + 'static> {
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
const fn is_free<F>() -> bool {
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
    signature: Signature,
    body: FnBody,
}

/// The closures of an [`FnTask`].
#[derive(Clone)]
pub(crate) struct FnBody {
    execute: Body<ExecFn>,
    revert: Option<Body<RevertFn>>,
}

/// The body of a task with nothing to do: what stands in for the task of a
/// node that has none.
static NOTHING: &ExecFn = &|_, _| Exec::Ready(Ok(Outputs::new()));

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
    fn execute(&self, args: Args, ctx: &Context) -> Exec {
        (self.execute)(args, ctx)
    }

    fn revert(&self, input: RevertInput, ctx: &Context) -> Exec<Option<Value>> {
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

#[cfg(test)]
mod size_tests {
    /// A plain signature (one input, one output) is one allocation of at most
    /// 128 bytes with its reference counts, and an atom holds an
    /// [`FnTask`]'s closures in 48 bytes: every atom of a flow has both.
    #[test]
    fn a_plain_signature_stays_small() {
        use std::mem::size_of;
        assert_eq!(size_of::<super::InputSpec>(), 56);
        assert_eq!(size_of::<super::SignatureData>(), 112);
        assert_eq!(size_of::<super::Runner>(), 48);
        let sig = super::Signature::new()
            .requires::<u64>("x")
            .provides::<u64>("y");
        assert!(sig.0.more.is_none());
        assert!(!sig.0.inputs.spilled() && !sig.0.outputs.spilled());
    }
}

#[cfg(test)]
mod body_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{Args, Body, Context, Exec, FnTask, Outputs, Signature, Task};

    fn run(task: &FnTask, x: u64) -> u64 {
        let args = Args::from_values([crate::Value::new(x)]);
        match task.execute(args, &Context::detached("t")) {
            Exec::Ready(Ok(out)) => *out.values()[0].downcast_ref::<u64>().unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_closure_that_captures_nothing_is_not_counted() {
        let task = FnTask::sync(Signature::new(), |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)));
        assert!(matches!(task.body.execute, Body::Static(_)));
        let copy = task.clone();
        assert_eq!((run(&task, 1), run(&copy, 41)), (2, 42));
    }

    #[test]
    fn a_closure_that_captures_is_counted_and_dropped_with_its_last_clone() {
        let step = Arc::new(10u64);
        let seen = Arc::clone(&step);
        let task = FnTask::sync(Signature::new(), move |a| {
            Ok(Outputs::one(a.get::<u64>(0)? + *step))
        })
        .on_revert_sync(|_| Ok(None));
        assert!(matches!(task.body.execute, Body::Counted(_)));
        assert!(matches!(task.body.revert, Some(Body::Static(_))));
        let copy = task.clone();
        assert_eq!(run(&copy, 5), 15);
        assert_eq!(Arc::strong_count(&seen), 2);
        drop(task);
        assert_eq!(Arc::strong_count(&seen), 2);
        drop(copy);
        assert_eq!(Arc::strong_count(&seen), 1);
    }

    #[test]
    fn an_atom_takes_an_fn_task_apart_and_shares_any_other_task() {
        use super::{Runner, Value};
        let atom = crate::Atom::new(
            "inc",
            FnTask::sync(Signature::new().requires::<u64>("x"), |a| {
                Ok(Outputs::one(a.get::<u64>(0)? + 1))
            }),
        );
        // The signature was moved out of the task, not shared with it.
        assert!(atom.signature.0.is_unique());
        assert_eq!(atom.signature.inputs()[0].name(), "x");
        let Runner::Fn(body) = &atom.task else {
            panic!("an FnTask is held in place");
        };
        assert!(matches!(body.execute, Body::Static(_)));
        let args = Args::from_values([Value::new(6u64)]);
        match atom.task.execute(args, &Context::detached("inc")) {
            Exec::Ready(Ok(out)) => assert_eq!(out.values()[0].downcast_ref::<u64>(), Some(&7)),
            other => panic!("unexpected {other:?}"),
        }

        struct Probe;
        impl Task for Probe {
            fn signature(&self) -> Signature {
                Signature::new().provides::<u64>("y")
            }
            fn execute(&self, _: Args, _: &Context) -> Exec {
                Exec::Ready(Ok(Outputs::one(9u64)))
            }
        }
        let atom = crate::Atom::new("probe", Probe);
        assert!(matches!(atom.task, Runner::Shared(_)));
        assert_eq!(atom.signature.outputs()[0].name(), "y");
        match atom
            .task
            .execute(Args::from_values([]), &Context::detached("probe"))
        {
            Exec::Ready(Ok(out)) => assert_eq!(out.values()[0].downcast_ref::<u64>(), Some(&9)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_zero_sized_closure_with_a_drop_is_dropped() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Guard;
        impl Drop for Guard {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let guard = Guard;
        let task = FnTask::sync(Signature::new(), move |a| {
            let _keep = &guard;
            Ok(Outputs::one(a.get::<u64>(0)? * 2))
        });
        assert!(matches!(task.body.execute, Body::Counted(_)));
        assert_eq!(run(&task, 4), 8);
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        drop(task);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    }
}
