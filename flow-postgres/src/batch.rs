//! One try at committing a batch of writes in one transaction.
//!
//! 1. In one round trip: `BEGIN`, the rows of every run the batch touches
//!    locked (`FOR UPDATE`, in id order, so that batches of several
//!    processes never deadlock), the database's clock, and the new runs
//!    inserted (`ON CONFLICT DO NOTHING`: a run already there is `Exists`).
//! 2. The writes are applied in order to what was read (the *plan*): each
//!    claim, renewal, release and fenced write is checked against the run's
//!    fencing number and lease as the writes before it in the batch left
//!    them. A write refused (stale fence, unknown run, live lease) fails
//!    alone and contributes nothing.
//! 3. In one more round trip: what the plan kept, one multi-row statement
//!    per table (`unnest` of arrays), the batch's token, `COMMIT`.
//!
//! Leases are measured by the database's clock: `now()`, the start of the
//! batch's transaction, one reading for the whole batch.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use flow_core::{FlowId, Lease, StorageError};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::arrays::{Atoms, Books, Definitions, NewRuns, Owners, Records};
use crate::fault::Failed;
use crate::rows::{AtomRow, BookRow, DefinitionRow, FlowRow, uuid_of};
use crate::schema::Sql;

/// One write, made ready ([`crate::rows`]).
#[derive(Debug)]
pub(crate) enum Write {
    Logbook(BookRow),
    Create {
        run: FlowId,
        flow: FlowRow,
        atoms: Vec<AtomRow>,
        owner: String,
        lease_us: i64,
    },
    Claim {
        run: FlowId,
        owner: String,
        lease_us: i64,
    },
    Renew {
        lease: Lease,
        lease_us: i64,
    },
    Release(Lease),
    Save {
        run: FlowId,
        fence: u64,
        flow: Option<FlowRow>,
        atoms: Vec<AtomRow>,
    },
    Cancel(FlowId),
    Definition(DefinitionRow),
}

impl Write {
    fn run(&self) -> Option<FlowId> {
        match self {
            Write::Create { run, .. }
            | Write::Claim { run, .. }
            | Write::Save { run, .. }
            | Write::Cancel(run) => Some(*run),
            Write::Renew { lease, .. } | Write::Release(lease) => Some(lease.run),
            Write::Logbook(_) | Write::Definition(_) => None,
        }
    }
}

/// What a write answers.
#[derive(Debug)]
pub(crate) enum Answer {
    Done,
    Lease(Lease),
    Count(u64),
}

/// A run's ownership as the batch goes.
#[derive(Debug, Clone)]
pub(crate) struct Own {
    pub(crate) fence: u64,
    pub(crate) owner: Option<String>,
    pub(crate) until_us: Option<i64>,
    pub(crate) cancel: bool,
    changed: bool,
}

fn seconds(us: i64) -> f64 {
    us as f64 / 1e6
}

fn lost(run: FlowId, fence: u64, own: &Own) -> StorageError {
    StorageError::OwnershipLost {
        run,
        fence,
        current: own.fence,
        holder: own.owner.clone(),
    }
}

/// What the batch writes (borrowed from its writes), and what each write
/// answers once it commits.
#[derive(Debug, Default)]
pub(crate) struct Plan<'b> {
    pub(crate) answers: Vec<Result<Answer, StorageError>>,
    pub(crate) books: HashMap<Uuid, &'b BookRow>,
    pub(crate) records: HashMap<Uuid, &'b FlowRow>,
    pub(crate) owners: HashMap<Uuid, Own>,
    pub(crate) atoms: HashMap<(Uuid, &'b str), &'b AtomRow>,
    pub(crate) definitions: HashMap<&'b str, &'b DefinitionRow>,
}

