//! What a run-time group of `flow!` can get wrong: its contents against the
//! interface the flow declares for it.

use std::fmt;

/// How the contents of a group built at run time disagree with the interface
/// `flow!` declares for it (`group name(inputs) -> (outputs) = expr`); see
/// [`BuildError::GroupInterface`](crate::BuildError::GroupInterface).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupProblem {
    /// A task of the group requires a symbol that no task of the group
    /// provides and the group does not declare as an input.
    UndeclaredInput {
        /// The task.
        atom: String,
        /// The symbol.
        symbol: String,
        /// The type it requires.
        type_name: String,
    },
    /// A task of the group requires a declared input as another type.
    InputType {
        /// The task.
        atom: String,
        /// The symbol.
        symbol: String,
        /// The type declared.
        declared: String,
        /// The type the task requires.
        required: String,
    },
    /// No task of the group provides a declared output (for a pattern: no
    /// symbol matching it).
    MissingOutput {
        /// The symbol or pattern.
        symbol: String,
        /// The type declared.
        type_name: String,
    },
    /// A task of the group provides a declared output (or a symbol matching a
    /// declared pattern) as another type.
    OutputType {
        /// The task.
        atom: String,
        /// The symbol provided.
        symbol: String,
        /// The declared symbol or pattern.
        declared_symbol: String,
        /// The type declared.
        declared: String,
        /// The type provided.
        provided: String,
    },
    /// A task of the group provides a symbol the group does not declare.
    UndeclaredOutput {
        /// The task.
        atom: String,
        /// The symbol.
        symbol: String,
        /// Its type.
        type_name: String,
    },
}

impl GroupProblem {
    /// The sentence, after "group `name` ".
    pub(crate) fn text(&self, group: &str) -> String {
        match self {
            GroupProblem::UndeclaredInput {
                atom,
                symbol,
                type_name,
            } => format!(
                "group `{group}` holds task `{atom}`, which requires `{symbol}: {type_name}`, but \
                 no task of the group provides it and the group does not declare it: add \
                 `{symbol}: {type_name}` to the group's inputs in `flow!`"
            ),
            GroupProblem::InputType {
                atom,
                symbol,
                declared,
                required,
            } => format!(
                "group `{group}` declares the input `{symbol}: {declared}`, but its task `{atom}` \
                 requires `{symbol}` as `{required}`: make the types agree"
            ),
            GroupProblem::MissingOutput { symbol, type_name } => {
                let what = if symbol.contains('*') {
                    format!("a symbol matching `{symbol}`")
                } else {
                    format!("`{symbol}`")
                };
                format!(
                    "group `{group}` declares that it provides `{symbol}: {type_name}`, but no \
                     task of the group provides {what}: add a task that does, or remove the \
                     output from the group's declaration"
                )
            }
            GroupProblem::OutputType {
                atom,
                symbol,
                declared_symbol,
                declared,
                provided,
            } => format!(
                "group `{group}` declares that it provides `{declared_symbol}: {declared}`, but \
                 its task `{atom}` provides `{symbol}` as `{provided}`: make the types agree"
            ),
            GroupProblem::UndeclaredOutput {
                atom,
                symbol,
                type_name,
            } => format!(
                "group `{group}` holds task `{atom}`, which provides `{symbol}: {type_name}`, but \
                 the group does not declare it: add `{symbol}: {type_name}` (or a pattern \
                 matching it) to the group's outputs in `flow!`"
            ),
        }
    }
}

impl fmt::Display for GroupProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text("?"))
    }
}
