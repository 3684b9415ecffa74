//! The store's schema: its versions, the checks made when a file is opened,
//! and the migrations that bring an older store up to date.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};

use super::{SqliteOptions, Synchronous, sql_error};
use crate::storage::{Operation, StorageError};

/// `PRAGMA application_id` of a flow store: the bytes `flow`.
pub(super) const APPLICATION_ID: i64 = 0x666C_6F77;

/// One step of the schema: step `k` brings version `k` to `k + 1`.
enum Step {
    Sql(&'static str),
    /// SQL, then work that SQL alone cannot do.
    SqlThen(&'static str, fn(&Connection) -> rusqlite::Result<()>),
}

const STEPS: &[Step] = &[
    // 1: logbooks, runs and atoms.
    Step::Sql(
        "CREATE TABLE logbooks (
            id         TEXT PRIMARY KEY NOT NULL,
            name       TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            meta       TEXT NOT NULL DEFAULT 'null'
        );
        CREATE TABLE flows (
            id         TEXT PRIMARY KEY NOT NULL,
            logbook_id TEXT NOT NULL,
            name       TEXT NOT NULL,
            state      TEXT NOT NULL,
            meta       TEXT NOT NULL DEFAULT 'null',
            updated_at REAL NOT NULL
        );
        CREATE TABLE atoms (
            flow_id        TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
            name           TEXT NOT NULL,
            kind           TEXT NOT NULL,
            state          TEXT NOT NULL,
            intention      TEXT NOT NULL,
            result         TEXT,
            failure        TEXT,
            revert_result  TEXT,
            revert_failure TEXT,
            progress       REAL NOT NULL DEFAULT 0,
            attempts       INTEGER NOT NULL DEFAULT 0,
            version        INTEGER NOT NULL DEFAULT 0,
            meta           TEXT NOT NULL DEFAULT 'null',
            PRIMARY KEY (flow_id, name)
        ) WITHOUT ROWID;",
    ),
    // 2: a logbook's runs, newest last.
    Step::Sql("CREATE INDEX flows_by_logbook ON flows (logbook_id, updated_at);"),
    // 3: owners, leases and fencing numbers; when a run was created;
    // checksums; requests to cancel; stored definitions.
    Step::SqlThen(
        "ALTER TABLE flows ADD COLUMN created_at REAL NOT NULL DEFAULT 0;
        UPDATE flows SET created_at = updated_at;
        ALTER TABLE flows ADD COLUMN owner TEXT;
        ALTER TABLE flows ADD COLUMN lease_until REAL;
        ALTER TABLE flows ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE flows ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE flows ADD COLUMN checksum INTEGER;
        ALTER TABLE atoms ADD COLUMN checksum INTEGER;
        CREATE INDEX flows_by_created ON flows (created_at);
        CREATE TABLE definitions (
            id         TEXT PRIMARY KEY NOT NULL,
            name       TEXT NOT NULL,
            format     TEXT NOT NULL,
            body       TEXT NOT NULL,
            created_at REAL NOT NULL,
            checksum   INTEGER NOT NULL
        );",
        checksum_old_records,
    ),
    // 4: the job board.
    Step::Sql(
        "CREATE TABLE jobs (
            id           TEXT PRIMARY KEY NOT NULL,
            run_id       TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
            flow         TEXT NOT NULL,
            version      TEXT NOT NULL,
            inputs       TEXT NOT NULL,
            priority     INTEGER NOT NULL DEFAULT 0,
            not_before   REAL NOT NULL,
            created_at   REAL NOT NULL,
            state        TEXT NOT NULL,
            outcome      TEXT,
            error        TEXT,
            claims       INTEGER NOT NULL DEFAULT 0,
            crashes      INTEGER NOT NULL DEFAULT 0,
            owner        TEXT,
            completed_at REAL,
            checksum     INTEGER NOT NULL
        );
        CREATE INDEX jobs_to_claim ON jobs (state, priority DESC, created_at);
        CREATE INDEX jobs_by_run ON jobs (run_id);",
    ),
    // 5: the steps of pipeline runs as operators know them, a view over the
    // journal: `sqlite3 flow.db "SELECT * FROM pipeline_steps WHERE run = ..."`.
    Step::Sql(
        "CREATE VIEW pipeline_steps AS
         SELECT a.flow_id AS run,
                f.name AS pipeline,
                a.name AS step,
                CASE
                  WHEN a.state = 'PENDING' AND f.state IN ('SUCCESS', 'REVERTED', 'FAILURE')
                    THEN 'skipped'
                  WHEN a.state = 'PENDING' AND EXISTS (
                         SELECT 1 FROM json_each(f.meta, '$.edges') AS e
                         JOIN atoms AS p
                           ON p.flow_id = a.flow_id AND p.name = json_extract(e.value, '$[0]')
                         WHERE json_extract(e.value, '$[1]') = a.name
                           AND p.state NOT IN ('SUCCESS', 'IGNORE'))
                    THEN 'waiting'
                  WHEN a.state = 'PENDING' THEN 'pending'
                  WHEN a.state = 'RUNNING' THEN 'running'
                  WHEN a.state = 'SUCCESS' THEN 'succeeded'
                  WHEN a.state IN ('FAILURE', 'REVERT_FAILURE') THEN 'failed'
                  WHEN a.state = 'REVERTING' THEN 'reverting'
                  WHEN a.state = 'REVERTED' THEN 'reverted'
                  WHEN a.state = 'IGNORE' THEN 'skipped'
                  ELSE 'running'
                END AS state,
                a.attempts AS attempts,
                json_extract(a.meta, '$.started_at') AS started_at,
                json_extract(a.meta, '$.ended_at') AS ended_at,
                json_extract(a.result, '$[0].code') AS exit_code
         FROM atoms AS a JOIN flows AS f ON f.id = a.flow_id
         WHERE a.kind = 'TASK'
           AND json_extract(f.meta, '$.inputs.\"pipeline:definition\"') IS NOT NULL;",
    ),
];

