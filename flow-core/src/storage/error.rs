//! Why the journal could not be written or read.

use std::fmt;
use std::path::PathBuf;

use super::model::FlowId;

/// The operation of a [`Backend`](crate::Backend) that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening the store (and bringing its schema up to date).
    Open,
    /// [`Backend::save_logbook`](crate::Backend::save_logbook).
    SaveLogbook,
    /// [`Backend::create_flow`](crate::Backend::create_flow).
    CreateFlow,
    /// [`Backend::save_run`](crate::Backend::save_run) and the calls made
    /// through it.
    SaveRun,
    /// [`Backend::claim_flow`](crate::Backend::claim_flow).
    Claim,
    /// [`Backend::renew_lease`](crate::Backend::renew_lease).
    Renew,
    /// [`Backend::release_flow`](crate::Backend::release_flow).
    Release,
    /// [`Backend::request_cancel`](crate::Backend::request_cancel).
    RequestCancel,
    /// [`Backend::load_flow`](crate::Backend::load_flow).
    LoadFlow,
    /// [`Backend::list_flows`](crate::Backend::list_flows).
    ListFlows,
    /// [`Backend::prune_flows`](crate::Backend::prune_flows).
    PruneFlows,
    /// [`Backend::save_definition`](crate::Backend::save_definition).
    SaveDefinition,
    /// [`Backend::load_definition`](crate::Backend::load_definition).
    LoadDefinition,
    /// [`JobBoard::post`](crate::storage::JobBoard::post).
    PostJob,
    /// [`JobBoard::claim_jobs`](crate::storage::JobBoard::claim_jobs).
    ClaimJobs,
    /// [`JobBoard::complete_job`](crate::storage::JobBoard::complete_job).
    CompleteJob,
    /// [`JobBoard::hand_back`](crate::storage::JobBoard::hand_back).
    HandBack,
    /// [`JobBoard::cancel_job`](crate::storage::JobBoard::cancel_job).
    CancelJob,
    /// [`JobBoard::load_job`](crate::storage::JobBoard::load_job) and
    /// [`JobBoard::list_jobs`](crate::storage::JobBoard::list_jobs).
    ReadJobs,
}

