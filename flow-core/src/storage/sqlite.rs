//! The SQLite backend: one file, nothing to start, durable by default.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{AtomDetail, Backend, FlowDetail, FlowId, LogBook, LogbookId, Operation, StorageError};
use crate::engine::state::{AtomKind, AtomState, FlowState, Intention};

/// `PRAGMA application_id` of a flow store: the bytes `flow`.
const APPLICATION_ID: i64 = 0x666C_6F77;

/// The schema, one step per version; step `k` brings version `k` to `k + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: logbooks, runs and atoms.
    "CREATE TABLE logbooks (
        id         TEXT PRIMARY KEY NOT NULL,
        name       TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        meta       TEXT NOT NULL DEFAULT 'null'
    );
    CREATE TABLE flows (
        id         TEXT PRIMARY KEY NOT NULL,
        logbook_id TEXT NOT NULL,
        name       TEXT NOT NULL,
        state      TEXT NOT NULL,
        meta       TEXT NOT NULL DEFAULT 'null',
        updated_at REAL NOT NULL
    );
    CREATE TABLE atoms (
        flow_id        TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
        name           TEXT NOT NULL,
        kind           TEXT NOT NULL,
        state          TEXT NOT NULL,
        intention      TEXT NOT NULL,
        result         TEXT,
        failure        TEXT,
        revert_result  TEXT,
        revert_failure TEXT,
        progress       REAL NOT NULL DEFAULT 0,
        attempts       INTEGER NOT NULL DEFAULT 0,
        version        INTEGER NOT NULL DEFAULT 0,
        meta           TEXT NOT NULL DEFAULT 'null',
        PRIMARY KEY (flow_id, name)
    ) WITHOUT ROWID;",
    // 2: a logbook's runs, newest last.
    "CREATE INDEX flows_by_logbook ON flows (logbook_id, updated_at);",
];

/// When a commit is on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL` (the default): every commit is flushed to the disk
    /// before the write returns. Nothing acknowledged is lost, even to a power
    /// cut or an operating-system crash.
    #[default]
    Full,
    /// `synchronous=NORMAL`, the relaxed mode: commits survive the process
    /// being killed, but the last ones may be lost if the machine loses power
    /// or the operating system crashes. Faster, since the disk is flushed only
    /// at checkpoints.
    Normal,
}

/// How to open a [`SqliteBackend`].
///
/// ```
/// use std::time::Duration;
/// use flow_core::{SqliteOptions, Synchronous};
/// let options = SqliteOptions::new()
///     .synchronous(Synchronous::Normal)
///     .busy_timeout(Duration::from_secs(1));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SqliteOptions {
    synchronous: Synchronous,
    busy_timeout: Duration,
    read_only: bool,
    max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
            max_batch: 4096,
        }
    }
}

impl SqliteOptions {
    /// The defaults: durable (`synchronous=FULL`), a 5 s busy timeout, writable.
    pub fn new() -> Self {
        SqliteOptions::default()
    }

    /// When a commit is on disk (see [`Synchronous`]).
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long to wait for another connection's lock before failing with
    /// [`StorageError::Locked`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens the store for reading only: to inspect runs, never to run them.
    /// Writes fail with [`StorageError::ReadOnly`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// At most this many writes go into one transaction (at least 1).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }
}

/// One write waiting for the writer.
enum Write {
    Logbook(LogBook),
    Flow(FlowDetail),
    Atoms(FlowId, Vec<AtomDetail>),
}

impl Write {
    fn op(&self) -> Operation {
        match self {
            Write::Logbook(_) => Operation::SaveLogbook,
            Write::Flow(_) => Operation::SaveFlow,
            Write::Atoms(..) => Operation::SaveAtoms,
        }
    }
}

type Reply = oneshot::Sender<Result<(), StorageError>>;
type Read = Box<dyn FnOnce(&Connection) + Send>;

