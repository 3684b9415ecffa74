//! The job board of [`MemoryBackend`]: for tests, and for conductors of one
//! process.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::jobs::{Pick, pick, poison_message};
use super::memory::{Inner, done, lease_end, lost};
use super::{
    Claimed, Job, JobBoard, JobClaim, JobId, JobOutcome, JobQuery, JobState, Lease, LogBook,
    LogbookId, MemoryBackend, NewJob, Ownership, StorageError, now_unix,
};

/// Whether `job`, held through run ownership `held`, can be claimed at
/// `now` by a conductor that knows `known`.
pub(super) fn claimable(job: &Job, held: &Ownership, known: &[(String, String)], now: f64) -> bool {
    let known = known
        .iter()
        .any(|(f, v)| *f == job.flow && *v == job.version);
    let free = match job.state {
        JobState::Unclaimed => true,
        // Its conductor died (or hung past its lease).
        JobState::Claimed => !held.is_live(now),
        JobState::Complete => false,
    };
    known && free && job.not_before <= now
}

/// Wakes every conductor waiting for jobs, and the next one to wait.
pub(super) fn wake(posted: &tokio::sync::Notify) {
    posted.notify_waiters();
    posted.notify_one();
}

fn settle(
    inner: &mut Inner,
    job: JobId,
    lease: &Lease,
    then: impl FnOnce(&mut Job, f64),
) -> Result<(), StorageError> {
    let Some(stored) = inner.jobs.get(&job) else {
        return Err(StorageError::JobNotFound(job));
    };
    let run = stored.run;
    let Some(r) = inner.flows.get_mut(&run) else {
        return Err(StorageError::NotFound(run));
    };
    if r.detail.ownership.fence != lease.fence {
        return Err(lost(r, lease.fence));
    }
    r.detail.ownership.owner = None;
    r.detail.ownership.expires_at = None;
    if let Some(j) = inner.jobs.get_mut(&job) {
        then(j, now_unix());
    }
    Ok(())
}

impl JobBoard for MemoryBackend {
    fn post(&self, post: NewJob) -> BoxFuture<'_, Result<Job, StorageError>> {
        let job = post.into_job(now_unix());
        {
            let mut inner = self.lock();
            let book = LogbookId::new();
            inner.books.insert(
                book,
                LogBook {
                    id: book,
                    name: job.flow.clone(),
                    created_at: job.created_at,
                    updated_at: job.created_at,
                    meta: serde_json::Value::Null,
                },
            );
            inner.flows.insert(
                job.run,
                super::memory::Run {
                    detail: job.pending_run(book),
                    atoms: BTreeMap::new(),
                },
            );
            inner.jobs.insert(job.id, job.clone());
        }
        wake(&self.posted);
        done(Ok(job))
    }

    fn claim_jobs(&self, claim: JobClaim) -> BoxFuture<'_, Result<Vec<Claimed>, StorageError>> {
        let mut inner = self.lock();
        let now = now_unix();
        let mut candidates: Vec<&Job> = inner
            .jobs
            .values()
            .filter(|j| {
                inner
                    .flows
                    .get(&j.run)
                    .is_some_and(|r| claimable(j, &r.detail.ownership, &claim.known, now))
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.total_cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        let ids: Vec<JobId> = candidates.iter().map(|j| j.id).collect();
        let mut claimed = Vec::new();
        for id in ids {
            if claimed.len() >= claim.limit {
                break;
            }
            let Some(job) = inner.jobs.get(&id).cloned() else {
                continue;
            };
            let mut job = job;
            let suspect = job.crashes > 0 || job.state == JobState::Claimed;
            let alone = match pick(&claim, claimed.len(), suspect) {
                Pick::Skip => continue,
                Pick::Take => false,
                Pick::TakeAlone => true,
            };
            if job.state == JobState::Claimed {
                job.crashes += 1;
                if job.crashes >= claim.max_crashes {
                    job.state = JobState::Complete;
                    job.outcome = Some(JobOutcome::Failed);
                    job.error = Some(poison_message(job.crashes, job.owner.as_deref()));
                    job.completed_at = Some(now);
                    inner.jobs.insert(id, job);
                    continue;
                }
            }
            let Some(run) = inner.flows.get_mut(&job.run) else {
                continue;
            };
            let held = &mut run.detail.ownership;
            held.fence += 1;
            held.owner = Some(claim.owner.clone());
            let expires = lease_end(now, claim.lease);
            held.expires_at = Some(expires);
            let lease = Lease::new(job.run, claim.owner.clone(), held.fence, expires)
                .with_cancel_requested(held.cancel_requested);
            job.state = JobState::Claimed;
            job.claims += 1;
            job.owner = Some(claim.owner.clone());
            inner.jobs.insert(id, job.clone());
            claimed.push(Claimed::new(job, lease));
            if alone {
                break;
            }
        }
        done(Ok(claimed))
    }

    fn complete_job(
        &self,
        job: JobId,
        lease: &Lease,
        outcome: JobOutcome,
        error: Option<String>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        let mut inner = self.lock();
        done(settle(&mut inner, job, lease, |j, now| {
            j.state = JobState::Complete;
            j.outcome = Some(outcome);
            j.error = error;
            j.completed_at = Some(now);
        }))
    }

    fn hand_back(&self, job: JobId, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>> {
        let result = {
            let mut inner = self.lock();
            settle(&mut inner, job, lease, |j, _| j.state = JobState::Unclaimed)
        };
        wake(&self.posted);
        done(result)
    }

    fn cancel_job(&self, job: JobId) -> BoxFuture<'_, Result<Job, StorageError>> {
        let mut inner = self.lock();
        let Some(stored) = inner.jobs.get(&job).cloned() else {
            return done(Err(StorageError::JobNotFound(job)));
        };
        match stored.state {
            JobState::Unclaimed => {
                let j = inner.jobs.get_mut(&job).expect("the job is there");
                j.state = JobState::Complete;
                j.outcome = Some(JobOutcome::Cancelled);
                j.error = Some("cancelled before a conductor took it up".into());
                j.completed_at = Some(now_unix());
            }
            JobState::Claimed => {
                if let Some(r) = inner.flows.get_mut(&stored.run) {
                    r.detail.ownership.cancel_requested = true;
                }
            }
            JobState::Complete => {}
        }
        done(Ok(inner.jobs[&job].clone()))
    }

    fn load_job(&self, job: JobId) -> BoxFuture<'_, Result<Option<Job>, StorageError>> {
        done(Ok(self.lock().jobs.get(&job).cloned()))
    }

    fn list_jobs(&self, query: JobQuery) -> BoxFuture<'_, Result<Vec<Job>, StorageError>> {
        let inner = self.lock();
        let mut jobs: Vec<Job> = inner
            .jobs
            .values()
            .filter(|j| query.matches(j))
            .cloned()
            .collect();
        jobs.sort_by(|a, b| a.created_at.total_cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let jobs = jobs
            .into_iter()
            .skip(query.offset)
            .take(query.limit.unwrap_or(usize::MAX))
            .collect();
        done(Ok(jobs))
    }

    fn wait_for_jobs(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        async move {
            let _ = tokio::time::timeout(timeout, self.posted.notified()).await;
        }
        .boxed()
    }
}
