//! The job board: posts, claims (which are the runs' claims), priorities,
//! known flows, completion, hand-backs, takeovers, poison jobs, cancels,
//! concurrent claimants and wake-ups.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use flow_core::storage::{JobBoard, JobClaim, JobOutcome, JobQuery, JobState, NewJob};
use flow_core::{Claim, FlowState, StorageError, now_unix};
use serde_json::json;

use crate::LIVE;

fn claim(owner: &str, known: &[(&str, &str)], limit: usize) -> JobClaim {
    JobClaim::new(
        owner,
        LIVE,
        known
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect(),
        limit,
    )
}

/// A post stores an unclaimed job and a pending run holding its inputs.
pub async fn a_post_stores_a_job_and_its_pending_run(b: &dyn JobBoard) {
    let before = now_unix();
    let job = b
        .post(
            NewJob::new("deploy", "3")
                .input("host", "web-1")
                .input("n", 2)
                .priority(5),
        )
        .await
        .unwrap();
    assert_eq!((job.flow.as_str(), job.version.as_str()), ("deploy", "3"));
    assert_eq!(job.inputs, json!({ "host": "web-1", "n": 2 }));
    assert_eq!(
        (job.state, job.outcome, job.claims, job.crashes),
        (JobState::Unclaimed, None, 0, 0)
    );
    assert_eq!(job.priority, 5);
    assert!(
        job.created_at >= before - 1.0 && job.not_before == job.created_at,
        "{job:?}"
    );
    assert_eq!(b.load_job(job.id).await.unwrap(), Some(job.clone()));
    assert_eq!(
        b.list_jobs(JobQuery::new()).await.unwrap(),
        std::slice::from_ref(&job)
    );
    let (run, atoms) = b.load_flow(job.run).await.unwrap();
    assert_eq!(
        (run.name.as_str(), run.state),
        ("deploy", FlowState::Pending)
    );
    assert_eq!(run.meta["inputs"], json!({ "host": "web-1", "n": 2 }));
    assert_eq!(run.meta["version"], "3");
    assert_eq!(run.meta["job"], json!(job.id));
    assert!(atoms.is_empty());
    assert_eq!(run.ownership.owner, None);
    assert_eq!(
        b.load_job(flow_core::storage::JobId::new()).await.unwrap(),
        None
    );
}

/// Claims take the highest priority first, then the oldest, only of the
/// flows and versions the conductor knows, and only once their time has
/// come; a job's claim is its run's claim.
pub async fn claims_follow_priority_age_and_known_flows(b: &dyn JobBoard) {
    let low = b.post(NewJob::new("a", "1")).await.unwrap();
    let high = b.post(NewJob::new("a", "1").priority(9)).await.unwrap();
    let other = b.post(NewJob::new("b", "1")).await.unwrap();
    let unknown = b.post(NewJob::new("a", "2")).await.unwrap();
    let later = b
        .post(NewJob::new("a", "1").not_before(now_unix() + 3600.0))
        .await
        .unwrap();
    let got = b
        .claim_jobs(claim("c1", &[("a", "1"), ("b", "1")], 10))
        .await
        .unwrap();
    let ids: Vec<_> = got.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, [high.id, low.id, other.id]);
    for c in &got {
        assert_eq!((c.job.state, c.job.claims), (JobState::Claimed, 1));
        assert_eq!(c.job.owner.as_deref(), Some("c1"));
        assert_eq!(
            (c.lease.run, c.lease.fence, c.lease.owner.as_str()),
            (c.job.run, 1, "c1")
        );
        let (run, _) = b.load_flow(c.job.run).await.unwrap();
        assert_eq!(run.ownership.owner.as_deref(), Some("c1"));
        let err = b
            .claim_flow(c.job.run, Claim::new("intruder", LIVE))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::Owned { owner, .. } if owner == "c1"),
            "{err:?}"
        );
    }
    assert!(
        b.claim_jobs(claim("c2", &[("a", "1"), ("b", "1")], 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(b.claim_jobs(claim("c2", &[], 10)).await.unwrap().is_empty());
    let left = b
        .list_jobs(JobQuery::new().state(JobState::Unclaimed))
        .await
        .unwrap();
    let left: BTreeSet<_> = left.iter().map(|j| j.id).collect();
    assert_eq!(left, [unknown.id, later.id].into());
    let v2 = b.claim_jobs(claim("c3", &[("a", "2")], 1)).await.unwrap();
    assert_eq!(
        v2.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        [unknown.id]
    );
}

/// Completing a job needs the current claim; it gives the run back.
pub async fn completing_needs_the_current_claim(b: &dyn JobBoard) {
    let job = b.post(NewJob::new("f", "1")).await.unwrap();
    let got = b.claim_jobs(claim("c1", &[("f", "1")], 1)).await.unwrap();
    let lease = got[0].lease.clone();
    b.complete_job(
        job.id,
        &lease,
        JobOutcome::Reverted,
        Some("task `x` failed: no".into()),
    )
    .await
    .unwrap();
    let done = b.load_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.outcome),
        (JobState::Complete, Some(JobOutcome::Reverted))
    );
    assert_eq!(done.error.as_deref(), Some("task `x` failed: no"));
    assert!(done.completed_at.is_some());
    let (run, _) = b.load_flow(job.run).await.unwrap();
    assert_eq!((run.ownership.owner, run.ownership.fence), (None, 1));
    // Complete: never claimed again.
    assert!(
        b.claim_jobs(claim("c2", &[("f", "1")], 1))
            .await
            .unwrap()
            .is_empty()
    );
    let err = b
        .complete_job(
            flow_core::storage::JobId::new(),
            &lease,
            JobOutcome::Succeeded,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::JobNotFound(_)), "{err:?}");
}

