//! Flows: linear, unordered and graph patterns that arrange atoms and nested flows.
//!
//! A flow is a tree. Its leaves are [`Atom`]s (a task placed at a use site, with a
//! unique name); its inner nodes are [`Flow`]s, each with a [`Pattern`] that says
//! how its items are ordered and what data they can see:
//!
//! - **linear**: items run one after the other; every earlier item's outputs are
//!   visible to every later item;
//! - **unordered**: items may run at once and never see each other's outputs;
//! - **graph**: an item that requires a symbol another item provides runs after
//!   it (the link is inferred); explicit links add more order. When several
//!   items provide the symbol, the explicit links choose: the nearest
//!   provider linked before the reader wins, a provider linked after it is
//!   not read, and providers with no order between them are ambiguous.
//!
//! [`Flow::build`] validates the whole tree (see [`BuildError`](crate::BuildError))
//! and compiles it once into a [`CompiledFlow`](crate::CompiledFlow). Flows
//! nest at most [`Flow::MAX_DEPTH`] (1,000) deep; nothing that walks a tree,
//! from building it to dropping it, takes a stack frame per level.
//!
//! ```
//! use flow::{Atom, Flow, FnTask, Outputs, Signature};
//!
//! let inc = || FnTask::sync(
//!     Signature::new().requires::<u64>("value").provides::<u64>("value"),
//!     |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)),
//! );
//! let flow = Flow::linear("count")
//!     .input::<u64>("value")
//!     .add(Atom::new("a", inc()))
//!     .add(Atom::new("b", inc()))
//!     .build()
//!     .expect("valid flow");
//! assert_eq!(flow.len(), 2);
//! ```

use std::fmt;
use std::sync::Arc;

use crate::decider::Decider;
use crate::retry::Retry;
use crate::symbol::{Data, Name, SymbolSpec, Value};
use crate::task::{Args, Context, Exec, Runner, Signature, Task};

/// How the items of a flow are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// One after the other, in the order added.
    Linear,
    /// In no particular order, possibly at once; siblings see no outputs of
    /// each other.
    Unordered,
    /// Ordered by data dependencies and explicit links.
    Graph,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pattern::Linear => "linear",
            Pattern::Unordered => "unordered",
            Pattern::Graph => "graph",
        })
    }
}

/// A task placed in a flow under a name, with its use-site options.
///
/// ```
/// use flow::{Atom, FnTask, Outputs, Signature};
/// let task = FnTask::sync(
///     Signature::new().requires::<u32>("x").requires::<u32>("step").provides::<u32>("y"),
///     |a| Ok(Outputs::one(a.get::<u32>(0)? + a.get::<u32>(1)?)),
/// );
/// let atom = Atom::new("add", task)
///     .rebind("x", "start")   // read symbol `start` for parameter `x`
///     .inject("step", 10u32)  // a constant only this atom sees
///     .provides_as("y", "end")
///     .priority(5);
/// assert_eq!(atom.name(), "add");
/// ```
#[derive(Clone)]
pub struct Atom {
    pub(crate) name: Name,
    pub(crate) task: Runner,
    pub(crate) signature: Signature,
    /// The rarely used options, apart so that a plain atom stays small.
    extra: Option<Box<Extra>>,
    pub(crate) priority: i32,
}

/// An atom's use-site options other than its priority.
#[derive(Clone, Default)]
struct Extra {
    rebind: Vec<(Name, Name)>,
    inject: Vec<(Name, Value)>,
    rename: Vec<(Name, Name)>,
    timeout: Option<std::time::Duration>,
}

impl Atom {
    /// Places `task` under `name`.
    ///
    /// An [`FnTask`](crate::FnTask) is taken apart: the atom keeps its
    /// closures in place, with no allocation of their own, and takes its
    /// signature instead of sharing it with the task.
    pub fn new(name: impl Into<Name>, task: impl Task) -> Self {
        let (signature, task) = Runner::hold(task);
        Atom::with(name.into(), task, signature)
    }

