//! The columns of a batch's rows as arrays, one per column, for the
//! multi-row statements (`SELECT * FROM unnest($1::uuid[], $2::text[], ...)`).
//! They borrow the values from the batch's writes.

use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::batch::{Plan, Write};

pub(crate) type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// The new runs of a batch.
#[derive(Default)]
pub(crate) struct NewRuns<'a> {
    pub(crate) ids: Vec<Uuid>,
    books: Vec<Uuid>,
    names: Vec<&'a str>,
    states: Vec<&'static str>,
    metas: Vec<&'a Value>,
    created: Vec<f64>,
    updated: Vec<f64>,
    owners: Vec<&'a str>,
    leases: Vec<i64>,
    sums: Vec<i64>,
}

impl<'a> NewRuns<'a> {
    pub(crate) fn of(batch: &'a [Write]) -> Self {
        let mut n = NewRuns::default();
        for w in batch {
            if let Write::Create {
                flow,
                owner,
                lease_us,
                ..
            } = w
            {
                n.ids.push(flow.id);
                n.books.push(flow.logbook);
                n.names.push(&flow.name);
                n.states.push(flow.state);
                n.metas.push(&flow.meta);
                n.created.push(flow.created_at);
                n.updated.push(flow.updated_at);
                n.owners.push(owner);
                n.leases.push(*lease_us);
                n.sums.push(flow.checksum);
            }
        }
        n
    }

    pub(crate) fn params(&self) -> Params<'_> {
        vec![
            &self.ids,
            &self.books,
            &self.names,
            &self.states,
            &self.metas,
            &self.created,
            &self.updated,
            &self.owners,
            &self.leases,
            &self.sums,
        ]
    }
}

/// Logbooks.
#[derive(Default)]
pub(crate) struct Books<'a> {
    pub(crate) ids: Vec<Uuid>,
    names: Vec<&'a str>,
    created: Vec<f64>,
    updated: Vec<f64>,
    metas: Vec<&'a Value>,
}

impl<'a> Books<'a> {
    pub(crate) fn of(p: &Plan<'a>) -> Self {
        let mut b = Books::default();
        let mut rows: Vec<_> = p.books.values().collect();
        rows.sort_by_key(|r| r.id);
        for row in rows {
            b.ids.push(row.id);
            b.names.push(&row.name);
            b.created.push(row.created_at);
            b.updated.push(row.updated_at);
            b.metas.push(&row.meta);
        }
        b
    }

    pub(crate) fn params(&self) -> Params<'_> {
        vec![
            &self.ids,
            &self.names,
            &self.created,
            &self.updated,
            &self.metas,
        ]
    }
}

/// Runs' records.
#[derive(Default)]
pub(crate) struct Records<'a> {
    pub(crate) ids: Vec<Uuid>,
    books: Vec<Uuid>,
    names: Vec<&'a str>,
    states: Vec<&'static str>,
    metas: Vec<&'a Value>,
    created: Vec<f64>,
    updated: Vec<f64>,
    sums: Vec<i64>,
}

impl<'a> Records<'a> {
    pub(crate) fn of(p: &Plan<'a>) -> Self {
        let mut r = Records::default();
        for (id, f) in &p.records {
            r.ids.push(*id);
            r.books.push(f.logbook);
            r.names.push(&f.name);
            r.states.push(f.state);
            r.metas.push(&f.meta);
            r.created.push(f.created_at);
            r.updated.push(f.updated_at);
            r.sums.push(f.checksum);
        }
        r
    }

    pub(crate) fn params(&self) -> Params<'_> {
        vec![
            &self.ids,
            &self.books,
            &self.names,
            &self.states,
            &self.metas,
            &self.created,
            &self.updated,
            &self.sums,
        ]
    }
}

/// Runs' owners, leases, fencing numbers and requests to cancel.
#[derive(Default)]
pub(crate) struct Owners<'a> {
    pub(crate) ids: Vec<Uuid>,
    owners: Vec<Option<&'a str>>,
    until: Vec<Option<i64>>,
    fences: Vec<i64>,
    cancel: Vec<bool>,
}

