//! # flow-postgres: the journal of `flow` in PostgreSQL
//!
//! One store of runs shared by every machine that reaches the server: any
//! of them can start a run, and any can take it up when the one running it
//! dies. Use it through `flow` with the `postgres` feature, as
//! `flow::postgres::PostgresBackend` (also `flow::PostgresBackend`).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use flow::postgres::{PostgresBackend, PostgresOptions};
//! use flow::{Atom, AtomState, Backend, Engine, Flow, FnTask, Outputs, Signature};
//!
//! # let Ok(url) = std::env::var("FLOW_TEST_POSTGRES") else { return };
//! # let schema = format!("doc_{}", uuid::Uuid::new_v4().simple());
//! // url: "postgres://flow@db1.example.com/runs", say.
//! let options = PostgresOptions::new().schema(&schema);
//! let store = Arc::new(PostgresBackend::connect_with(&url, options).await.unwrap());
//!
//! let t = FnTask::sync(Signature::new().provides::<u32>("n"), |_| Ok(Outputs::one(7u32)));
//! let flow = Flow::linear("f").add(Atom::new("t", t)).build().unwrap();
//! let mut engine = Engine::builder(flow).storage(store.clone()).build();
//! engine.run().await.unwrap();
//!
//! let (run, atoms) = store.load_flow(engine.run_id()).await.unwrap();
//! assert_eq!(run.name, "f");
//! assert_eq!(atoms[0].state, AtomState::Success);
//! assert_eq!(atoms[0].result, Some(serde_json::json!([7])));
//! # });
//! ```
//!
//! ## What it promises
//!
//! - **One live owner per run, across machines.** Leases are measured by the
//!   database server's clock, never a client's, so machines whose clocks
//!   disagree still agree on who holds a run. The fencing number of a run is
//!   checked inside the transaction of every write, against the run's row
//!   locked `FOR UPDATE`: a process that lost its run (paused past its
//!   lease, cut off from the server) can write nothing more for it.
//! - **Group commit.** One writer per backend takes every write waiting, from
//!   all the runs sharing it, and commits them in one transaction, a few
//!   multi-row statements (`unnest` of arrays) in two round trips. A write
//!   refused (stale fencing number, unknown run, live lease of another owner)
//!   fails alone.
//! - **Durable when acknowledged**, as durable as the server's settings make
//!   a commit (`synchronous_commit=on` by default).
//! - **Faults.** A lost connection is tried again with backoff (10 ms,
//!   doubling, at most 1 s apart). A commit whose outcome is unknown (the
//!   connection dropped while `COMMIT` was under way) is settled by reading
//!   back a token the batch wrote in its transaction, never assumed either
//!   way. A server that stays out of reach for longer than
//!   [`PostgresOptions::unavailable_after`] (30 s by default) fails the
//!   waiting writes with [`StorageError::Unavailable`]; an engine whose
//!   write fails starts nothing more.
//! - **A versioned schema**, brought up to date on open inside a transaction
//!   holding an advisory lock (processes opening a new database at once take
//!   turns); a schema written by a newer version is refused
//!   ([`StorageError::NewerSchema`]). The tables live in a schema of the
//!   user's choosing, `flow` by default.
//! - **Readable with `psql`**: states are words, values JSONB, with the same
//!   checksums as the SQLite store:
//!
//! ```text
//! $ psql -c "SELECT name, state, result FROM flow.atoms"
//!        name       |  state  |                 result
//! ------------------+---------+-----------------------------------------
//!  stop-server      | SUCCESS | []
//!  backup-database  | SUCCESS | ["/var/backups/web-01-before-2.0.0.sql"]
//! ```
//!
//! JSONB keeps numbers as `numeric`: a float of 1e16 or more comes back as
//! the same number written as an integer, and `-0.0` as `0.0` (both decode
//! into the same `f64`). Text with the character U+0000 cannot be stored in
//! PostgreSQL at all: a write holding one is refused, alone, with an
//! [`Unstorable`] error.
//!
//! ## Runtime
//!
//! The backend runs its writer and its connections on a thread of its own
//! (a single-threaded tokio runtime), so it can be used from any runtime,
//! and from several. Dropping it waits for the writes already queued.

