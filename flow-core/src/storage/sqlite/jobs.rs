//! The job board of [`SqliteBackend`](super::SqliteBackend): several
//! processes on one machine share jobs through one store. A claim takes the
//! job and its run in one transaction of the writer.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};

use super::sql_error;
use crate::storage::jobs::{Pick, pick, poison_message};
use crate::storage::memory::lease_end;
use crate::storage::{
    Claimed, Job, JobClaim, JobId, JobOutcome, JobQuery, JobState, Lease, LogbookId, NewJob,
    Operation, StorageError, flow_checksum, job_checksum, verify_checksum,
};

/// A write of the board, applied by the writer thread.
pub(in crate::storage) enum JobWrite {
    Post(NewJob),
    Claim(JobClaim),
    Complete(JobId, Lease, JobOutcome, Option<String>),
    HandBack(JobId, Lease),
    Cancel(JobId),
}

impl JobWrite {
    pub(super) fn op(&self) -> Operation {
        match self {
            JobWrite::Post(_) => Operation::PostJob,
            JobWrite::Claim(_) => Operation::ClaimJobs,
            JobWrite::Complete(..) => Operation::CompleteJob,
            JobWrite::HandBack(..) => Operation::HandBack,
            JobWrite::Cancel(_) => Operation::CancelJob,
        }
    }
}

/// What a write of the board answers.
pub(in crate::storage) enum JobAnswer {
    Done,
    Job(Box<Job>),
    Claimed(Vec<Claimed>),
}

const COLUMNS: &str = "id, run_id, flow, version, inputs, priority, not_before, created_at, state, \
                       outcome, error, claims, crashes, owner, completed_at, checksum";

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn text(v: &SqlValue) -> Option<&str> {
    match v {
        SqlValue::Text(t) => Some(t),
        _ => None,
    }
}

fn real(v: &SqlValue) -> Option<f64> {
    match v {
        SqlValue::Real(x) => Some(*x),
        SqlValue::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

fn int(v: &SqlValue) -> Option<i64> {
    match v {
        SqlValue::Integer(n) => Some(*n),
        _ => None,
    }
}

/// A job's record, read and checked against its checksum.
fn job_row(op: Operation, r: &rusqlite::Row<'_>) -> Result<Job, StorageError> {
    let cells: Vec<SqlValue> = (0..16)
        .map(|k| r.get::<_, SqlValue>(k))
        .collect::<Result<_, _>>()
        .map_err(|e| StorageError::Corrupt {
            op,
            detail: format!("a job record cannot be read: {e}"),
        })?;
    let id_text = text(&cells[0]).unwrap_or("?").to_string();
    let bad = |field: &str| StorageError::Corrupt {
        op,
        detail: format!("job {id_text}: `{field}` holds a value that is not one"),
    };
    let opt_text = |k: usize| match &cells[k] {
        SqlValue::Null => Ok(None),
        SqlValue::Text(t) => Ok(Some(t.clone())),
        _ => Err(()),
    };
    let job = Job {
        id: id_text.parse().map_err(|_| bad("id"))?,
        run: text(&cells[1])
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("run_id"))?,
        flow: text(&cells[2]).ok_or_else(|| bad("flow"))?.to_string(),
        version: text(&cells[3]).ok_or_else(|| bad("version"))?.to_string(),
        inputs: text(&cells[4])
            .and_then(|t| serde_json::from_str(t).ok())
            .ok_or_else(|| bad("inputs"))?,
        priority: int(&cells[5])
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| bad("priority"))?,
        not_before: real(&cells[6]).ok_or_else(|| bad("not_before"))?,
        created_at: real(&cells[7]).ok_or_else(|| bad("created_at"))?,
        state: text(&cells[8])
            .and_then(JobState::parse)
            .ok_or_else(|| bad("state"))?,
        outcome: match opt_text(9).map_err(|()| bad("outcome"))? {
            None => None,
            Some(t) => Some(JobOutcome::parse(&t).ok_or_else(|| bad("outcome"))?),
        },
        error: opt_text(10).map_err(|()| bad("error"))?,
        claims: int(&cells[11])
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("claims"))?,
        crashes: int(&cells[12])
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("crashes"))?,
        owner: opt_text(13).map_err(|()| bad("owner"))?,
        completed_at: match &cells[14] {
            SqlValue::Null => None,
            v => Some(real(v).ok_or_else(|| bad("completed_at"))?),
        },
    };
    let sum = int(&cells[15]).ok_or_else(|| bad("checksum"))?;
    verify_checksum(op, &format!("job {}", job.id), sum, job_checksum(&job))?;
    Ok(job)
}

