//! Opening a store: an SQLite file, or a PostgreSQL database by URL (with
//! the `postgres` feature, on by default); where the logs of its runs go;
//! finding a run by its id or the start of it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flow::storage::JobBoard;
use flow::{Backend, FlowId, FlowQuery, SqliteBackend};
use flow_pipeline::{Pipeline, Settings, StatusError};

use super::OpsError;

/// Where a store is, as `--store` or `FLOW_STORE` names it.
///
/// ```
/// use std::path::PathBuf;
/// use flow_cli::ops::StoreLocation;
/// assert_eq!(StoreLocation::parse("runs/flow.db"), StoreLocation::Sqlite(PathBuf::from("runs/flow.db")));
/// assert_eq!(StoreLocation::parse("sqlite:///var/lib/flow.db"), StoreLocation::Sqlite(PathBuf::from("/var/lib/flow.db")));
/// assert!(matches!(StoreLocation::parse("postgres://db/flow"), StoreLocation::Postgres(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreLocation {
    /// An SQLite file (made when a run is first started in it).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl StoreLocation {
    /// Reads a `--store` value: a `postgres://` or `postgresql://` URL, an
    /// `sqlite://` URL, or else the path of an SQLite file.
    pub fn parse(text: &str) -> StoreLocation {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreLocation::Postgres(text.to_string())
        } else if let Some(path) = text.strip_prefix("sqlite://") {
            StoreLocation::Sqlite(PathBuf::from(path))
        } else {
            StoreLocation::Sqlite(PathBuf::from(text))
        }
    }

    /// Where the logs of runs go unless told otherwise: beside an SQLite
    /// file, a directory named after it (`flow.db` keeps its logs in
    /// `flow-logs`); `flow-logs` in the current directory for a database
    /// server.
    pub fn default_logs(&self) -> PathBuf {
        match self {
            StoreLocation::Sqlite(path) => {
                let stem = path
                    .file_stem()
                    .map_or_else(|| "flow".into(), |s| s.to_string_lossy().into_owned());
                path.with_file_name(format!("{stem}-logs"))
            }
            StoreLocation::Postgres(_) => PathBuf::from("flow-logs"),
        }
    }
}

impl fmt::Display for StoreLocation {
    /// The path of a file; a URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` shown as `postgres://user@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

/// A PostgreSQL URL without its `schema=NAME` parameter (which the server
/// does not know), and that name.
#[cfg(any(feature = "postgres", test))]
fn schema_of(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_string());
                false
            }
            None => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

/// Whether opening a store may make a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A command that starts runs: a missing SQLite file is made.
    Create,
    /// A command that reads runs: the store must exist.
    Existing,
}

/// An open store: the journal of runs, its job board, and where the logs of
/// its runs go.
#[derive(Clone)]
pub struct Store {
    location: StoreLocation,
    backend: Arc<dyn Backend>,
    board: Arc<dyn JobBoard>,
    logs: PathBuf,
    /// The definitions read so far, by hash (a definition never changes
    /// under its hash): a server shows the same runs again and again.
    definitions: Arc<Mutex<HashMap<String, Pipeline>>>,
}