mod arrays;
mod batch;
mod board;
mod fault;
mod jobs;
mod listen;
mod options;
mod posts;
mod read;
mod rows;
mod schema;
#[cfg(feature = "tls")]
mod tls;
mod tx;
mod values;
mod writer;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flow_core::{
    AtomDetail, Backend, Claim, Definition, FlowDetail, FlowId, FlowQuery, Lease, LogBook,
    Operation, StorageError,
};
use futures::future::{BoxFuture, FutureExt};
use tokio::sync::{mpsc, oneshot};

use batch::{Answer, Write};
use fault::Store;
use writer::Shared;

pub use options::{ConfigError, PostgresOptions};
pub use values::Unstorable;

use options::{address, config_error, hide_password, manager};

/// What the writer of a [`PostgresBackend`] has done since it connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes they held: with many concurrent runs, many more than `commits`.
    pub writes: u64,
    /// Commits whose outcome was unknown and was settled by reading back.
    pub settled: u64,
    /// Tries made again after a lost connection or a passing refusal.
    pub retries: u64,
}

/// A journal in PostgreSQL, shared by every machine that reaches the
/// server. See the [crate documentation](crate) for what it promises.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use flow::postgres::{PostgresBackend, PostgresOptions};
/// use flow::{Engine, Flow};
///
/// # let Ok(url) = std::env::var("FLOW_TEST_POSTGRES") else { return };
/// # let schema = format!("doc_{}", uuid::Uuid::new_v4().simple());
/// let store = PostgresBackend::connect_with(&url, PostgresOptions::new().schema(&schema))
///     .await
///     .unwrap();
/// assert_eq!(store.schema(), schema);
/// let store = Arc::new(store);
/// let mut engine = Engine::builder(Flow::linear("empty").build().unwrap())
///     .storage(store.clone())
///     .build();
/// engine.run().await.unwrap();
/// // The run's creation and its end: two writes, committed.
/// let stats = store.stats();
/// assert!(stats.commits >= 1 && stats.writes >= 2, "{stats:?}");
/// # });
/// ```
pub struct PostgresBackend {
    shared: Arc<Shared>,
    jobs: Option<mpsc::UnboundedSender<writer::Job>>,
    runtime: tokio::runtime::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("store", &self.shared.store.described())
            .finish()
    }
}

impl Drop for PostgresBackend {
    /// Waits for the writes already queued (a release of a run by an engine
    /// that was dropped, say) to be committed.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl PostgresBackend {
    /// The schema version this library writes.
    pub const SCHEMA_VERSION: i64 = schema::VERSION as i64;

