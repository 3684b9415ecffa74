//! The writer: one thread owns the write connection and commits the writes
//! of every run sharing the store together (group commit). Claims, renewals
//! and fenced writes are checked inside the transaction that applies them.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use futures::channel::oneshot;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Counters;
use super::sql_error;
use crate::storage::memory::{claimable, lease_end};
use crate::storage::{
    AtomDetail, Claim, Definition, FlowDetail, FlowId, Lease, LogBook, Operation, Ownership,
    StorageError, atom_checksum, definition_checksum, flow_checksum, now_unix,
};

/// One write waiting for the writer.
pub(super) enum Write {
    Logbook(LogBook),
    Create(Box<FlowDetail>, Vec<AtomDetail>, Claim),
    Claim(FlowId, Claim),
    Renew(Lease, Duration),
    Release(Lease),
    Save(FlowId, u64, Option<Box<FlowDetail>>, Vec<AtomDetail>),
    Cancel(FlowId),
    Prune(f64),
    Definition(Definition),
    Jobs(super::jobs::JobWrite),
}

impl Write {
    pub(super) fn op(&self) -> Operation {
        match self {
            Write::Logbook(_) => Operation::SaveLogbook,
            Write::Create(..) => Operation::CreateFlow,
            Write::Claim(..) => Operation::Claim,
            Write::Renew(..) => Operation::Renew,
            Write::Release(_) => Operation::Release,
            Write::Save(..) => Operation::SaveRun,
            Write::Cancel(_) => Operation::RequestCancel,
            Write::Prune(_) => Operation::PruneFlows,
            Write::Definition(_) => Operation::SaveDefinition,
            Write::Jobs(w) => w.op(),
        }
    }
}

/// What a write answers.
pub(super) enum Answer {
    Done,
    Lease(Lease),
    Count(u64),
    Jobs(super::jobs::JobAnswer),
}

pub(super) type Reply = oneshot::Sender<Result<Answer, StorageError>>;

/// Takes every write waiting, commits them in one transaction, answers each.
pub(super) fn writer_loop(
    mut conn: Connection,
    path: &Path,
    rx: &mpsc::Receiver<(Write, Reply)>,
    max_batch: usize,
    counters: &Counters,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let results = commit(&mut conn, path, &batch);
        if results.iter().any(Result::is_ok) {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .writes
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        for ((_, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

fn commit(
    conn: &mut Connection,
    path: &Path,
    batch: &[(Write, Reply)],
) -> Vec<Result<Answer, StorageError>> {
    let all = |e: &rusqlite::Error| {
        batch
            .iter()
            .map(|(w, _)| Err(sql_error(w.op(), path, clone_error(e))))
            .collect()
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return all(&e),
    };
    // One clock reading for the batch: leases granted together end together.
    let now = now_unix();
    let mut results = Vec::with_capacity(batch.len());
    for (w, _) in batch {
        match apply(&tx, w, now) {
            Ok(r) => results.push(r),
            Err(e) => {
                drop(tx);
                return all(&e);
            }
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all(&e),
    }
}

/// rusqlite errors are not `Clone`; one commit error is reported to every
/// write of the batch, keeping its code and message.
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// SQLite stores NaN as NULL; a number that is not finite is stored as 0.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// The ownership of run `id` as stored, if the run is there.
fn held(tx: &Connection, id: &str) -> rusqlite::Result<Option<Ownership>> {
    tx.prepare_cached(
        "SELECT owner, lease_until, fence, cancel_requested FROM flows WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(Ownership {
            owner: r.get(0)?,
            expires_at: r.get(1)?,
            fence: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(u64::MAX),
            cancel_requested: r.get::<_, i64>(3)? != 0,
        })
    })
    .optional()
}

fn lost(run: FlowId, fence: u64, now: &Ownership) -> StorageError {
    StorageError::OwnershipLost {
        run,
        fence,
        current: now.fence,
        holder: now.owner.clone(),
    }
}

fn write_flow(tx: &Connection, f: &FlowDetail) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE flows SET logbook_id = ?2, name = ?3, state = ?4, meta = ?5, created_at = ?6,
            updated_at = ?7, checksum = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        f.id.to_string(),
        f.logbook.to_string(),
        f.name,
        f.state.as_str(),
        f.meta.to_string(),
        finite(f.created_at),
        finite(f.updated_at),
        i64::from(flow_checksum(f)),
    ])?;
    Ok(())
}

fn write_atoms(tx: &Connection, run: FlowId, atoms: &[AtomDetail]) -> rusqlite::Result<()> {
    let id = run.to_string();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO atoms (flow_id, name, kind, state, intention, result, failure,
            revert_result, revert_failure, progress, attempts, version, meta, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (flow_id, name) DO UPDATE SET kind = ?3, state = ?4,
            intention = ?5, result = ?6, failure = ?7, revert_result = ?8,
            revert_failure = ?9, progress = ?10, attempts = ?11, version = ?12,
            meta = ?13, checksum = ?14",
    )?;
    for a in atoms {
        stmt.execute(params![
            id,
            a.name,
            a.kind.as_str(),
            a.state.as_str(),
            a.intention.as_str(),
            a.result.as_ref().map(ToString::to_string),
            a.failure.as_ref().map(json_text),
            a.revert_result.as_ref().map(ToString::to_string),
            a.revert_failure.as_ref().map(json_text),
            finite(f64::from(a.progress)),
            a.attempts,
            a.version.min(i64::MAX as u64) as i64,
            a.meta.to_string(),
            i64::from(atom_checksum(run, a)),
        ])?;
    }
    Ok(())
}

