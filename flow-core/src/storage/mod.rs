//! The journal: every state, intention, result, failure and progress change of a
//! run, written through one narrow, fallible, asynchronous trait.
//!
//! The models follow the *logbook → flow detail → atom detail* shape: a
//! [`LogBook`] groups runs, a [`FlowDetail`] is one run (its state and inputs), an
//! [`AtomDetail`] is one atom of a run. Values are stored as JSON.
//!
//! Backends implement [`Backend`]; [`MemoryBackend`] keeps everything in memory.

mod memory;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::engine::state::{AtomKind, AtomState, FlowState, Intention};
use crate::failure::Failure;

pub use memory::MemoryBackend;

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

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The run is not in the store.
    #[error("no run with id {0} in the store")]
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
    /// The backend failed.
    #[error("the storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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
