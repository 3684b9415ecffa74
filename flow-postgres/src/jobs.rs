//! The job board of [`PostgresBackend`]: jobs in the same database as the
//! journal, so that claiming a job claims its run in the same transaction.
//!
//! - **Claims** lock the jobs they take and their runs' rows with
//!   `FOR UPDATE OF j, f SKIP LOCKED`: claimants never wait for one another,
//!   and never take the same job. A row changed since the claim's snapshot
//!   is read again, locked, and its conditions checked again, so a lease
//!   renewed meanwhile keeps its job.
//! - **Times are the database's**: a job's creation, its not-before time and
//!   every lease are measured by the server's clock (`now()`, the start of
//!   the claim's transaction).
//! - **Wake-ups**: a post and a hand-back send a `NOTIFY` in their
//!   transaction; idle conductors `LISTEN` ([`crate::listen`]) and claim at
//!   once, polling only while the listening connection is down.
//! - The same pick rule as every board ([`JobClaim::pick`]): highest
//!   priority, then oldest; a suspect job (its conductor died) only to an
//!   idle claimant, alone; a job that killed `max_crashes` conductors is
//!   failed as poison.

use std::time::Duration;

use flow_core::storage::{
    Claimed, Job, JobClaim, JobId, JobOutcome, JobQuery, JobState, NewJob, Pick, job_checksum,
    verify_checksum,
};
use flow_core::{Lease, LogbookId, Operation, StorageError};
use futures::future::BoxFuture;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::fault::Failed;
use crate::read::Parse;
use crate::rows::{flow_row, uuid_of};
use crate::schema::quoted;
use crate::tx::{Body, Conn};
use crate::values::{Unstorable, jsonb_form, text};

/// The statements of the board, for one schema.
#[derive(Debug)]
pub(crate) struct JobSql {
    /// The channel of wake-ups, as `pg_notify` names it.
    pub(crate) channel: String,
    clock: &'static str,
    post_book: String,
    post_run: String,
    save: String,
    candidates: String,
    take_runs: String,
    lock_one: String,
    free_run: String,
    cancel_run: String,
    notify: &'static str,
    load: String,
    list: String,
}

const COLUMNS: &str = "j.id, j.run_id, j.flow, j.version, j.inputs, j.priority, j.not_before, \
                       j.created_at, j.state, j.outcome, j.error, j.claims, j.crashes, j.owner, \
                       j.completed_at, j.checksum";