/// A journal in one SQLite file: the embedded default.
///
/// - **One file** (plus SQLite's `-wal` and `-shm` beside it while it is open),
///   in WAL mode: readers never block the writer, nor the writer them.
/// - **Durable by default**: `synchronous=FULL`, so a write has reached the
///   disk when its future resolves. [`Synchronous::Normal`] is the relaxed
///   mode.
/// - **Group commit**: one writer thread owns the write connection. The writes
///   of every run sharing this backend queue up while a commit is under way,
///   and the next commit takes all of them in one transaction.
/// - **A versioned schema**, brought up to date on open; a store written by a
///   newer version of this library is refused.
/// - **Readable with the `sqlite3` tool**: states are words, values JSON.
///
/// ```text
/// $ sqlite3 runs.db "SELECT name, state, result FROM atoms"
/// stop-server|SUCCESS|[]
/// backup-database|SUCCESS|["/var/backups/db1-before-2.0.sql"]
/// ```
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use flow_core::{Atom, AtomState, Backend, Engine, Flow, FnTask, Outputs, Signature, SqliteBackend};
///
/// let dir = std::env::temp_dir().join(format!("flow-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("runs.db");
/// # let _ = std::fs::remove_file(&path);
///
/// let store = Arc::new(SqliteBackend::open(&path).unwrap());
/// let t = FnTask::sync(Signature::new().provides::<u32>("n"), |_| Ok(Outputs::one(7u32)));
/// let flow = Flow::linear("f").add(Atom::new("t", t)).build().unwrap();
/// let mut engine = Engine::builder(flow).storage(store.clone()).build();
/// engine.run().await.unwrap();
///
/// let (run, atoms) = store.load_flow(engine.run_id()).await.unwrap();
/// assert_eq!(run.name, "f");
/// assert_eq!(atoms[0].state, AtomState::Success);
/// assert_eq!(atoms[0].result, Some(serde_json::json!([7])));
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
pub struct SqliteBackend {
    path: PathBuf,
    writer: Option<mpsc::Sender<(Write, Reply)>>,
    reader: mpsc::Sender<Read>,
    stats: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
}

/// What the writer of a [`SqliteBackend`] has done since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes (`save_*` calls) they held: with many concurrent runs, many
    /// more than `commits`.
    pub writes: u64,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .field("read_only", &self.writer.is_none())
            .finish()
    }
}

impl SqliteBackend {
    /// The schema version this library writes.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens the store at `path`, creating it if it does not exist, with the
    /// default [`SqliteOptions`].
    ///
    /// # Errors
    /// [`StorageError::NotAStore`] for a file that is not a flow store,
    /// [`StorageError::NewerSchema`] for a store of a newer version,
    /// [`StorageError::Locked`] when another connection holds it too long,
    /// [`StorageError::ReadOnly`] when it cannot be written.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store at `path` with `options`.
    ///
    /// # Errors
    /// As [`SqliteBackend::open`].
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let stats = Arc::new(Counters::default());
        let writer = if options.read_only {
            let conn = connect(&path, &options, false)?;
            check_header(&conn, &path, false)?;
            None
        } else {
            let mut conn = connect(&path, &options, true)?;
            check_header(&conn, &path, true)?;
            prepare_writer(&mut conn, &path, &options)?;
            let (tx, rx) = mpsc::channel::<(Write, Reply)>();
            let p = path.clone();
            let max_batch = options.max_batch;
            let counters = stats.clone();
            spawn("flow-sqlite-writer", move || {
                writer_loop(conn, &p, &rx, max_batch, &counters);
            })?;
            Some(tx)
        };
        let reader_conn = connect(&path, &options, false)?;
        reader_conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| sql_error(Operation::Open, &path, e))?;
        let (tx, rx) = mpsc::channel::<Read>();
        spawn("flow-sqlite-reader", move || {
            while let Ok(job) = rx.recv() {
                job(&reader_conn);
            }
        })?;
        Ok(SqliteBackend {
            path,
            writer,
            reader: tx,
            stats,
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many transactions the writer committed, and how many writes they
    /// held.
    pub fn stats(&self) -> SqliteStats {
        SqliteStats {
            commits: self.stats.commits.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
        }
    }

    fn write(&self, write: Write) -> BoxFuture<'_, Result<(), StorageError>> {
        let op = write.op();
        let Some(writer) = &self.writer else {
            return futures::future::ready(Err(StorageError::ReadOnly {
                op,
                path: self.path.clone(),
            }))
            .boxed();
        };
        let (tx, rx) = oneshot::channel();
        let sent = writer.send((write, tx));
        async move {
            if sent.is_err() {
                return Err(stopped(op));
            }
            rx.await.unwrap_or_else(|_| Err(stopped(op)))
        }
        .boxed()
    }

    fn read<T: Send + 'static>(
        &self,
        op: Operation,
        f: impl FnOnce(&Connection, &Path) -> Result<T, StorageError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, StorageError>> {
        let (tx, rx) = oneshot::channel();
        let path = self.path.clone();
        let sent = self.reader.send(Box::new(move |conn: &Connection| {
            let _ = tx.send(f(conn, &path));
        }));
        async move {
            if sent.is_err() {
                return Err(stopped(op));
            }
            rx.await.unwrap_or_else(|_| Err(stopped(op)))
        }
        .boxed()
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), StorageError> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(drop)
        .map_err(|e| StorageError::Backend {
            op: Operation::Open,
            source: Box::new(e),
        })
}

