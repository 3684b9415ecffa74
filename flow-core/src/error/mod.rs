//! Public error types: one per operation.

use std::fmt;

use crate::failure::Failure;

mod group;
mod resume;
mod run;

pub use group::GroupProblem;

pub use resume::ResumeError;
pub use run::RunError;

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
    /// Two atoms of the tree share a name, or two items of one flow do (two
    /// sub-flows, or a sub-flow and an atom).
    #[error("{}", duplicate_message(.name, .first, .second))]
    DuplicateName {
        /// The name.
        name: String,
        /// The first item's path in the tree; a flow's ends with `/`.
        first: String,
        /// The second item's path in the tree; a flow's ends with `/`.
        second: String,
    },
    /// Flows nest deeper than [`Flow::MAX_DEPTH`](crate::Flow::MAX_DEPTH).
    #[error(
        "flow `{flow}` is nested {depth} flows deep, deeper than the limit of {limit}: flatten \
         the tree, for example by adding the items of a nested linear flow to the linear flow \
         holding it"
    )]
    TooDeep {
        /// The deepest flow (the first in declaration order among the deepest).
        flow: String,
        /// How deep it is nested: 1 for the root flow, 2 for a flow in it.
        depth: usize,
        /// The limit, [`Flow::MAX_DEPTH`](crate::Flow::MAX_DEPTH).
        limit: usize,
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
    /// The contents of a group that `flow!` takes at run time
    /// (`group name(..) -> (..) = expr`) do not match the interface declared
    /// for it.
    #[error("{}", .problem.text(.group))]
    GroupInterface {
        /// The group.
        group: String,
        /// What does not match.
        problem: GroupProblem,
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

fn duplicate_message(name: &str, first: &str, second: &str) -> String {
    let kind = |path: &str| if path.ends_with('/') { "flow" } else { "atom" };
    let (who, rule) = match (kind(first), kind(second)) {
        ("atom", "atom") => ("two atoms are", "names must be unique in a flow tree"),
        ("flow", "flow") => ("two flows are", "the items of a flow need distinct names"),
        ("atom", _) => (
            "an atom and a flow are",
            "the items of a flow need distinct names",
        ),
        _ => (
            "a flow and an atom are",
            "the items of a flow need distinct names",
        ),
    };
    // Two sibling items of one name have one path: it is said once.
    if first == second {
        format!("{who} named `{name}` at `{first}`: {rule}, rename one")
    } else {
        format!("{who} named `{name}`, at `{first}` and at `{second}`: {rule}, rename one")
    }
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
/// use flow::{Atom, Flow, FnTask, Outputs, Signature};
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
