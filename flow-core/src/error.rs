//! Public error types: one per operation.

use std::fmt;

use crate::failure::Failure;
use crate::storage::{FlowId, StorageError};
use crate::symbol::CodecError;

/// Whether a requirement belongs to `execute` or to `revert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The task's `execute`.
    Execute,
    /// The task's `revert`.
    Revert,
}

/// Why no provider could be used for a requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// Nothing in the flow provides the symbol, and it is not a declared input.
    Nowhere,
    /// Only an atom that does not run before the requiring one provides it.
    RunsAfter {
        /// The provider.
        provider: String,
    },
    /// Only an atom of the same unordered group provides it.
    Concurrent {
        /// The provider.
        provider: String,
        /// The unordered flow holding both.
        group: String,
    },
}

/// A problem that keeps a flow from being built. [`Flow::build`](crate::Flow::build)
/// reports all of them together in [`BuildErrors`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A task requires a symbol that nothing visible provides.
    #[error("{}", missing_message(.atom, .symbol, .type_name, *.method, .flow, .reason))]
    MissingRequirement {
        /// The requiring atom.
        atom: String,
        /// The symbol read (after rebinding).
        symbol: String,
        /// The type required.
        type_name: String,
        /// `execute` or `revert`.
        method: Method,
        /// The root flow.
        flow: String,
        /// What was found instead.
        reason: Missing,
    },
    /// The nearest provider of a symbol provides it with another type.
    #[error(
        "task `{atom}` requires `{symbol}: {expected}`, but its provider `{provider}` provides \
         `{symbol}` as `{provided}`: make the types agree, or rebind the input to another symbol"
    )]
    TypeMismatch {
        /// The requiring atom.
        atom: String,
        /// The symbol.
        symbol: String,
        /// The type required.
        expected: String,
        /// The provider: an atom, `the flow's inputs`, or `an injected value`.
        provider: String,
        /// The type provided.
        provided: String,
    },
    /// Several providers that run in no fixed order provide a required symbol.
    #[error(
        "task `{atom}` requires `{symbol}`, but several tasks with no order between them \
         provide it: {}; rename an output with `provides_as` or rebind the input",
        quote_list(.providers)
    )]
    AmbiguousProvider {
        /// The requiring atom.
        atom: String,
        /// The symbol.
        symbol: String,
        /// The providers.
        providers: Vec<String>,
    },
    /// The links of a graph flow, explicit and inferred, form a cycle.
    #[error(
        "graph flow `{flow}` has a cycle: {}; remove a link or an input that closes it",
        cycle_text(.atoms)
    )]
    Cycle {
        /// The graph flow.
        flow: String,
        /// The items on the cycle, in order.
        atoms: Vec<String>,
    },
    /// Two atoms share a name.
    #[error(
        "two atoms are named `{name}`, at `{first}` and at `{second}`: names must be unique \
         in a flow tree, rename one"
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// The first atom's path in the tree.
        first: String,
        /// The second atom's path in the tree.
        second: String,
    },
    /// A graph link names something that is not an item of that graph.
    #[error(
        "graph flow `{flow}` links `{from}` -> `{to}`, but `{unknown}` is not an item of that \
         graph: link only atoms or flows added to it"
    )]
    UnknownLink {
        /// The graph flow.
        flow: String,
        /// The link's source.
        from: String,
        /// The link's target.
        to: String,
        /// The name that was not found.
        unknown: String,
    },
    /// A retry controller is attached to a flow with no atom to control.
    #[error(
        "retry controller `{retry}` of flow `{flow}` has nothing to control: add atoms to the \
         flow, or remove the controller"
    )]
    EmptyRetry {
        /// The controller.
        retry: String,
        /// The flow it is attached to.
        flow: String,
    },
    /// A decider link starts at a nested flow: a decider reads an atom's result.
    #[error(
        "graph flow `{flow}` has a decider on the link `{from}` -> `{to}`, but `{from}` is a \
         flow: a decider reads an atom's result, so link from an atom"
    )]
    DeciderFromFlow {
        /// The graph flow.
        flow: String,
        /// The link's source.
        from: String,
        /// The link's target.
        to: String,
    },
    /// A flow input is declared twice with different types.
    #[error(
        "the flow input `{symbol}` is declared as `{first}` and as `{second}`: declare it once"
    )]
    ConflictingInput {
        /// The input.
        symbol: String,
        /// The first type.
        first: String,
        /// The second type.
        second: String,
    },
    /// An injected value or a use-site option names an input or output the task
    /// does not have.
    #[error("atom `{atom}` {what} `{name}`, but its task has no such {kind}: {hint}")]
    UnknownParameter {
        /// The atom.
        atom: String,
        /// What the option does (`injects`, `rebinds`, `renames`).
        what: &'static str,
        /// The name given.
        name: String,
        /// `input` or `output`.
        kind: &'static str,
        /// What the task has.
        hint: String,
    },
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cycle_text(atoms: &[String]) -> String {
    let mut s = quote_list(atoms).replace(", ", " -> ");
    if let Some(first) = atoms.first() {
        s.push_str(&format!(" -> `{first}`"));
    }
    s
}