fn stopped(op: Operation) -> StorageError {
    StorageError::Backend {
        op,
        source: "the SQLite worker thread stopped".into(),
    }
}

/// A SQLite error, typed.
fn sql_error(op: Operation, path: &Path, e: rusqlite::Error) -> StorageError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageError::Locked {
            op,
            path: path.to_path_buf(),
        },
        Some(ErrorCode::ReadOnly) => StorageError::ReadOnly {
            op,
            path: path.to_path_buf(),
        },
        Some(ErrorCode::NotADatabase) => StorageError::NotAStore {
            path: path.to_path_buf(),
            detail: "not an SQLite database".into(),
        },
        _ => StorageError::Backend {
            op,
            source: Box::new(e),
        },
    }
}

fn connect(path: &Path, options: &SqliteOptions, write: bool) -> Result<Connection, StorageError> {
    let mode = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sql_error(Operation::Open, path, e))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| sql_error(Operation::Open, path, e))?;
    Ok(conn)
}

/// Refuses files that are not flow stores, and stores of a newer version.
fn check_header(conn: &Connection, path: &Path, write: bool) -> Result<(), StorageError> {
    let err = |e| sql_error(Operation::Open, path, e);
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(err)?;
    if app != APPLICATION_ID && (objects > 0 || version != 0 || app != 0) {
        return Err(StorageError::NotAStore {
            path: path.to_path_buf(),
            detail: "an SQLite database of another application".into(),
        });
    }
    if version > SqliteBackend::SCHEMA_VERSION {
        return Err(StorageError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SqliteBackend::SCHEMA_VERSION,
        });
    }
    if !write && version < SqliteBackend::SCHEMA_VERSION {
        return Err(if version == 0 {
            StorageError::NotAStore {
                path: path.to_path_buf(),
                detail: "an empty file".into(),
            }
        } else {
            StorageError::ReadOnly {
                op: Operation::Open,
                path: path.to_path_buf(),
            }
        });
    }
    Ok(())
}

/// WAL, the durability asked for, and the schema brought up to date.
fn prepare_writer(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
) -> Result<(), StorageError> {
    let err = |e| sql_error(Operation::Open, path, e);
    if conn.is_readonly("main").map_err(err)? {
        return Err(StorageError::ReadOnly {
            op: Operation::Open,
            path: path.to_path_buf(),
        });
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Backend {
            op: Operation::Open,
            source: format!("SQLite refused WAL mode (journal_mode is {mode})").into(),
        });
    }
    let sync = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    // Read again under the lock: another process may have migrated meanwhile.
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    if version > SqliteBackend::SCHEMA_VERSION {
        return Err(StorageError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SqliteBackend::SCHEMA_VERSION,
        });
    }
    if version < SqliteBackend::SCHEMA_VERSION {
        for step in &MIGRATIONS[version as usize..] {
            tx.execute_batch(step).map_err(err)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(err)?;
        tx.pragma_update(None, "user_version", SqliteBackend::SCHEMA_VERSION)
            .map_err(err)?;
        tracing::debug!(
            target: "flow",
            "store {}: schema {version} -> {}",
            path.display(),
            SqliteBackend::SCHEMA_VERSION
        );
    }
    tx.commit().map_err(err)
}