fn write_job(tx: &Connection, j: &Job) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
            ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET state = ?9, outcome = ?10, error = ?11, claims = ?12,
            crashes = ?13, owner = ?14, completed_at = ?15, checksum = ?16"
    ))?
    .execute(params![
        j.id.to_string(),
        j.run.to_string(),
        j.flow,
        j.version,
        j.inputs.to_string(),
        j.priority,
        finite(j.not_before),
        finite(j.created_at),
        j.state.as_str(),
        j.outcome.map(JobOutcome::as_str),
        j.error,
        j.claims,
        j.crashes,
        j.owner,
        j.completed_at.map(finite),
        i64::from(job_checksum(j)),
    ])?;
    Ok(())
}

/// A job read inside the writer's transaction; a damaged one fails the
/// write alone.
fn read_job(
    tx: &Connection,
    op: Operation,
    id: JobId,
) -> rusqlite::Result<Option<Result<Job, StorageError>>> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?;
    let mut rows = stmt.query([id.to_string()])?;
    Ok(rows.next()?.map(|r| job_row(op, r)))
}

/// A run's fencing number, owner and lease end.
type Hold = (u64, Option<String>, Option<f64>);

/// The fence, owner and lease end of run `run`.
fn run_hold(tx: &Connection, run: &str) -> rusqlite::Result<Option<Hold>> {
    tx.prepare_cached("SELECT fence, owner, lease_until FROM flows WHERE id = ?1")?
        .query_row([run], |r| {
            Ok((
                u64::try_from(r.get::<_, i64>(0)?).unwrap_or(u64::MAX),
                r.get(1)?,
                r.get(2)?,
            ))
        })
        .optional()
}

type Applied = Result<Result<JobAnswer, StorageError>, rusqlite::Error>;

/// Applies one write of the board inside the writer's transaction.
pub(super) fn apply(tx: &Connection, w: &JobWrite, now: f64) -> Applied {
    match w {
        JobWrite::Post(post) => {
            let job = post.clone().into_job(now);
            let book = LogbookId::new();
            tx.prepare_cached(
                "INSERT INTO logbooks (id, name, created_at, updated_at, meta)
                 VALUES (?1, ?2, ?3, ?3, 'null')",
            )?
            .execute(params![book.to_string(), job.flow, finite(now)])?;
            let run = job.pending_run(book);
            tx.prepare_cached(
                "INSERT INTO flows (id, logbook_id, name, state, meta, created_at, updated_at,
                    fence, cancel_requested, checksum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, 0, ?7)",
            )?
            .execute(params![
                run.id.to_string(),
                book.to_string(),
                run.name,
                run.state.as_str(),
                run.meta.to_string(),
                finite(run.created_at),
                i64::from(flow_checksum(&run)),
            ])?;
            write_job(tx, &job)?;
            Ok(Ok(JobAnswer::Job(Box::new(job))))
        }
        JobWrite::Claim(claim) => claim_jobs(tx, claim, now),
        JobWrite::Complete(id, lease, outcome, error) => settle(tx, *id, lease, |j| {
            j.state = JobState::Complete;
            j.outcome = Some(*outcome);
            j.error.clone_from(error);
            j.completed_at = Some(now);
        }),
        JobWrite::HandBack(id, lease) => settle(tx, *id, lease, |j| j.state = JobState::Unclaimed),
        JobWrite::Cancel(id) => {
            let Some(job) = read_job(tx, Operation::CancelJob, *id)? else {
                return Ok(Err(StorageError::JobNotFound(*id)));
            };
            let mut job = match job {
                Ok(job) => job,
                Err(e) => return Ok(Err(e)),
            };
            match job.state {
                JobState::Unclaimed => {
                    job.state = JobState::Complete;
                    job.outcome = Some(JobOutcome::Cancelled);
                    job.error = Some("cancelled before a conductor took it up".into());
                    job.completed_at = Some(now);
                    write_job(tx, &job)?;
                }
                JobState::Claimed => {
                    tx.prepare_cached("UPDATE flows SET cancel_requested = 1 WHERE id = ?1")?
                        .execute([job.run.to_string()])?;
                }
                JobState::Complete => {}
            }
            Ok(Ok(JobAnswer::Job(Box::new(job))))
        }
    }
}

/// Completes or hands back a job: the run must still be held under `lease`;
/// it is given back.
fn settle(tx: &Connection, id: JobId, lease: &Lease, then: impl FnOnce(&mut Job)) -> Applied {
    let Some(job) = read_job(tx, Operation::CompleteJob, id)? else {
        return Ok(Err(StorageError::JobNotFound(id)));
    };
    let mut job = match job {
        Ok(job) => job,
        Err(e) => return Ok(Err(e)),
    };
    let run = job.run.to_string();
    let Some((fence, holder, _)) = run_hold(tx, &run)? else {
        return Ok(Err(StorageError::NotFound(job.run)));
    };
    if fence != lease.fence {
        return Ok(Err(StorageError::OwnershipLost {
            run: job.run,
            fence: lease.fence,
            current: fence,
            holder,
        }));
    }
    tx.prepare_cached("UPDATE flows SET owner = NULL, lease_until = NULL WHERE id = ?1")?
        .execute([&run])?;
    then(&mut job);
    write_job(tx, &job)?;
    Ok(Ok(JobAnswer::Done))
}

