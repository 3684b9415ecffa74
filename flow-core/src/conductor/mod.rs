//! Conductors: runs shared across processes and machines through a job board.
//!
//! A run is posted as a job ([`JobBoard::post`]); any number of
//! [`Conductor`]s, on any number of machines sharing the store, claim jobs of
//! the flows they know ([`Registry`]) and run them. The claim of a job is the
//! claim of its run: the conductor's engine writes the run's journal with
//! the claim's fencing number, renews the lease while it works, and
//! completes the job with the run's outcome. If a conductor dies, its lease
//! runs out and another conductor takes the job over, resuming its run from
//! the journal; if it hangs past its lease, the store refuses everything it
//! writes after the takeover, and it starts nothing more.
//!
//! What this guarantees, and what a task must tolerate: a job completes once,
//! with the outcome of its run; two live conductors never both run its
//! steps; a step caught running when a conductor died runs again on the
//! conductor that takes over (steps run at least once). A job whose
//! conductor died while running it is a suspect: it is taken over by a
//! conductor that runs nothing else meanwhile, so that a job that kills its
//! conductor kills no other job with it; one whose conductors died too
//! often (a poison job) is failed with the reason instead of being claimed
//! forever.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use flow::conductor::{Conductor, Registry};
//! use flow::storage::{JobBoard, JobOutcome, NewJob};
//! use flow::{Atom, Flow, FnTask, MemoryBackend, Outputs, Signature};
//!
//! let greet = FnTask::sync(
//!     Signature::new().requires::<String>("name").provides::<String>("greeting"),
//!     |a| Ok(Outputs::one(format!("hello, {}", a.get::<String>(0)?))),
//! );
//! let hello = Flow::linear("hello").input::<String>("name").add(Atom::new("greet", greet));
//! let mut registry = Registry::new();
//! registry.register("1", hello.build().unwrap());
//!
//! let board = Arc::new(MemoryBackend::new());
//! let job = board.post(NewJob::new("hello", "1").input("name", "world")).await.unwrap();
//!
//! let conductor = Conductor::new(board.clone(), registry).concurrency(4);
//! let stop = conductor.handle();
//! let running = tokio::spawn(conductor.run());
//! // ... later: the job is complete.
//! # loop {
//! #     let done = board.load_job(job.id).await.unwrap().unwrap();
//! #     if done.outcome.is_some() { break; }
//! #     tokio::time::sleep(Duration::from_millis(5)).await;
//! # }
//! let done = board.load_job(job.id).await.unwrap().unwrap();
//! assert_eq!(done.outcome, Some(JobOutcome::Succeeded));
//! stop.shutdown();
//! let summary = running.await.unwrap().unwrap();
//! assert_eq!(summary.completed, 1);
//! # });
//! ```

mod registry;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use registry::Registry;

use crate::engine::control::RunHandle;
use crate::engine::{Engine, Mode};
use crate::error::RunError;
use crate::notify::Listener;
use crate::storage::{Backend, Claimed, JobBoard, JobClaim, JobId, JobOutcome, StorageError};

/// Stops a [`Conductor`] from elsewhere (a signal handler, say).
#[derive(Clone, Debug)]
pub struct ConductorHandle(Arc<Stop>);

#[derive(Debug, Default)]
struct Stop {
    requested: AtomicBool,
    notify: Notify,
    /// The runs of the jobs under way, suspended at once by a shutdown.
    running: Mutex<HashMap<JobId, RunHandle>>,
}

impl ConductorHandle {
    /// Asks the conductor to stop: it claims nothing more, suspends its runs
    /// (their running steps finish first), hands their jobs back for another
    /// conductor, and [`Conductor::run`] returns.
    pub fn shutdown(&self) {
        self.0.requested.store(true, Ordering::Release);
        for h in lock(&self.0.running).values() {
            h.suspend();
        }
        self.0.notify.notify_one();
    }
}

