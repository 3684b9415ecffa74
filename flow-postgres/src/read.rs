//! Reading records back: each field checked, each record's checksum checked.

use flow_core::storage::{atom_checksum, definition_checksum, flow_checksum, verify_checksum};
use flow_core::{
    AtomDetail, AtomKind, AtomState, Definition, FlowDetail, FlowId, FlowQuery, FlowState,
    Intention, LogbookId, Operation, Ownership, StorageError,
};
use futures::future::BoxFuture;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};
use uuid::Uuid;

use crate::fault::Failed;
use crate::rows::uuid_of;
use crate::schema::Sql;

/// Reads the cells of one stored record, or says what is wrong with it.
pub(crate) struct Parse<'r> {
    pub(crate) op: Operation,
    pub(crate) what: String,
    pub(crate) row: &'r Row,
}

impl Parse<'_> {
    pub(crate) fn bad(&self, field: &str, text: &str) -> StorageError {
        StorageError::Corrupt {
            op: self.op,
            detail: format!("{}: `{field}` holds `{text}`", self.what),
        }
    }

    pub(crate) fn get<'a, T: FromSql<'a>>(&'a self, field: &str) -> Result<T, StorageError> {
        self.row
            .try_get::<_, T>(field)
            .map_err(|e| StorageError::Corrupt {
                op: self.op,
                detail: format!("{}: `{field}` cannot be read: {e}", self.what),
            })
    }

    pub(crate) fn unsigned<T: TryFrom<i64>>(&self, field: &str) -> Result<T, StorageError> {
        let n: i64 = self.get(field)?;
        T::try_from(n).map_err(|_| self.bad(field, &n.to_string()))
    }

    pub(crate) fn word<T: Copy>(
        &self,
        field: &str,
        all: &[T],
        name: impl Fn(T) -> &'static str,
    ) -> Result<T, StorageError> {
        let text: String = self.get(field)?;
        all.iter()
            .copied()
            .find(|v| name(*v) == text)
            .ok_or_else(|| self.bad(field, &text))
    }

    pub(crate) fn decoded<T: serde::de::DeserializeOwned>(
        &self,
        field: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.get::<Option<serde_json::Value>>(field)? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| self.bad(field, &v.to_string())),
        }
    }
}

fn flow_id(u: Uuid) -> FlowId {
    // A uuid's text is always an id.
    u.to_string().parse().unwrap_or_default()
}

/// A run's record, its checksum checked.
pub(crate) fn flow_detail(op: Operation, row: &Row) -> Result<FlowDetail, StorageError> {
    let mut p = Parse {
        op,
        what: "a run".into(),
        row,
    };
    let id: Uuid = p.get("id")?;
    p.what = format!("run {id}");
    let book: Uuid = p.get("logbook_id")?;
    let detail = FlowDetail {
        id: flow_id(id),
        logbook: book
            .to_string()
            .parse::<LogbookId>()
            .map_err(|_| p.bad("logbook_id", &book.to_string()))?,
        name: p.get("name")?,
        state: p.word("state", &FlowState::ALL, FlowState::as_str)?,
        meta: p.get("meta")?,
        created_at: p.get("created_at")?,
        updated_at: p.get("updated_at")?,
        ownership: Ownership {
            owner: p.get("owner")?,
            expires_at: p.get::<Option<i64>>("lease_us")?.map(|us| us as f64 / 1e6),
            fence: p.unsigned("fence")?,
            cancel_requested: p.get("cancel_requested")?,
        },
    };
    verify_checksum(op, &p.what, p.get("checksum")?, flow_checksum(&detail))?;
    Ok(detail)
}

/// An atom's record of run `run`, its checksum checked.
fn atom_detail(op: Operation, run: FlowId, row: &Row) -> Result<AtomDetail, StorageError> {
    let mut p = Parse {
        op,
        what: format!("run {run}"),
        row,
    };
    let name: String = p.get("name")?;
    p.what = format!("run {run}, atom `{name}`");
    let progress: f32 = p.get("progress")?;
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
        result: p.get("result")?,
        failure: p.decoded("failure")?,
        revert_result: p.get("revert_result")?,
        revert_failure: p.decoded("revert_failure")?,
        progress,
        attempts: p.unsigned("attempts")?,
        version: p.unsigned("version")?,
        meta: p.get("meta")?,
        name,
    };
    verify_checksum(op, &p.what, p.get("checksum")?, atom_checksum(run, &detail))?;
    Ok(detail)
}

type Loaded = Result<(FlowDetail, Vec<AtomDetail>), StorageError>;