fn missing_message(
    atom: &str,
    symbol: &str,
    ty: &str,
    method: Method,
    flow: &str,
    reason: &Missing,
) -> String {
    let to = match method {
        Method::Execute => "",
        Method::Revert => " to revert",
    };
    match reason {
        Missing::Nowhere => format!(
            "task `{atom}` requires `{symbol}: {ty}`{to}, but no earlier task in flow `{flow}` \
             provides `{symbol}` and the flow does not declare it as an input"
        ),
        Missing::RunsAfter { provider } => format!(
            "task `{atom}` requires `{symbol}: {ty}`{to}, but `{symbol}` is provided only by \
             `{provider}`, which does not run before it: move `{provider}` earlier"
        ),
        Missing::Concurrent { provider, group } => format!(
            "task `{atom}` requires `{symbol}: {ty}`{to}, but `{symbol}` is provided only by \
             `{provider}`, which runs concurrently with it (same unordered group `{group}`)"
        ),
    }
}

/// Every problem found while building a flow.
///
/// ```
/// use flow_core::{Atom, Flow, FnTask, Outputs, Signature};
/// let needs_x = FnTask::sync(Signature::new().requires::<u32>("x"), |_| Ok(Outputs::new()));
/// let err = Flow::linear("f").add(Atom::new("t", needs_x)).build().unwrap_err();
/// assert_eq!(
///     err.errors()[0].to_string(),
///     "task `t` requires `x: u32`, but no earlier task in flow `f` provides `x` and the flow \
///      does not declare it as an input"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildErrors {
    flow: String,
    errors: Vec<BuildError>,
}

impl BuildErrors {
    pub(crate) fn new(flow: String, errors: Vec<BuildError>) -> Self {
        BuildErrors { flow, errors }
    }

    /// The problems, in the order found (tree order).
    pub fn errors(&self) -> &[BuildError] {
        &self.errors
    }

    /// The name of the flow that failed to build.
    pub fn flow(&self) -> &str {
        &self.flow
    }
}

impl fmt::Display for BuildErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "flow `{}` is invalid: {one}", self.flow),
            many => {
                write!(f, "flow `{}` has {} problems:", self.flow, many.len())?;
                for e in many {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BuildErrors {}

impl IntoIterator for BuildErrors {
    type Item = BuildError;
    type IntoIter = std::vec::IntoIter<BuildError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// A failure attributed to the atom where it happened.
#[derive(Clone, Debug)]
pub struct AtomFailure {
    /// The atom's name.
    pub atom: String,
    /// What happened.
    pub failure: Failure,
}

impl fmt::Display for AtomFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task `{}` failed: {}", self.atom, self.failure.message())
    }
}

fn cancel_detail(failures: &[AtomFailure]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!("; meanwhile: {}", list_failures(failures))
    }
}