/// Applies the batch, in order, to the runs as locked.
fn plan<'b>(
    batch: &'b [Write],
    mut runs: HashMap<Uuid, Own>,
    inserted: &HashSet<Uuid>,
    now_us: i64,
) -> Plan<'b> {
    let mut p = Plan::default();
    let mut created = HashSet::new();
    for w in batch {
        let answer = match w {
            Write::Logbook(b) => {
                p.books.insert(b.id, b);
                Ok(Answer::Done)
            }
            Write::Definition(d) => {
                p.definitions.entry(&d.id).or_insert(d);
                Ok(Answer::Done)
            }
            Write::Create {
                run,
                atoms,
                owner,
                lease_us,
                ..
            } => {
                let id = uuid_of(*run);
                if inserted.contains(&id) && created.insert(id) {
                    let until = now_us.saturating_add(*lease_us);
                    runs.insert(
                        id,
                        Own {
                            fence: 1,
                            owner: Some(owner.clone()),
                            until_us: Some(until),
                            cancel: false,
                            changed: false,
                        },
                    );
                    // The run's row went in with the insert; its atoms go
                    // in with the others.
                    for a in atoms {
                        p.atoms.insert((id, &a.name), a);
                    }
                    Ok(Answer::Lease(Lease::new(
                        *run,
                        owner.clone(),
                        1,
                        seconds(until),
                    )))
                } else {
                    Err(StorageError::Exists(*run))
                }
            }
            Write::Claim {
                run,
                owner,
                lease_us,
            } => match runs.get_mut(&uuid_of(*run)) {
                None => Err(StorageError::NotFound(*run)),
                Some(own) => match (&own.owner, own.until_us) {
                    (Some(holder), Some(until)) if until > now_us && holder != owner => {
                        Err(StorageError::Owned {
                            run: *run,
                            owner: holder.clone(),
                            expires_at: seconds(until),
                        })
                    }
                    _ => {
                        let until = now_us.saturating_add(*lease_us);
                        own.fence += 1;
                        own.owner = Some(owner.clone());
                        own.until_us = Some(until);
                        own.changed = true;
                        Ok(Answer::Lease(
                            Lease::new(*run, owner.clone(), own.fence, seconds(until))
                                .with_cancel_requested(own.cancel),
                        ))
                    }
                },
            },
            Write::Renew { lease, lease_us } => match runs.get_mut(&uuid_of(lease.run)) {
                None => Err(StorageError::NotFound(lease.run)),
                // Given back since (a renewal its holder had under way when
                // it gave the run back, or completed its job): not taken again.
                Some(own) if own.fence != lease.fence || own.owner.is_none() => {
                    Err(lost(lease.run, lease.fence, own))
                }
                Some(own) => {
                    let until = now_us.saturating_add(*lease_us);
                    own.owner = Some(lease.owner.clone());
                    own.until_us = Some(until);
                    own.changed = true;
                    Ok(Answer::Lease(
                        Lease::new(lease.run, lease.owner.clone(), lease.fence, seconds(until))
                            .with_cancel_requested(own.cancel),
                    ))
                }
            },
            Write::Release(lease) => match runs.get_mut(&uuid_of(lease.run)) {
                None => Err(StorageError::NotFound(lease.run)),
                Some(own) if own.fence != lease.fence => Err(lost(lease.run, lease.fence, own)),
                Some(own) => {
                    own.owner = None;
                    own.until_us = None;
                    own.changed = true;
                    Ok(Answer::Done)
                }
            },
            Write::Save {
                run,
                fence,
                flow,
                atoms,
            } => {
                let id = uuid_of(*run);
                match runs.get(&id) {
                    None => Err(StorageError::NotFound(*run)),
                    Some(own) if own.fence != *fence => Err(lost(*run, *fence, own)),
                    Some(_) => {
                        if let Some(f) = flow {
                            p.records.insert(id, f);
                        }
                        for a in atoms {
                            p.atoms.insert((id, &a.name), a);
                        }
                        Ok(Answer::Done)
                    }
                }
            }
            Write::Cancel(run) => match runs.get_mut(&uuid_of(*run)) {
                None => Err(StorageError::NotFound(*run)),
                Some(own) => {
                    own.cancel = true;
                    own.changed = true;
                    Ok(Answer::Done)
                }
            },
        };
        p.answers.push(answer);
    }
    p.owners = runs.into_iter().filter(|(_, o)| o.changed).collect();
    p
}

