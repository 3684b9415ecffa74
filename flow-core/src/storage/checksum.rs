//! Checksums of stored records, so that a record altered below the library
//! (a flipped bit, a hand edit) reads as damaged rather than as other data.
//!
//! A checksum is the CRC-32 of the record's canonical JSON: the fields as the
//! library's models hold them, in a fixed order, JSON objects with their keys
//! sorted. It does not depend on how a backend lays the record out, so every
//! backend computes the same value for the same record.

use serde::Serialize;

use super::error::{Operation, StorageError};
use super::jobs::Job;
use super::model::{AtomDetail, FlowDetail, FlowId};

fn crc<T: Serialize>(fields: &T) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    // Writing the JSON of models into a hasher cannot fail: their maps have
    // string keys and their floats are written as numbers or null.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), fields);
    hasher.finalize()
}

struct HashWriter<'a>(&'a mut crc32fast::Hasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The checksum of a run's record: everything the engine writes (the
/// ownership, which the store keeps, apart).
///
/// ```
/// use flow::storage::flow_checksum;
/// use flow::{FlowDetail, FlowId, FlowState, LogbookId, Ownership};
/// let run = FlowDetail {
///     id: FlowId::new(), logbook: LogbookId::new(), name: "f".into(), state: FlowState::Running,
///     meta: serde_json::json!({"inputs": {}}), created_at: 1.0, updated_at: 2.0,
///     ownership: Ownership::default(),
/// };
/// let altered = FlowDetail { updated_at: 2.5, ..run.clone() };
/// assert_ne!(flow_checksum(&run), flow_checksum(&altered));
/// ```
pub fn flow_checksum(flow: &FlowDetail) -> u32 {
    crc(&(
        "flow",
        &flow.id,
        &flow.logbook,
        &flow.name,
        flow.state.as_str(),
        &flow.meta,
        flow.created_at,
        flow.updated_at,
    ))
}

/// The checksum of an atom's record in run `run`: every field.
pub fn atom_checksum(run: FlowId, atom: &AtomDetail) -> u32 {
    crc(&("atom", &run, atom))
}

/// The checksum of a job's record: every field.
pub fn job_checksum(job: &Job) -> u32 {
    crc(&("job", job))
}

/// The checksum of a stored definition's record: its name, format and body,
/// each preceded by its length.
///
/// ```
/// use flow::storage::definition_checksum;
/// assert_ne!(definition_checksum("a", "b", "c"), definition_checksum("ab", "", "c"));
/// ```
pub fn definition_checksum(name: &str, format: &str, body: &str) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for part in [name, format, body] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()
}

/// Checks a stored checksum against the one computed from what was read.
///
/// # Errors
/// [`StorageError::Corrupt`] naming `what` when they differ.
pub fn verify(op: Operation, what: &str, stored: i64, computed: u32) -> Result<(), StorageError> {
    if stored == i64::from(computed) {
        return Ok(());
    }
    Err(StorageError::Corrupt {
        op,
        detail: format!(
            "{what}: its checksum does not match its contents (stored {stored:#010x}, \
             computed {computed:#010x}): the record was altered or damaged"
        ),
    })
}
