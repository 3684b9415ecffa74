//! The writer: one task takes every write waiting and commits them together
//! (group commit), and sees each batch through faults.
//!
//! - A connection lost before `COMMIT` was sent: nothing was written; the
//!   batch is tried again, on a new connection, after a backoff.
//! - A connection lost while `COMMIT` may have been under way: the outcome
//!   is *settled*, never assumed. Each try of a batch inserts a token of its
//!   own into `commits` in its transaction; on a new connection the writer
//!   inserts the same token (`ON CONFLICT DO NOTHING`). If the batch
//!   committed, the token is there and nothing is inserted: the batch's
//!   answers stand. If it did not, the insert goes in, and from then on that
//!   try can never commit (its own insert of the token would conflict): the
//!   batch is tried again. An insert that meets the try's transaction still
//!   open waits for it to end.
//! - The server refused a statement for a passing reason (deadlock, too many
//!   connections): the batch is tried again. For any other reason, a batch
//!   of several writes is split in halves, each tried in turn, until the
//!   write the server will not take is alone: it fails alone.
//! - A server that stays out of reach for longer than
//!   [`PostgresOptions::unavailable_after`](crate::PostgresOptions::unavailable_after)
//!   fails the batch's writes with [`StorageError::Unavailable`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flow_core::{Operation, StorageError};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::batch::{self, Answer, Tried, Write};
use crate::fault::{self, Backoff, Failed, Store};
use crate::schema::Sql;

/// What the backend's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: deadpool_postgres::Pool,
    pub(crate) sql: Sql,
    pub(crate) store: Store,
    pub(crate) unavailable_after: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) max_batch: usize,
    pub(crate) in_flight: usize,
    pub(crate) commits: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) settled: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) listener: crate::listen::Listener,
    pub(crate) posts: crate::posts::Posts,
}

pub(crate) type Reply = oneshot::Sender<Result<Answer, StorageError>>;

/// A job for the writer.
#[derive(Debug)]
pub(crate) enum Job {
    Write(Operation, Write, Reply),
    /// Deleting old runs: in a transaction of its own.
    Prune(f64, Reply),
}

/// Takes every job waiting, commits the writes in one transaction, answers
/// each; ends when every sender is gone, the queue is empty and every batch
/// committed.
///
/// Up to `in_flight` batches commit at once: while one waits for the
/// server's flush to disk, the writes that came meanwhile are sent in the
/// next. Batches in flight together hold writes that were in flight together,
/// so either order is one the callers could have seen; each batch locks its
/// runs' rows in id order, so two never deadlock, and one that touches a run
/// of another waits for it to commit.
pub(crate) async fn writer_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            job = rx.recv(), if open && in_flight.len() < shared.in_flight => {
                let Some(first) = job else {
                    open = false;
                    continue;
                };
                let mut jobs = vec![first];
                while jobs.len() < shared.max_batch {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let mut batch = Vec::with_capacity(jobs.len());
                for job in jobs {
                    match job {
                        Job::Write(op, w, reply) => batch.push((op, w, reply)),
                        Job::Prune(before, reply) => {
                            // After everything sent before it.
                            while futures::StreamExt::next(&mut in_flight).await.is_some() {}
                            send(&shared, std::mem::take(&mut batch)).await;
                            let _ = reply.send(prune(&shared, before).await.map(Answer::Count));
                        }
                    }
                }
                in_flight.push(send(&shared, batch));
            }
            Some(()) = futures::StreamExt::next(&mut in_flight), if !in_flight.is_empty() => {}
        }
    }
}

async fn send(shared: &Shared, batch: Vec<(Operation, Write, Reply)>) {
    if batch.is_empty() {
        return;
    }
    let mut ops = Vec::with_capacity(batch.len());
    let mut writes = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for (op, w, reply) in batch {
        ops.push(op);
        writes.push(w);
        replies.push(reply);
    }
    let answers = commit(shared, &ops, &writes).await;
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
}

/// A connection that may be in a bad state: closed rather than given back.
pub(crate) fn discard(client: deadpool_postgres::Object) {
    drop(deadpool_postgres::Object::take(client));
}

/// Waits out a backoff; `false` when the time for the server is up.
pub(crate) async fn wait(shared: &Shared, since: Instant, backoff: &mut Backoff) -> bool {
    let left = shared.unavailable_after.saturating_sub(since.elapsed());
    if left.is_zero() {
        return false;
    }
    shared.retries.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(backoff.step(left)).await;
    true
}

pub(crate) fn unavailable(
    shared: &Shared,
    op: Operation,
    since: Instant,
    why: &(dyn std::error::Error + Send + Sync),
) -> StorageError {
    StorageError::Unavailable {
        op,
        store: shared.store.described(),
        waited: since.elapsed(),
        source: why.to_string().into(),
    }
}