/// What a conductor did before it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Jobs it completed (whatever their outcome).
    pub completed: u64,
    /// Jobs it handed back (on shutdown, or when the store failed).
    pub handed_back: u64,
    /// Jobs another conductor took from it (its lease had run out).
    pub lost: u64,
}

/// Claims jobs from a board and runs them, up to a concurrency limit.
pub struct Conductor {
    board: Arc<dyn JobBoard>,
    registry: Arc<Registry>,
    owner: String,
    concurrency: usize,
    lease: Duration,
    renew_every: Option<Duration>,
    poll: Duration,
    max_crashes: u32,
    mode: Mode,
    listeners: Vec<Arc<dyn Listener>>,
    stop: Arc<Stop>,
}

impl fmt::Debug for Conductor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conductor")
            .field("owner", &self.owner)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Conductor {
    /// A conductor of the flows in `registry`, claiming from `board`: one
    /// job at a time, 30 s leases, its owner id `host:pid:xxxxxxxx`.
    pub fn new(board: Arc<dyn JobBoard>, registry: Registry) -> Self {
        Conductor {
            board,
            registry: Arc::new(registry),
            owner: crate::engine::default_owner(),
            concurrency: 1,
            lease: Duration::from_secs(30),
            renew_every: None,
            poll: Duration::from_secs(1),
            max_crashes: 3,
            mode: Mode::Serial,
            listeners: Vec::new(),
            stop: Arc::default(),
        }
    }

    /// Its id, shown as the owner of the jobs and runs it holds.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// Runs up to `n` jobs at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long its claim on a job lasts unless renewed (default 30 s): the
    /// time another conductor waits before it takes over the jobs of one
    /// that died.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// How often it renews its claims (default: a third of the lease).
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = Some(every);
        self
    }

    /// How long an idle conductor waits before it looks for jobs again when
    /// nothing told it of new ones (default 1 s; a board that can tell,
    /// wakes it at once).
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// How many conductors a job may kill before it is failed as poison
    /// (default 3).
    pub fn max_crashes(mut self, n: u32) -> Self {
        self.max_crashes = n.max(1);
        self
    }

    /// The engine mode of the runs (default serial).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A listener for the events of every run.
    pub fn listener(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// A handle to stop it.
    pub fn handle(&self) -> ConductorHandle {
        ConductorHandle(self.stop.clone())
    }

    /// Claims and runs jobs until [`ConductorHandle::shutdown`]; then suspends
    /// its runs, hands their jobs back, and returns what it did.
    ///
    /// # Errors
    /// Never for a job: a job's failure is its outcome. A store that keeps
    /// failing is logged and retried at each poll.
    pub async fn run(self) -> Result<Summary, StorageError> {
        let conductor = Arc::new(self);
        let mut summary = Summary::default();
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let stop = conductor.stop.clone();
        // Running a suspect job, alone.
        let mut isolating = false;
        loop {
            if stop.requested.load(Ordering::Acquire) {
                for h in lock(&stop.running).values() {
                    h.suspend();
                }
                while let Some(done) = tasks.join_next().await {
                    summary.count(done);
                }
                return Ok(summary);
            }
            // Every job that ended frees its slot before the next claim: one
            // claim then fills them all, rather than one claim per ended job.
            while let Some(done) = tasks.try_join_next() {
                summary.count(done);
            }
            if tasks.is_empty() {
                isolating = false;
            }
            let free = conductor.concurrency - tasks.len();
            if free > 0 && !isolating {
                let claim = JobClaim::new(
                    conductor.owner.clone(),
                    conductor.lease,
                    conductor.registry.known(),
                    free,
                )
                .max_crashes(conductor.max_crashes)
                .alone(tasks.is_empty());
                match conductor.board.claim_jobs(claim).await {
                    Ok(claimed) => {
                        for c in claimed {
                            // A suspect runs alone: nothing else is claimed
                            // until it is done.
                            isolating |= c.suspect();
                            tasks.spawn(conductor.clone().run_job(c));
                        }
                    }
                    Err(e) => tracing::warn!(target: "flow", "claiming jobs failed: {e}"),
                }
            }
            let idle = tasks.len() < conductor.concurrency && !isolating;
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => summary.count(done),
                () = conductor.board.wait_for_jobs(conductor.poll), if idle => {}
                () = stop.notify.notified() => {}
            }
        }
    }

    /// Runs one claimed job to its end (or until it is suspended or lost).
    async fn run_job(self: Arc<Self>, claimed: Claimed) -> Done {
        let Claimed { job, lease } = claimed;
        let Some(flow) = self.registry.get(&job.flow, &job.version).cloned() else {
            return self
                .settle(
                    job.id,
                    &lease,
                    JobOutcome::Failed,
                    Some(format!(
                        "no flow `{}` at version `{}` is registered here",
                        job.flow, job.version
                    )),
                )
                .await;
        };
        let backend: Arc<dyn Backend> = self.board.clone();
        let mut builder = Engine::builder(flow)
            .storage(backend)
            .owner(self.owner.clone())
            .lease(self.lease)
            .mode(self.mode)
            .keep_claim();
        if let Some(every) = self.renew_every {
            builder = builder.renew_every(every);
        }
        for l in &self.listeners {
            builder = builder.listener_arc(l.clone());
        }
        let mut engine = match builder.resume_claimed(job.run, lease.clone()).await {
            Ok(engine) => engine,
            Err(e) => {
                let why = format!("its run could not be taken up: {e}");
                return self
                    .settle(job.id, &lease, JobOutcome::Failed, Some(why))
                    .await;
            }
        };
        lock(&self.stop.running).insert(job.id, engine.handle());
        // A shutdown asked while the run was being taken up.
        if self.stop.requested.load(Ordering::Acquire) {
            engine.handle().suspend();
        }
        let result = engine.run().await;
        lock(&self.stop.running).remove(&job.id);
        let lease = engine.detach_lease().unwrap_or(lease);
        let (outcome, error) = match result {
            Ok(()) => (JobOutcome::Succeeded, None),
            Err(e @ RunError::Reverted { .. }) => (JobOutcome::Reverted, Some(e.to_string())),
            Err(e @ RunError::Cancelled { .. }) => (JobOutcome::Cancelled, Some(e.to_string())),
            Err(RunError::Suspended { .. }) => return self.give_back(job.id, &lease).await,
            Err(RunError::OwnershipLost { .. }) => return Done::Lost,
            Err(RunError::Storage(e)) => {
                tracing::warn!(target: "flow", job = %job.id, "the journal failed: {e}");
                return self.give_back(job.id, &lease).await;
            }
            Err(e) => (JobOutcome::Failed, Some(e.to_string())),
        };
        self.settle(job.id, &lease, outcome, error).await
    }

    async fn settle(
        &self,
        job: JobId,
        lease: &crate::storage::Lease,
        outcome: JobOutcome,
        error: Option<String>,
    ) -> Done {
        match self.board.complete_job(job, lease, outcome, error).await {
            Ok(()) => Done::Completed,
            Err(e) if e.is_ownership() => Done::Lost,
            Err(e) => {
                tracing::warn!(target: "flow", %job, "completing the job failed: {e}");
                Done::HandedBack
            }
        }
    }

    async fn give_back(&self, job: JobId, lease: &crate::storage::Lease) -> Done {
        match self.board.hand_back(job, lease).await {
            Err(e) if e.is_ownership() => Done::Lost,
            Err(e) => {
                tracing::warn!(target: "flow", %job, "handing the job back failed: {e}");
                Done::HandedBack
            }
            Ok(()) => Done::HandedBack,
        }
    }
}

/// How one job ended for this conductor.
enum Done {
    Completed,
    HandedBack,
    Lost,
}

impl Summary {
    fn count(&mut self, done: Result<Done, tokio::task::JoinError>) {
        match done {
            Ok(Done::Completed) => self.completed += 1,
            Ok(Done::HandedBack) | Err(_) => self.handed_back += 1,
            Ok(Done::Lost) => self.lost += 1,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
