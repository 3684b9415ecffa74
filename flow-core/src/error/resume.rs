//! Why a stored run could not be taken up.

use crate::storage::{FlowId, StorageError, When};
use crate::symbol::CodecError;

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
    /// Another engine holds the run and its lease is live: it is running
    /// it (or hung less than a lease ago).
    #[error(
        "cannot resume run {run}: it is held by `{owner}` until {} (its lease): wait for that \
         engine to finish or for its lease to run out (`EngineBuilder::wait_for_lease`), or stop \
         that process",
        When(*.expires_at)
    )]
    Owned {
        /// The run.
        run: FlowId,
        /// Who holds it.
        owner: String,
        /// When its lease ends (seconds since the Unix epoch, by the store's clock).
        expires_at: f64,
    },
    /// The stored run contradicts itself: a record was lost or altered.
    /// Nothing is guessed.
    #[error(
        "cannot resume run {run}: the store is damaged{}: {detail}; restore the store from a \
         backup, or start a new run",
        .atom.as_ref().map(|a| format!(" at atom `{a}`")).unwrap_or_default()
    )]
    Damaged {
        /// The run.
        run: FlowId,
        /// The atom whose record is wrong, when one is.
        atom: Option<String>,
        /// What is wrong.
        detail: String,
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