/// A run and its atoms, as one snapshot.
pub(crate) fn load<'c>(
    client: &'c deadpool_postgres::Object,
    sql: &'c Sql,
    run: FlowId,
) -> BoxFuture<'c, Result<Loaded, Failed>> {
    Box::pin(async move {
        let op = Operation::LoadFlow;
        let flow = client.prepare_cached(&sql.load_flow).await?;
        let atoms = client.prepare_cached(&sql.load_atoms).await?;
        let id = uuid_of(run);
        let params: [&(dyn ToSql + Sync); 1] = [&id];
        let (begun, flow_rows, atom_rows, ended) = futures::join!(
            client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
            client.query(&flow, &params),
            client.query(&atoms, &params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        let (flow_rows, atom_rows) = (flow_rows?, atom_rows?);
        ended?;
        let Some(row) = flow_rows.first() else {
            return Ok(Err(StorageError::NotFound(run)));
        };
        let detail = match flow_detail(op, row) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let atoms = atom_rows
            .iter()
            .map(|r| atom_detail(op, run, r))
            .collect::<Result<Vec<_>, _>>();
        Ok(atoms.map(|atoms| (detail, atoms)))
    })
}

/// The runs `query` asks for, newest first.
pub(crate) fn list<'c>(
    client: &'c deadpool_postgres::Object,
    sql: &'c Sql,
    query: FlowQuery,
) -> BoxFuture<'c, Result<Result<Vec<FlowDetail>, StorageError>, Failed>> {
    Box::pin(async move {
        let op = Operation::ListFlows;
        let mut text = sql.list.clone();
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(name) = &query.name {
            args.push(Box::new(name.clone()));
            clauses.push(format!("name = ${}", args.len()));
        }
        if !query.states.is_empty() {
            let states: Vec<String> = query.states.iter().map(|s| s.as_str().into()).collect();
            args.push(Box::new(states));
            clauses.push(format!("state = ANY(${}::text[])", args.len()));
        }
        if let Some(t) = query.created_after {
            args.push(Box::new(t));
            clauses.push(format!("created_at >= ${}", args.len()));
        }
        if let Some(t) = query.created_before {
            args.push(Box::new(t));
            clauses.push(format!("created_at < ${}", args.len()));
        }
        if let Some(owner) = &query.owner {
            args.push(Box::new(owner.clone()));
            clauses.push(format!("owner = ${}", args.len()));
        }
        paged(
            &mut text,
            &clauses,
            "created_at DESC, id",
            query.limit,
            query.offset,
        );
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&text, &params).await?;
        Ok(rows.iter().map(|r| flow_detail(op, r)).collect())
    })
}

/// A stored definition, its checksum checked.
pub(crate) fn definition<'c>(
    client: &'c deadpool_postgres::Object,
    sql: &'c Sql,
    id: String,
) -> BoxFuture<'c, Result<Result<Option<Definition>, StorageError>, Failed>> {
    Box::pin(async move {
        let op = Operation::LoadDefinition;
        let stmt = client.prepare_cached(&sql.definition).await?;
        let id = id.as_str();
        let rows = client.query(&stmt, &[&id]).await?;
        let Some(row) = rows.first() else {
            return Ok(Ok(None));
        };
        let p = Parse {
            op,
            what: format!("definition {id}"),
            row,
        };
        let read = || -> Result<Definition, StorageError> {
            let name: String = p.get("name")?;
            let format: String = p.get("format")?;
            let body: String = p.get("body")?;
            let sum: i64 = p.get("checksum")?;
            verify_checksum(op, &p.what, sum, definition_checksum(&name, &format, &body))?;
            if flow_core::storage::definition_id(&format, &body) != id {
                return Err(StorageError::Corrupt {
                    op,
                    detail: format!("{}: its body does not hash to its id", p.what),
                });
            }
            let mut d = Definition::new(name, format, body);
            d.created_at = p.get("created_at")?;
            Ok(d)
        };
        Ok(read().map(Some))
    })
}

/// Ends the query `text` of a listing: its `clauses` joined by `AND`, the
/// order, and the page (`limit`, `offset`).
pub(crate) fn paged(
    text: &mut String,
    clauses: &[String],
    order: &str,
    limit: Option<usize>,
    offset: usize,
) {
    if !clauses.is_empty() {
        text.push_str(" WHERE ");
        text.push_str(&clauses.join(" AND "));
    }
    text.push_str(" ORDER BY ");
    text.push_str(order);
    if let Some(limit) = limit {
        text.push_str(&format!(
            " LIMIT {}",
            i64::try_from(limit).unwrap_or(i64::MAX)
        ));
    }
    if offset > 0 {
        text.push_str(&format!(
            " OFFSET {}",
            i64::try_from(offset).unwrap_or(i64::MAX)
        ));
    }
}