impl Operation {
    /// The operation as messages print it: `open`, `save_run`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Open => "open",
            Operation::SaveLogbook => "save_logbook",
            Operation::CreateFlow => "create_flow",
            Operation::SaveRun => "save_run",
            Operation::Claim => "claim_flow",
            Operation::Renew => "renew_lease",
            Operation::Release => "release_flow",
            Operation::RequestCancel => "request_cancel",
            Operation::LoadFlow => "load_flow",
            Operation::ListFlows => "list_flows",
            Operation::PruneFlows => "prune_flows",
            Operation::SaveDefinition => "save_definition",
            Operation::LoadDefinition => "load_definition",
            Operation::PostJob => "post",
            Operation::ClaimJobs => "claim_jobs",
            Operation::CompleteJob => "complete_job",
            Operation::HandBack => "hand_back",
            Operation::CancelJob => "cancel_job",
            Operation::ReadJobs => "read_jobs",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A time in seconds since the Unix epoch, as messages print it (RFC 3339,
/// UTC, to the millisecond).
pub(crate) struct When(pub(crate) f64);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::time::Duration::try_from_secs_f64(self.0) {
            Ok(since) => write!(
                f,
                "{}",
                humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + since)
            ),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The run is not in the store.
    #[error("no run with id {0} in the store: list the runs with `Backend::list_flows`")]
    NotFound(FlowId),
    /// The job is not on the board.
    #[error("no job with id {0} on the board: list the jobs with `JobBoard::list_jobs`")]
    JobNotFound(super::JobId),
    /// A run with this id is in the store already.
    #[error("a run with id {0} is in the store already: a new run needs a new id")]
    Exists(FlowId),
    /// Someone else holds the run, and its lease has not run out.
    #[error(
        "run {run} is held by `{owner}` until {} (its lease): wait for it to finish \
         or for its lease to run out, or stop that process",
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
    /// The run was claimed by someone else since this claim was made: the
    /// write was refused, and nothing of it was written.
    #[error(
        "run {run} is no longer ours: it was claimed again (fencing number {current}, ours {fence}{}); \
         nothing more is written or started for it here",
        .holder.as_ref().map(|h| format!(", now held by `{h}`")).unwrap_or_default()
    )]
    OwnershipLost {
        /// The run.
        run: FlowId,
        /// The fencing number the refused write carried.
        fence: u64,
        /// The run's fencing number in the store.
        current: u64,
        /// Who holds it now, if anyone.
        holder: Option<String>,
    },
    /// A value could not be encoded for the journal.
    #[error("atom `{atom}`: output `{symbol}` cannot be stored: {source}")]
    Encode {
        /// The atom.
        atom: String,
        /// The symbol.
        symbol: String,
        /// Why.
        #[source]
        source: crate::symbol::CodecError,
    },
    /// The file exists but is not a store of this library.
    #[error(
        "`{}` is not a flow store ({detail}): give the path of a store, or of a file that does not exist yet",
        path.display()
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The store was written by a newer version of this library.
    #[error(
        "the store `{}` has schema version {found}, newer than the {supported} this version of flow knows: \
         upgrade flow to open it",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this library knows.
        supported: i64,
    },
    /// The store's schema version is none this library ever wrote.
    #[error(
        "the store `{}` has schema version {found}, which no version of flow writes: \
         the file is damaged; restore it from a backup",
        path.display()
    )]
    UnknownSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
    },
    /// Another connection holds the store's lock for longer than the busy timeout.
    #[error(
        "{op}: the store `{}` is locked by another connection: wait for it to finish, \
         or raise the busy timeout",
        path.display()
    )]
    Locked {
        /// What was being done.
        op: Operation,
        /// The file.
        path: PathBuf,
    },
    /// The store cannot be written.
    #[error(
        "{op}: the store `{}` is read-only: open it writable (and check the permissions \
         of the file and its directory) to run flows in it",
        path.display()
    )]
    ReadOnly {
        /// What was being done.
        op: Operation,
        /// The file.
        path: PathBuf,
    },
    /// The disk (or the database's quota) is full.
    #[error(
        "{op}: the disk holding the store `{}` is full: free some space, then resume the run",
        path.display()
    )]
    DiskFull {
        /// What was being done.
        op: Operation,
        /// The file.
        path: PathBuf,
    },
    /// The store's file is damaged below the level of records (SQLite calls
    /// it "malformed").
    #[error(
        "{op}: the store `{}` is damaged (the database file is malformed): \
         restore it from a backup; `sqlite3 <file> .recover` may save what is left",
        path.display()
    )]
    Malformed {
        /// What was being done.
        op: Operation,
        /// The file.
        path: PathBuf,
    },
    /// The store's server could not be reached, and kept out of reach for
    /// longer than the backend waits for it (a database server stopped, a
    /// network cut): nothing of the operation is in the store.
    #[error(
        "{op}: the store {store} could not be reached for {}: {source}; \
         check that the server runs and can be reached, then resume the run",
        humantime::format_duration(std::time::Duration::from_millis(waited.as_millis() as u64))
    )]
    Unavailable {
        /// What was being done.
        op: Operation,
        /// Which store (its address, without a password).
        store: String,
        /// How long the backend tried.
        waited: std::time::Duration,
        /// The last error met.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored record does not read back (edited by hand, or damaged).
    #[error("{op}: a stored record is damaged: {detail}")]
    Corrupt {
        /// What was being done.
        op: Operation,
        /// What is wrong.
        detail: String,
    },
    /// The backend failed otherwise.
    #[error("{op}: the storage backend failed: {source}")]
    Backend {
        /// What was being done.
        op: Operation,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StorageError {
    /// The operation that failed, when the error says.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            StorageError::Locked { op, .. }
            | StorageError::ReadOnly { op, .. }
            | StorageError::DiskFull { op, .. }
            | StorageError::Malformed { op, .. }
            | StorageError::Corrupt { op, .. }
            | StorageError::Unavailable { op, .. }
            | StorageError::Backend { op, .. } => Some(*op),
            StorageError::NotAStore { .. }
            | StorageError::NewerSchema { .. }
            | StorageError::UnknownSchema { .. } => Some(Operation::Open),
            StorageError::Owned { .. } => Some(Operation::Claim),
            StorageError::NotFound(_)
            | StorageError::JobNotFound(_)
            | StorageError::Exists(_)
            | StorageError::OwnershipLost { .. }
            | StorageError::Encode { .. } => None,
        }
    }

    /// Whether the error says that the run belongs to someone else (held
    /// by a live owner, or claimed again since our claim).
    pub fn is_ownership(&self) -> bool {
        matches!(
            self,
            StorageError::Owned { .. } | StorageError::OwnershipLost { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::When;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(When(0.0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            When(1_700_000_000.25).to_string(),
            "2023-11-14T22:13:20.250Z"
        );
        assert_eq!(When(951_782_400.0).to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(When(f64::NAN).to_string(), "NaN");
        assert_eq!(When(-1.0).to_string(), "-1");
    }

    #[test]
    fn an_unreachable_store_says_for_how_long() {
        let e = super::StorageError::Unavailable {
            op: super::Operation::SaveRun,
            store: "postgres://flow@db1:5432/runs".into(),
            waited: std::time::Duration::from_micros(30_000_250),
            source: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "save_run: the store postgres://flow@db1:5432/runs could not be reached for 30s: \
             connection refused; check that the server runs and can be reached, then resume the run"
        );
        assert_eq!(e.operation(), Some(super::Operation::SaveRun));
        assert!(!e.is_ownership());
    }
}