fn claim_jobs(tx: &Connection, claim: &JobClaim, now: f64) -> Applied {
    if claim.known.is_empty() || claim.limit == 0 {
        return Ok(Ok(JobAnswer::Claimed(Vec::new())));
    }
    let mut args: Vec<SqlValue> = vec![SqlValue::Real(now)];
    let mut known = Vec::new();
    for (flow, version) in &claim.known {
        args.push(SqlValue::Text(flow.clone()));
        args.push(SqlValue::Text(version.clone()));
        known.push(format!(
            "(j.flow = ?{} AND j.version = ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    // Looked at in order until `limit` are claimed: a poison job found on the
    // way is failed and skipped, so take a few more than asked.
    let sql = format!(
        "SELECT j.id FROM jobs j JOIN flows f ON f.id = j.run_id
         WHERE j.not_before <= ?1
           AND (j.state = 'UNCLAIMED'
                OR (j.state = 'CLAIMED' AND (f.owner IS NULL OR f.lease_until IS NULL
                                              OR f.lease_until <= ?1)))
           AND ({})
         ORDER BY j.priority DESC, j.created_at, j.id
         LIMIT {}",
        known.join(" OR "),
        claim.limit.saturating_mul(2).saturating_add(8)
    );
    let ids: Vec<String> = tx
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut claimed = Vec::new();
    for id in ids {
        if claimed.len() >= claim.limit {
            break;
        }
        let Ok(id) = id.parse::<JobId>() else {
            continue;
        };
        let mut job = match read_job(tx, Operation::ClaimJobs, id)? {
            Some(Ok(job)) => job,
            Some(Err(e)) => return Ok(Err(e)),
            None => continue,
        };
        let suspect = job.crashes > 0 || job.state == JobState::Claimed;
        let alone = match pick(claim, claimed.len(), suspect) {
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
                write_job(tx, &job)?;
                continue;
            }
        }
        let run = job.run.to_string();
        let Some((fence, _, _)) = run_hold(tx, &run)? else {
            continue;
        };
        let fence = fence + 1;
        let until = lease_end(now, claim.lease);
        tx.prepare_cached(
            "UPDATE flows SET owner = ?2, lease_until = ?3, fence = ?4 WHERE id = ?1",
        )?
        .execute(params![
            run,
            claim.owner,
            finite(until),
            fence.min(i64::MAX as u64) as i64
        ])?;
        let cancel: i64 = tx
            .prepare_cached("SELECT cancel_requested FROM flows WHERE id = ?1")?
            .query_row([&run], |r| r.get(0))?;
        job.state = JobState::Claimed;
        job.claims += 1;
        job.owner = Some(claim.owner.clone());
        write_job(tx, &job)?;
        let lease = Lease::new(job.run, claim.owner.clone(), fence, until)
            .with_cancel_requested(cancel != 0);
        claimed.push(Claimed::new(job, lease));
        if alone {
            break;
        }
    }
    Ok(Ok(JobAnswer::Claimed(claimed)))
}

/// A job by id.
pub(super) fn load(conn: &Connection, path: &Path, id: JobId) -> Result<Option<Job>, StorageError> {
    let op = Operation::ReadJobs;
    let err = |e| sql_error(op, path, e);
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))
        .map_err(err)?;
    let mut rows = stmt.query([id.to_string()]).map_err(err)?;
    match rows.next().map_err(err)? {
        Some(r) => job_row(op, r).map(Some),
        None => Ok(None),
    }
}

/// The jobs `query` asks for, oldest first.
pub(super) fn list(
    conn: &Connection,
    path: &Path,
    query: &JobQuery,
) -> Result<Vec<Job>, StorageError> {
    let op = Operation::ReadJobs;
    let err = |e| sql_error(op, path, e);
    let mut args: Vec<SqlValue> = Vec::new();
    let mut clauses = Vec::new();
    if !query.states.is_empty() {
        let marks: Vec<String> = query
            .states
            .iter()
            .map(|s| {
                args.push(SqlValue::Text(s.as_str().into()));
                format!("?{}", args.len())
            })
            .collect();
        clauses.push(format!("state IN ({})", marks.join(", ")));
    }
    if let Some(flow) = &query.flow {
        args.push(SqlValue::Text(flow.clone()));
        clauses.push(format!("flow = ?{}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let limit = query
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs{filter} ORDER BY created_at, id LIMIT {limit} OFFSET {}",
        query.offset
    );
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(err)?;
    let mut jobs = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        jobs.push(job_row(op, r)?);
    }
    Ok(jobs)
}

/// How long an idle conductor of a SQLite board waits before it looks again
/// when nothing in this process told it of new jobs.
pub(super) fn poll(timeout: Duration) -> Duration {
    timeout.min(Duration::from_millis(250))
}