fn list_failures(failures: &[AtomFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a run did not end in success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Tasks failed and everything that ran was reverted.
    #[error("flow `{flow}` was reverted: {}", list_failures(.failures))]
    Reverted {
        /// The flow.
        flow: String,
        /// Every original failure, in the order they happened.
        failures: Vec<AtomFailure>,
    },
    /// The run was cancelled through a [`RunHandle`](crate::RunHandle); what
    /// had run was reverted.
    #[error("flow `{flow}` was cancelled and what had run was reverted{}", cancel_detail(.failures))]
    Cancelled {
        /// The flow.
        flow: String,
        /// Failures that happened meanwhile (tasks that stopped on the
        /// cancellation, for example).
        failures: Vec<AtomFailure>,
    },
    /// The run was suspended through a [`RunHandle`](crate::RunHandle); run the
    /// engine again to continue. Not a failure.
    #[error("flow `{flow}` was suspended: run it again to continue")]
    Suspended {
        /// The flow.
        flow: String,
    },
    /// A revert failed: the flow ended `Failure` and needs attention (then
    /// [`Engine::reset`](crate::Engine::reset)).
    #[error(
        "flow `{flow}` failed and could not be fully reverted: {}; after: {}",
        list_failures(.revert_failures),
        list_failures(.failures)
    )]
    RevertFailed {
        /// The flow.
        flow: String,
        /// The failures of `revert`.
        revert_failures: Vec<AtomFailure>,
        /// The original failures that started the revert.
        failures: Vec<AtomFailure>,
    },
    /// The flow ended `Failure` in an earlier run; call
    /// [`Engine::reset`](crate::Engine::reset) before running it again.
    #[error("flow `{flow}` ended in failure earlier: call `reset()` before running it again")]
    NeedsReset {
        /// The flow.
        flow: String,
    },
    /// A declared input is missing from the store.
    #[error(
        "flow `{flow}` declares the input `{symbol}: {type_name}`, but the store has no `{symbol}`"
    )]
    MissingInput {
        /// The flow.
        flow: String,
        /// The input.
        symbol: String,
        /// Its type.
        type_name: String,
    },
    /// A store value has another type than its declared input.
    #[error(
        "flow `{flow}` declares the input `{symbol}: {expected}`, but the store holds a `{actual}`"
    )]
    InputType {
        /// The flow.
        flow: String,
        /// The input.
        symbol: String,
        /// The declared type.
        expected: String,
        /// The type given.
        actual: String,
    },
    /// The engine needs a tokio runtime (parallel mode, or blocking tasks) and
    /// was run outside one.
    #[error(
        "flow `{flow}` needs a tokio runtime to run {why}: run the engine inside one \
         (for example under `#[tokio::main]`)"
    )]
    NoRuntime {
        /// The flow.
        flow: String,
        /// What needs it.
        why: &'static str,
    },
    /// The run succeeded, but a declared output was not produced (its
    /// provider was ignored by a decider).
    #[error(
        "flow `{flow}` finished without all of its declared outputs: a decider skipped a task \
         that provides one; read the outputs with `Engine::fetch` instead"
    )]
    MissingOutputs {
        /// The flow.
        flow: String,
    },
    /// The flow could not be built (a typed flow builds when it is made; see
    /// [`TypedFlow`](crate::TypedFlow)).
    #[error(transparent)]
    Build(#[from] BuildErrors),
    /// The journal could not be written or read.
    #[error("the journal failed: {0}")]
    Storage(#[from] StorageError),
    /// A state change broke the state table (a bug in the engine; please report it).
    #[error(transparent)]
    Transition(#[from] crate::engine::state::TransitionError),
}

impl RunError {
    /// The original failures, for `Reverted` and `RevertFailed`.
    pub fn failures(&self) -> &[AtomFailure] {
        match self {
            RunError::Reverted { failures, .. } | RunError::RevertFailed { failures, .. } => {
                failures
            }
            _ => &[],
        }
    }
}

/// Why a stored run could not be resumed. Nothing was run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The engine has no journal to load the run from.
    #[error(
        "cannot resume run {run} without its store: call `EngineBuilder::storage` with the \
         backend that holds it"
    )]
    NoStorage {
        /// The run.
        run: FlowId,
    },
    /// The store could not be read.
    #[error("cannot resume run {run}: {source}")]
    Storage {
        /// The run.
        run: FlowId,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// The run belongs to another flow.
    #[error(
        "run {run} is a run of flow `{stored}`, not of `{flow}`: resume it with the flow it \
         was started with"
    )]
    OtherFlow {
        /// The run.
        run: FlowId,
        /// The flow given.
        flow: String,
        /// The flow the run was started with.
        stored: String,
    },
    /// The flow's atoms differ from those of the stored run.
    #[error(
        "flow `{flow}` no longer matches run {run}: {}; resume the run with the definition it \
         was started with, or start a new run",
        describe_changes(added, removed, changed_kind)
    )]
    DefinitionChanged {
        /// The run.
        run: FlowId,
        /// The flow.
        flow: String,
        /// Atoms in the flow, not in the run.
        added: Vec<String>,
        /// Atoms in the run, not in the flow.
        removed: Vec<String>,
        /// Atoms that were tasks and are retry controllers now, or the reverse.
        changed_kind: Vec<String>,
    },
    /// A stored output no longer decodes into the type the flow declares.
    #[error(
        "run {run}: the stored `{symbol}` of atom `{atom}` no longer decodes as `{expected}` \
         ({}): keep the type able to read what was stored (serde defaults and aliases \
         help), or start a new run",
        source.reason()
    )]
    Decode {
        /// The run.
        run: FlowId,
        /// The atom.
        atom: String,
        /// The symbol (an output name, or `retry value` for a controller's history).
        symbol: String,
        /// The type the flow expects now.
        expected: String,
        /// What went wrong.
        #[source]
        source: CodecError,
    },
    /// A task declares more or fewer outputs than the run stored for it.
    #[error(
        "run {run}: atom `{atom}` stored {stored} output(s) but declares {declared} now: \
         resume with the definition the run was started with"
    )]
    OutputsChanged {
        /// The run.
        run: FlowId,
        /// The atom.
        atom: String,
        /// How many outputs the run stored.
        stored: usize,
        /// How many the task declares now.
        declared: usize,
    },
    /// A stored input no longer decodes into the type the flow declares.
    #[error(
        "run {run}: the stored input `{symbol}` no longer decodes as `{expected}` ({}): \
         keep the type able to read what was stored, or start a new run",
        source.reason()
    )]
    DecodeInput {
        /// The run.
        run: FlowId,
        /// The input.
        symbol: String,
        /// The type the flow expects now.
        expected: String,
        /// What went wrong.
        #[source]
        source: CodecError,
    },
    /// The flow declares an input the stored run does not have.
    #[error(
        "run {run} has no stored value for input `{symbol}`, which flow `{flow}` declares: \
         resume with the definition the run was started with"
    )]
    MissingInput {
        /// The run.
        run: FlowId,
        /// The flow.
        flow: String,
        /// The input.
        symbol: String,
    },
    /// Taking the run up broke the state table (a bug in the engine; please
    /// report it).
    #[error(transparent)]
    Transition(#[from] crate::engine::state::TransitionError),
}

fn list_names(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_changes(added: &[String], removed: &[String], changed_kind: &[String]) -> String {
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("atoms added: {}", list_names(added)));
    }
    if !removed.is_empty() {
        let hint = if added.is_empty() {
            ""
        } else {
            " (a renamed atom shows as removed and added)"
        };
        parts.push(format!("atoms removed: {}{hint}", list_names(removed)));
    }
    if !changed_kind.is_empty() {
        parts.push(format!(
            "atoms changed between task and retry controller: {}",
            list_names(changed_kind)
        ));
    }
    parts.join("; ")
}
