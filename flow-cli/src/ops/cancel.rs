//! Cancelling a run: through the store when a live process holds it (that
//! process stops its steps and reverts), or here when nobody does (the run
//! is claimed and reverted by this process).

use flow::storage::JobId;
use flow::storage::{JobQuery, JobState};
use flow::{FlowId, RunError, storage};

use super::inspect::RunStatus;
use super::start::{ActiveRun, RunOptions, take_up};
use super::stored::StoredRun;
use super::{OpsError, Store};

/// What a cancel did.
#[derive(Debug)]
pub enum Cancel {
    /// A live process holds the run: it was asked, through the store, to
    /// cancel it; it stops the running steps and reverts what ran when it
    /// next renews its lease.
    Requested {
        /// Who holds the run.
        owner: String,
    },
    /// The run was posted as a job that no conductor had claimed: the job
    /// is complete, cancelled, and nothing ran.
    JobCancelled {
        /// The job.
        job: JobId,
    },
    /// Nobody held the run (its process died, or left it): this process
    /// took it and must now run the returned run, which reverts what had
    /// run and ends cancelled.
    TakenUp(Box<ActiveRun>),
}

/// Cancels run `run`.
///
/// # Errors
/// [`OpsError::Ended`] for a run that has ended; [`OpsError::NotAPipeline`]
/// when nobody holds the run and it is not a pipeline's (only its own
/// program can revert it); [`OpsError::Held`] when another process took it
/// meanwhile; what the store says.
pub async fn cancel_run(
    store: &Store,
    run: FlowId,
    options: &RunOptions,
) -> Result<Cancel, OpsError> {
    let stored = StoredRun::load(store, run).await?;
    let status = RunStatus::of(stored.detail.state);
    if status.ended() {
        return Err(OpsError::Ended {
            run,
            state: status.as_str(),
            hint: "there is nothing to cancel",
        });
    }
    // A job not claimed yet is cancelled on the board.
    let jobs = store
        .board()
        .list_jobs(JobQuery::new().state(JobState::Unclaimed))
        .await
        .map_err(OpsError::Store)?;
    if let Some(job) = jobs.iter().find(|j| j.run == run) {
        store
            .board()
            .cancel_job(job.id)
            .await
            .map_err(OpsError::Store)?;
        return Ok(Cancel::JobCancelled { job: job.id });
    }
    let ownership = &stored.detail.ownership;
    if ownership.is_live(storage::now_unix()) {
        store
            .backend()
            .request_cancel(run)
            .await
            .map_err(|e| OpsError::storage(e, store.location()))?;
        return Ok(Cancel::Requested {
            owner: ownership.owner.clone().unwrap_or_default(),
        });
    }
    let pipeline = stored.require_pipeline("cancelled here")?.clone();
    let active = take_up(store, &stored, &pipeline, options, true).await?;
    Ok(Cancel::TakenUp(Box::new(active)))
}

/// Whether a run's end is what a cancel makes of it.
pub fn cancelled(result: &Result<(), RunError>) -> bool {
    matches!(result, Err(RunError::Cancelled { .. }))
}