impl JobSql {
    pub(crate) fn new(schema: &str) -> JobSql {
        let s = quoted(schema);
        // Channel names are identifiers: at most 63 bytes (schema names are
        // ASCII). Two long schemas sharing a prefix share a channel, and
        // only wake each other's conductors for nothing.
        let mut channel = format!("{schema}.jobs");
        channel.truncate(63);
        JobSql {
            channel,
            clock: "SELECT (extract(epoch FROM now()) * 1000000)::int8",
            post_book: format!(
                "INSERT INTO {s}.logbooks (id, name, created_at, updated_at, meta)
                 SELECT u.id, u.name, $3, $3, 'null'
                 FROM unnest($1::uuid[], $2::text[]) AS u(id, name)"
            ),
            post_run: format!(
                "INSERT INTO {s}.flows (id, logbook_id, name, state, meta, created_at,
                    updated_at, fence, cancel_requested, checksum)
                 SELECT u.id, u.logbook_id, u.name, u.state, u.meta, u.created_at,
                    u.created_at, 0, false, u.checksum
                 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                    $6::float8[], $7::int8[])
                    AS u(id, logbook_id, name, state, meta, created_at, checksum)"
            ),
            save: format!(
                "INSERT INTO {s}.jobs (id, run_id, flow, version, inputs, priority, not_before,
                    created_at, state, outcome, error, claims, crashes, owner, completed_at,
                    checksum)
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                    $5::jsonb[], $6::int4[], $7::float8[], $8::float8[], $9::text[], $10::text[],
                    $11::text[], $12::int8[], $13::int8[], $14::text[], $15::float8[],
                    $16::int8[])
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                    outcome = excluded.outcome, error = excluded.error,
                    claims = excluded.claims, crashes = excluded.crashes,
                    owner = excluded.owner, completed_at = excluded.completed_at,
                    checksum = excluded.checksum"
            ),
            // $1, $2: the known flows and versions; $3: whether suspects may
            // be taken; $4: jobs already looked at; $5: how many.
            candidates: format!(
                "SELECT {COLUMNS}, f.fence, f.cancel_requested
                 FROM {s}.jobs j JOIN {s}.flows f ON f.id = j.run_id
                 WHERE j.state <> 'COMPLETE'
                   AND j.not_before <= extract(epoch FROM now())
                   AND (j.state = 'UNCLAIMED' OR f.owner IS NULL OR f.lease_until IS NULL
                        OR f.lease_until <= now())
                   AND (j.flow, j.version) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                   AND ($3 OR (j.crashes = 0 AND j.state = 'UNCLAIMED'))
                   AND j.id <> ALL($4::uuid[])
                 ORDER BY j.priority DESC, j.created_at, j.id
                 LIMIT $5
                 FOR UPDATE OF j, f SKIP LOCKED"
            ),
            take_runs: format!(
                "UPDATE {s}.flows f SET owner = $2,
                    lease_until = now() + $3::int8 * interval '1 microsecond', fence = u.fence
                 FROM unnest($1::uuid[], $4::int8[]) AS u(id, fence)
                 WHERE f.id = u.id"
            ),
            lock_one: format!(
                "SELECT {COLUMNS}, f.fence, f.owner AS holder
                 FROM {s}.jobs j LEFT JOIN {s}.flows f ON f.id = j.run_id
                 WHERE j.id = $1
                 FOR UPDATE OF j"
            ),
            free_run: format!(
                "UPDATE {s}.flows SET owner = NULL, lease_until = NULL
                 WHERE id = $1 AND fence = $2"
            ),
            cancel_run: format!("UPDATE {s}.flows SET cancel_requested = true WHERE id = $1"),
            notify: "SELECT pg_notify($1, '')",
            load: format!("SELECT {COLUMNS} FROM {s}.jobs j WHERE j.id = $1"),
            list: format!("SELECT {COLUMNS} FROM {s}.jobs j"),
        }
    }
}

fn job_uuid(id: JobId) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

/// A job's record, its checksum checked.
fn job_of(op: Operation, row: &tokio_postgres::Row) -> Result<Job, StorageError> {
    let mut p = Parse {
        op,
        what: "a job".into(),
        row,
    };
    let id: Uuid = p.get("id")?;
    p.what = format!("job {id}");
    let run: Uuid = p.get("run_id")?;
    let outcome = match p.get::<Option<String>>("outcome")? {
        None => None,
        Some(t) => Some(JobOutcome::parse(&t).ok_or_else(|| p.bad("outcome", &t))?),
    };
    let mut job = NewJob::new(p.get::<String>("flow")?, p.get::<String>("version")?)
        .into_job(p.get("created_at")?);
    job.id = id
        .to_string()
        .parse()
        .map_err(|_| p.bad("id", &id.to_string()))?;
    job.run = run
        .to_string()
        .parse()
        .map_err(|_| p.bad("run_id", &run.to_string()))?;
    job.inputs = p.get("inputs")?;
    job.priority = p.get("priority")?;
    job.not_before = p.get("not_before")?;
    job.state = p.word(
        "state",
        &[JobState::Unclaimed, JobState::Claimed, JobState::Complete],
        JobState::as_str,
    )?;
    job.outcome = outcome;
    job.error = p.get("error")?;
    job.claims = p.unsigned("claims")?;
    job.crashes = p.unsigned("crashes")?;
    job.owner = p.get("owner")?;
    job.completed_at = p.get("completed_at")?;
    verify_checksum(op, &p.what, p.get("checksum")?, job_checksum(&job))?;
    Ok(job)
}

