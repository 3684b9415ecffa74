//! The SQLite store as a job board: each call goes through the store's
//! writer, whose transactions [`super::jobs`] fills.

use super::jobs::{JobAnswer, JobWrite, list, load, poll};
use std::time::Duration;

use crate::storage::{
    Claimed, Job, JobClaim, JobId, JobOutcome, JobQuery, Lease, NewJob, Operation, StorageError,
};

impl crate::storage::JobBoard for super::SqliteBackend {
    fn post(&self, job: NewJob) -> futures::future::BoxFuture<'_, Result<Job, StorageError>> {
        use futures::FutureExt;
        let answer = self.write(super::write::Write::Jobs(JobWrite::Post(job)));
        async move {
            let job = match answer.await? {
                super::write::Answer::Jobs(JobAnswer::Job(job)) => *job,
                _ => return Err(super::stopped(Operation::PostJob)),
            };
            crate::storage::memory_jobs::wake(&self.posted);
            Ok(job)
        }
        .boxed()
    }

    fn claim_jobs(
        &self,
        claim: JobClaim,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Claimed>, StorageError>> {
        use futures::FutureExt;
        let answer = self.write(super::write::Write::Jobs(JobWrite::Claim(claim)));
        async move {
            match answer.await? {
                super::write::Answer::Jobs(JobAnswer::Claimed(claimed)) => Ok(claimed),
                _ => Err(super::stopped(Operation::ClaimJobs)),
            }
        }
        .boxed()
    }

    fn complete_job(
        &self,
        job: JobId,
        lease: &Lease,
        outcome: JobOutcome,
        error: Option<String>,
    ) -> futures::future::BoxFuture<'_, Result<(), StorageError>> {
        let w = JobWrite::Complete(job, lease.clone(), outcome, error);
        self.done(super::write::Write::Jobs(w))
    }

    fn hand_back(
        &self,
        job: JobId,
        lease: &Lease,
    ) -> futures::future::BoxFuture<'_, Result<(), StorageError>> {
        use futures::FutureExt;
        let answer = self.done(super::write::Write::Jobs(JobWrite::HandBack(
            job,
            lease.clone(),
        )));
        async move {
            answer.await?;
            crate::storage::memory_jobs::wake(&self.posted);
            Ok(())
        }
        .boxed()
    }

    fn cancel_job(&self, job: JobId) -> futures::future::BoxFuture<'_, Result<Job, StorageError>> {
        use futures::FutureExt;
        let answer = self.write(super::write::Write::Jobs(JobWrite::Cancel(job)));
        async move {
            match answer.await? {
                super::write::Answer::Jobs(JobAnswer::Job(job)) => Ok(*job),
                _ => Err(super::stopped(Operation::CancelJob)),
            }
        }
        .boxed()
    }

    fn load_job(
        &self,
        job: JobId,
    ) -> futures::future::BoxFuture<'_, Result<Option<Job>, StorageError>> {
        self.read(Operation::ReadJobs, move |conn, path| load(conn, path, job))
    }

    fn list_jobs(
        &self,
        query: JobQuery,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Job>, StorageError>> {
        self.read(Operation::ReadJobs, move |conn, path| {
            list(conn, path, &query)
        })
    }

    fn wait_for_jobs(&self, timeout: Duration) -> futures::future::BoxFuture<'_, ()> {
        use futures::FutureExt;
        async move {
            let _ = tokio::time::timeout(poll(timeout), self.posted.notified()).await;
        }
        .boxed()
    }
}