/// Commits `writes` in one transaction, through faults; one answer per write.
fn commit<'a>(
    shared: &'a Shared,
    ops: &'a [Operation],
    writes: &'a [Write],
) -> BoxFuture<'a, Vec<Result<Answer, StorageError>>> {
    Box::pin(async move {
        let since = Instant::now();
        let mut backoff = Backoff::new();
        let all =
            |e: &dyn Fn(Operation) -> StorageError| ops.iter().map(|op| Err(e(*op))).collect();
        loop {
            let token = Uuid::new_v4();
            let tried = match tokio::time::timeout(shared.attempt_timeout, shared.pool.get()).await
            {
                Err(e) => Err(Tried::NotSent(Box::new(e))),
                Ok(Err(e)) => match Failed::from(e) {
                    Failed::Lost(e) => Err(Tried::NotSent(e)),
                    Failed::Refused(e) => Err(Tried::Refused(e)),
                },
                Ok(Ok(client)) => {
                    let forget = shared.commits.load(Ordering::Relaxed) % 1024 == 1023;
                    let tried = batch::attempt(
                        &client,
                        &shared.sql,
                        writes,
                        token,
                        forget,
                        shared.attempt_timeout,
                    )
                    .await;
                    if tried.is_err() {
                        discard(client);
                    }
                    tried
                }
            };
            match tried {
                Ok(answers) => {
                    shared.commits.fetch_add(1, Ordering::Relaxed);
                    shared
                        .writes
                        .fetch_add(writes.len() as u64, Ordering::Relaxed);
                    return answers;
                }
                Err(Tried::NotSent(e)) => {
                    tracing::debug!(target: "flow", "batch of {} writes not sent: {e}", writes.len());
                    if !wait(shared, since, &mut backoff).await {
                        return all(&|op| unavailable(shared, op, since, &*e));
                    }
                }
                Err(Tried::Unknown(e, answers)) => {
                    tracing::debug!(target: "flow", "batch of {} writes: outcome unknown: {e}", writes.len());
                    match settle(shared, token, since, &mut backoff).await {
                        Ok(true) => {
                            shared.settled.fetch_add(1, Ordering::Relaxed);
                            shared.commits.fetch_add(1, Ordering::Relaxed);
                            shared
                                .writes
                                .fetch_add(writes.len() as u64, Ordering::Relaxed);
                            return answers;
                        }
                        Ok(false) => shared.settled.fetch_add(1, Ordering::Relaxed),
                        Err(last) => return all(&|op| unavailable(shared, op, since, &*last)),
                    };
                }
                Err(Tried::Refused(e)) if fault::is_transient(&e) => {
                    if !wait(shared, since, &mut backoff).await {
                        return all(&|op| unavailable(shared, op, since, &e));
                    }
                }
                Err(Tried::Refused(e)) if writes.len() > 1 => {
                    // In halves, in order, until the write refused is alone.
                    tracing::debug!(target: "flow", "batch of {} writes refused ({e}): in halves", writes.len());
                    let half = writes.len() / 2;
                    let mut answers = commit(shared, &ops[..half], &writes[..half]).await;
                    answers.extend(commit(shared, &ops[half..], &writes[half..]).await);
                    return answers;
                }
                Err(Tried::Refused(e)) => {
                    return vec![Err(fault::error(ops[0], &shared.store, e))];
                }
            }
        }
    })
}

/// Whether the try marked `token` committed, asked until the server answers
/// or the time for it is up (then the last error).
pub(crate) async fn settle(
    shared: &Shared,
    token: Uuid,
    since: Instant,
    backoff: &mut Backoff,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let asked = async {
            let client = shared.pool.get().await.map_err(Failed::from)?;
            let settle = client.prepare_cached(&shared.sql.settle).await;
            let answer = match settle {
                Ok(stmt) => client.execute(&stmt, &[&token]).await,
                Err(e) => Err(e),
            };
            match answer {
                // Inserted now: the try never committed, and now never will.
                Ok(n) => Ok(n == 0),
                Err(e) => {
                    discard(client);
                    Err(Failed::from(e))
                }
            }
        };
        let last: Box<dyn std::error::Error + Send + Sync> =
            match tokio::time::timeout(shared.attempt_timeout, asked).await {
                Ok(Ok(committed)) => return Ok(committed),
                Ok(Err(Failed::Lost(e))) => e,
                Ok(Err(Failed::Refused(e))) => Box::new(e),
                Err(e) => Box::new(e),
            };
        if !wait(shared, since, backoff).await {
            return Err(last);
        }
    }
}

/// Deletes the runs that ended before `before`, through lost connections.
async fn prune(shared: &Shared, before: f64) -> Result<u64, StorageError> {
    let op = Operation::PruneFlows;
    let since = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        let tried = async {
            let client = shared.pool.get().await.map_err(Failed::from)?;
            let stmt = client
                .prepare_cached(&shared.sql.prune)
                .await
                .map_err(Failed::from)?;
            client
                .execute(&stmt, &[&before])
                .await
                .map_err(Failed::from)
        };
        let last: Box<dyn std::error::Error + Send + Sync> =
            match tokio::time::timeout(shared.attempt_timeout, tried).await {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(Failed::Refused(e))) if !fault::is_transient(&e) => {
                    return Err(fault::error(op, &shared.store, e));
                }
                Ok(Err(Failed::Refused(e))) => Box::new(e),
                Ok(Err(Failed::Lost(e))) => e,
                Err(e) => Box::new(e),
            };
        if !wait(shared, since, &mut backoff).await {
            return Err(unavailable(shared, op, since, &*last));
        }
    }
}

/// Runs `read` on a pooled connection, again after a lost connection, until
/// the time for the server is up.
pub(crate) async fn read<T>(
    shared: &Shared,
    op: Operation,
    read: impl for<'c> Fn(&'c deadpool_postgres::Object, &'c Shared) -> BoxFuture<'c, Result<T, Failed>>,
) -> Result<T, StorageError> {
    let since = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        let tried = async {
            let client = shared.pool.get().await.map_err(Failed::from)?;
            let result = read(&client, shared).await;
            if result.is_err() {
                discard(client);
            }
            result
        };
        let last: Box<dyn std::error::Error + Send + Sync> =
            match tokio::time::timeout(shared.attempt_timeout, tried).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(Failed::Refused(e))) if !fault::is_transient(&e) => {
                    return Err(fault::error(op, &shared.store, e));
                }
                Ok(Err(Failed::Refused(e))) => Box::new(e),
                Ok(Err(Failed::Lost(e))) => e,
                Err(e) => Box::new(e),
            };
        if !wait(shared, since, &mut backoff).await {
            return Err(unavailable(shared, op, since, &*last));
        }
    }
}
