//! [`JobBoard`] on [`PostgresBackend`]: each operation one transaction of
//! [`crate::jobs`], run on the backend's thread through faults
//! ([`crate::tx`]).

use std::time::Duration;

use flow_core::storage::{Claimed, Job, JobBoard, JobClaim, JobId, JobOutcome, JobQuery, NewJob};
use flow_core::{Lease, Operation, StorageError};
use futures::future::{BoxFuture, FutureExt};

use crate::writer::{self, Shared};
use crate::{PostgresBackend, jobs, listen, stopped, tx, values};

impl PostgresBackend {
    /// Runs a transaction of the board on the backend's thread.
    fn board<T: Send + 'static>(
        &self,
        op: Operation,
        body: impl for<'c> Fn(&'c tx::Conn, &'c Shared) -> tx::Body<'c, T> + Send + Sync + 'static,
    ) -> BoxFuture<'_, Result<T, StorageError>> {
        let shared = self.shared.clone();
        let task = self
            .runtime
            .spawn(async move { tx::transact(&shared, op, body).await });
        async move { task.await.unwrap_or_else(|_| Err(stopped(op))) }.boxed()
    }
}

impl JobBoard for PostgresBackend {
    fn post(&self, job: NewJob) -> BoxFuture<'_, Result<Job, StorageError>> {
        let op = Operation::PostJob;
        let job = match jobs::checked_post(job) {
            Ok(job) => job,
            Err(e) => {
                return futures::future::ready(Err(StorageError::Backend {
                    op,
                    source: Box::new(e),
                }))
                .boxed();
            }
        };
        let posted = crate::posts::Posts::send(&self.shared, &self.runtime, job);
        async move {
            let job = posted.await.unwrap_or_else(|_| Err(stopped(op)))?;
            // Conductors of this process at once, the others by NOTIFY.
            self.shared.listener.wake();
            Ok(job)
        }
        .boxed()
    }

    fn claim_jobs(&self, claim: JobClaim) -> BoxFuture<'_, Result<Vec<Claimed>, StorageError>> {
        if let Err(e) = values::text_of_owner(&claim.owner) {
            return futures::future::ready(Err(StorageError::Backend {
                op: Operation::ClaimJobs,
                source: Box::new(e),
            }))
            .boxed();
        }
        self.board(Operation::ClaimJobs, move |c, s| {
            let claim = claim.clone();
            Box::pin(async move { jobs::claim(c, &s.sql.jobs, &claim).await })
        })
    }

    fn complete_job(
        &self,
        job: JobId,
        lease: &Lease,
        outcome: JobOutcome,
        error: Option<String>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        let lease = lease.clone();
        let how = jobs::Settle::Complete(outcome, error.map(|e| e.replace('\0', "\u{FFFD}")));
        self.board(Operation::CompleteJob, move |c, s| {
            let (lease, how) = (lease.clone(), how.clone());
            Box::pin(async move { jobs::settle(c, &s.sql.jobs, job, &lease, &how).await })
        })
    }

    fn hand_back(&self, job: JobId, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>> {
        let lease = lease.clone();
        let handed = self.board(Operation::HandBack, move |c, s| {
            let lease = lease.clone();
            Box::pin(async move {
                jobs::settle(c, &s.sql.jobs, job, &lease, &jobs::Settle::HandBack).await
            })
        });
        async move {
            handed.await?;
            self.shared.listener.wake();
            Ok(())
        }
        .boxed()
    }

    fn cancel_job(&self, job: JobId) -> BoxFuture<'_, Result<Job, StorageError>> {
        self.board(Operation::CancelJob, move |c, s| {
            Box::pin(async move { jobs::cancel(c, &s.sql.jobs, job).await })
        })
    }

    fn load_job(&self, job: JobId) -> BoxFuture<'_, Result<Option<Job>, StorageError>> {
        self.read(Operation::ReadJobs, move |shared| {
            Box::pin(async move {
                writer::read(&shared, Operation::ReadJobs, |c, s| {
                    jobs::load(c, &s.sql.jobs, job)
                })
                .await?
            })
        })
    }

    fn list_jobs(&self, query: JobQuery) -> BoxFuture<'_, Result<Vec<Job>, StorageError>> {
        self.read(Operation::ReadJobs, move |shared| {
            Box::pin(async move {
                writer::read(&shared, Operation::ReadJobs, |c, s| {
                    jobs::list(c, &s.sql.jobs, query.clone())
                })
                .await?
            })
        })
    }

    fn wait_for_jobs(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        listen::Listener::start(&self.shared, &self.runtime);
        let listener = &self.shared.listener;
        let wait = if listener.listening() {
            timeout
        } else {
            timeout.min(jobs::POLL_WITHOUT_LISTENER)
        };
        async move {
            let _ = tokio::time::timeout(wait, listener.posted.notified()).await;
        }
        .boxed()
    }
}