/// Jobs to write, as arrays of their columns.
#[derive(Default)]
struct JobRows<'a> {
    ids: Vec<Uuid>,
    runs: Vec<Uuid>,
    flows: Vec<&'a str>,
    versions: Vec<&'a str>,
    inputs: Vec<&'a serde_json::Value>,
    priorities: Vec<i32>,
    not_before: Vec<f64>,
    created: Vec<f64>,
    states: Vec<&'static str>,
    outcomes: Vec<Option<&'static str>>,
    errors: Vec<Option<&'a str>>,
    claims: Vec<i64>,
    crashes: Vec<i64>,
    owners: Vec<Option<&'a str>>,
    completed: Vec<Option<f64>>,
    sums: Vec<i64>,
}

impl<'a> JobRows<'a> {
    fn of(jobs: impl IntoIterator<Item = &'a Job>) -> Self {
        let mut r = JobRows::default();
        for j in jobs {
            r.ids.push(job_uuid(j.id));
            r.runs.push(uuid_of(j.run));
            r.flows.push(&j.flow);
            r.versions.push(&j.version);
            r.inputs.push(&j.inputs);
            r.priorities.push(j.priority);
            r.not_before.push(j.not_before);
            r.created.push(j.created_at);
            r.states.push(j.state.as_str());
            r.outcomes.push(j.outcome.map(JobOutcome::as_str));
            r.errors.push(j.error.as_deref());
            r.claims.push(i64::from(j.claims));
            r.crashes.push(i64::from(j.crashes));
            r.owners.push(j.owner.as_deref());
            r.completed.push(j.completed_at);
            r.sums.push(i64::from(job_checksum(j)));
        }
        r
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.ids,
            &self.runs,
            &self.flows,
            &self.versions,
            &self.inputs,
            &self.priorities,
            &self.not_before,
            &self.created,
            &self.states,
            &self.outcomes,
            &self.errors,
            &self.claims,
            &self.crashes,
            &self.owners,
            &self.completed,
            &self.sums,
        ]
    }
}

/// A post, checked before it is sent: what PostgreSQL cannot hold is
/// refused, and the inputs are kept in the form the store gives back.
pub(crate) fn checked_post(mut post: NewJob) -> Result<NewJob, Unstorable> {
    for (what, s) in [("flow name", &post.flow), ("version", &post.version)] {
        text(|| format!("the job's {what}"), s)?;
    }
    let inputs = serde_json::Value::Object(std::mem::take(&mut post.inputs));
    let form = jsonb_form(|| "the job's inputs".into(), &inputs)?.into_owned();
    if let serde_json::Value::Object(map) = form {
        post.inputs = map;
    }
    Ok(post)
}

async fn clock_us(c: &Conn, sql: &JobSql) -> Result<i64, Failed> {
    let stmt = c.prepare_cached(sql.clock).await?;
    Ok(c.query_one(&stmt, &[]).await?.try_get(0)?)
}

async fn clock(c: &Conn, sql: &JobSql) -> Result<f64, Failed> {
    Ok(clock_us(c, sql).await? as f64 / 1e6)
}

