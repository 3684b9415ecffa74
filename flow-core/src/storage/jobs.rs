//! The job board: runs posted as jobs, claimed by conductors.
//!
//! A job names a flow by name and version and carries the run's inputs as
//! JSON. Posting it stores the job and a pending run for it; a conductor
//! that knows the flow claims the job, and so the run: the job's claim *is*
//! the run's claim (its owner, lease and fencing number, see
//! [`Backend`]), so a conductor that lost a job can write nothing for its
//! run. Job states go `UNCLAIMED -> CLAIMED -> COMPLETE`, and back to
//! `UNCLAIMED` when a conductor hands a job back (shutting down) or dies (its
//! lease runs out; the next claim takes the job over).

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Backend, FlowDetail, FlowId, JobId, Lease, LogbookId, Ownership, StorageError};
use crate::engine::state::FlowState;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a conductor that knows its flow.
    Unclaimed,
    /// A conductor holds it (its run's lease says for how long).
    Claimed,
    /// Done, with an outcome.
    Complete,
}

impl JobState {
    /// The state as the store writes it: `UNCLAIMED`, `CLAIMED`, `COMPLETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Unclaimed => "UNCLAIMED",
            JobState::Claimed => "CLAIMED",
            JobState::Complete => "COMPLETE",
        }
    }

    /// The state written as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        [JobState::Unclaimed, JobState::Claimed, JobState::Complete]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a complete job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobOutcome {
    /// Its run succeeded.
    Succeeded,
    /// Its run failed and was reverted.
    Reverted,
    /// It was cancelled (before a conductor claimed it, or while its run ran:
    /// what had run was reverted).
    Cancelled,
    /// It could not be run to an end: a revert failed, its run could not be
    /// taken up, or it killed its conductors too often (a poison job). The
    /// job's error says which.
    Failed,
}

impl JobOutcome {
    /// The outcome as the store writes it: `SUCCEEDED`, `REVERTED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "SUCCEEDED",
            JobOutcome::Reverted => "REVERTED",
            JobOutcome::Cancelled => "CANCELLED",
            JobOutcome::Failed => "FAILED",
        }
    }

    /// The outcome written as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        [
            JobOutcome::Succeeded,
            JobOutcome::Reverted,
            JobOutcome::Cancelled,
            JobOutcome::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to post: a flow by name and version, and the run's inputs.
///
/// ```
/// use flow::storage::NewJob;
/// let job = NewJob::new("upgrade", "2")
///     .input("db", "main")
///     .input("version", 7)
///     .priority(10);
/// assert_eq!(job.inputs["db"], "main");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct NewJob {
    /// The flow's name.
    pub flow: String,
    /// The version of the flow's definition that a conductor must know.
    pub version: String,
    /// The run's inputs, by name, as JSON.
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// Higher first (default 0).
    pub priority: i32,
    /// Not claimed before this time (seconds since the Unix epoch).
    pub not_before: Option<f64>,
}

impl NewJob {
    /// A job for version `version` of flow `flow`, with no inputs yet.
    pub fn new(flow: impl Into<String>, version: impl Into<String>) -> Self {
        NewJob {
            flow: flow.into(),
            version: version.into(),
            inputs: serde_json::Map::new(),
            priority: 0,
            not_before: None,
        }
    }

    /// Adds an input (as JSON: it is decoded into the flow's declared type
    /// when a conductor takes the run up).
    pub fn input(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.inputs.insert(name.into(), value.into());
        self
    }

    /// Higher-priority jobs are claimed first.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The job is not claimed before `t` (seconds since the Unix epoch).
    pub fn not_before(mut self, t: f64) -> Self {
        self.not_before = Some(t);
        self
    }

    /// The job this post makes when a store takes it at time `now` (seconds
    /// since the Unix epoch, by the store's clock): unclaimed, with new ids
    /// for the job and its run. For backends kept outside this crate.
    ///
    /// ```
    /// use flow::storage::{JobState, NewJob};
    /// let job = NewJob::new("upgrade", "2").input("db", "main").into_job(100.0);
    /// assert_eq!((job.state, job.created_at, job.not_before), (JobState::Unclaimed, 100.0, 100.0));
    /// assert_eq!(job.inputs["db"], "main");
    /// ```
    pub fn into_job(self, now: f64) -> Job {
        Job {
            id: JobId::new(),
            run: FlowId::new(),
            flow: self.flow,
            version: self.version,
            inputs: serde_json::Value::Object(self.inputs),
            priority: self.priority,
            not_before: self.not_before.unwrap_or(now),
            created_at: now,
            state: JobState::Unclaimed,
            outcome: None,
            error: None,
            claims: 0,
            crashes: 0,
            owner: None,
            completed_at: None,
        }
    }
}