/// At most this many definitions are kept read.
const DEFINITIONS_KEPT: usize = 256;

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location.to_string())
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `location`; the logs of its runs go to `logs`, or
    /// to [`StoreLocation::default_logs`].
    ///
    /// # Errors
    /// [`OpsError::NoStore`] for a file that does not exist when `access` is
    /// [`Access::Existing`]; [`OpsError::Store`] for a file that is not a
    /// store (or a damaged, newer or locked one), or a PostgreSQL server
    /// that cannot be reached or refuses; [`OpsError::NoPostgres`] for a
    /// PostgreSQL URL in a binary built without PostgreSQL support.
    ///
    /// A PostgreSQL URL may name the schema of the store's tables with
    /// `schema=NAME` among its parameters (`flow` by default):
    /// `postgres://ops@db1/runs?schema=deploys`.
    pub async fn open(
        location: &StoreLocation,
        logs: Option<PathBuf>,
        access: Access,
    ) -> Result<Store, OpsError> {
        let logs = logs.unwrap_or_else(|| location.default_logs());
        match location {
            StoreLocation::Sqlite(path) => {
                if access == Access::Existing && !path.exists() {
                    return Err(OpsError::NoStore { path: path.clone() });
                }
                let sqlite = Arc::new(SqliteBackend::open(path).map_err(OpsError::Store)?);
                Ok(Store {
                    location: location.clone(),
                    backend: sqlite.clone(),
                    board: sqlite,
                    logs,
                    definitions: Arc::default(),
                })
            }
            #[cfg(feature = "postgres")]
            StoreLocation::Postgres(url) => {
                let (url, schema) = schema_of(url);
                let mut options = flow::postgres::PostgresOptions::new();
                if let Some(schema) = schema {
                    options = options.schema(schema);
                }
                let pg = Arc::new(
                    flow::postgres::PostgresBackend::connect_with(&url, options)
                        .await
                        .map_err(OpsError::Store)?,
                );
                Ok(Store {
                    location: location.clone(),
                    backend: pg.clone(),
                    board: pg,
                    logs,
                    definitions: Arc::default(),
                })
            }
            #[cfg(not(feature = "postgres"))]
            StoreLocation::Postgres(url) => Err(OpsError::NoPostgres {
                url: without_password(url),
            }),
        }
    }

    /// Where the store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The journal of runs.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The job board kept beside the journal.
    pub fn board(&self) -> &Arc<dyn JobBoard> {
        &self.board
    }

    /// The directory that holds a directory of logs per run.
    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// How the steps of pipelines run from this store: their logs under
    /// [`Store::logs`].
    pub fn settings(&self) -> Settings {
        Settings::new(&self.logs)
    }

    /// The pipeline whose definition the store holds under `hash`, read
    /// once and kept.
    pub(crate) async fn definition(&self, hash: &str) -> Result<Option<Pipeline>, StatusError> {
        if let Some(p) = self
            .definitions
            .lock()
            .ok()
            .and_then(|d| d.get(hash).cloned())
        {
            return Ok(Some(p));
        }
        let read = Pipeline::load(&*self.backend, hash).await?;
        if let (Some(p), Ok(mut kept)) = (&read, self.definitions.lock()) {
            if kept.len() >= DEFINITIONS_KEPT {
                kept.clear();
            }
            kept.insert(hash.to_string(), p.clone());
        }
        Ok(read)
    }

    /// The run that `text` names: its whole id, or the first 4 characters or
    /// more of the id of exactly one run.
    ///
    /// # Errors
    /// [`OpsError::BadRunId`], [`OpsError::UnknownRun`],
    /// [`OpsError::AmbiguousRun`]; what the store says.
    pub async fn resolve_run(&self, text: &str) -> Result<FlowId, OpsError> {
        let text = text.trim();
        let unknown = || OpsError::UnknownRun {
            text: text.to_string(),
            store: self.location.to_string(),
        };
        if let Ok(id) = text.parse::<FlowId>() {
            return match self.backend.load_flow(id).await {
                Ok(_) => Ok(id),
                Err(e) => Err(OpsError::storage(e, &self.location)),
            };
        }
        let prefix = text.to_ascii_lowercase();
        let is_prefix = prefix.len() >= 4
            && prefix.len() < 36
            && prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !is_prefix {
            return Err(OpsError::BadRunId {
                text: text.to_string(),
            });
        }
        let runs = self
            .backend
            .list_flows(FlowQuery::new())
            .await
            .map_err(OpsError::Store)?;
        let ids: Vec<FlowId> = runs
            .iter()
            .map(|r| r.id)
            .filter(|id| id.to_string().starts_with(&prefix))
            .collect();
        match ids.as_slice() {
            [] => Err(unknown()),
            [one] => Ok(*one),
            _ => Err(OpsError::AmbiguousRun {
                text: text.to_string(),
                ids,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            without_password("postgres://ops:s3cret@db:5432/flow"),
            "postgres://ops@db:5432/flow"
        );
        assert_eq!(without_password("postgres://db/flow"), "postgres://db/flow");
        assert_eq!(
            schema_of("postgres://db/flow?schema=runs&sslmode=require"),
            (
                "postgres://db/flow?sslmode=require".into(),
                Some("runs".into())
            )
        );
        assert_eq!(
            schema_of("postgres://db/flow?schema=runs"),
            ("postgres://db/flow".into(), Some("runs".into()))
        );
        assert_eq!(
            schema_of("postgres://db/flow"),
            ("postgres://db/flow".into(), None)
        );
        let loc = StoreLocation::parse("postgresql://a:b@c/d");
        assert_eq!(loc.to_string(), "postgresql://a@c/d");
    }

    #[test]
    fn logs_go_beside_the_store() {
        let loc = StoreLocation::parse("/srv/runs/pipelines.db");
        assert_eq!(
            loc.default_logs(),
            PathBuf::from("/srv/runs/pipelines-logs")
        );
        assert_eq!(
            StoreLocation::parse("flow.db").default_logs(),
            PathBuf::from("flow-logs")
        );
    }
}