/// Runs a statement, prepared once per connection.
async fn exec(c: &Conn, text: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Failed> {
    let stmt = c.prepare_cached(text).await?;
    Ok(c.execute(&stmt, params).await?)
}

/// Runs a query, prepared once per connection.
async fn query(
    c: &Conn,
    text: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, Failed> {
    let stmt = c.prepare_cached(text).await?;
    Ok(c.query(&stmt, params).await?)
}

/// Stores jobs and their pending runs, and wakes the listening conductors:
/// the posts waiting together, in one transaction.
pub(crate) fn post<'c>(c: &'c Conn, sql: &'c JobSql, posts: &'c [NewJob]) -> Body<'c, Vec<Job>> {
    Box::pin(async move {
        let now = clock(c, sql).await?;
        let mut jobs = Vec::with_capacity(posts.len());
        let (mut book_ids, mut names) = (Vec::new(), Vec::new());
        let mut runs = Vec::with_capacity(posts.len());
        for post in posts {
            let job = post.clone().into_job(now);
            let book = LogbookId::new();
            match flow_row(&job.pending_run(book)) {
                Ok(row) => runs.push(row),
                Err(e) => {
                    return Ok(Err(StorageError::Backend {
                        op: Operation::PostJob,
                        source: Box::new(e),
                    }));
                }
            }
            book_ids.push(Uuid::from_bytes(*book.as_bytes()));
            jobs.push(job);
        }
        for job in &jobs {
            names.push(job.flow.as_str());
        }
        let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
        let books: Vec<Uuid> = runs.iter().map(|r| r.logbook).collect();
        let flows: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        let states: Vec<&str> = runs.iter().map(|r| r.state).collect();
        let metas: Vec<&serde_json::Value> = runs.iter().map(|r| &r.meta).collect();
        let created: Vec<f64> = runs.iter().map(|r| r.created_at).collect();
        let sums: Vec<i64> = runs.iter().map(|r| r.checksum).collect();
        let rows = JobRows::of(&jobs);
        let (a, b, d, e) = futures::join!(
            async { exec(c, &sql.post_book, &[&book_ids, &names, &now]).await },
            async {
                let params: [&(dyn ToSql + Sync); 7] =
                    [&ids, &books, &flows, &states, &metas, &created, &sums];
                exec(c, &sql.post_run, &params).await
            },
            async { exec(c, &sql.save, &rows.params()).await },
            async { exec(c, sql.notify, &[&sql.channel]).await },
        );
        for r in [a, b, d, e] {
            r?;
        }
        Ok(Ok(jobs))
    })
}