/// A claim whose lease ran out is taken over by the next claimant, counted
/// as a crash; the old holder can no longer complete the job.
pub async fn an_expired_claim_is_taken_over_and_counted(b: &dyn JobBoard) {
    let job = b.post(NewJob::new("f", "1")).await.unwrap();
    let mut dead = claim("dead", &[("f", "1")], 1);
    dead.lease = Duration::ZERO;
    let old = b.claim_jobs(dead).await.unwrap().remove(0).lease;
    // A suspect now: a busy conductor leaves it, an idle one takes it alone.
    let other = b.post(NewJob::new("f", "1")).await.unwrap();
    let busy = b.claim_jobs(claim("busy", &[("f", "1")], 5)).await.unwrap();
    assert_eq!(
        busy.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        [other.id]
    );
    assert!(!busy[0].suspect());
    let new = b
        .claim_jobs(claim("alive", &[("f", "1")], 5).alone(true))
        .await
        .unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(
        (new[0].job.claims, new[0].job.crashes, new[0].lease.fence),
        (2, 1, 2)
    );
    assert!(new[0].suspect());
    assert_eq!(new[0].job.owner.as_deref(), Some("alive"));
    let err = b
        .complete_job(job.id, &old, JobOutcome::Succeeded, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::OwnershipLost { fence: 1, current: 2, holder, .. } if holder.as_deref() == Some("alive")),
        "{err:?}"
    );
    let err = b.hand_back(job.id, &old).await.unwrap_err();
    assert!(err.is_ownership(), "{err:?}");
    b.complete_job(job.id, &new[0].lease, JobOutcome::Succeeded, None)
        .await
        .unwrap();
    let done = b.load_job(job.id).await.unwrap().unwrap();
    assert_eq!(done.outcome, Some(JobOutcome::Succeeded));
}

/// A job whose conductors died `max_crashes` times is failed as poison,
/// with the reason, and never claimed again.
pub async fn a_poison_job_is_failed_not_claimed_forever(b: &dyn JobBoard) {
    let job = b.post(NewJob::new("f", "1")).await.unwrap();
    let dying = |owner: &str| {
        let mut c = claim(owner, &[("f", "1")], 1).max_crashes(2).alone(true);
        c.lease = Duration::ZERO;
        c
    };
    assert_eq!(b.claim_jobs(dying("d1")).await.unwrap().len(), 1);
    assert_eq!(b.claim_jobs(dying("d2")).await.unwrap().len(), 1);
    assert!(b.claim_jobs(dying("d3")).await.unwrap().is_empty());
    let failed = b.load_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.outcome),
        (JobState::Complete, Some(JobOutcome::Failed))
    );
    assert_eq!((failed.claims, failed.crashes), (2, 2));
    assert_eq!(
        failed.error.as_deref(),
        Some(
            "poison job: 2 conductors died while running it (the last was `d2`); it is not \
             claimed again: look at its run, fix what kills the conductor, and post it anew"
        )
    );
    assert!(
        b.claim_jobs(claim("d4", &[("f", "1")], 1).alone(true))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A suspect job goes to an idle claimant alone: nothing else is claimed
/// with it, whatever the limit; clean jobs go together.
pub async fn a_suspect_job_is_taken_alone(b: &dyn JobBoard) {
    let suspect = b.post(NewJob::new("f", "1").priority(5)).await.unwrap();
    let mut dead = claim("dead", &[("f", "1")], 1);
    dead.lease = Duration::ZERO;
    assert_eq!(b.claim_jobs(dead).await.unwrap().len(), 1);
    let mut clean = BTreeSet::new();
    for _ in 0..3 {
        clean.insert(b.post(NewJob::new("f", "1")).await.unwrap().id);
    }
    let alone = b
        .claim_jobs(claim("idle", &[("f", "1")], 10).alone(true))
        .await
        .unwrap();
    let ids: Vec<_> = alone.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, [suspect.id]);
    let rest = b
        .claim_jobs(claim("other", &[("f", "1")], 10).alone(true))
        .await
        .unwrap();
    let rest: BTreeSet<_> = rest.iter().map(|c| c.job.id).collect();
    assert_eq!(rest, clean);
}

