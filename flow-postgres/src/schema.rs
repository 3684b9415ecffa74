//! The store's tables: their versions, the migration run on open (inside a
//! transaction holding an advisory lock, so that processes opening a new
//! database at once take turns), and the statements that read and write
//! them, written once for the schema the user names.

use flow_core::{Operation, StorageError};
use tokio_postgres::Client;

use crate::fault::{self, Store};

/// One step of the schema: step `k` brings version `k` to `k + 1`. `{s}`
/// stands for the quoted schema.
const STEPS: &[&str] = &[
    // 1: logbooks, runs with their owners, atoms, definitions, and the
    // tokens of committed batches. Runs and atoms are updated over and over,
    // never in an indexed column but the time of creation, which does not
    // change: pages kept 30% free let PostgreSQL update them in place (HOT),
    // without touching the indexes.
    "CREATE TABLE {s}.schema_version (
        version    integer NOT NULL,
        written_by text NOT NULL DEFAULT 'flow'
    );
    INSERT INTO {s}.schema_version (version) VALUES (0);
    CREATE TABLE {s}.logbooks (
        id         uuid PRIMARY KEY,
        name       text NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        meta       jsonb NOT NULL
    );
    CREATE TABLE {s}.flows (
        id               uuid PRIMARY KEY,
        logbook_id       uuid NOT NULL,
        name             text NOT NULL,
        state            text NOT NULL,
        meta             jsonb NOT NULL,
        created_at       double precision NOT NULL,
        updated_at       double precision NOT NULL,
        owner            text,
        lease_until      timestamptz,
        fence            bigint NOT NULL DEFAULT 0,
        cancel_requested boolean NOT NULL DEFAULT false,
        checksum         bigint NOT NULL
    ) WITH (fillfactor = 70);
    CREATE INDEX flows_by_created ON {s}.flows (created_at DESC, id);
    CREATE TABLE {s}.atoms (
        flow_id        uuid NOT NULL REFERENCES {s}.flows (id) ON DELETE CASCADE,
        name           text NOT NULL,
        kind           text NOT NULL,
        state          text NOT NULL,
        intention      text NOT NULL,
        result         jsonb,
        failure        jsonb,
        revert_result  jsonb,
        revert_failure jsonb,
        progress       real NOT NULL,
        attempts       bigint NOT NULL,
        version        bigint NOT NULL,
        meta           jsonb NOT NULL,
        checksum       bigint NOT NULL,
        PRIMARY KEY (flow_id, name)
    ) WITH (fillfactor = 70);
    CREATE TABLE {s}.definitions (
        id         text PRIMARY KEY,
        name       text NOT NULL,
        format     text NOT NULL,
        body       text NOT NULL,
        created_at double precision NOT NULL,
        checksum   bigint NOT NULL
    );
    CREATE TABLE {s}.commits (
        token        uuid PRIMARY KEY,
        committed_at timestamptz NOT NULL DEFAULT now()
    );",
    // 2: the job board. A job is updated a few times (claimed, completed),
    // in its state: the index of jobs to claim holds only those not
    // complete, so that it stays small however many jobs ended.
    "CREATE TABLE {s}.jobs (
        id           uuid PRIMARY KEY,
        run_id       uuid NOT NULL,
        flow         text NOT NULL,
        version      text NOT NULL,
        inputs       jsonb NOT NULL,
        priority     integer NOT NULL,
        not_before   double precision NOT NULL,
        created_at   double precision NOT NULL,
        state        text NOT NULL,
        outcome      text,
        error        text,
        claims       bigint NOT NULL,
        crashes      bigint NOT NULL,
        owner        text,
        completed_at double precision,
        checksum     bigint NOT NULL
    ) WITH (fillfactor = 70);
    CREATE INDEX jobs_to_claim ON {s}.jobs (priority DESC, created_at, id)
        WHERE state <> 'COMPLETE';
    CREATE INDEX jobs_by_created ON {s}.jobs (created_at, id);
    CREATE INDEX jobs_by_run ON {s}.jobs (run_id);",
];