    /// Connects to the server at `url` (`postgres://user:password@host:5432/db`
    /// or PostgreSQL's `key=value` form), with the default
    /// [`PostgresOptions`], and brings the store's schema up to date.
    ///
    /// # Errors
    /// [`StorageError::NewerSchema`] for a store of a newer version,
    /// [`StorageError::NotAStore`] for a schema holding another
    /// application's tables, [`StorageError::Unavailable`] when the server
    /// cannot be reached within
    /// [`unavailable_after`](PostgresOptions::unavailable_after),
    /// [`StorageError::Backend`] (with a [`ConfigError`]) for a URL or schema
    /// name that cannot be used, or the server's refusal.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with `options`.
    ///
    /// # Errors
    /// As [`PostgresBackend::connect`].
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StorageError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|source| {
            config_error(ConfigError::Url {
                url: hide_password(url),
                source,
            })
        })?;
        if config.get_application_name().is_none() {
            config.application_name("flow");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if !schema::valid_schema(&options.schema) {
            return Err(config_error(ConfigError::Schema(options.schema)));
        }
        let store = Store {
            address: address(&config),
            schema: options.schema.clone(),
        };
        let connector = listen::connector(&config, &options)?;
        let listener = listen::Listener::new(config.clone(), connector);
        let manager = manager(config, &options)?;
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(options.pool_size.max(options.in_flight + 1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StorageError::Backend {
                op: Operation::Open,
                source: Box::new(e),
            })?;
        let shared = Arc::new(Shared {
            pool,
            sql: schema::Sql::new(&options.schema),
            store,
            unavailable_after: options.unavailable_after,
            attempt_timeout: options
                .attempt_timeout
                .min(options.unavailable_after.max(Duration::from_millis(1))),
            max_batch: options.max_batch,
            in_flight: options.in_flight,
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            listener,
            posts: posts::Posts::default(),
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        let (opened_tx, opened) = oneshot::channel();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("flow-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = opened_tx.send(Err(StorageError::Backend {
                            op: Operation::Open,
                            source: Box::new(e),
                        }));
                        return;
                    }
                };
                let handle = rt.handle().clone();
                rt.block_on(async move {
                    let opened = migrate(&s).await;
                    let ok = opened.is_ok();
                    let _ = opened_tx.send(opened.map(|()| handle));
                    if ok {
                        writer::writer_loop(s, rx).await;
                    }
                });
            })
            .map_err(|e| StorageError::Backend {
                op: Operation::Open,
                source: Box::new(e),
            })?;
        let runtime = match opened.await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(stopped(Operation::Open));
            }
        };
        Ok(PostgresBackend {
            shared,
            jobs: Some(jobs),
            runtime,
            thread: Some(thread),
        })
    }

    /// How many transactions the writer committed, and how many writes they
    /// held.
    pub fn stats(&self) -> PostgresStats {
        let s = &self.shared;
        PostgresStats {
            commits: s.commits.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
            settled: s.settled.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
        }
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.shared.store.schema
    }

    /// Whether the backend's connection listening for posted jobs
    /// (`LISTEN`) is up: idle conductors are then woken by the server's
    /// `NOTIFY`, and poll only while it is down. It is made when a conductor
    /// first waits for jobs.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::{Duration, Instant};
    /// use flow::postgres::{PostgresBackend, PostgresOptions};
    /// use flow::storage::JobBoard;
    ///
    /// # let Ok(url) = std::env::var("FLOW_TEST_POSTGRES") else { return };
    /// # let schema = format!("doc_{}", uuid::Uuid::new_v4().simple());
    /// let store = PostgresBackend::connect_with(&url, PostgresOptions::new().schema(&schema))
    ///     .await
    ///     .unwrap();
    /// assert!(!store.is_listening());
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// while !store.is_listening() && Instant::now() < deadline {
    ///     store.wait_for_jobs(Duration::from_millis(50)).await;
    /// }
    /// assert!(store.is_listening());
    /// # });
    /// ```
    pub fn is_listening(&self) -> bool {
        self.shared.listener.listening()
    }

    fn job(
        &self,
        op: Operation,
        write: Result<Write, Unstorable>,
    ) -> BoxFuture<'_, Result<Answer, StorageError>> {
        let write = match write {
            Ok(w) => w,
            Err(e) => {
                return futures::future::ready(Err(StorageError::Backend {
                    op,
                    source: Box::new(e),
                }))
                .boxed();
            }
        };
        let (tx, rx) = oneshot::channel();
        let sent = self
            .jobs
            .as_ref()
            .map(|jobs| jobs.send(writer::Job::Write(op, write, tx)).is_ok())
            .unwrap_or(false);
        async move {
            if !sent {
                return Err(stopped(op));
            }
            rx.await.unwrap_or_else(|_| Err(stopped(op)))
        }
        .boxed()
    }

    fn done(
        &self,
        op: Operation,
        write: Result<Write, Unstorable>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        self.job(op, write).map(|r| r.map(drop)).boxed()
    }

    fn lease(
        &self,
        op: Operation,
        write: Result<Write, Unstorable>,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        self.job(op, write)
            .map(move |r| match r? {
                Answer::Lease(lease) => Ok(lease),
                _ => Err(stopped(op)),
            })
            .boxed()
    }

    /// Runs a read on the backend's thread.
    fn read<T: Send + 'static>(
        &self,
        op: Operation,
        f: impl FnOnce(Arc<Shared>) -> BoxFuture<'static, Result<T, StorageError>> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, StorageError>> {
        let task = self.runtime.spawn(f(self.shared.clone()));
        async move { task.await.unwrap_or_else(|_| Err(stopped(op))) }.boxed()
    }
}

async fn migrate(shared: &Shared) -> Result<(), StorageError> {
    let since = std::time::Instant::now();
    let mut backoff = fault::Backoff::new();
    loop {
        let last: Box<dyn std::error::Error + Send + Sync> = match shared.pool.get().await {
            Ok(client) => {
                let mut client = deadpool_postgres::Object::take(client);
                return schema::migrate(&mut client, &shared.store).await;
            }
            Err(e) => Box::new(e),
        };
        let left = shared.unavailable_after.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(StorageError::Unavailable {
                op: Operation::Open,
                store: shared.store.described(),
                waited: since.elapsed(),
                source: last,
            });
        }
        tokio::time::sleep(backoff.step(left)).await;
    }
}