fn set_owner(
    tx: &Connection,
    id: &str,
    owner: Option<&str>,
    until: Option<f64>,
    fence: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE flows SET owner = ?2, lease_until = ?3, fence = ?4 WHERE id = ?1")?
        .execute(params![
            id,
            owner,
            until.map(finite),
            fence.min(i64::MAX as u64) as i64
        ])?;
    Ok(())
}

/// One write. The outer error aborts the batch; the inner one fails this
/// write alone, before it wrote anything.
fn apply(
    tx: &Connection,
    w: &Write,
    now: f64,
) -> Result<Result<Answer, StorageError>, rusqlite::Error> {
    match w {
        Write::Logbook(b) => {
            tx.prepare_cached(
                "INSERT INTO logbooks (id, name, created_at, updated_at, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET name = ?2, created_at = ?3,
                    updated_at = ?4, meta = ?5",
            )?
            .execute(params![
                b.id.to_string(),
                b.name,
                finite(b.created_at),
                finite(b.updated_at),
                b.meta.to_string()
            ])?;
        }
        Write::Create(f, atoms, claim) => {
            let id = f.id.to_string();
            if held(tx, &id)?.is_some() {
                return Ok(Err(StorageError::Exists(f.id)));
            }
            let until = lease_end(now, claim.duration);
            tx.prepare_cached(
                "INSERT INTO flows (id, logbook_id, name, state, meta, created_at, updated_at,
                    owner, lease_until, fence, cancel_requested, checksum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 0, ?10)",
            )?
            .execute(params![
                id,
                f.logbook.to_string(),
                f.name,
                f.state.as_str(),
                f.meta.to_string(),
                finite(f.created_at),
                finite(f.updated_at),
                claim.owner,
                finite(until),
                i64::from(flow_checksum(f)),
            ])?;
            write_atoms(tx, f.id, atoms)?;
            return Ok(Ok(Answer::Lease(Lease::new(
                f.id,
                claim.owner.clone(),
                1,
                until,
            ))));
        }
        Write::Claim(run, claim) => {
            let id = run.to_string();
            let Some(now_held) = held(tx, &id)? else {
                return Ok(Err(StorageError::NotFound(*run)));
            };
            if let Err((owner, expires_at)) = claimable(&now_held, claim, now) {
                return Ok(Err(StorageError::Owned {
                    run: *run,
                    owner,
                    expires_at,
                }));
            }
            let fence = now_held.fence + 1;
            let until = lease_end(now, claim.duration);
            set_owner(tx, &id, Some(&claim.owner), Some(until), fence)?;
            let lease = Lease::new(*run, claim.owner.clone(), fence, until)
                .with_cancel_requested(now_held.cancel_requested);
            return Ok(Ok(Answer::Lease(lease)));
        }
        Write::Renew(lease, duration) => {
            let id = lease.run.to_string();
            let Some(now_held) = held(tx, &id)? else {
                return Ok(Err(StorageError::NotFound(lease.run)));
            };
            // Given back since: a renewal its holder had under way does not
            // take it again.
            if now_held.fence != lease.fence || now_held.owner.is_none() {
                return Ok(Err(lost(lease.run, lease.fence, &now_held)));
            }
            let until = lease_end(now, *duration);
            set_owner(tx, &id, Some(&lease.owner), Some(until), lease.fence)?;
            let renewed = Lease::new(lease.run, lease.owner.clone(), lease.fence, until)
                .with_cancel_requested(now_held.cancel_requested);
            return Ok(Ok(Answer::Lease(renewed)));
        }
        Write::Release(lease) => {
            let id = lease.run.to_string();
            let Some(now_held) = held(tx, &id)? else {
                return Ok(Err(StorageError::NotFound(lease.run)));
            };
            if now_held.fence != lease.fence {
                return Ok(Err(lost(lease.run, lease.fence, &now_held)));
            }
            set_owner(tx, &id, None, None, lease.fence)?;
        }
        Write::Save(run, fence, flow, atoms) => {
            let Some(now_held) = held(tx, &run.to_string())? else {
                return Ok(Err(StorageError::NotFound(*run)));
            };
            if now_held.fence != *fence {
                return Ok(Err(lost(*run, *fence, &now_held)));
            }
            if let Some(f) = flow {
                let mut f = f.as_ref().clone();
                f.id = *run;
                write_flow(tx, &f)?;
            }
            write_atoms(tx, *run, atoms)?;
        }
        Write::Cancel(run) => {
            let changed = tx
                .prepare_cached("UPDATE flows SET cancel_requested = 1 WHERE id = ?1")?
                .execute([run.to_string()])?;
            if changed == 0 {
                return Ok(Err(StorageError::NotFound(*run)));
            }
        }
        Write::Prune(before) => {
            let deleted = tx
                .prepare_cached(
                    "DELETE FROM flows WHERE state IN ('SUCCESS', 'REVERTED', 'FAILURE')
                        AND updated_at < ?1",
                )?
                .execute([finite(*before)])?;
            return Ok(Ok(Answer::Count(deleted as u64)));
        }
        Write::Jobs(w) => {
            return super::jobs::apply(tx, w, now).map(|r| r.map(Answer::Jobs));
        }
        Write::Definition(d) => {
            tx.prepare_cached(
                "INSERT INTO definitions (id, name, format, body, created_at, checksum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![
                d.id,
                d.name,
                d.format,
                d.body,
                finite(d.created_at),
                i64::from(definition_checksum(&d.name, &d.format, &d.body)),
            ])?;
        }
    }
    Ok(Ok(Answer::Done))
}