/// The writer: takes every write waiting, commits them in one transaction,
/// answers each.
fn writer_loop(
    mut conn: Connection,
    path: &Path,
    rx: &mpsc::Receiver<(Write, Reply)>,
    max_batch: usize,
    counters: &Counters,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let results = commit(&mut conn, path, &batch);
        if results.iter().any(Result::is_ok) {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .writes
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        for ((_, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

fn commit(
    conn: &mut Connection,
    path: &Path,
    batch: &[(Write, Reply)],
) -> Vec<Result<(), StorageError>> {
    let all = |e: &rusqlite::Error| {
        batch
            .iter()
            .map(|(w, _)| Err(sql_error(w.op(), path, clone_error(e))))
            .collect()
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return all(&e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for (w, _) in batch {
        match apply(&tx, w) {
            Ok(r) => results.push(r),
            Err(e) => {
                drop(tx);
                return all(&e);
            }
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all(&e),
    }
}

/// rusqlite errors are not `Clone`; one commit error is reported to every
/// write of the batch, keeping its code and message.
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// One write. The outer error aborts the batch; the inner one fails this write
/// alone (before it wrote anything).
fn apply(
    tx: &rusqlite::Transaction<'_>,
    w: &Write,
) -> Result<Result<(), StorageError>, rusqlite::Error> {
    match w {
        Write::Logbook(b) => {
            tx.prepare_cached(
                "INSERT INTO logbooks (id, name, created_at, updated_at, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET name = ?2, created_at = ?3,
                    updated_at = ?4, meta = ?5",
            )?
            .execute(params![
                b.id.to_string(),
                b.name,
                finite(b.created_at),
                finite(b.updated_at),
                b.meta.to_string()
            ])?;
        }
        Write::Flow(f) => {
            tx.prepare_cached(
                "INSERT INTO flows (id, logbook_id, name, state, meta, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET logbook_id = ?2, name = ?3, state = ?4,
                    meta = ?5, updated_at = ?6",
            )?
            .execute(params![
                f.id.to_string(),
                f.logbook.to_string(),
                f.name,
                f.state.as_str(),
                f.meta.to_string(),
                finite(f.updated_at)
            ])?;
        }
        Write::Atoms(flow, atoms) => {
            let id = flow.to_string();
            let known = tx
                .prepare_cached("SELECT 1 FROM flows WHERE id = ?1")?
                .query_row([&id], |_| Ok(()))
                .optional()?;
            if known.is_none() {
                return Ok(Err(StorageError::NotFound(*flow)));
            }
            let mut stmt = tx.prepare_cached(
                "INSERT INTO atoms (flow_id, name, kind, state, intention, result, failure,
                    revert_result, revert_failure, progress, attempts, version, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (flow_id, name) DO UPDATE SET kind = ?3, state = ?4,
                    intention = ?5, result = ?6, failure = ?7, revert_result = ?8,
                    revert_failure = ?9, progress = ?10, attempts = ?11, version = ?12,
                    meta = ?13",
            )?;
            for a in atoms {
                stmt.execute(params![
                    id,
                    a.name,
                    a.kind.as_str(),
                    a.state.as_str(),
                    a.intention.as_str(),
                    a.result.as_ref().map(ToString::to_string),
                    a.failure.as_ref().map(json_text),
                    a.revert_result.as_ref().map(ToString::to_string),
                    a.revert_failure.as_ref().map(json_text),
                    finite(f64::from(a.progress)),
                    a.attempts,
                    a.version.min(i64::MAX as u64) as i64,
                    a.meta.to_string()
                ])?;
            }
        }
    }
    Ok(Ok(()))
}

/// SQLite stores NaN as NULL; a number that is not finite is stored as 0.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A stored value as an error message shows it.
fn shown(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "NULL".into(),
        SqlValue::Integer(n) => n.to_string(),
        SqlValue::Real(x) => x.to_string(),
        SqlValue::Text(t) => t.clone(),
        SqlValue::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// Reads one stored record, or says what is wrong with it.
struct Parse {
    op: Operation,
    what: String,
}

impl Parse {
    fn bad(&self, field: &str, text: &str) -> StorageError {
        StorageError::Corrupt {
            op: self.op,
            detail: format!("{}: `{field}` holds `{text}`", self.what),
        }
    }

    fn text(&self, field: &str, v: SqlValue) -> Result<String, StorageError> {
        match v {
            SqlValue::Text(t) => Ok(t),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn opt_text(&self, field: &str, v: SqlValue) -> Result<Option<String>, StorageError> {
        match v {
            SqlValue::Null => Ok(None),
            other => self.text(field, other).map(Some),
        }
    }

    fn real(&self, field: &str, v: SqlValue) -> Result<f64, StorageError> {
        match v {
            SqlValue::Real(x) => Ok(x),
            SqlValue::Integer(n) => Ok(n as f64),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn int(&self, field: &str, v: SqlValue) -> Result<i64, StorageError> {
        match v {
            SqlValue::Integer(n) => Ok(n),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn json(&self, field: &str, text: &str) -> Result<serde_json::Value, StorageError> {
        serde_json::from_str(text).map_err(|_| self.bad(field, text))
    }

    fn opt_json(
        &self,
        field: &str,
        text: Option<&str>,
    ) -> Result<Option<serde_json::Value>, StorageError> {
        text.map(|t| self.json(field, t)).transpose()
    }

    fn failure(
        &self,
        field: &str,
        text: Option<&str>,
    ) -> Result<Option<crate::failure::Failure>, StorageError> {
        text.map(|t| serde_json::from_str(t).map_err(|_| self.bad(field, t)))
            .transpose()
    }

    fn flow_state(&self, text: &str) -> Result<FlowState, StorageError> {
        FlowState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| self.bad("state", text))
    }

    fn atom_state(&self, text: &str) -> Result<AtomState, StorageError> {
        AtomState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| self.bad("state", text))
    }

    fn kind(&self, text: &str) -> Result<AtomKind, StorageError> {
        [AtomKind::Task, AtomKind::Retry]
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| self.bad("kind", text))
    }

    fn intention(&self, text: &str) -> Result<Intention, StorageError> {
        [
            Intention::Execute,
            Intention::Revert,
            Intention::Retry,
            Intention::Ignore,
        ]
        .into_iter()
        .find(|i| i.as_str() == text)
        .ok_or_else(|| self.bad("intention", text))
    }

    fn id<T: std::str::FromStr>(&self, field: &str, text: &str) -> Result<T, StorageError> {
        text.parse().map_err(|_| self.bad(field, text))
    }
}

/// The columns of a `flows` row, as stored.
struct FlowRow([SqlValue; 6]);

const FLOW_COLUMNS: &str = "id, logbook_id, name, state, meta, updated_at";

fn flow_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FlowRow> {
    Ok(FlowRow([
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ]))
}

fn flow_detail(op: Operation, row: FlowRow) -> Result<FlowDetail, StorageError> {
    let [id, logbook, name, state, meta, updated_at] = row.0;
    let p = Parse {
        op,
        what: match &id {
            SqlValue::Text(id) => format!("run {id}"),
            _ => "a run".into(),
        },
    };
    Ok(FlowDetail {
        id: p.id("id", &p.text("id", id)?)?,
        logbook: p.id::<LogbookId>("logbook_id", &p.text("logbook_id", logbook)?)?,
        name: p.text("name", name)?,
        state: p.flow_state(&p.text("state", state)?)?,
        meta: p.json("meta", &p.text("meta", meta)?)?,
        updated_at: p.real("updated_at", updated_at)?,
    })
}

fn load(
    conn: &Connection,
    path: &Path,
    flow: FlowId,
) -> Result<(FlowDetail, Vec<AtomDetail>), StorageError> {
    let op = Operation::LoadFlow;
    let err = |e| sql_error(op, path, e);
    // One snapshot for the run and its atoms.
    let tx = conn.unchecked_transaction().map_err(err)?;
    let id = flow.to_string();
    let row = tx
        .prepare_cached(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?1"))
        .map_err(err)?
        .query_row([&id], flow_row)
        .optional()
        .map_err(err)?
        .ok_or(StorageError::NotFound(flow))?;
    let detail = flow_detail(op, row)?;
    let atoms = load_atoms(&tx, path, &id)?;
    tx.commit().map_err(err)?;
    Ok((detail, atoms))
}

fn load_atoms(conn: &Connection, path: &Path, id: &str) -> Result<Vec<AtomDetail>, StorageError> {
    let op = Operation::LoadFlow;
    let err = |e| sql_error(op, path, e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, kind, state, intention, result, failure, revert_result,
                revert_failure, progress, attempts, version, meta
             FROM atoms WHERE flow_id = ?1 ORDER BY name",
        )
        .map_err(err)?;
    let mut rows = stmt.query([id]).map_err(err)?;
    let mut atoms = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        let cells: [SqlValue; 12] = std::array::from_fn(|k| r.get(k).unwrap_or(SqlValue::Null));
        let [
            name,
            kind,
            state,
            intention,
            result,
            failure,
            revert_result,
            revert_failure,
            progress,
            attempts,
            version,
            meta,
        ] = cells;
        let p = Parse {
            op,
            what: format!("run {id}"),
        };
        let name = p.text("name", name)?;
        let p = Parse {
            op,
            what: format!("run {id}, atom `{name}`"),
        };
        let attempts = p.int("attempts", attempts)?;
        let version = p.int("version", version)?;
        atoms.push(AtomDetail {
            kind: p.kind(&p.text("kind", kind)?)?,
            state: p.atom_state(&p.text("state", state)?)?,
            intention: p.intention(&p.text("intention", intention)?)?,
            result: p.opt_json("result", p.opt_text("result", result)?.as_deref())?,
            failure: p.failure("failure", p.opt_text("failure", failure)?.as_deref())?,
            revert_result: p.opt_json(
                "revert_result",
                p.opt_text("revert_result", revert_result)?.as_deref(),
            )?,
            revert_failure: p.failure(
                "revert_failure",
                p.opt_text("revert_failure", revert_failure)?.as_deref(),
            )?,
            progress: p.real("progress", progress)? as f32,
            attempts: u32::try_from(attempts)
                .map_err(|_| p.bad("attempts", &attempts.to_string()))?,
            version: u64::try_from(version).map_err(|_| p.bad("version", &version.to_string()))?,
            meta: p.json("meta", &p.text("meta", meta)?)?,
            name,
        });
    }
    Ok(atoms)
}

fn list(conn: &Connection, path: &Path) -> Result<Vec<FlowDetail>, StorageError> {
    let op = Operation::ListFlows;
    let err = |e| sql_error(op, path, e);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {FLOW_COLUMNS} FROM flows ORDER BY updated_at, id"
        ))
        .map_err(err)?;
    let rows = stmt
        .query_map([], flow_row)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    rows.into_iter().map(|r| flow_detail(op, r)).collect()
}

impl Backend for SqliteBackend {
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>> {
        self.write(Write::Logbook(book))
    }

    fn save_flow(&self, flow: FlowDetail) -> BoxFuture<'_, Result<(), StorageError>> {
        self.write(Write::Flow(flow))
    }

    fn save_atoms(
        &self,
        flow: FlowId,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        self.write(Write::Atoms(flow, atoms))
    }

    fn load_flow(
        &self,
        flow: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>> {
        self.read(Operation::LoadFlow, move |conn, path| {
            load(conn, path, flow)
        })
    }

    fn list_flows(&self) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>> {
        self.read(Operation::ListFlows, list)
    }
}
