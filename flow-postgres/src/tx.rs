//! One transaction of the job board, seen through faults as the writer sees
//! its batches: a connection lost before `COMMIT` was sent is tried again; a
//! commit whose outcome is unknown is settled by the token it wrote in its
//! transaction ([`crate::writer`]); a passing refusal (deadlock, too many
//! connections) is tried again; a refusal of the body itself (a job not
//! found, a claim lost) rolls back and is the answer.

use std::time::Instant;

use flow_core::{Operation, StorageError};
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::fault::{self, Backoff, Failed};
use crate::writer::{Shared, discard, settle, unavailable, wait};

/// What the body of a transaction answers: the server's failure, or the
/// body's own answer (an error of which rolls the transaction back).
/// A pooled connection.
pub(crate) type Conn = deadpool_postgres::Object;

pub(crate) type Body<'c, T> = BoxFuture<'c, Result<Result<T, StorageError>, Failed>>;

/// Runs `body` in a transaction and commits it, through faults, until the
/// time for the server is up. `body` may run more than once (never with two
/// of its runs committed).
pub(crate) async fn transact<T>(
    shared: &Shared,
    op: Operation,
    body: impl for<'c> Fn(&'c Conn, &'c Shared) -> Body<'c, T>,
) -> Result<T, StorageError> {
    let since = Instant::now();
    let mut backoff = Backoff::new();
    let timeout = shared.attempt_timeout;
    loop {
        let last: Box<dyn std::error::Error + Send + Sync> =
            match tokio::time::timeout(timeout, shared.pool.get()).await {
                Err(e) => Box::new(e),
                Ok(Err(e)) => match Failed::from(e) {
                    Failed::Refused(e) if !fault::is_transient(&e) => {
                        return Err(fault::error(op, &shared.store, e));
                    }
                    Failed::Refused(e) => Box::new(e),
                    Failed::Lost(e) => e,
                },
                Ok(Ok(client)) => {
                    let token = Uuid::new_v4();
                    match attempt(shared, &client, &body, token).await {
                        Attempt::Done(answer) => return answer,
                        Attempt::Refused(e) => {
                            discard(client);
                            if !fault::is_transient(&e) {
                                return Err(fault::error(op, &shared.store, e));
                            }
                            Box::new(e)
                        }
                        Attempt::NotSent(e) => {
                            discard(client);
                            e
                        }
                        Attempt::Unknown(e, answer) => {
                            discard(client);
                            tracing::debug!(target: "flow", "{op}: outcome unknown: {e}");
                            match settle(shared, token, since, &mut backoff).await {
                                Ok(true) => return Ok(answer),
                                Ok(false) => e,
                                Err(last) => return Err(unavailable(shared, op, since, &*last)),
                            }
                        }
                    }
                }
            };
        if !wait(shared, since, &mut backoff).await {
            return Err(unavailable(shared, op, since, &*last));
        }
    }
}

/// How one try went.
enum Attempt<T> {
    /// Committed, or rolled back with the body's own answer.
    Done(Result<T, StorageError>),
    /// The server refused a statement: nothing was committed.
    Refused(tokio_postgres::Error),
    /// The connection was lost before `COMMIT` was sent.
    NotSent(Box<dyn std::error::Error + Send + Sync>),
    /// Lost while `COMMIT` may have been under way; the answer, should it
    /// have gone through.
    Unknown(Box<dyn std::error::Error + Send + Sync>, T),
}

impl<T> From<Failed> for Attempt<T> {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Refused(e) => Attempt::Refused(e),
            Failed::Lost(e) => Attempt::NotSent(e),
        }
    }
}

async fn attempt<T>(
    shared: &Shared,
    client: &deadpool_postgres::Object,
    body: &impl for<'c> Fn(&'c Conn, &'c Shared) -> Body<'c, T>,
    token: Uuid,
) -> Attempt<T> {
    let c = client;
    let timeout = shared.attempt_timeout;
    let ran = tokio::time::timeout(timeout, async {
        let (begun, token_stmt, answer) = futures::join!(
            c.batch_execute("BEGIN"),
            c.prepare_cached(&shared.sql.token),
            body(c, shared)
        );
        begun?;
        let token_stmt = token_stmt?;
        Ok::<_, Failed>((token_stmt, answer?))
    })
    .await;
    let (token_stmt, answer) = match ran {
        Err(e) => return Attempt::NotSent(Box::new(e)),
        Ok(Err(f)) => return f.into(),
        Ok(Ok(done)) => done,
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(refusal) => {
            return match c.batch_execute("ROLLBACK").await {
                Ok(()) => Attempt::Done(Err(refusal)),
                // The body's answer stands: nothing of it was committed.
                Err(e) => match Failed::from(e) {
                    Failed::Refused(e) => Attempt::Refused(e),
                    Failed::Lost(_) => Attempt::Done(Err(refusal)),
                },
            };
        }
    };
    let commit = tokio::time::timeout(timeout, async {
        futures::join!(
            async { c.execute(&token_stmt, &[&token]).await },
            c.batch_execute("COMMIT")
        )
    })
    .await;
    match commit {
        Err(e) => Attempt::Unknown(Box::new(e), answer),
        Ok((inserted, committed)) => {
            let mut lost = None;
            for r in [inserted.map(drop), committed] {
                match r.map_err(Failed::from) {
                    Ok(()) => {}
                    Err(Failed::Refused(e)) => return Attempt::Refused(e),
                    Err(Failed::Lost(e)) => lost = lost.or(Some(e)),
                }
            }
            match lost {
                None => Attempt::Done(Ok(answer)),
                Some(e) => Attempt::Unknown(e, answer),
            }
        }
    }
}