/// One try at the batch, on `client`, marked by `token`. `Ok` once it
/// committed; the plan's answers are the writes' answers.
///
/// Each round trip has `timeout`: one that runs out before `COMMIT` was
/// sent leaves nothing committed; after, the outcome is unknown.
pub(crate) async fn attempt(
    client: &deadpool_postgres::Object,
    sql: &Sql,
    batch: &[Write],
    token: Uuid,
    forget_tokens: bool,
    timeout: Duration,
) -> Result<Vec<Result<Answer, StorageError>>, Tried> {
    let mut ids: Vec<Uuid> = batch.iter().filter_map(Write::run).map(uuid_of).collect();
    ids.sort_unstable();
    ids.dedup();
    // Prepared once per connection, all in one round trip.
    let texts: [&str; 10] = [
        &sql.lock,
        sql.clock,
        &sql.create,
        &sql.books,
        &sql.records,
        &sql.owners,
        &sql.atoms,
        &sql.definitions,
        &sql.token,
        &sql.forget_tokens,
    ];
    let statements = futures::future::try_join_all(texts.map(|t| client.prepare_cached(t)))
        .await
        .map_err(Tried::before)?;
    let [lock, clock, create, ..] = &statements[..] else {
        unreachable!("ten statements were prepared")
    };
    let new_runs = NewRuns::of(batch);
    let c: &Client = client;

    // Round trip 1: lock, clock, new runs.
    let lock_params: [&(dyn ToSql + Sync); 1] = [&ids];
    let first = async {
        futures::join!(
            c.batch_execute("BEGIN"),
            c.query(lock, &lock_params),
            c.query_one(clock, &[]),
            async {
                if new_runs.ids.is_empty() {
                    Ok(Vec::new())
                } else {
                    c.query(create, &new_runs.params()).await
                }
            }
        )
    };
    let (begun, locked, now, inserted) = tokio::time::timeout(timeout, first)
        .await
        .map_err(|e| Tried::NotSent(Box::new(e)))?;
    begun.map_err(Tried::before)?;
    let locked = locked.map_err(Tried::before)?;
    let now_us: i64 = now
        .map_err(Tried::before)?
        .try_get(0)
        .map_err(Tried::before)?;
    let inserted: HashSet<Uuid> = inserted
        .map_err(Tried::before)?
        .iter()
        .map(|r| r.try_get::<_, Uuid>(0))
        .collect::<Result<_, _>>()
        .map_err(Tried::before)?;
    let mut runs = HashMap::with_capacity(locked.len());
    for row in &locked {
        let id: Uuid = row.try_get(0).map_err(Tried::before)?;
        let fence: i64 = row.try_get(1).map_err(Tried::before)?;
        runs.insert(
            id,
            Own {
                fence: u64::try_from(fence).unwrap_or(0),
                owner: row.try_get(2).map_err(Tried::before)?,
                until_us: row.try_get(3).map_err(Tried::before)?,
                cancel: row.try_get(4).map_err(Tried::before)?,
                changed: false,
            },
        );
    }
    let plan = plan(batch, runs, &inserted, now_us);

    // Round trip 2: what the plan keeps, the token, COMMIT.
    let books = Books::of(&plan);
    let records = Records::of(&plan);
    let owners = Owners::of(&plan);
    let atoms = Atoms::of(&plan);
    let definitions = Definitions::of(&plan);
    let mut prepared = Vec::new();
    for (stmt, wanted) in statements[3..].iter().zip([
        !books.ids.is_empty(),
        !records.ids.is_empty(),
        !owners.ids.is_empty(),
        !atoms.runs.is_empty(),
        !definitions.ids.is_empty(),
        true,
        forget_tokens,
    ]) {
        if wanted {
            prepared.push(stmt);
        }
    }
    let mut params: Vec<Vec<&(dyn ToSql + Sync)>> = Vec::new();
    if !books.ids.is_empty() {
        params.push(books.params());
    }
    if !records.ids.is_empty() {
        params.push(records.params());
    }
    if !owners.ids.is_empty() {
        params.push(owners.params());
    }
    if !atoms.runs.is_empty() {
        params.push(atoms.params());
    }
    if !definitions.ids.is_empty() {
        params.push(definitions.params());
    }
    params.push(vec![&token]);
    if forget_tokens {
        params.push(Vec::new());
    }
    let statements: Vec<_> = prepared
        .iter()
        .zip(&params)
        .map(|(stmt, p)| c.execute(*stmt, p))
        .collect();
    let second = async {
        futures::join!(
            futures::future::join_all(statements),
            c.batch_execute("COMMIT")
        )
    };
    let (done, committed) = match tokio::time::timeout(timeout, second).await {
        Ok(done) => done,
        Err(e) => return Err(Tried::Unknown(Box::new(e), plan.answers)),
    };
    let mut lost = None;
    for r in done
        .into_iter()
        .chain(std::iter::once(committed.map(|()| 0)))
    {
        match r.map_err(Failed::from) {
            Ok(_) => {}
            // A statement the server refused: the transaction is aborted,
            // and COMMIT only rolled it back.
            Err(Failed::Refused(e)) => return Err(Tried::Refused(e)),
            Err(Failed::Lost(e)) => lost = lost.or(Some(e)),
        }
    }
    match lost {
        None => Ok(plan.answers),
        Some(e) => Err(Tried::Unknown(e, plan.answers)),
    }
}

/// How a try went wrong.
#[derive(Debug)]
pub(crate) enum Tried {
    /// The server refused a statement: nothing was committed.
    Refused(tokio_postgres::Error),
    /// The connection was lost before `COMMIT` was sent: nothing was
    /// committed.
    NotSent(Box<dyn std::error::Error + Send + Sync>),
    /// The connection was lost while `COMMIT` may have been under way; the
    /// answers, should it have gone through.
    Unknown(
        Box<dyn std::error::Error + Send + Sync>,
        Vec<Result<Answer, StorageError>>,
    ),
}

impl Tried {
    fn before(e: tokio_postgres::Error) -> Tried {
        match Failed::from(e) {
            Failed::Refused(e) => Tried::Refused(e),
            Failed::Lost(e) => Tried::NotSent(e),
        }
    }
}