/// A job as the board has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The run made for it when it was posted.
    pub run: FlowId,
    /// The flow's name.
    pub flow: String,
    /// The flow's version.
    pub version: String,
    /// The run's inputs.
    pub inputs: serde_json::Value,
    /// Higher first.
    pub priority: i32,
    /// Not claimed before this time.
    pub not_before: f64,
    /// When it was posted (seconds since the Unix epoch).
    pub created_at: f64,
    /// Where it is.
    pub state: JobState,
    /// How it ended, once complete.
    pub outcome: Option<JobOutcome>,
    /// Why, for a job that did not succeed.
    pub error: Option<String>,
    /// How many times it was claimed.
    pub claims: u32,
    /// How many of its conductors died holding it.
    pub crashes: u32,
    /// Who holds it, or held it last.
    pub owner: Option<String>,
    /// When it completed.
    pub completed_at: Option<f64>,
}

impl Job {
    /// The pending run a post of this job stores beside it, in logbook
    /// `logbook`: its inputs, its job and its version in the run's metadata,
    /// no atoms yet. For backends kept outside this crate.
    ///
    /// ```
    /// use flow::storage::{LogbookId, NewJob};
    /// use flow::FlowState;
    /// let job = NewJob::new("upgrade", "2").input("db", "main").into_job(100.0);
    /// let run = job.pending_run(LogbookId::new());
    /// assert_eq!((run.id, run.state), (job.run, FlowState::Pending));
    /// assert_eq!(run.meta["inputs"]["db"], "main");
    /// ```
    pub fn pending_run(&self, logbook: LogbookId) -> FlowDetail {
        FlowDetail {
            id: self.run,
            logbook,
            name: self.flow.clone(),
            state: FlowState::Pending,
            meta: serde_json::json!({
                "inputs": self.inputs,
                "job": self.id,
                "version": self.version,
            }),
            created_at: self.created_at,
            updated_at: self.created_at,
            ownership: Ownership::default(),
        }
    }

    /// Whether a claim would take this job as a suspect: it crashed a
    /// conductor before, or it is claimed by one whose lease ran out.
    ///
    /// ```
    /// use flow::storage::NewJob;
    /// assert!(!NewJob::new("f", "1").into_job(0.0).is_suspect());
    /// ```
    pub fn is_suspect(&self) -> bool {
        self.crashes > 0 || self.state == JobState::Claimed
    }

    /// Counts the death of the conductor that held this job (its lease ran
    /// out), and fails the job as poison, at `now`, when that makes
    /// `max_crashes`. Returns whether it did.
    ///
    /// ```
    /// use flow::storage::{JobOutcome, NewJob};
    /// let mut job = NewJob::new("f", "1").into_job(0.0);
    /// assert!(!job.count_crash(2, 1.0));
    /// assert!(job.count_crash(2, 2.0));
    /// assert_eq!((job.crashes, job.outcome, job.completed_at), (2, Some(JobOutcome::Failed), Some(2.0)));
    /// ```
    pub fn count_crash(&mut self, max_crashes: u32, now: f64) -> bool {
        self.crashes += 1;
        if self.crashes < max_crashes {
            return false;
        }
        self.state = JobState::Complete;
        self.outcome = Some(JobOutcome::Failed);
        self.error = Some(poison_message(self.crashes, self.owner.as_deref()));
        self.completed_at = Some(now);
        true
    }
}

/// What a conductor asks the board for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JobClaim {
    /// The conductor's id.
    pub owner: String,
    /// How long its claims last unless renewed.
    pub lease: Duration,
    /// The flows it knows, as `(name, version)`: it is given jobs of these only.
    pub known: Vec<(String, String)>,
    /// At most this many jobs.
    pub limit: usize,
    /// A job whose conductors died this many times is failed as poison
    /// instead of claimed again.
    pub max_crashes: u32,
    /// Whether the conductor runs nothing now: only then may it take a
    /// suspect job (one whose conductor died while running it), and it takes
    /// that job alone, so that a job that kills its conductor kills no other
    /// job with it.
    pub alone: bool,
}

impl JobClaim {
    /// A claim by `owner` of up to `limit` jobs of the `known` flows.
    pub fn new(
        owner: impl Into<String>,
        lease: Duration,
        known: Vec<(String, String)>,
        limit: usize,
    ) -> Self {
        JobClaim {
            owner: owner.into(),
            lease,
            known,
            limit,
            max_crashes: 3,
            alone: false,
        }
    }

    /// Says whether the conductor runs nothing now (see [`JobClaim::alone`]).
    pub fn alone(mut self, alone: bool) -> Self {
        self.alone = alone;
        self
    }

    /// What this claim does with a candidate, taken in order (highest
    /// priority, then oldest), when it took `taken` jobs so far and the
    /// candidate is `suspect` ([`Job::is_suspect`]): the rule every board
    /// follows.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flow::storage::{JobClaim, Pick};
    /// let idle = JobClaim::new("c", Duration::from_secs(30), vec![], 4).alone(true);
    /// assert_eq!(idle.pick(0, true), Pick::TakeAlone);
    /// assert_eq!(idle.pick(1, true), Pick::Skip);
    /// assert_eq!(idle.pick(1, false), Pick::Take);
    /// ```
    pub fn pick(&self, taken: usize, suspect: bool) -> Pick {
        pick(self, taken, suspect)
    }

    /// The number of conductor deaths that makes a job poison (default 3).
    pub fn max_crashes(mut self, n: u32) -> Self {
        self.max_crashes = n.max(1);
        self
    }
}