/// Claims jobs by the rule of every board, in rounds: each round looks at
/// the next candidates not locked by another claimant.
pub(crate) fn claim<'c>(
    c: &'c Conn,
    sql: &'c JobSql,
    claim: &'c JobClaim,
) -> Body<'c, Vec<Claimed>> {
    Box::pin(async move {
        if claim.known.is_empty() || claim.limit == 0 {
            return Ok(Ok(Vec::new()));
        }
        let flows: Vec<&str> = claim.known.iter().map(|(f, _)| f.as_str()).collect();
        let versions: Vec<&str> = claim.known.iter().map(|(_, v)| v.as_str()).collect();
        let lease_us = i64::try_from(claim.lease.as_micros()).unwrap_or(i64::MAX);
        // A claim need not wait for the disk: the first journal write of
        // its run (the first step's intention, before anything runs) is
        // committed durably, and flushes the claim with it, the log being
        // written in order. A claim lost with the server only leaves its
        // job to be claimed again.
        let (durable, now_us) = futures::join!(
            c.batch_execute("SET LOCAL synchronous_commit TO off"),
            clock_us(c, sql)
        );
        durable?;
        let now_us = now_us?;
        let now = now_us as f64 / 1e6;
        let until = now_us.saturating_add(lease_us) as f64 / 1e6;
        let mut seen: Vec<Uuid> = Vec::new();
        let mut taken: Vec<Claimed> = Vec::new();
        let mut poisoned: Vec<Job> = Vec::new();
        let mut fences: Vec<(Uuid, i64)> = Vec::new();
        'rounds: loop {
            let suspects = claim.alone && taken.is_empty();
            // An idle claimant looks at one job first: a suspect is taken
            // alone, so it must come before anything else.
            let want = if suspects {
                1
            } else {
                claim.limit - taken.len()
            };
            let want_sql = i64::try_from(want).unwrap_or(i64::MAX);
            let rows = query(
                c,
                &sql.candidates,
                &[&flows, &versions, &suspects, &seen, &want_sql],
            )
            .await?;
            for row in &rows {
                let mut job = match job_of(Operation::ClaimJobs, row) {
                    Ok(job) => job,
                    Err(e) => return Ok(Err(e)),
                };
                seen.push(job_uuid(job.id));
                let fence: i64 = row.try_get("fence")?;
                let cancel: bool = row.try_get("cancel_requested")?;
                let alone = match claim.pick(taken.len(), job.is_suspect()) {
                    Pick::Skip => continue,
                    Pick::Take => false,
                    Pick::TakeAlone => true,
                };
                if job.state == JobState::Claimed && job.count_crash(claim.max_crashes, now) {
                    poisoned.push(job);
                    continue;
                }
                let fence = fence.saturating_add(1);
                fences.push((uuid_of(job.run), fence));
                job.state = JobState::Claimed;
                job.claims += 1;
                job.owner = Some(claim.owner.clone());
                let lease = Lease::new(job.run, claim.owner.clone(), fence as u64, until)
                    .with_cancel_requested(cancel);
                taken.push(Claimed::new(job, lease));
                if alone || taken.len() >= claim.limit {
                    break 'rounds;
                }
            }
            if rows.len() < want {
                break;
            }
        }
        let (ids, numbers): (Vec<Uuid>, Vec<i64>) = fences.into_iter().unzip();
        let jobs = JobRows::of(taken.iter().map(|c| &c.job).chain(&poisoned));
        let (runs, saved) = futures::join!(
            async {
                if ids.is_empty() {
                    return Ok(0);
                }
                exec(
                    c,
                    &sql.take_runs,
                    &[&ids, &claim.owner, &lease_us, &numbers],
                )
                .await
            },
            async {
                if jobs.ids.is_empty() {
                    return Ok(0);
                }
                exec(c, &sql.save, &jobs.params()).await
            }
        );
        runs?;
        saved?;
        Ok(Ok(taken))
    })
}

/// What a settled job becomes.
#[derive(Debug, Clone)]
pub(crate) enum Settle {
    Complete(JobOutcome, Option<String>),
    HandBack,
}

/// Completes or hands back a job whose run `lease` still holds, and gives
/// the run back.
pub(crate) fn settle<'c>(
    c: &'c Conn,
    sql: &'c JobSql,
    id: JobId,
    lease: &'c Lease,
    how: &'c Settle,
) -> Body<'c, ()> {
    Box::pin(async move {
        let op = match how {
            Settle::Complete(..) => Operation::CompleteJob,
            Settle::HandBack => Operation::HandBack,
        };
        let job_id = job_uuid(id);
        let (now, rows) = futures::join!(clock(c, sql), async {
            query(c, &sql.lock_one, &[&job_id]).await
        });
        let (now, rows) = (now?, rows?);
        let Some(row) = rows.first() else {
            return Ok(Err(StorageError::JobNotFound(id)));
        };
        let mut job = match job_of(op, row) {
            Ok(job) => job,
            Err(e) => return Ok(Err(e)),
        };
        let Some(fence) = row.try_get::<_, Option<i64>>("fence")? else {
            return Ok(Err(StorageError::NotFound(job.run)));
        };
        let current = u64::try_from(fence).unwrap_or(0);
        if current != lease.fence {
            return Ok(Err(StorageError::OwnershipLost {
                run: job.run,
                fence: lease.fence,
                current,
                holder: row.try_get("holder")?,
            }));
        }
        match how {
            Settle::Complete(outcome, error) => {
                job.state = JobState::Complete;
                job.outcome = Some(*outcome);
                job.error.clone_from(error);
                job.completed_at = Some(now);
            }
            Settle::HandBack => job.state = JobState::Unclaimed,
        }
        let rows = JobRows::of([&job]);
        let run = uuid_of(job.run);
        let (freed, saved, notified) = futures::join!(
            async { exec(c, &sql.free_run, &[&run, &fence]).await },
            async { exec(c, &sql.save, &rows.params()).await },
            async {
                match how {
                    Settle::HandBack => exec(c, sql.notify, &[&sql.channel]).await,
                    Settle::Complete(..) => Ok(0),
                }
            }
        );
        let (freed, _, _) = (freed?, saved?, notified?);
        if freed == 0 {
            // Taken since it was read (the job's row was locked, its run's
            // was not): what was written is rolled back.
            return Ok(Err(StorageError::OwnershipLost {
                run: job.run,
                fence: lease.fence,
                current: lease.fence.saturating_add(1),
                holder: None,
            }));
        }
        Ok(Ok(()))
    })
}

