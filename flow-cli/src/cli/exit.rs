//! The exit codes (listed in `--help` and the README).

use flow::StorageError;
use flow_cli::ops::OpsError;

/// Success.
pub(crate) const OK: u8 = 0;
/// A run failed.
pub(crate) const FAILED: u8 = 1;
/// Bad input.
pub(crate) const BAD_INPUT: u8 = 2;
/// Not found.
pub(crate) const NOT_FOUND: u8 = 3;
/// The store cannot be used.
pub(crate) const STORE: u8 = 4;
/// Refused.
pub(crate) const REFUSED: u8 = 5;
/// Stopped by Ctrl-C.
pub(crate) const INTERRUPTED: u8 = 130;

/// The exit code of a command that failed with `e`.
pub(crate) fn code(e: &OpsError) -> u8 {
    match e {
        OpsError::Problems { .. }
        | OpsError::BadRunId { .. }
        | OpsError::AmbiguousRun { .. }
        | OpsError::BadTime { .. }
        | OpsError::NoPipelines { .. } => BAD_INPUT,
        OpsError::NoStore { .. }
        | OpsError::UnknownRun { .. }
        | OpsError::UnknownStep { .. }
        | OpsError::NoLog { .. } => NOT_FOUND,
        OpsError::Store(StorageError::NotFound(_)) => NOT_FOUND,
        OpsError::Store(_)
        | OpsError::NoPostgres { .. }
        | OpsError::MissingDefinition { .. }
        | OpsError::BadDefinition { .. }
        | OpsError::Resume { .. } => STORE,
        OpsError::NotAPipeline { .. } | OpsError::Ended { .. } | OpsError::Held { .. } => REFUSED,
        _ => FAILED,
    }
}