/// A claimed job and the lease on its run.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Claimed {
    /// The job.
    pub job: Job,
    /// The claim: write its run with this lease's fencing number.
    pub lease: Lease,
}

impl Claimed {
    /// A job claimed under `lease`.
    pub fn new(job: Job, lease: Lease) -> Self {
        Claimed { job, lease }
    }

    /// Whether a conductor died while running this job before: the job is
    /// run alone.
    pub fn suspect(&self) -> bool {
        self.job.crashes > 0
    }
}

/// What a claim does with a candidate job ([`JobClaim::pick`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Claim it.
    Take,
    /// Claim it, and nothing after it (a suspect, taken alone).
    TakeAlone,
    /// Leave it.
    Skip,
}

/// Whether a claimant that took `taken` jobs so far takes a candidate that
/// is `suspect` (crashed before, or held by a conductor that died).
pub(crate) fn pick(claim: &JobClaim, taken: usize, suspect: bool) -> Pick {
    match (suspect, claim.alone && taken == 0) {
        (false, _) => Pick::Take,
        (true, true) => Pick::TakeAlone,
        (true, false) => Pick::Skip,
    }
}

/// Which jobs [`JobBoard::list_jobs`] returns, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct JobQuery {
    /// Only jobs in one of these states (any when empty).
    pub states: Vec<JobState>,
    /// Only jobs of this flow.
    pub flow: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Skip this many first.
    pub offset: usize,
}

impl JobQuery {
    /// Every job.
    pub fn new() -> Self {
        JobQuery::default()
    }

    /// Also jobs in `state`.
    pub fn state(mut self, state: JobState) -> Self {
        self.states.push(state);
        self
    }

    /// Only jobs of flow `flow`.
    pub fn flow(mut self, flow: impl Into<String>) -> Self {
        self.flow = Some(flow.into());
        self
    }

    /// At most `n` jobs.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` jobs.
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Whether `job` is one asked for (paging apart).
    pub fn matches(&self, job: &Job) -> bool {
        (self.states.is_empty() || self.states.contains(&job.state))
            && self.flow.as_ref().is_none_or(|f| *f == job.flow)
    }
}

/// Why a job was failed as poison.
pub(crate) fn poison_message(crashes: u32, owner: Option<&str>) -> String {
    format!(
        "poison job: {crashes} conductors died while running it (the last was `{}`); it is not \
         claimed again: look at its run, fix what kills the conductor, and post it anew",
        owner.unwrap_or("unknown")
    )
}

/// A store that keeps a job board beside its journal.
///
/// Implementations keep the board in the journal's store, so that claiming a
/// job claims its run in the same transaction; the conformance suite checks
/// every backend the same way.
pub trait JobBoard: Backend {
    /// Posts a job: stores it, unclaimed, with a pending run of flow
    /// `job.flow` holding its inputs.
    fn post(&self, job: NewJob) -> BoxFuture<'_, Result<Job, StorageError>>;

    /// Claims up to `claim.limit` jobs of the flows `claim.known`, highest
    /// priority first, then oldest: unclaimed ones whose time has come, and
    /// claimed ones whose conductor's lease ran out (counted as a crash of
    /// that conductor; a job with `claim.max_crashes` crashes is completed
    /// as failed instead). A suspect job (one that crashed before) goes only
    /// to a claimant that runs nothing ([`JobClaim::alone`]), alone. Each
    /// job's run is claimed with it.
    fn claim_jobs(&self, claim: JobClaim) -> BoxFuture<'_, Result<Vec<Claimed>, StorageError>>;

    /// Completes a job with its outcome, and gives its run back, if `lease`
    /// still holds the run.
    ///
    /// # Errors
    /// [`StorageError::OwnershipLost`] when someone claimed the job since.
    fn complete_job(
        &self,
        job: JobId,
        lease: &Lease,
        outcome: JobOutcome,
        error: Option<String>,
    ) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Hands a job back, unclaimed, and gives its run back, if `lease` still
    /// holds the run: another conductor may take it up at once.
    ///
    /// # Errors
    /// [`StorageError::OwnershipLost`] when someone claimed the job since.
    fn hand_back(&self, job: JobId, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Cancels a job: an unclaimed one completes as cancelled at once; the
    /// run of a claimed one is asked to cancel (its conductor reverts it and
    /// completes the job). Returns the job as it is after the call.
    fn cancel_job(&self, job: JobId) -> BoxFuture<'_, Result<Job, StorageError>>;

    /// A job by id.
    fn load_job(&self, job: JobId) -> BoxFuture<'_, Result<Option<Job>, StorageError>>;

    /// The jobs `query` asks for, oldest first.
    fn list_jobs(&self, query: JobQuery) -> BoxFuture<'_, Result<Vec<Job>, StorageError>>;

    /// Resolves when jobs may have been posted or handed back (at the latest
    /// after `timeout`): a backend that can be told (PostgreSQL's
    /// `LISTEN/NOTIFY`, posts in this process) wakes idle conductors at once.
    fn wait_for_jobs(&self, timeout: Duration) -> BoxFuture<'_, ()>;
}
