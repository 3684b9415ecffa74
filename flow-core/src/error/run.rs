//! Why a run did not end in success.

use super::{AtomFailure, BuildErrors};
use crate::storage::{FlowId, StorageError};

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
    /// Another engine claimed the run since this one did, or this one's
    /// lease ran out before a renewal reached the store (its process hung,
    /// or could not reach the store), so that anyone may claim it. Nothing
    /// more was written or started here.
    ///
    /// ```
    /// use flow::{FlowId, RunError};
    ///
    /// let run = FlowId::new();
    /// let taken = RunError::OwnershipLost {
    ///     flow: "deploy".into(),
    ///     run,
    ///     fence: 1,
    ///     current: 2,
    ///     holder: Some("host-b".into()),
    /// };
    /// assert_eq!(
    ///     taken.to_string(),
    ///     format!(
    ///         "flow `deploy`: run {run} was claimed by `host-b` (fencing number 2, ours 1): \
    ///          this engine stopped and left the run to its new owner"
    ///     )
    /// );
    /// let lapsed = RunError::OwnershipLost {
    ///     flow: "deploy".into(),
    ///     run,
    ///     fence: 1,
    ///     current: 1,
    ///     holder: None,
    /// };
    /// assert_eq!(
    ///     lapsed.to_string(),
    ///     format!(
    ///         "flow `deploy`: the lease of run {run} ran out before a renewal reached the \
    ///          store (fencing number 1): this engine stopped; another may take the run over, \
    ///          or resume it"
    ///     )
    /// );
    /// ```
    #[error("{}", lost_message(flow, run, *fence, *current, holder.as_deref()))]
    OwnershipLost {
        /// The flow.
        flow: String,
        /// The run.
        run: FlowId,
        /// The fencing number of this engine's claim.
        fence: u64,
        /// The run's fencing number in the store.
        current: u64,
        /// Who holds the run now, if the store said.
        holder: Option<String>,
    },
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

/// The sentence of [`RunError::OwnershipLost`]: a claim by another engine,
/// or this engine's own lease run out (same fencing number, no holder).
fn lost_message(
    flow: &str,
    run: &FlowId,
    fence: u64,
    current: u64,
    holder: Option<&str>,
) -> String {
    match holder {
        None if current == fence => format!(
            "flow `{flow}`: the lease of run {run} ran out before a renewal reached the store \
             (fencing number {fence}): this engine stopped; another may take the run over, or \
             resume it"
        ),
        _ => format!(
            "flow `{flow}`: run {run} was claimed by {} (fencing number {current}, ours {fence}): \
             this engine stopped and left the run to its new owner",
            holder.map_or_else(|| "another engine".to_string(), |h| format!("`{h}`"))
        ),
    }
}
