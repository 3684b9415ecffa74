//! The journal: every state, intention, result, failure and progress change of a
//! run, written through one narrow, fallible, asynchronous trait.
//!
//! The models follow the *logbook → flow detail → atom detail* shape: a
//! [`LogBook`] groups runs, a [`FlowDetail`] is one run (its state and inputs), an
//! [`AtomDetail`] is one atom of a run (retry controllers keep their history in
//! its metadata). Values are stored as JSON, through serde: the codec of each
//! symbol comes with its declared type.
//!
//! Backends implement [`Backend`]:
//! - [`SqliteBackend`] (feature `sqlite`, on by default), the embedded default:
//!   one file, durable by default, group commit across concurrent runs;
//! - [`MemoryBackend`] keeps everything in memory.
//!
//! # When the journal is written
//!
//! An engine with a journal writes what changed before it starts each atom:
//! an atom's `RUNNING` is on disk before its `execute` is called, and its
//! result is on disk before any atom that depends on it starts. The end of a
//! run is written before [`Engine::run`](crate::Engine::run) returns. Progress
//! reaches the journal with the atom's next write.
//!
//! # Resuming
//!
//! [`EngineBuilder::resume`](crate::EngineBuilder::resume) takes a stored run
//! up with the same flow definition; its documentation says what happens to
//! each state. Where the semantics leave a choice, this library does this:
//! - a revert repeated after a crash sees the same
//!   [`Context::attempt`](crate::Context::attempt) as the first try (the
//!   number of the execution it undoes); a repeated `execute` sees the next
//!   number;
//! - a retry controller caught waiting out its backoff starts its next
//!   attempt at once: the wait is not repeated;
//! - a `Failure` is resolved again only when the journal does not hold its
//!   consequences (the intentions it set); one already being reverted goes on
//!   being reverted;
//! - the run's inputs come from the journal; inputs given to the builder are
//!   ignored;
//! - a stored revert result comes back as a `serde_json::Value` (a revert's
//!   result has no declared type).

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::engine::state::{AtomKind, AtomState, FlowState, Intention};
use crate::failure::Failure;

pub use memory::MemoryBackend;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteBackend, SqliteOptions, SqliteStats, Synchronous};

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                $name(uuid::Uuid::new_v4())
            }

            /// The id as 16 bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                uuid::Uuid::parse_str(s).map($name).map_err(|_| IdError(s.to_string()))
            }
        }
    };
}

id_type!(
    /// The id of a logbook.
    LogbookId
);
id_type!(
    /// The id of a run (a flow detail).
    FlowId
);

/// A string that is not an id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an id: ids look like 67e55044-10b1-426f-9247-bb680e5fe0c8")]
pub struct IdError(String);

/// Seconds since the Unix epoch, for timestamps in the journal.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A group of runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogBook {
    /// Its id.
    pub id: LogbookId,
    /// Its name.
    pub name: String,
    /// When it was created (seconds since the Unix epoch).
    pub created_at: f64,
    /// When it last changed.
    pub updated_at: f64,
    /// Free-form metadata.
    pub meta: serde_json::Value,
}

/// One run of a flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowDetail {
    /// The run's id.
    pub id: FlowId,
    /// The logbook it belongs to.
    pub logbook: LogbookId,
    /// The flow's name.
    pub name: String,
    /// The flow's state.
    pub state: FlowState,
    /// Metadata; `inputs` holds the run's store as JSON.
    pub meta: serde_json::Value,
    /// When it last changed (seconds since the Unix epoch).
    pub updated_at: f64,
}

/// One atom of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtomDetail {
    /// The atom's name (unique in its flow).
    pub name: String,
    /// Task or retry controller.
    pub kind: AtomKind,
    /// The state.
    pub state: AtomState,
    /// The intention.
    pub intention: Intention,
    /// The outputs of `execute` as a JSON array, in declared order.
    pub result: Option<serde_json::Value>,
    /// The failure of `execute`.
    pub failure: Option<Failure>,
    /// The result of `revert`.
    pub revert_result: Option<serde_json::Value>,
    /// The failure of `revert`.
    pub revert_failure: Option<Failure>,
    /// The latest progress, from 0.0 to 1.0.
    pub progress: f32,
    /// How many times `execute` was started.
    pub attempts: u32,
    /// Bumped by every write of this detail.
    pub version: u64,
    /// Free-form metadata.
    pub meta: serde_json::Value,
}

/// The operation of a [`Backend`] that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening the store (and bringing its schema up to date).
    Open,
    /// [`Backend::save_logbook`].
    SaveLogbook,
    /// [`Backend::save_flow`].
    SaveFlow,
    /// [`Backend::save_atoms`].
    SaveAtoms,
    /// [`Backend::load_flow`].
    LoadFlow,
    /// [`Backend::list_flows`].
    ListFlows,
}

impl Operation {
    /// The operation as messages print it: `open`, `save_atoms`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Open => "open",
            Operation::SaveLogbook => "save_logbook",
            Operation::SaveFlow => "save_flow",
            Operation::SaveAtoms => "save_atoms",
            Operation::LoadFlow => "load_flow",
            Operation::ListFlows => "list_flows",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The run is not in the store.
    #[error("no run with id {0} in the store: list the runs with `Backend::list_flows`")]
    NotFound(FlowId),
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
            | StorageError::Corrupt { op, .. }
            | StorageError::Backend { op, .. } => Some(*op),
            StorageError::NotAStore { .. } | StorageError::NewerSchema { .. } => {
                Some(Operation::Open)
            }
            StorageError::NotFound(_) | StorageError::Encode { .. } => None,
        }
    }
}

/// A journal backend: narrow, asynchronous, fallible.
///
/// Writes are idempotent upserts keyed by id (logbooks, runs) and by
/// `(run, atom name)` (atom details). A backend must make a write durable, to the
/// degree it promises, before its future resolves: the engine starts an atom only
/// after its `RUNNING` state was written.
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Creates or updates a logbook.
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Creates or updates a run.
    fn save_flow(&self, flow: FlowDetail) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Creates or updates atom details of a run, all or none.
    fn save_atoms(
        &self,
        flow: FlowId,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>>;

    /// A run and its atoms (in no particular order).
    fn load_flow(
        &self,
        flow: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>>;

    /// Every run in the store.
    fn list_flows(&self) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>>;
}