fn stopped(op: Operation) -> StorageError {
    StorageError::Backend {
        op,
        source: "the PostgreSQL backend's thread stopped".into(),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Backend for PostgresBackend {
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(
            Operation::SaveLogbook,
            rows::book_row(&book).map(Write::Logbook),
        )
    }

    fn create_flow(
        &self,
        flow: FlowDetail,
        atoms: Vec<AtomDetail>,
        claim: Claim,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let write = (|| {
            values::text_of_owner(&claim.owner)?;
            Ok(Write::Create {
                run: flow.id,
                flow: rows::flow_row(&flow)?,
                atoms: atoms
                    .iter()
                    .map(|a| rows::atom_row(flow.id, a))
                    .collect::<Result<_, _>>()?,
                owner: claim.owner.clone(),
                lease_us: micros(claim.duration),
            })
        })();
        self.lease(Operation::CreateFlow, write)
    }

    fn claim_flow(&self, run: FlowId, claim: Claim) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let write = values::text_of_owner(&claim.owner).map(|()| Write::Claim {
            run,
            lease_us: micros(claim.duration),
            owner: claim.owner,
        });
        self.lease(Operation::Claim, write)
    }

    fn renew_lease(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let write = values::text_of_owner(&lease.owner).map(|()| Write::Renew {
            lease: lease.clone(),
            lease_us: micros(duration),
        });
        self.lease(Operation::Renew, write)
    }

    fn release_flow(&self, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Operation::Release, Ok(Write::Release(lease.clone())))
    }

    fn save_run(
        &self,
        run: FlowId,
        fence: u64,
        flow: Option<FlowDetail>,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        let write = (|| {
            let flow = match flow {
                Some(mut f) => {
                    f.id = run;
                    Some(rows::flow_row(&f)?)
                }
                None => None,
            };
            Ok(Write::Save {
                run,
                fence,
                flow,
                atoms: atoms
                    .iter()
                    .map(|a| rows::atom_row(run, a))
                    .collect::<Result<_, _>>()?,
            })
        })();
        self.done(Operation::SaveRun, write)
    }

    fn request_cancel(&self, run: FlowId) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(Operation::RequestCancel, Ok(Write::Cancel(run)))
    }

    fn load_flow(
        &self,
        run: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>> {
        self.read(Operation::LoadFlow, move |shared| {
            Box::pin(async move {
                writer::read(&shared, Operation::LoadFlow, |c, s| {
                    read::load(c, &s.sql, run)
                })
                .await?
            })
        })
    }

    fn list_flows(&self, query: FlowQuery) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>> {
        self.read(Operation::ListFlows, move |shared| {
            Box::pin(async move {
                writer::read(&shared, Operation::ListFlows, |c, s| {
                    read::list(c, &s.sql, query.clone())
                })
                .await?
            })
        })
    }

    fn prune_flows(&self, before: f64) -> BoxFuture<'_, Result<u64, StorageError>> {
        let op = Operation::PruneFlows;
        let (tx, rx) = oneshot::channel();
        let sent = self
            .jobs
            .as_ref()
            .map(|jobs| jobs.send(writer::Job::Prune(before, tx)).is_ok())
            .unwrap_or(false);
        async move {
            if !sent {
                return Err(stopped(op));
            }
            match rx.await.unwrap_or_else(|_| Err(stopped(op)))? {
                Answer::Count(n) => Ok(n),
                _ => Err(stopped(op)),
            }
        }
        .boxed()
    }

    fn save_definition(&self, definition: Definition) -> BoxFuture<'_, Result<(), StorageError>> {
        self.done(
            Operation::SaveDefinition,
            rows::definition_row(&definition).map(Write::Definition),
        )
    }

    fn load_definition(&self, id: &str) -> BoxFuture<'_, Result<Option<Definition>, StorageError>> {
        let id = id.to_string();
        self.read(Operation::LoadDefinition, move |shared| {
            Box::pin(async move {
                writer::read(&shared, Operation::LoadDefinition, |c, s| {
                    read::definition(c, &s.sql, id.clone())
                })
                .await?
            })
        })
    }
}
