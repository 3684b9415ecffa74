//! Signatures: what a task requires and provides, as named, typed symbols.

use smallvec::SmallVec;

use crate::symbol::{Data, Name, SymbolSpec, TypeInfo};

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
    /// Gathers every symbol whose name matches the pattern (a prefix, then
    /// `*`: `healthy_*`), in the order of their names; [`Flow::build`](crate::Flow::build)
    /// turns it into a [`InputKind::Collect`] of the matching symbols
    /// provided in the flow.
    Matching(Box<str>),
    /// As [`InputKind::Matching`], into a map keyed by symbol name.
    MatchingMap(Box<str>),
}

/// One input of a task: the parameter's name, its type and how it is satisfied.
///
/// For collections the type is the element type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    pub(super) name: Name,
    pub(super) ty: TypeInfo,
    pub(super) kind: InputKind,
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
pub struct Signature(pub(super) triomphe::Arc<SignatureData>);

/// A signature's list: the first element inline, in the signature's own
/// allocation; most tasks read one symbol and provide one.
pub(super) type List<T> = SmallVec<[T; 1]>;

/// Makes room for one more element, doubling: signatures are small and live
/// as long as their flow, so no room is left unused by default.
pub(super) fn grow<T>(v: &mut List<T>) -> &mut List<T> {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len());
    }
    v
}

#[derive(Clone, Debug, Default)]
pub(super) struct SignatureData {
    pub(super) inputs: List<InputSpec>,
    pub(super) outputs: List<SymbolSpec>,
    /// What few tasks set, apart so that a plain signature stays small.
    pub(super) more: Option<Box<SignatureMore>>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct SignatureMore {
    pub(super) revert_inputs: Vec<InputSpec>,
    pub(super) blocking: bool,
    pub(super) priority: i32,
    pub(super) timeout: Option<std::time::Duration>,
}

impl Signature {
    /// A signature with no inputs and no outputs.
    pub fn new() -> Self {
        Signature::default()
    }

    #[inline]
    pub(super) fn data(&mut self) -> &mut SignatureData {
        triomphe::Arc::make_mut(&mut self.0)
    }

    pub(super) fn more(&mut self) -> &mut SignatureMore {
        self.data().more.get_or_insert_with(Box::default)
    }

    pub(super) fn input(mut self, name: impl Into<Name>, ty: TypeInfo, kind: InputKind) -> Self {
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

    /// Adds a collection input `name` that gathers every symbol, each a `T`,
    /// whose name matches `pattern`: a prefix followed by `*`, such as
    /// `healthy_*`. When the flow is built, the input reads every matching
    /// symbol provided in the flow (by an atom other than this one) or
    /// declared as its input, in the byte order of their names; each must be
    /// visible to the atom, as a symbol of [`Signature::collect`] must.
    ///
    /// ```
    /// use flow::{Atom, Flow, FnTask, Outputs, Signature};
    /// let check = |host: &'static str| FnTask::sync(
    ///     Signature::new().provides::<bool>(format!("healthy_{host}")),
    ///     |_| Ok(Outputs::one(true)),
    /// );
    /// let report = FnTask::sync(
    ///     Signature::new().collect_matching::<bool>("checks", "healthy_*").provides::<usize>("up"),
    ///     |a| Ok(Outputs::one(a.list::<bool>(0)?.into_iter().filter(|h| **h).count())),
    /// );
    /// let flow = Flow::linear("rollout")
    ///     .add(Atom::new("check-b", check("b")))
    ///     .add(Atom::new("check-a", check("a")))
    ///     .add(Atom::new("report", report));
    /// assert!(flow.build().is_ok());
    /// ```
    pub fn collect_matching<T: Data>(
        self,
        name: impl Into<Name>,
        pattern: impl Into<Name>,
    ) -> Self {
        self.input(
            name,
            TypeInfo::of::<T>(),
            InputKind::Matching(pattern.into().into_owned().into_boxed_str()),
        )
    }

    /// As [`Signature::collect_matching`], into a map keyed by symbol name.
    pub fn collect_matching_map<T: Data>(
        self,
        name: impl Into<Name>,
        pattern: impl Into<Name>,
    ) -> Self {
        self.input(
            name,
            TypeInfo::of::<T>(),
            InputKind::MatchingMap(pattern.into().into_owned().into_boxed_str()),
        )
    }

    /// Whether an input gathers symbols by a name pattern.
    pub(crate) fn has_matching(&self) -> bool {
        let sig = &self.0;
        let more = sig.more.as_ref().map_or(&[][..], |m| &m.revert_inputs[..]);
        sig.inputs
            .iter()
            .chain(more)
            .any(|i| matches!(i.kind, InputKind::Matching(_) | InputKind::MatchingMap(_)))
    }

    /// Replaces every pattern input with the collection of the symbols
    /// `names` gives for its pattern.
    pub(crate) fn expand_matching(&mut self, mut names: impl FnMut(&str) -> Box<[Name]>) {
        let mut fix = |input: &mut InputSpec| match &input.kind {
            InputKind::Matching(p) => input.kind = InputKind::Collect(names(p)),
            InputKind::MatchingMap(p) => input.kind = InputKind::CollectMap(names(p)),
            _ => {}
        };
        let data = self.data();
        data.inputs.iter_mut().for_each(&mut fix);
        if let Some(more) = &mut data.more {
            more.revert_inputs.iter_mut().for_each(&mut fix);
        }
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