/// The schema version this library writes.
pub(crate) const VERSION: i32 = STEPS.len() as i32;

/// The tables of a store, to tell a schema of another application.
const TABLES: [&str; 7] = [
    "schema_version",
    "jobs",
    "logbooks",
    "flows",
    "atoms",
    "definitions",
    "commits",
];

/// Whether `name` may name the store's schema: a plain identifier.
pub(crate) fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// Brings the schema up to date, or says why it cannot.
pub(crate) async fn migrate(client: &mut Client, store: &Store) -> Result<(), StorageError> {
    let op = Operation::Open;
    let err = |e| fault::error(op, store, e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(1718382455, hashtext($1))",
        &[&store.schema],
    )
    .await
    .map_err(err)?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&store.schema],
        )
        .await
        .map_err(err)?
        .get(0);
    let q = quoted(&store.schema);
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {q}"))
            .await
            .map_err(err)?;
    }
    let tables: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&store.schema],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let version = if tables.iter().any(|t| t == "schema_version") {
        let rows = tx
            .query(&format!("SELECT version FROM {q}.schema_version"), &[])
            .await
            .map_err(err)?;
        match rows.as_slice() {
            [row] => row.try_get::<_, i32>(0).map_err(err)?,
            _ => {
                return Err(StorageError::UnknownSchema {
                    path: store.described().into(),
                    found: -(rows.len() as i64),
                });
            }
        }
    } else if tables.iter().any(|t| TABLES.contains(&t.as_str())) {
        return Err(StorageError::NotAStore {
            path: store.described().into(),
            detail: format!(
                "schema \"{}\" holds tables of another application ({}) and no flow schema version",
                store.schema,
                tables.join(", ")
            ),
        });
    } else {
        0
    };
    if version < 0 {
        return Err(StorageError::UnknownSchema {
            path: store.described().into(),
            found: i64::from(version),
        });
    }
    if version > VERSION {
        return Err(StorageError::NewerSchema {
            path: store.described().into(),
            found: i64::from(version),
            supported: i64::from(VERSION),
        });
    }
    for step in &STEPS[version as usize..] {
        tx.batch_execute(&step.replace("{s}", &q))
            .await
            .map_err(err)?;
    }
    if version < VERSION {
        tx.execute(
            &format!("UPDATE {q}.schema_version SET version = $1"),
            &[&VERSION],
        )
        .await
        .map_err(err)?;
        tracing::debug!(target: "flow", "store {}: schema {version} -> {VERSION}", store.described());
    }
    tx.commit().await.map_err(err)
}

/// An identifier, quoted.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statements of the store, for one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) lock: String,
    pub(crate) clock: &'static str,
    pub(crate) create: String,
    pub(crate) books: String,
    pub(crate) records: String,
    pub(crate) owners: String,
    pub(crate) atoms: String,
    pub(crate) definitions: String,
    pub(crate) token: String,
    pub(crate) settle: String,
    pub(crate) forget_tokens: String,
    pub(crate) prune: String,
    pub(crate) load_flow: String,
    pub(crate) load_atoms: String,
    pub(crate) list: String,
    pub(crate) definition: String,
    pub(crate) jobs: crate::jobs::JobSql,
}

/// The columns of a run's record as the reads select them.
pub(crate) const FLOW_COLUMNS: &str = "id, logbook_id, name, state, meta, created_at, updated_at, \
     owner, (extract(epoch FROM lease_until) * 1000000)::int8 AS lease_us, fence, \
     cancel_requested, checksum";

