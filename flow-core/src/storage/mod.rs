//! The journal: every state, intention, result, failure and progress change of a
//! run, written through one narrow, fallible, asynchronous trait.
//!
//! The models follow the *logbook → flow detail → atom detail* shape: a
//! [`LogBook`] groups runs, a [`FlowDetail`] is one run (its state and inputs), an
//! [`AtomDetail`] is one atom of a run (retry controllers keep their history in
//! its metadata). Values are stored as JSON, through serde: the codec of each
//! symbol comes with its declared type.
//!
//! A run has at most one live owner: see [`Backend`] for claims, leases and
//! fencing numbers, which the engines use on their own.
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

mod backend;
mod checksum;
mod error;
mod jobs;
mod memory;
mod memory_jobs;
mod model;
#[cfg(any(feature = "sqlite", feature = "system-sqlite"))]
mod sqlite;
mod watch;

use std::time::{SystemTime, UNIX_EPOCH};

pub use backend::Backend;
pub use checksum::{
    atom_checksum, definition_checksum, flow_checksum, job_checksum, verify as verify_checksum,
};
pub(crate) use error::When;
pub use error::{Operation, StorageError};
pub use jobs::{Claimed, Job, JobBoard, JobClaim, JobOutcome, JobQuery, JobState, NewJob, Pick};
pub use memory::MemoryBackend;
pub use model::{
    AtomDetail, Claim, Definition, FlowDetail, FlowId, FlowQuery, IdError, JobId, Lease, LogBook,
    LogbookId, Ownership, definition_id,
};
#[cfg(any(feature = "sqlite", feature = "system-sqlite"))]
pub use sqlite::{SqliteBackend, SqliteOptions, SqliteStats, Synchronous};
pub use watch::{RunChange, RunWatch};

/// Seconds since the Unix epoch, for timestamps in the journal.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