impl<'a> Owners<'a> {
    pub(crate) fn of(p: &'a Plan<'_>) -> Self {
        let mut o = Owners::default();
        for (id, own) in &p.owners {
            o.ids.push(*id);
            o.owners.push(own.owner.as_deref());
            o.until.push(own.until_us);
            o.fences.push(i64::try_from(own.fence).unwrap_or(i64::MAX));
            o.cancel.push(own.cancel);
        }
        o
    }

    pub(crate) fn params(&self) -> Params<'_> {
        vec![
            &self.ids,
            &self.owners,
            &self.until,
            &self.fences,
            &self.cancel,
        ]
    }
}

/// Atoms.
#[derive(Default)]
pub(crate) struct Atoms<'a> {
    pub(crate) runs: Vec<Uuid>,
    names: Vec<&'a str>,
    kinds: Vec<&'static str>,
    states: Vec<&'static str>,
    intentions: Vec<&'static str>,
    results: Vec<Option<&'a Value>>,
    failures: Vec<Option<&'a Value>>,
    revert_results: Vec<Option<&'a Value>>,
    revert_failures: Vec<Option<&'a Value>>,
    progress: Vec<f32>,
    attempts: Vec<i64>,
    versions: Vec<i64>,
    metas: Vec<&'a Value>,
    sums: Vec<i64>,
}

impl<'a> Atoms<'a> {
    pub(crate) fn of(p: &Plan<'a>) -> Self {
        let mut a = Atoms::default();
        let mut rows: Vec<_> = p.atoms.values().collect();
        // In one order in every batch: batches in flight together never wait
        // on each other in a circle.
        rows.sort_unstable_by(|x, y| (x.run, &x.name).cmp(&(y.run, &y.name)));
        for row in rows {
            a.runs.push(row.run);
            a.names.push(&row.name);
            a.kinds.push(row.kind);
            a.states.push(row.state);
            a.intentions.push(row.intention);
            a.results.push(row.result.as_ref());
            a.failures.push(row.failure.as_ref());
            a.revert_results.push(row.revert_result.as_ref());
            a.revert_failures.push(row.revert_failure.as_ref());
            a.progress.push(row.progress);
            a.attempts.push(row.attempts);
            a.versions.push(row.version);
            a.metas.push(&row.meta);
            a.sums.push(row.checksum);
        }
        a
    }

    pub(crate) fn params(&self) -> Params<'_> {
        vec![
            &self.runs,
            &self.names,
            &self.kinds,
            &self.states,
            &self.intentions,
            &self.results,
            &self.failures,
            &self.revert_results,
            &self.revert_failures,
            &self.progress,
            &self.attempts,
            &self.versions,
            &self.metas,
            &self.sums,
        ]
    }
}

/// Definitions.
#[derive(Default)]
pub(crate) struct Definitions<'a> {
    pub(crate) ids: Vec<&'a str>,
    names: Vec<&'a str>,
    formats: Vec<&'a str>,
    bodies: Vec<&'a str>,
    created: Vec<f64>,
    sums: Vec<i64>,
}

impl<'a> Definitions<'a> {
    pub(crate) fn of(p: &Plan<'a>) -> Self {
        let mut d = Definitions::default();
        let mut rows: Vec<_> = p.definitions.values().collect();
        rows.sort_by(|x, y| x.id.cmp(&y.id));
        for row in rows {
            d.ids.push(&row.id);
            d.names.push(&row.name);
            d.formats.push(&row.format);
            d.bodies.push(&row.body);
            d.created.push(row.created_at);
            d.sums.push(row.checksum);
        }
        d
    }

    pub(crate) fn params(&self) -> Params<'_> {
        vec![
            &self.ids,
            &self.names,
            &self.formats,
            &self.bodies,
            &self.created,
            &self.sums,
        ]
    }
}