/// The schema version this library writes.
pub(super) const VERSION: i64 = STEPS.len() as i64;

/// Gives the records written before checksums theirs. A record that does
/// not read back keeps none, and reads as damaged, as it would have.
fn checksum_old_records(conn: &Connection) -> rusqlite::Result<()> {
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM flows")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        let Ok(run) = super::read::run_row(conn, &id) else {
            continue;
        };
        let sum = crate::storage::flow_checksum(&run);
        conn.execute(
            "UPDATE flows SET checksum = ?2 WHERE id = ?1",
            params![id, i64::from(sum)],
        )?;
        for atom in super::read::atom_rows_unchecked(conn, &id).unwrap_or_default() {
            let sum = crate::storage::atom_checksum(run.id, &atom);
            conn.execute(
                "UPDATE atoms SET checksum = ?3 WHERE flow_id = ?1 AND name = ?2",
                params![id, atom.name, i64::from(sum)],
            )?;
        }
    }
    Ok(())
}

/// Refuses files that are not flow stores, and stores of a newer or unknown
/// version.
pub(super) fn check_header(
    conn: &Connection,
    path: &Path,
    write: bool,
) -> Result<(), StorageError> {
    let err = |e| sql_error(Operation::Open, path, e);
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(err)?;
    if app != APPLICATION_ID && (objects > 0 || version != 0 || app != 0) {
        return Err(StorageError::NotAStore {
            path: path.to_path_buf(),
            detail: "an SQLite database of another application".into(),
        });
    }
    check_version(path, version)?;
    if !write && version < VERSION {
        return Err(if version == 0 {
            StorageError::NotAStore {
                path: path.to_path_buf(),
                detail: "an empty file".into(),
            }
        } else {
            StorageError::ReadOnly {
                op: Operation::Open,
                path: path.to_path_buf(),
            }
        });
    }
    Ok(())
}

fn check_version(path: &Path, version: i64) -> Result<(), StorageError> {
    if version < 0 {
        return Err(StorageError::UnknownSchema {
            path: path.to_path_buf(),
            found: version,
        });
    }
    if version > VERSION {
        return Err(StorageError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    Ok(())
}

/// WAL, the durability asked for, and the schema brought up to date.
pub(super) fn prepare_writer(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
) -> Result<(), StorageError> {
    let err = |e| sql_error(Operation::Open, path, e);
    if conn.is_readonly("main").map_err(err)? {
        return Err(StorageError::ReadOnly {
            op: Operation::Open,
            path: path.to_path_buf(),
        });
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Backend {
            op: Operation::Open,
            source: format!("SQLite refused WAL mode (journal_mode is {mode})").into(),
        });
    }
    let sync = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(err)?;
    if let Some(bytes) = options.max_size {
        let page: i64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(err)?;
        let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page.max(512);
        conn.pragma_update(None, "max_page_count", pages.max(1))
            .map_err(err)?;
    }
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    // Read again under the lock: another process may have migrated meanwhile.
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    check_version(path, version)?;
    if version < VERSION {
        // `check_version` made sure that `version` is in 0..VERSION.
        for step in STEPS.iter().skip(version as usize) {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql).map_err(err)?,
                Step::SqlThen(sql, then) => {
                    tx.execute_batch(sql).map_err(err)?;
                    then(&tx).map_err(err)?;
                }
            }
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(err)?;
        tx.pragma_update(None, "user_version", VERSION)
            .map_err(err)?;
        tracing::debug!(
            target: "flow",
            "store {}: schema {version} -> {VERSION}",
            path.display(),
        );
    }
    tx.commit().map_err(err)
}
