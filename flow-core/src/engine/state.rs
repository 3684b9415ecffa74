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
    /// Every state, in declaration order.
    ///
    /// ```
    /// use flow::AtomState;
    /// assert_eq!(AtomState::ALL.len(), 9);
    /// assert_eq!(AtomState::ALL[1], AtomState::Running);
    /// ```
    pub const ALL: [AtomState; 9] = [
        AtomState::Pending,
        AtomState::Running,
        AtomState::Success,
        AtomState::Failure,
        AtomState::Reverting,
        AtomState::Reverted,
        AtomState::RevertFailure,
        AtomState::Ignore,
        AtomState::Retrying,
    ];

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
    /// Every state, in declaration order.
    ///
    /// ```
    /// use flow::FlowState;
    /// assert_eq!(FlowState::ALL.len(), 8);
    /// assert_eq!(FlowState::ALL[7], FlowState::Resuming);
    /// ```
    pub const ALL: [FlowState; 8] = [
        FlowState::Pending,
        FlowState::Running,
        FlowState::Success,
        FlowState::Failure,
        FlowState::Reverted,
        FlowState::Suspending,
        FlowState::Suspended,
        FlowState::Resuming,
    ];

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

/// Whether an atom may go from `from` to `to`: the table of semantics.md,
/// with one move more for retry controllers, `RETRYING -> REVERTING` (a
/// controller waiting out its backoff is reverted with its sub-flow when a
/// failure elsewhere, or a cancel, reverts everything).
///
/// Every state an engine announces to its listeners follows this table.
/// Recovery from an interruption is not a move of the table: an atom caught
/// `RUNNING` is put back to `PENDING` and one caught `REVERTING` back to what
/// it was, silently, and the next state announced is `RUNNING` or
/// `REVERTING` again.
///
/// ```
/// use flow::{AtomKind, AtomState::*, atom_transition_allowed};
/// assert!(atom_transition_allowed(AtomKind::Task, Pending, Running));
/// assert!(!atom_transition_allowed(AtomKind::Task, Pending, Success));
/// assert!(atom_transition_allowed(AtomKind::Retry, Success, Retrying));
/// assert!(!atom_transition_allowed(AtomKind::Task, Success, Retrying));
/// assert!(atom_transition_allowed(AtomKind::Retry, Retrying, Reverting));
/// ```
#[inline]
pub fn atom_transition_allowed(kind: AtomKind, from: AtomState, to: AtomState) -> bool {
    let mut allowed = TASK_MOVES[from as usize];
    if kind == AtomKind::Retry {
        allowed |= RETRY_MOVES[from as usize];
    }
    allowed & 1 << to as u16 != 0
}

/// The states in `to`, one bit each.
const fn bits(to: &[AtomState]) -> u16 {
    let mut out = 0;
    let mut k = 0;
    while k < to.len() {
        out |= 1 << to[k] as u16;
        k += 1;
    }
    out
}

/// Where any atom may go from each state (indexed by the state).
const TASK_MOVES: [u16; 9] = {
    use AtomState::*;
    let mut t = [0; 9];
    t[Pending as usize] = bits(&[Running, Ignore]);
    t[Running as usize] = bits(&[Success, Failure]);
    t[Success as usize] = bits(&[Reverting]);
    t[Failure as usize] = bits(&[Reverting]);
    t[Reverting as usize] = bits(&[Reverted, RevertFailure]);
    t[Reverted as usize] = bits(&[Pending]);
    t[Ignore as usize] = bits(&[Pending]);
    t
};

/// Where a retry controller may also go.
const RETRY_MOVES: [u16; 9] = {
    use AtomState::*;
    let mut t = [0; 9];
    t[Success as usize] = bits(&[Retrying]);
    // A controller waiting out its backoff is reverted with its sub-flow
    // when everything is reverted (a failure elsewhere, a cancel).
    t[Retrying as usize] = bits(&[Running, Reverting]);
    t
};

/// Whether a flow may go from `from` to `to`.
///
/// ```
/// use flow::{FlowState::*, flow_transition_allowed};
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

#[inline]
pub(crate) fn check_atom(
    kind: AtomKind,
    name: &str,
    from: AtomState,
    to: AtomState,
) -> Result<(), TransitionError> {
    if atom_transition_allowed(kind, from, to) {
        Ok(())
    } else {
        Err(illegal_atom_move(name, from, to))
    }
}

#[cold]
#[inline(never)]
fn illegal_atom_move(name: &str, from: AtomState, to: AtomState) -> TransitionError {
    TransitionError {
        what: "atom",
        name: name.to_string(),
        from: from.as_str(),
        to: to.as_str(),
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

#[cfg(test)]
mod tests {
    use super::{AtomKind, AtomState, atom_transition_allowed, check_atom};

    /// Every allowed move, written out one by one.
    fn listed(kind: AtomKind, from: AtomState, to: AtomState) -> bool {
        use AtomState::*;
        match (from, to) {
            (Pending, Running | Ignore)
            | (Running, Success | Failure)
            | (Success | Failure, Reverting)
            | (Reverting, Reverted | RevertFailure)
            | (Reverted | Ignore, Pending) => true,
            (Success, Retrying) | (Retrying, Running | Reverting) => kind == AtomKind::Retry,
            _ => false,
        }
    }

    #[test]
    fn the_table_allows_exactly_the_listed_moves() {
        let mut allowed = 0;
        for kind in [AtomKind::Task, AtomKind::Retry] {
            for from in AtomState::ALL {
                for to in AtomState::ALL {
                    let ok = atom_transition_allowed(kind, from, to);
                    assert_eq!(ok, listed(kind, from, to), "{kind:?} {from:?} -> {to:?}");
                    allowed += usize::from(ok);
                }
            }
        }
        // 10 moves for a task, 13 for a controller.
        assert_eq!(allowed, 23);
    }

    #[test]
    fn an_illegal_move_names_the_atom_and_both_states() {
        let e = check_atom(
            AtomKind::Task,
            "backup",
            AtomState::Pending,
            AtomState::Success,
        )
        .expect_err("pending cannot become success");
        assert_eq!(
            e.to_string(),
            "illegal state change of atom `backup`: PENDING -> SUCCESS"
        );
    }
}
