//! What went wrong, and what to do about it: errors of the server and of
//! the connection told apart (a lost connection is retried, an outcome
//! unknown is settled), typed for the caller, and the backoff between tries.

use std::time::Duration;

use flow_core::{Operation, StorageError};

/// Which store, as errors name it.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    /// `postgres://user@host:port/db`, without the password.
    pub(crate) address: String,
    /// The schema holding the tables.
    pub(crate) schema: String,
}

impl Store {
    pub(crate) fn described(&self) -> String {
        format!("{} (schema \"{}\")", self.address, self.schema)
    }
}

/// How an attempt failed.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The server refused it: nothing of it is in the store.
    Refused(tokio_postgres::Error),
    /// The connection was lost, or never made: whether a commit under way
    /// went through is unknown.
    Lost(Box<dyn std::error::Error + Send + Sync>),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_connection(&e) {
            Failed::Lost(Box::new(e))
        } else {
            Failed::Refused(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for Failed {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Failed::from(e),
            other => Failed::Lost(Box::new(other)),
        }
    }
}

/// Whether `e` says the connection is gone (or never was), rather than that
/// the server refused a statement.
pub(crate) fn is_connection(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        // Connection exceptions (08), the server shutting down or
        // restarting (57P01-57P03), a backend terminated, and anything fatal
        // to the session.
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(db.severity(), "FATAL" | "PANIC")
        }
        None => {
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                if s.is::<std::io::Error>() {
                    return true;
                }
                source = s.source();
            }
            // Connecting, and the connection's own errors, name themselves.
            let text = e.to_string();
            text.contains("connect") || text.contains("connection") || text.contains("timeout")
        }
    }
}

/// Whether the server refused a statement for a reason that goes away by
/// itself (a deadlock broken, a serialization conflict, too many
/// connections): the batch is tried again.
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        matches!(
            db.code().code(),
            "40001" | "40P01" | "55P03" | "57014" | "53300" | "53400"
        )
    })
}

/// A server's refusal, typed.
pub(crate) fn error(op: Operation, store: &Store, e: tokio_postgres::Error) -> StorageError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if code == "53100" {
            return StorageError::DiskFull {
                op,
                path: store.described().into(),
            };
        }
        if code == "25006" {
            return StorageError::ReadOnly {
                op,
                path: store.described().into(),
            };
        }
        if code == "XX001" || code == "XX002" {
            return StorageError::Malformed {
                op,
                path: store.described().into(),
            };
        }
    }
    if is_connection(&e) {
        return StorageError::Unavailable {
            op,
            store: store.described(),
            waited: Duration::ZERO,
            source: Box::new(e),
        };
    }
    // The server's own words (`db error` alone says nothing).
    let source: Box<dyn std::error::Error + Send + Sync> = match e.as_db_error() {
        Some(db) => Box::new(db.clone()),
        None => Box::new(e),
    };
    StorageError::Backend { op, source }
}

/// Waits between tries: 10 ms, doubling, at most 1 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            next: Duration::from_millis(10),
        }
    }

    /// The next wait, no longer than `left`.
    pub(crate) fn step(&mut self, left: Duration) -> Duration {
        let wait = self.next.min(left);
        self.next = (self.next * 2).min(Duration::from_secs(1));
        wait
    }
}
