//! The SQLite backend: one file, nothing to start, durable by default.

mod board;
mod jobs;
mod read;
mod schema;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{
    AtomDetail, Backend, Claim, Definition, FlowDetail, FlowId, FlowQuery, Lease, LogBook,
    Operation, StorageError,
};
use write::{Answer, Write};

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
/// use flow::{SqliteOptions, Synchronous};
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
    max_size: Option<u64>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
            max_batch: 4096,
            max_size: None,
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

    /// Caps the store's file at about `bytes` (in whole pages): a write that
    /// would grow it further fails with [`StorageError::DiskFull`], as it does
    /// when the disk itself is full, and the run stops before it starts
    /// another step. Unlimited by default.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
}

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
/// use flow::{Atom, AtomState, Backend, Engine, Flow, FnTask, Outputs, Signature, SqliteBackend};
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
    writer: Option<mpsc::Sender<(Write, write::Reply)>>,
    reader: mpsc::Sender<Read>,
    stats: Arc<Counters>,
    /// The writer thread, joined when the store is dropped.
    writer_thread: Option<thread::JoinHandle<()>>,
    /// Woken when this process posts or hands back a job.
    posted: tokio::sync::Notify,
}

impl Drop for SqliteBackend {
    /// Waits for the writes already queued (a release of a run by an engine
    /// that was dropped, say) to be committed: whoever opens the store next
    /// sees them.
    fn drop(&mut self) {
        self.writer = None;
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
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
    pub const SCHEMA_VERSION: i64 = schema::VERSION;

    /// Opens the store at `path`, creating it if it does not exist, with the
    /// default [`SqliteOptions`].
    ///
    /// # Errors
    /// [`StorageError::NotAStore`] for a file that is not a flow store,
    /// [`StorageError::NewerSchema`] for a store of a newer version,
    /// [`StorageError::UnknownSchema`] for a damaged version number,
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
        let mut writer_thread = None;
        let writer = if options.read_only {
            let conn = connect(&path, &options, false)?;
            schema::check_header(&conn, &path, false)?;
            None
        } else {
            let mut conn = connect(&path, &options, true)?;
            schema::check_header(&conn, &path, true)?;
            schema::prepare_writer(&mut conn, &path, &options)?;
            let (tx, rx) = mpsc::channel::<(Write, write::Reply)>();
            let p = path.clone();
            let max_batch = options.max_batch;
            let counters = stats.clone();
            writer_thread = Some(spawn("flow-sqlite-writer", move || {
                write::writer_loop(conn, &p, &rx, max_batch, &counters);
            })?);
            Some(tx)
        };
        let reader_conn = connect(&path, &options, false)?;
        reader_conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| sql_error(Operation::Open, &path, e))?;
        let (tx, rx) = mpsc::channel::<Read>();
        let _reader = spawn("flow-sqlite-reader", move || {
            while let Ok(job) = rx.recv() {
                job(&reader_conn);
            }
        })?;
        Ok(SqliteBackend {
            path,
            writer,
            reader: tx,
            stats,
            writer_thread,
            posted: tokio::sync::Notify::new(),
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

    fn write(&self, write: Write) -> BoxFuture<'_, Result<Answer, StorageError>> {
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

    /// A write that answers nothing but whether it was made.
    fn done(&self, write: Write) -> BoxFuture<'_, Result<(), StorageError>> {
        self.write(write).map(|r| r.map(drop)).boxed()
    }

    /// A write that answers with a lease.
    fn lease(&self, write: Write) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let op = write.op();
        self.write(write)
            .map(move |r| match r? {
                Answer::Lease(lease) => Ok(lease),
                _ => Err(stopped(op)),
            })
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

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<thread::JoinHandle<()>, StorageError> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
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

impl Backend for SqliteBackend {
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Write::Logbook(book))
    }

    fn create_flow(
        &self,
        flow: FlowDetail,
        atoms: Vec<AtomDetail>,
        claim: Claim,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        self.lease(Write::Create(Box::new(flow), atoms, claim))
    }

    fn claim_flow(&self, run: FlowId, claim: Claim) -> BoxFuture<'_, Result<Lease, StorageError>> {
        self.lease(Write::Claim(run, claim))
    }

    fn renew_lease(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        self.lease(Write::Renew(lease.clone(), duration))
    }

    fn release_flow(&self, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Write::Release(lease.clone()))
    }

    fn save_run(
        &self,
        run: FlowId,
        fence: u64,
        flow: Option<FlowDetail>,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Write::Save(run, fence, flow.map(Box::new), atoms))
    }

    fn request_cancel(&self, run: FlowId) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Write::Cancel(run))
    }

    fn load_flow(
        &self,
        run: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>> {
        self.read(Operation::LoadFlow, move |conn, path| {
            read::load(conn, path, run)
        })
    }

    fn list_flows(&self, query: FlowQuery) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>> {
        self.read(Operation::ListFlows, move |conn, path| {
            read::list(conn, path, &query)
        })
    }

    fn prune_flows(&self, before: f64) -> BoxFuture<'_, Result<u64, StorageError>> {
        let answer = self.write(Write::Prune(before));
        async move {
            match answer.await? {
                Answer::Count(n) => Ok(n),
                _ => Ok(0),
            }
        }
        .boxed()
    }

    fn save_definition(&self, definition: Definition) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Write::Definition(definition))
    }

    fn load_definition(&self, id: &str) -> BoxFuture<'_, Result<Option<Definition>, StorageError>> {
        let id = id.to_string();
        self.read(Operation::LoadDefinition, move |conn, path| {
            read::definition(conn, path, &id)
        })
    }
}

/// A SQLite error, typed.
fn sql_error(op: Operation, path: &Path, e: rusqlite::Error) -> StorageError {
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StorageError::Locked { op, path }
        }
        Some(ErrorCode::ReadOnly) => StorageError::ReadOnly { op, path },
        Some(ErrorCode::DiskFull) => StorageError::DiskFull { op, path },
        Some(ErrorCode::DatabaseCorrupt) => StorageError::Malformed { op, path },
        Some(ErrorCode::NotADatabase) => StorageError::NotAStore {
            path,
            detail: "not an SQLite database".into(),
        },
        _ => StorageError::Backend {
            op,
            source: Box::new(e),
        },
    }
}