    /// Places a shared task under `name`.
    pub fn from_arc(name: impl Into<Name>, task: Arc<dyn Task>) -> Self {
        let signature = task.signature();
        Atom::with(name.into(), Runner::Shared(task), signature)
    }

    fn with(name: Name, task: Runner, signature: Signature) -> Self {
        let extra = signature.default_timeout().map(|timeout| {
            Box::new(Extra {
                timeout: Some(timeout),
                ..Extra::default()
            })
        });
        Atom {
            name,
            task,
            priority: signature.default_priority(),
            extra,
            signature,
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The rebinds: `(parameter, symbol)`, in the order given.
    pub(crate) fn rebinds(&self) -> &[(Name, Name)] {
        self.extra.as_ref().map_or(&[], |e| &e.rebind)
    }

    /// The injected constants: `(input, value)`, in the order given.
    pub(crate) fn injects(&self) -> &[(Name, Value)] {
        self.extra.as_ref().map_or(&[], |e| &e.inject)
    }

    /// The renamed outputs: `(output, symbol)`, in the order given.
    pub(crate) fn renames(&self) -> &[(Name, Name)] {
        self.extra.as_ref().map_or(&[], |e| &e.rename)
    }

    /// The limit on `execute`'s time, if any.
    /// The atom's name, task, signature, time limit and priority.
    pub(crate) fn into_parts(self) -> (Name, Runner, Signature, Option<std::time::Duration>, i32) {
        let timeout = self.time_limit();
        (self.name, self.task, self.signature, timeout, self.priority)
    }

    pub(crate) fn time_limit(&self) -> Option<std::time::Duration> {
        self.extra.as_ref().and_then(|e| e.timeout)
    }

    /// Places a task made by `#[task]` under the task's own name
    /// ([`TaskInfo::name`](crate::TaskInfo::name)).
    ///
    /// ```
    /// use flow::{Args, Atom, Context, Exec, InputShape, InputInfo, Signature, Task, TaskDef, TaskInfo};
    /// struct Probe;
    /// impl Task for Probe {
    ///     fn signature(&self) -> Signature { Signature::new().requires::<u32>("port") }
    ///     fn execute(&self, _: Args, _: &Context) -> Exec { Exec::Ready(Ok(Default::default())) }
    /// }
    /// impl TaskDef for Probe {
    ///     const INFO: TaskInfo = TaskInfo {
    ///         name: "probe",
    ///         inputs: &[InputInfo::new("port", "u32", InputShape::Required)],
    ///         outputs: &[],
    ///     };
    /// }
    /// assert_eq!(Atom::of(Probe).name(), "probe");
    /// ```
    pub fn of<T: crate::TaskDef>(task: T) -> Self {
        Atom::new(T::INFO.name, task)
    }

    /// The atom's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The task's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Reads symbol `symbol` wherever the task would read `name` (an input, or a
    /// name listed by a collection input).
    pub fn rebind(mut self, name: impl Into<Name>, symbol: impl Into<Name>) -> Self {
        self.extra().rebind.push((name.into(), symbol.into()));
        self
    }

    /// Gives input `input` a constant that only this atom sees; it wins over every
    /// provider.
    pub fn inject<T: Data>(self, input: impl Into<Name>, value: T) -> Self {
        self.inject_value(input, Value::new(value))
    }

    /// Like [`Atom::inject`], with an already wrapped value.
    pub fn inject_value(mut self, input: impl Into<Name>, value: Value) -> Self {
        self.extra().inject.push((input.into(), value));
        self
    }

    /// Publishes output `output` under the symbol name `symbol`.
    pub fn provides_as(mut self, output: impl Into<Name>, symbol: impl Into<Name>) -> Self {
        self.extra().rename.push((output.into(), symbol.into()));
        self
    }

    /// Fails the task with a [`FailureKind::Timeout`](crate::FailureKind::Timeout)
    /// failure when its `execute` runs longer than `timeout`. An asynchronous
    /// body is dropped at its next await; a synchronous body cannot be
    /// interrupted (mark long ones blocking: the engine then stops waiting for
    /// them, though their thread runs on).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.extra().timeout = Some(timeout);
        self
    }

    /// Sets the priority: among atoms ready at the same moment, higher first.
    /// The default is 0.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Atom")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// An item of a flow: an atom or a nested flow.
#[derive(Clone, Debug)]
pub enum Item {
    /// An atom.
    Atom(Atom),
    /// A nested flow (boxed, so that a flow of many atoms stays compact).
    Flow(Box<Flow>),
}

impl Item {
    /// The item's name.
    pub fn name(&self) -> &str {
        match self {
            Item::Atom(a) => &a.name,
            Item::Flow(f) => &f.name,
        }
    }
}

impl From<Atom> for Item {
    fn from(atom: Atom) -> Self {
        Item::Atom(atom)
    }
}

impl From<Flow> for Item {
    fn from(flow: Flow) -> Self {
        Item::Flow(Box::new(flow))
    }
}

/// An explicit link in a graph flow: `from` runs before `to`.
#[derive(Clone, Debug)]
pub struct Link {
    pub(crate) from: Name,
    pub(crate) to: Name,
    pub(crate) decider: Option<Decider>,
}

/// A flow: a pattern, its items, and (for graphs) explicit links.
///
/// Build one with [`Flow::linear`], [`Flow::unordered`] or [`Flow::graph`], add
/// items, declare the inputs the run will be given, then [`Flow::build`] it.
///
/// Flows nest at most [`Flow::MAX_DEPTH`] deep. Dropping, cloning and
/// printing a flow work at any depth (they keep no stack frame per level).
pub struct Flow {
    pub(crate) name: Name,
    pub(crate) pattern: Pattern,
    pub(crate) items: Vec<Item>,
    pub(crate) links: Vec<Link>,
    pub(crate) inputs: Vec<SymbolSpec>,
    pub(crate) retry: Option<Box<(Atom, Retry)>>,
}

/// The task that stands for a retry controller in the tree; the engine runs the
/// controller itself, never this.
struct ControllerTask(Signature);

impl Task for ControllerTask {
    fn signature(&self) -> Signature {
        self.0.clone()
    }

    fn execute(&self, _: Args, _: &Context) -> Exec {
        Exec::Ready(Err(crate::TaskError::msg(
            "a retry controller is run by the engine",
        )))
    }
}

impl Flow {
    /// How deep flows may nest: the root flow is at depth 1, a flow added to
    /// it at depth 2, and so on. [`Flow::build`] refuses a deeper tree with
    /// [`BuildError::TooDeep`](crate::BuildError::TooDeep), before it
    /// compiles anything.
    ///
    /// No walk of a tree keeps a stack frame per level (building, running,
    /// resuming, dropping, cloning and printing a flow are safe at any depth,
    /// on any thread's stack); the limit bounds the work and memory a
    /// compilation spends per level (what each flow shows its siblings, the
    /// scopes a name is looked up in), which grow with depth times size.
    /// Real flows nest a few levels; OpenStack TaskFlow, whose compiler
    /// recurses, stops at a few hundred.
    ///
    /// ```
    /// use flow::{Atom, BuildError, Flow, FnTask, Outputs, Signature};
    /// let task = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    /// let mut flow = Flow::linear("level-1001").add(Atom::new("deepest", task()));
    /// for level in (1..=Flow::MAX_DEPTH).rev() {
    ///     flow = Flow::linear(format!("level-{level}")).add(flow);
    /// }
    /// let err = flow.build().unwrap_err();
    /// assert_eq!(
    ///     err.errors(),
    ///     [BuildError::TooDeep { flow: "level-1001".into(), depth: 1001, limit: 1000 }]
    /// );
    /// ```
    pub const MAX_DEPTH: usize = 1_000;

    fn with_pattern(name: impl Into<Name>, pattern: Pattern) -> Self {
        Flow {
            name: name.into(),
            pattern,
            items: Vec::new(),
            links: Vec::new(),
            inputs: Vec::new(),
            retry: None,
        }
    }

    /// A linear flow: items run in the order added.
    pub fn linear(name: impl Into<Name>) -> Self {
        Flow::with_pattern(name, Pattern::Linear)
    }

    /// An unordered flow: items may run at once.
    pub fn unordered(name: impl Into<Name>) -> Self {
        Flow::with_pattern(name, Pattern::Unordered)
    }

    /// A graph flow: items ordered by their data and explicit links.
    pub fn graph(name: impl Into<Name>) -> Self {
        Flow::with_pattern(name, Pattern::Graph)
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The flow's pattern.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// The flow's items, in the order added.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Adds an atom or a nested flow.
    // `add` is the word TaskFlow users know; this is no arithmetic.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, item: impl Into<Item>) -> Self {
        self.push(item);
        self
    }

    /// Makes room for `additional` more items, so that a large flow built in
    /// a loop is not copied as it grows.
    ///
    /// ```
    /// use flow::{Atom, Flow, FnTask, Outputs, Signature};
    /// let mut flow = Flow::unordered("many");
    /// flow.reserve(1_000);
    /// for i in 0..1_000 {
    ///     let task = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    ///     flow.push(Atom::new(format!("t{i}"), task));
    /// }
    /// assert_eq!(flow.items().len(), 1_000);
    /// ```
    pub fn reserve(&mut self, additional: usize) -> &mut Self {
        self.items.reserve(additional);
        self
    }

    /// Adds an atom or a nested flow, in place (handy in loops).
    pub fn push(&mut self, item: impl Into<Item>) -> &mut Self {
        self.items.push(item.into());
        self
    }

    /// Orders item `from` before item `to` (graph flows; items named as added).
    pub fn link(mut self, from: impl Into<Name>, to: impl Into<Name>) -> Self {
        self.push_link(from, to);
        self
    }

    /// Orders item `from` before item `to`, in place.
    pub fn push_link(&mut self, from: impl Into<Name>, to: impl Into<Name>) -> &mut Self {
        self.links.push(Link {
            from: from.into(),
            to: to.into(),
            decider: None,
        });
        self
    }

    /// Orders atom `from` before item `to`, and runs `to` only if `decider`
    /// agrees (see [`Decider`]). Graph flows only; `from` must be an atom.
    pub fn link_if(mut self, from: impl Into<Name>, to: impl Into<Name>, decider: Decider) -> Self {
        self.links.push(Link {
            from: from.into(),
            to: to.into(),
            decider: Some(decider),
        });
        self
    }

    /// Attaches a retry controller: it runs before the flow's items, may
    /// provide them a symbol, and decides what happens when one of them fails
    /// (see [`Retry`]). A flow has at most one; attaching another replaces it.
    pub fn retry(mut self, retry: Retry) -> Self {
        let atom = Atom::new(retry.name.clone(), ControllerTask(retry.signature()));
        self.retry = Some(Box::new((atom, retry)));
        self
    }

    /// The retry controller attached to this flow, if any.
    pub fn retry_controller(&self) -> Option<&Retry> {
        self.retry.as_ref().map(|b| &b.1)
    }

    /// Declares an input `name: T` that the run will be given in its store.
    pub fn input<T: Data>(mut self, name: impl Into<Name>) -> Self {
        self.inputs.push(SymbolSpec::of::<T>(name));
        self
    }

    /// Declares an input from an untyped symbol.
    pub fn input_symbol(mut self, symbol: SymbolSpec) -> Self {
        self.inputs.push(symbol);
        self
    }
}