/// Cancels a job: at once when unclaimed, by asking its run otherwise.
pub(crate) fn cancel<'c>(c: &'c Conn, sql: &'c JobSql, id: JobId) -> Body<'c, Job> {
    Box::pin(async move {
        let op = Operation::CancelJob;
        let job_id = job_uuid(id);
        let (now, rows) = futures::join!(clock(c, sql), async {
            query(c, &sql.lock_one, &[&job_id]).await
        });
        let (now, rows) = (now?, rows?);
        let Some(row) = rows.first() else {
            return Ok(Err(StorageError::JobNotFound(id)));
        };
        let mut job = match job_of(op, row) {
            Ok(job) => job,
            Err(e) => return Ok(Err(e)),
        };
        match job.state {
            JobState::Unclaimed => {
                job.state = JobState::Complete;
                job.outcome = Some(JobOutcome::Cancelled);
                job.error = Some("cancelled before a conductor took it up".into());
                job.completed_at = Some(now);
                let rows = JobRows::of([&job]);
                exec(c, &sql.save, &rows.params()).await?;
            }
            JobState::Claimed => {
                exec(c, &sql.cancel_run, &[&uuid_of(job.run)]).await?;
            }
            JobState::Complete => {}
        }
        Ok(Ok(job))
    })
}

/// A job by id.
pub(crate) fn load<'c>(
    c: &'c deadpool_postgres::Object,
    sql: &'c JobSql,
    id: JobId,
) -> BoxFuture<'c, Result<Result<Option<Job>, StorageError>, Failed>> {
    Box::pin(async move {
        let stmt = c.prepare_cached(&sql.load).await?;
        let rows = c.query(&stmt, &[&job_uuid(id)]).await?;
        Ok(rows
            .first()
            .map(|r| job_of(Operation::ReadJobs, r))
            .transpose())
    })
}

/// The jobs `query` asks for, oldest first.
pub(crate) fn list<'c>(
    c: &'c deadpool_postgres::Object,
    sql: &'c JobSql,
    query: JobQuery,
) -> BoxFuture<'c, Result<Result<Vec<Job>, StorageError>, Failed>> {
    Box::pin(async move {
        let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
        let mut text = sql.list.clone();
        let mut clauses = Vec::new();
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if !states.is_empty() {
            args.push(&states);
            clauses.push(format!("j.state = ANY(${}::text[])", args.len()));
        }
        if let Some(flow) = &query.flow {
            args.push(flow);
            clauses.push(format!("j.flow = ${}", args.len()));
        }
        crate::read::paged(
            &mut text,
            &clauses,
            "j.created_at, j.id",
            query.limit,
            query.offset,
        );
        let rows = c.query(&text, &args).await?;
        Ok(rows
            .iter()
            .map(|r| job_of(Operation::ReadJobs, r))
            .collect())
    })
}

/// How long an idle conductor waits when the listening connection is down.
pub(crate) const POLL_WITHOUT_LISTENER: Duration = Duration::from_millis(250);
