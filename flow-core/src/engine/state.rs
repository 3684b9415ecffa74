//! States and intentions, and the one table that says which changes are legal.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of an atom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AtomState {
    /// Not run yet (or reset).
    Pending,
    /// `execute` is under way.
    Running,
    /// `execute` succeeded.
    Success,
    /// `execute` failed.
    Failure,
    /// `revert` is under way.
    Reverting,
    /// `revert` succeeded.
    Reverted,
    /// `revert` failed: terminal until the flow is reset.
    RevertFailure,
    /// Skipped: counts as done for successors, skipped by revert.
    Ignore,
    /// A retry controller is about to run its sub-flow again.
    Retrying,
}

impl AtomState {
    /// The state as events print it: `PENDING`, `RUNNING`, `REVERT_FAILURE`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AtomState::Pending => "PENDING",
            AtomState::Running => "RUNNING",
            AtomState::Success => "SUCCESS",
            AtomState::Failure => "FAILURE",
            AtomState::Reverting => "REVERTING",
            AtomState::Reverted => "REVERTED",
            AtomState::RevertFailure => "REVERT_FAILURE",
            AtomState::Ignore => "IGNORE",
            AtomState::Retrying => "RETRYING",
        }
    }

    /// Whether the atom's `execute` ran to an end (and so must be reverted).
    pub fn has_executed(self) -> bool {
        matches!(self, AtomState::Success | AtomState::Failure)
    }
}

impl fmt::Display for AtomState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowState {
    /// Not run yet (or reset).
    Pending,
    /// Running or reverting.
    Running,
    /// Every atom succeeded or was ignored.
    Success,
    /// A revert failed.
    Failure,
    /// Failures were fully unwound.
    Reverted,
    /// Asked to suspend; running atoms are finishing.
    Suspending,
    /// Suspended: running again continues.
    Suspended,
    /// Being resumed from the journal.
    Resuming,
}

impl FlowState {
    /// The state as events print it.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Pending => "PENDING",
            FlowState::Running => "RUNNING",
            FlowState::Success => "SUCCESS",
            FlowState::Failure => "FAILURE",
            FlowState::Reverted => "REVERTED",
            FlowState::Suspending => "SUSPENDING",
            FlowState::Suspended => "SUSPENDED",
            FlowState::Resuming => "RESUMING",
        }
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine means to do with an atom next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Intention {
    /// Execute it.
    Execute,
    /// Revert it.
    Revert,
    /// Run it again (retry controllers).
    Retry,
    /// Skip it.
    Ignore,
}

impl Intention {
    /// The intention as the journal stores it: `EXECUTE`, `REVERT`, `RETRY`,
    /// `IGNORE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Intention::Execute => "EXECUTE",
            Intention::Revert => "REVERT",
            Intention::Retry => "RETRY",
            Intention::Ignore => "IGNORE",
        }
    }
}

/// What an atom is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AtomKind {
    /// A task.
    Task,
    /// A retry controller.
    Retry,
}

impl AtomKind {
    /// The kind as the journal stores it: `TASK` or `RETRY`.
    pub fn as_str(self) -> &'static str {
        match self {
            AtomKind::Task => "TASK",
            AtomKind::Retry => "RETRY",
        }
    }
}

/// An illegal state change: a bug in the engine, reported rather than panicking.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal state change of {what} `{name}`: {from} -> {to}")]
pub struct TransitionError {
    what: &'static str,
    name: String,
    from: &'static str,
    to: &'static str,
}

/// Whether an atom may go from `from` to `to`.
///
/// ```
/// use flow_core::{AtomKind, AtomState::*, atom_transition_allowed};
/// assert!(atom_transition_allowed(AtomKind::Task, Pending, Running));
/// assert!(!atom_transition_allowed(AtomKind::Task, Pending, Success));
/// assert!(atom_transition_allowed(AtomKind::Retry, Success, Retrying));
/// assert!(!atom_transition_allowed(AtomKind::Task, Success, Retrying));
/// ```
pub fn atom_transition_allowed(kind: AtomKind, from: AtomState, to: AtomState) -> bool {
    use AtomState::*;
    match (from, to) {
        (Pending, Running | Ignore)
        | (Running, Success | Failure)
        | (Success | Failure, Reverting)
        | (Reverting, Reverted | RevertFailure)
        | (Reverted | Ignore, Pending) => true,
        (Success, Retrying) | (Retrying, Running) => kind == AtomKind::Retry,
        _ => false,
    }
}

/// Whether a flow may go from `from` to `to`.
///
/// ```
/// use flow_core::{FlowState::*, flow_transition_allowed};
/// assert!(flow_transition_allowed(Pending, Running));
/// assert!(flow_transition_allowed(Reverted, Pending));
/// assert!(!flow_transition_allowed(Success, Reverted));
/// ```
pub fn flow_transition_allowed(from: FlowState, to: FlowState) -> bool {
    use FlowState::*;
    matches!(
        (from, to),
        (Pending, Running)
            | (
                Running,
                Success | Failure | Reverted | Suspending | Resuming
            )
            | (Success, Running | Pending)
            | (Failure, Running)
            | (Reverted, Pending)
            | (
                Suspending,
                Suspended | Success | Failure | Reverted | Resuming
            )
            | (Suspended, Running)
            | (Resuming, Suspended)
    )
}

pub(crate) fn check_atom(
    kind: AtomKind,
    name: &str,
    from: AtomState,
    to: AtomState,
) -> Result<(), TransitionError> {
    if atom_transition_allowed(kind, from, to) {
        Ok(())
    } else {
        Err(TransitionError {
            what: "atom",
            name: name.to_string(),
            from: from.as_str(),
            to: to.as_str(),
        })
    }
}

pub(crate) fn check_flow(
    name: &str,
    from: FlowState,
    to: FlowState,
) -> Result<(), TransitionError> {
    if flow_transition_allowed(from, to) {
        Ok(())
    } else {
        Err(TransitionError {
            what: "flow",
            name: name.to_string(),
            from: from.as_str(),
            to: to.as_str(),
        })
    }
}