impl Sql {
    pub(crate) fn new(schema: &str) -> Sql {
        let s = quoted(schema);
        Sql {
            lock: format!(
                "SELECT id, fence, owner, (extract(epoch FROM lease_until) * 1000000)::int8, \
                 cancel_requested FROM {s}.flows WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
            ),
            clock: "SELECT (extract(epoch FROM now()) * 1000000)::int8",
            create: format!(
                "INSERT INTO {s}.flows (id, logbook_id, name, state, meta, created_at, updated_at, \
                    owner, lease_until, fence, cancel_requested, checksum)
                 SELECT u.id, u.logbook_id, u.name, u.state, u.meta, u.created_at, u.updated_at,
                    u.owner, now() + u.lease_us * interval '1 microsecond', 1, false, u.checksum
                 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                    $6::float8[], $7::float8[], $8::text[], $9::int8[], $10::int8[])
                    AS u(id, logbook_id, name, state, meta, created_at, updated_at, owner,
                         lease_us, checksum)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id"
            ),
            books: format!(
                "INSERT INTO {s}.logbooks (id, name, created_at, updated_at, meta)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::float8[],
                    $5::jsonb[])
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                    created_at = excluded.created_at, updated_at = excluded.updated_at,
                    meta = excluded.meta"
            ),
            records: format!(
                "UPDATE {s}.flows f SET logbook_id = u.logbook_id, name = u.name, state = u.state,
                    meta = u.meta, created_at = u.created_at, updated_at = u.updated_at,
                    checksum = u.checksum
                 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                    $6::float8[], $7::float8[], $8::int8[])
                    AS u(id, logbook_id, name, state, meta, created_at, updated_at, checksum)
                 WHERE f.id = u.id"
            ),
            owners: format!(
                "UPDATE {s}.flows f SET owner = u.owner,
                    lease_until = 'epoch'::timestamptz + u.until_us * interval '1 microsecond',
                    fence = u.fence, cancel_requested = u.cancel
                 FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::bool[])
                    AS u(id, owner, until_us, fence, cancel)
                 WHERE f.id = u.id"
            ),
            atoms: format!(
                "INSERT INTO {s}.atoms (flow_id, name, kind, state, intention, result, failure,
                    revert_result, revert_failure, progress, attempts, version, meta, checksum)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                    $6::jsonb[], $7::jsonb[], $8::jsonb[], $9::jsonb[], $10::float4[],
                    $11::int8[], $12::int8[], $13::jsonb[], $14::int8[])
                 ON CONFLICT (flow_id, name) DO UPDATE SET kind = excluded.kind,
                    state = excluded.state, intention = excluded.intention,
                    result = excluded.result, failure = excluded.failure,
                    revert_result = excluded.revert_result,
                    revert_failure = excluded.revert_failure, progress = excluded.progress,
                    attempts = excluded.attempts, version = excluded.version,
                    meta = excluded.meta, checksum = excluded.checksum"
            ),
            definitions: format!(
                "INSERT INTO {s}.definitions (id, name, format, body, created_at, checksum)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                    $5::float8[], $6::int8[])
                 ON CONFLICT (id) DO NOTHING"
            ),
            token: format!("INSERT INTO {s}.commits (token) VALUES ($1)"),
            settle: format!("INSERT INTO {s}.commits (token) VALUES ($1) ON CONFLICT DO NOTHING"),
            forget_tokens: format!(
                "DELETE FROM {s}.commits WHERE committed_at < now() - interval '1 hour'"
            ),
            prune: format!(
                "DELETE FROM {s}.flows WHERE state IN ('SUCCESS', 'REVERTED', 'FAILURE')
                    AND updated_at < $1"
            ),
            load_flow: format!("SELECT {FLOW_COLUMNS} FROM {s}.flows WHERE id = $1"),
            load_atoms: format!(
                "SELECT name, kind, state, intention, result, failure, revert_result,
                    revert_failure, progress, attempts, version, meta, checksum
                 FROM {s}.atoms WHERE flow_id = $1 ORDER BY name"
            ),
            list: format!("SELECT {FLOW_COLUMNS} FROM {s}.flows"),
            definition: format!(
                "SELECT id, name, format, body, created_at, checksum FROM {s}.definitions
                 WHERE id = $1"
            ),
            jobs: crate::jobs::JobSql::new(schema),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["flow", "_x", "Runs_2", &"a".repeat(63)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in ["", "2x", "a-b", "a b", "a\"b", "ü", &"a".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
        assert_eq!(quoted("Runs"), "\"Runs\"");
    }
}