/// A job handed back is unclaimed, its run given back: another conductor
/// claims it at once, and no crash is counted.
pub async fn a_job_handed_back_is_claimed_at_once(b: &dyn JobBoard) {
    let job = b.post(NewJob::new("f", "1")).await.unwrap();
    let first = b
        .claim_jobs(claim("c1", &[("f", "1")], 1))
        .await
        .unwrap()
        .remove(0);
    b.hand_back(job.id, &first.lease).await.unwrap();
    let back = b.load_job(job.id).await.unwrap().unwrap();
    assert_eq!(back.state, JobState::Unclaimed);
    let second = b
        .claim_jobs(claim("c2", &[("f", "1")], 1))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (second.job.claims, second.job.crashes, second.lease.fence),
        (2, 0, 2)
    );
}

/// Cancelling an unclaimed job completes it; cancelling a claimed one asks
/// its run to cancel, which its holder learns at its next renewal.
pub async fn cancelling_a_job(b: &dyn JobBoard) {
    let waiting = b.post(NewJob::new("f", "1")).await.unwrap();
    let cancelled = b.cancel_job(waiting.id).await.unwrap();
    assert_eq!(
        (cancelled.state, cancelled.outcome),
        (JobState::Complete, Some(JobOutcome::Cancelled))
    );
    assert_eq!(
        cancelled.error.as_deref(),
        Some("cancelled before a conductor took it up")
    );
    assert!(
        b.claim_jobs(claim("c", &[("f", "1")], 1))
            .await
            .unwrap()
            .is_empty()
    );

    let running = b.post(NewJob::new("f", "1")).await.unwrap();
    let held = b
        .claim_jobs(claim("c", &[("f", "1")], 1))
        .await
        .unwrap()
        .remove(0);
    assert!(!held.lease.cancel_requested);
    let asked = b.cancel_job(running.id).await.unwrap();
    assert_eq!(asked.state, JobState::Claimed);
    let renewed = b.renew_lease(&held.lease, LIVE).await.unwrap();
    assert!(renewed.cancel_requested);
    let err = b
        .cancel_job(flow_core::storage::JobId::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::JobNotFound(_)), "{err:?}");
}

/// Ten claimants racing for 50 jobs: every job is claimed exactly once.
pub async fn concurrent_claimants_never_share_a_job(b: &dyn JobBoard) {
    let mut posted = BTreeSet::new();
    for _ in 0..50 {
        posted.insert(b.post(NewJob::new("f", "1")).await.unwrap().id);
    }
    let claims = (0..10).map(|i| b.claim_jobs(claim(&format!("c{i}"), &[("f", "1")], 10)));
    let results = futures::future::join_all(claims).await;
    let mut seen = BTreeSet::new();
    for r in results {
        for c in r.unwrap() {
            assert!(seen.insert(c.job.id), "{} was claimed twice", c.job.id);
        }
    }
    assert_eq!(seen, posted);
}

/// A conductor waiting for jobs is woken by a post made through the same
/// board at once, not at the end of its wait.
pub async fn a_post_wakes_a_waiting_conductor(b: &dyn JobBoard) {
    let start = Instant::now();
    let wait = b.wait_for_jobs(Duration::from_secs(30));
    let post = async {
        tokio::task::yield_now().await;
        b.post(NewJob::new("f", "1")).await.unwrap();
    };
    futures::join!(wait, post);
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}
