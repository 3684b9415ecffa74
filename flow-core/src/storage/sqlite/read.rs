//! Reading records back: each field checked, each record's checksum checked.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};

use super::sql_error;
use crate::engine::state::{AtomKind, AtomState, FlowState, Intention};
use crate::storage::{
    AtomDetail, Definition, FlowDetail, FlowId, FlowQuery, LogbookId, Operation, Ownership,
    StorageError, atom_checksum, flow_checksum, verify_checksum,
};

/// A stored value as an error message shows it.
fn shown(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "NULL".into(),
        SqlValue::Integer(n) => n.to_string(),
        SqlValue::Real(x) => x.to_string(),
        SqlValue::Text(t) => t.clone(),
        SqlValue::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// Reads the cells of one stored record, or says what is wrong with it.
struct Parse<'r> {
    op: Operation,
    what: String,
    row: &'r rusqlite::Row<'r>,
    columns: &'static [&'static str],
}

impl Parse<'_> {
    fn bad(&self, field: &str, text: &str) -> StorageError {
        StorageError::Corrupt {
            op: self.op,
            detail: format!("{}: `{field}` holds `{text}`", self.what),
        }
    }

    /// The cell of column `field`; a cell that cannot be read (text that
    /// is not UTF-8, say) is a damaged record.
    fn cell(&self, field: &str) -> Result<SqlValue, StorageError> {
        let k = self
            .columns
            .iter()
            .position(|c| *c == field)
            .unwrap_or(usize::MAX);
        self.row
            .get::<_, SqlValue>(k)
            .map_err(|e| StorageError::Corrupt {
                op: self.op,
                detail: format!("{}: `{field}` cannot be read: {e}", self.what),
            })
    }

    fn text(&self, field: &str) -> Result<String, StorageError> {
        match self.cell(field)? {
            SqlValue::Text(t) => Ok(t),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn opt_text(&self, field: &str) -> Result<Option<String>, StorageError> {
        match self.cell(field)? {
            SqlValue::Null => Ok(None),
            SqlValue::Text(t) => Ok(Some(t)),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn real(&self, field: &str) -> Result<f64, StorageError> {
        match self.cell(field)? {
            SqlValue::Real(x) => Ok(x),
            SqlValue::Integer(n) => Ok(n as f64),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn opt_real(&self, field: &str) -> Result<Option<f64>, StorageError> {
        match self.cell(field)? {
            SqlValue::Null => Ok(None),
            SqlValue::Real(x) => Ok(Some(x)),
            SqlValue::Integer(n) => Ok(Some(n as f64)),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn int(&self, field: &str) -> Result<i64, StorageError> {
        match self.cell(field)? {
            SqlValue::Integer(n) => Ok(n),
            other => Err(self.bad(field, &shown(&other))),
        }
    }

    fn unsigned<T: TryFrom<i64>>(&self, field: &str) -> Result<T, StorageError> {
        let n = self.int(field)?;
        T::try_from(n).map_err(|_| self.bad(field, &n.to_string()))
    }

    /// The stored checksum; a record without one is damaged.
    fn checksum(&self) -> Result<i64, StorageError> {
        match self.cell("checksum")? {
            SqlValue::Integer(n) => Ok(n),
            SqlValue::Null => Err(StorageError::Corrupt {
                op: self.op,
                detail: format!(
                    "{}: it has no checksum: the record was altered or damaged",
                    self.what
                ),
            }),
            other => Err(self.bad("checksum", &shown(&other))),
        }
    }

    fn json(&self, field: &str) -> Result<serde_json::Value, StorageError> {
        let text = self.text(field)?;
        serde_json::from_str(&text).map_err(|_| self.bad(field, &text))
    }

    fn opt_json<T: serde::de::DeserializeOwned>(
        &self,
        field: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.opt_text(field)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| self.bad(field, &text)),
        }
    }

    fn word<T: Copy>(
        &self,
        field: &str,
        all: &[T],
        name: impl Fn(T) -> &'static str,
    ) -> Result<T, StorageError> {
        let text = self.text(field)?;
        all.iter()
            .copied()
            .find(|v| name(*v) == text)
            .ok_or_else(|| self.bad(field, &text))
    }

    fn id<T: std::str::FromStr>(&self, field: &str) -> Result<T, StorageError> {
        let text = self.text(field)?;
        text.parse().map_err(|_| self.bad(field, &text))
    }
}

const FLOW_COLUMNS: &[&str] = &[
    "id",
    "logbook_id",
    "name",
    "state",
    "meta",
    "created_at",
    "updated_at",
    "owner",
    "lease_until",
    "fence",
    "cancel_requested",
    "checksum",
];

const ATOM_COLUMNS: &[&str] = &[
    "name",
    "kind",
    "state",
    "intention",
    "result",
    "failure",
    "revert_result",
    "revert_failure",
    "progress",
    "attempts",
    "version",
    "meta",
    "checksum",
];

/// A run's record; with `check`, its checksum too.
fn flow_detail(
    op: Operation,
    row: &rusqlite::Row<'_>,
    check: bool,
) -> Result<FlowDetail, StorageError> {
    let mut p = Parse {
        op,
        what: "a run".into(),
        row,
        columns: FLOW_COLUMNS,
    };
    if let Ok(SqlValue::Text(id)) = p.cell("id") {
        p.what = format!("run {id}");
    }
    let detail = FlowDetail {
        id: p.id("id")?,
        logbook: p.id::<LogbookId>("logbook_id")?,
        name: p.text("name")?,
        state: p.word("state", &FlowState::ALL, FlowState::as_str)?,
        meta: p.json("meta")?,
        created_at: p.real("created_at")?,
        updated_at: p.real("updated_at")?,
        ownership: Ownership {
            owner: p.opt_text("owner")?,
            expires_at: p.opt_real("lease_until")?,
            fence: p.unsigned("fence")?,
            cancel_requested: p.int("cancel_requested")? != 0,
        },
    };
    if check {
        verify_checksum(op, &p.what, p.checksum()?, flow_checksum(&detail))?;
    }
    Ok(detail)
}

fn atom_detail(
    op: Operation,
    run: FlowId,
    row: &rusqlite::Row<'_>,
    check: bool,
) -> Result<AtomDetail, StorageError> {
    let mut p = Parse {
        op,
        what: format!("run {run}"),
        row,
        columns: ATOM_COLUMNS,
    };
    let name = p.text("name")?;
    p.what = format!("run {run}, atom `{name}`");
    let detail = AtomDetail {
        kind: p.word("kind", &[AtomKind::Task, AtomKind::Retry], AtomKind::as_str)?,
        state: p.word("state", &AtomState::ALL, AtomState::as_str)?,
        intention: p.word(
            "intention",
            &[
                Intention::Execute,
                Intention::Revert,
                Intention::Retry,
                Intention::Ignore,
            ],
            Intention::as_str,
        )?,
        result: p.opt_json("result")?,
        failure: p.opt_json("failure")?,
        revert_result: p.opt_json("revert_result")?,
        revert_failure: p.opt_json("revert_failure")?,
        progress: p.real("progress")? as f32,
        attempts: p.unsigned("attempts")?,
        version: p.unsigned("version")?,
        meta: p.json("meta")?,
        name,
    };
    if check {
        verify_checksum(op, &p.what, p.checksum()?, atom_checksum(run, &detail))?;
    }
    Ok(detail)
}

fn flow_select() -> String {
    format!("SELECT {} FROM flows", FLOW_COLUMNS.join(", "))
}

fn atoms_of(
    conn: &Connection,
    path: &Path,
    run: FlowId,
    check: bool,
) -> Result<Vec<AtomDetail>, StorageError> {
    let op = Operation::LoadFlow;
    let err = |e| sql_error(op, path, e);
    let sql = format!(
        "SELECT {} FROM atoms WHERE flow_id = ?1 ORDER BY name",
        ATOM_COLUMNS.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
    let mut rows = stmt.query([run.to_string()]).map_err(err)?;
    let mut atoms = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        atoms.push(atom_detail(op, run, r, check)?);
    }
    Ok(atoms)
}

/// A run's record, unchecked (for the migration that adds checksums).
pub(super) fn run_row(conn: &Connection, id: &str) -> Result<FlowDetail, StorageError> {
    let path = Path::new("");
    let op = Operation::Open;
    let sql = format!("{} WHERE id = ?1", flow_select());
    let mut stmt = conn.prepare(&sql).map_err(|e| sql_error(op, path, e))?;
    let mut rows = stmt.query([id]).map_err(|e| sql_error(op, path, e))?;
    match rows.next().map_err(|e| sql_error(op, path, e))? {
        Some(r) => flow_detail(op, r, false),
        None => Err(StorageError::Corrupt {
            op,
            detail: format!("run {id} vanished"),
        }),
    }
}

/// A run's atoms, unchecked (for the migration that adds checksums).
pub(super) fn atom_rows_unchecked(
    conn: &Connection,
    id: &str,
) -> Result<Vec<AtomDetail>, StorageError> {
    let run: FlowId = id.parse().map_err(|_| StorageError::Corrupt {
        op: Operation::Open,
        detail: format!("`{id}` is not a run id"),
    })?;
    atoms_of(conn, Path::new(""), run, false)
}

/// A run and its atoms, as one snapshot.
pub(super) fn load(
    conn: &Connection,
    path: &Path,
    run: FlowId,
) -> Result<(FlowDetail, Vec<AtomDetail>), StorageError> {
    let op = Operation::LoadFlow;
    let err = |e| sql_error(op, path, e);
    let tx = conn.unchecked_transaction().map_err(err)?;
    let detail = {
        let sql = format!("{} WHERE id = ?1", flow_select());
        let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
        let mut rows = stmt.query([run.to_string()]).map_err(err)?;
        match rows.next().map_err(err)? {
            Some(r) => flow_detail(op, r, true)?,
            None => return Err(StorageError::NotFound(run)),
        }
    };
    let atoms = atoms_of(&tx, path, run, true)?;
    tx.commit().map_err(err)?;
    Ok((detail, atoms))
}

/// The runs `query` asks for, newest first.
pub(super) fn list(
    conn: &Connection,
    path: &Path,
    query: &FlowQuery,
) -> Result<Vec<FlowDetail>, StorageError> {
    let op = Operation::ListFlows;
    let err = |e| sql_error(op, path, e);
    let mut sql = flow_select();
    let mut args: Vec<SqlValue> = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    if let Some(name) = &query.name {
        args.push(SqlValue::Text(name.clone()));
        clauses.push(format!("name = ?{}", args.len()));
    }
    if !query.states.is_empty() {
        let mut marks = Vec::new();
        for s in &query.states {
            args.push(SqlValue::Text(s.as_str().into()));
            marks.push(format!("?{}", args.len()));
        }
        clauses.push(format!("state IN ({})", marks.join(", ")));
    }
    if let Some(t) = query.created_after {
        args.push(SqlValue::Real(t));
        clauses.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(t) = query.created_before {
        args.push(SqlValue::Real(t));
        clauses.push(format!("created_at < ?{}", args.len()));
    }
    if let Some(owner) = &query.owner {
        args.push(SqlValue::Text(owner.clone()));
        clauses.push(format!("owner = ?{}", args.len()));
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    let limit = query
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id LIMIT {limit} OFFSET {offset}"
    ));
    let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(err)?;
    let mut flows = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        flows.push(flow_detail(op, r, true)?);
    }
    Ok(flows)
}

/// A stored definition, its checksum checked.
pub(super) fn definition(
    conn: &Connection,
    path: &Path,
    id: &str,
) -> Result<Option<Definition>, StorageError> {
    let op = Operation::LoadDefinition;
    let err = |e| sql_error(op, path, e);
    let found = conn
        .prepare_cached(
            "SELECT id, name, format, body, created_at, checksum FROM definitions WHERE id = ?1",
        )
        .map_err(err)?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()
        .map_err(|e| match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StorageError::Corrupt {
                op,
                detail: format!("definition {id} cannot be read: {e}"),
            },
            other => sql_error(op, path, other),
        })?;
    let Some((id, name, format, body, created_at, sum)) = found else {
        return Ok(None);
    };
    let what = format!("definition {id}");
    verify_checksum(
        op,
        &what,
        sum,
        crate::storage::definition_checksum(&name, &format, &body),
    )?;
    if crate::storage::definition_id(&format, &body) != id {
        return Err(StorageError::Corrupt {
            op,
            detail: format!("{what}: its body does not hash to its id"),
        });
    }
    Ok(Some(Definition {
        id,
        name,
        format,
        body,
        created_at,
    }))
}
