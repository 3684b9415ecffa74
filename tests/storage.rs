//! The storage layer: one conformance suite for the `Backend` trait, run against
//! both `MemoryBackend` and `SqliteBackend` (round trips of every field, upserts,
//! unknown runs, all-or-none writes, listing, concurrent writers, runs that share
//! atom names), then what only the SQLite store does: refusing files that are not
//! stores and stores of a newer schema, migrating old ones, lock and read-only
//! errors, damaged records, durability settings, readability with the `sqlite3`
//! tool, group commit, and an engine run journaled to a file and read back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flow::{
    Atom, AtomDetail, AtomState, Backend, Engine, Flow, FlowDetail, FlowId, FlowState, FnTask,
    LogbookId, Operation, Outputs, Signature, SqliteBackend, SqliteOptions, StorageError,
    Synchronous,
};
use serde_json::json;
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// The conformance suite, on both backends
// ---------------------------------------------------------------------------

use flow_conformance::{atom, done, logbook, run, snapshots};

mod memory {
    async fn fresh() -> ((), flow::MemoryBackend) {
        ((), flow::MemoryBackend::new())
    }

    flow_conformance::conformance_tests!(fresh);

    mod jobs {
        flow_conformance::job_board_tests!(super::fresh);
    }
}

mod sqlite {
    async fn fresh() -> (tempfile::TempDir, flow::SqliteBackend) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = flow::SqliteBackend::open(dir.path().join("store.db")).unwrap();
        (dir, store)
    }

    flow_conformance::conformance_tests!(fresh);

    mod jobs {
        flow_conformance::job_board_tests!(super::fresh);
    }
}

// ---------------------------------------------------------------------------
// SQLite only
// ---------------------------------------------------------------------------

/// The schema of version 1, as `MIGRATIONS[0]` of the SQLite backend writes it.
const SCHEMA_V1: &str = "CREATE TABLE logbooks (
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
    ) WITHOUT ROWID;";

/// `PRAGMA application_id` of a flow store: the bytes `flow`.
const APPLICATION_ID: i64 = 0x666C_6F77;

fn pragma_i64(path: &Path, name: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, name, |r| r.get(0))
        .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn not_a_store_message(path: &Path, detail: &str) -> String {
    format!(
        "`{}` is not a flow store ({detail}): give the path of a store, or of a file that does \
         not exist yet",
        path.display()
    )
}

/// A store holding one run with atoms `a` (done, `[7]`) and `b` (pending).
async fn store_with_a_run(path: &Path) -> (SqliteBackend, FlowDetail, Vec<AtomDetail>) {
    let store = SqliteBackend::open(path).unwrap();
    let book = logbook("book");
    store.save_logbook(book.clone()).await.unwrap();
    let r = run(book.id, "stored", FlowState::Running);
    let atoms = vec![done("a", json!([7]), 2), atom("b")];
    let lease = flow_conformance::create(&store, &r, atoms.clone(), "me").await;
    (store, flow_conformance::held(r, &lease), atoms)
}

#[tokio::test]
async fn sqlite_refuses_a_text_file_and_leaves_it_alone() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello, this is not a database").unwrap();

    for options in [SqliteOptions::new(), SqliteOptions::new().read_only(true)] {
        let err = SqliteBackend::open_with(&path, options).unwrap_err();
        match &err {
            StorageError::NotAStore { path: p, detail } => {
                assert_eq!(p, &path);
                assert_eq!(detail, "not an SQLite database");
            }
            other => panic!("expected NotAStore, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            not_a_store_message(&path, "not an SQLite database")
        );
        assert_eq!(err.operation(), Some(Operation::Open));
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"hello, this is not a database"
    );
    assert_eq!(entries(dir.path()), ["notes.txt"]);
}

#[tokio::test]
async fn sqlite_refuses_a_database_of_another_application_and_leaves_it_alone() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();

    for options in [SqliteOptions::new(), SqliteOptions::new().read_only(true)] {
        let err = SqliteBackend::open_with(&path, options).unwrap_err();
        match &err {
            StorageError::NotAStore { path: p, detail } => {
                assert_eq!(p, &path);
                assert_eq!(detail, "an SQLite database of another application");
            }
            other => panic!("expected NotAStore, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            not_a_store_message(&path, "an SQLite database of another application")
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(entries(dir.path()), ["other.db"]);
}

#[tokio::test]
async fn sqlite_refuses_a_store_of_a_newer_schema() {
    assert_eq!(SqliteBackend::SCHEMA_VERSION, 5);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteBackend::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();

    for options in [SqliteOptions::new(), SqliteOptions::new().read_only(true)] {
        let err = SqliteBackend::open_with(&path, options).unwrap_err();
        match &err {
            StorageError::NewerSchema {
                path: p,
                found,
                supported,
            } => {
                assert_eq!(p, &path);
                assert_eq!((*found, *supported), (99, 5));
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "the store `{}` has schema version 99, newer than the 5 this version of flow \
                 knows: upgrade flow to open it",
                path.display()
            )
        );
        assert_eq!(err.operation(), Some(Operation::Open));
    }
    assert_eq!(pragma_i64(&path, "user_version"), 99);
}

#[tokio::test]
async fn sqlite_migrates_a_version_1_store() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("old.db");
    let expected = FlowDetail {
        id: FlowId::new(),
        logbook: LogbookId::new(),
        name: "from version 1".into(),
        state: FlowState::Suspended,
        meta: json!({ "inputs": { "x": 1 } }),
        // Runs of version 1 knew only when they last changed.
        created_at: 1_600_000_000.5,
        updated_at: 1_600_000_000.5,
        ownership: flow::Ownership::default(),
    };
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO flows (id, logbook_id, name, state, meta, updated_at)
             VALUES (?1, ?2, ?3, 'SUSPENDED', '{\"inputs\":{\"x\":1}}', 1600000000.5)",
            rusqlite::params![
                expected.id.to_string(),
                expected.logbook.to_string(),
                expected.name
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO atoms (flow_id, name, kind, state, intention, result)
             VALUES (?1, 'a', 'TASK', 'SUCCESS', 'EXECUTE', '[7]')",
            [expected.id.to_string()],
        )
        .unwrap();
    }

    let store = SqliteBackend::open(&path).unwrap();
    assert_eq!(pragma_i64(&path, "user_version"), 5);
    assert_eq!(pragma_i64(&path, "application_id"), APPLICATION_ID);
    let index: Vec<(String, String)> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT type, tbl_name FROM sqlite_master WHERE name = 'flows_by_logbook'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(index, [("index".to_string(), "flows".to_string())]);

    let (got, atoms) = store.load_flow(expected.id).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        snapshots(&atoms),
        snapshots(&[AtomDetail {
            state: AtomState::Success,
            result: Some(json!([7])),
            ..atom("a")
        }])
    );
    assert_eq!(
        store.list_flows(flow::FlowQuery::new()).await.unwrap(),
        vec![expected.clone()]
    );
    // The migrated records got their checksums: a run of version 1 can be
    // claimed and resumed like any other.
    let lease = store
        .claim_flow(expected.id, flow::Claim::new("me", Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(lease.fence, 1);
    store.release_flow(&lease).await.unwrap();

    // Migrated once: opening again changes nothing.
    drop(store);
    let again = SqliteBackend::open(&path).unwrap();
    assert_eq!(pragma_i64(&path, "user_version"), 5);
    let mut got = again.load_flow(expected.id).await.unwrap().0;
    assert_eq!(got.ownership.fence, 1);
    got.ownership = flow::Ownership::default();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn sqlite_reports_a_store_locked_by_another_connection() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteBackend::open_with(
        &path,
        SqliteOptions::new().busy_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let first = run(LogbookId::new(), "locked", FlowState::Running);
    let lease = flow_conformance::create(&store, &first, Vec::new(), "me").await;
    let first = flow_conformance::held(first, &lease);

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let changed = FlowDetail {
        state: FlowState::Success,
        ..first.clone()
    };
    let err = store.save_flow(changed.clone(), 1).await.unwrap_err();
    match &err {
        StorageError::Locked { op, path: p } => {
            assert_eq!(*op, Operation::SaveRun);
            assert_eq!(p, &path);
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "save_run: the store `{}` is locked by another connection: wait for it to finish, \
             or raise the busy timeout",
            path.display()
        )
    );
    let err = store
        .save_atoms(first.id, 1, vec![atom("a")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Locked {
                op: Operation::SaveRun,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .claim_flow(first.id, flow::Claim::new("other", Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Locked {
                op: Operation::Claim,
                ..
            }
        ),
        "{err:?}"
    );
    // Readers are not blocked by the writer lock (WAL), and nothing was written.
    let (got, atoms) = store.load_flow(first.id).await.unwrap();
    assert_eq!(got, first);
    assert!(atoms.is_empty());

    other.execute_batch("ROLLBACK").unwrap();
    store.save_flow(changed.clone(), 1).await.unwrap();
    store
        .save_atoms(first.id, 1, vec![atom("a")])
        .await
        .unwrap();
    let (got, atoms) = store.load_flow(first.id).await.unwrap();
    assert_eq!(got, changed);
    assert_eq!(snapshots(&atoms), snapshots(&[atom("a")]));
}

#[tokio::test]
async fn sqlite_reports_a_store_locked_while_opening() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let (store, r, atoms) = store_with_a_run(&path).await;
    drop(store);

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = SqliteBackend::open_with(
        &path,
        SqliteOptions::new().busy_timeout(Duration::from_millis(50)),
    )
    .unwrap_err();
    assert!(
        matches!(&err, StorageError::Locked { op: Operation::Open, path: p } if *p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "open: the store `{}` is locked by another connection: wait for it to finish, or \
             raise the busy timeout",
            path.display()
        )
    );
    // Reading needs no write lock.
    let ro = SqliteBackend::open_with(&path, SqliteOptions::new().read_only(true)).unwrap();
    assert_eq!(ro.load_flow(r.id).await.unwrap().0, r);

    other.execute_batch("COMMIT").unwrap();
    let store = SqliteBackend::open_with(
        &path,
        SqliteOptions::new().busy_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let (got, loaded) = store.load_flow(r.id).await.unwrap();
    assert_eq!(got, r);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));
}

#[tokio::test]
async fn sqlite_read_only_reads_and_refuses_every_write() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let (store, r, atoms) = store_with_a_run(&path).await;
    drop(store);

    let ro = SqliteBackend::open_with(&path, SqliteOptions::new().read_only(true)).unwrap();
    let (got, loaded) = ro.load_flow(r.id).await.unwrap();
    assert_eq!(got, r);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));
    assert_eq!(
        ro.list_flows(flow::FlowQuery::new()).await.unwrap(),
        vec![r.clone()]
    );

    let message = |op: &str| {
        format!(
            "{op}: the store `{}` is read-only: open it writable (and check the permissions of \
             the file and its directory) to run flows in it",
            path.display()
        )
    };
    let changed = FlowDetail {
        state: FlowState::Success,
        ..r.clone()
    };
    let errors = [
        (
            Operation::SaveLogbook,
            ro.save_logbook(logbook("new")).await.unwrap_err(),
        ),
        (
            Operation::SaveRun,
            ro.save_flow(changed, 1).await.unwrap_err(),
        ),
        (
            Operation::SaveRun,
            ro.save_atoms(r.id, 1, vec![atom("c")]).await.unwrap_err(),
        ),
        (
            Operation::CreateFlow,
            ro.create_flow(
                run(LogbookId::new(), "new", FlowState::Running),
                Vec::new(),
                flow::Claim::new("me", Duration::from_secs(1)),
            )
            .await
            .unwrap_err(),
        ),
        (
            Operation::Claim,
            ro.claim_flow(r.id, flow::Claim::new("me", Duration::from_secs(1)))
                .await
                .unwrap_err(),
        ),
        (
            Operation::RequestCancel,
            ro.request_cancel(r.id).await.unwrap_err(),
        ),
        (
            Operation::PruneFlows,
            ro.prune_flows(0.0).await.unwrap_err(),
        ),
        (
            Operation::SaveDefinition,
            ro.save_definition(flow::Definition::new("d", "text", "body"))
                .await
                .unwrap_err(),
        ),
    ];
    for (expected_op, err) in errors {
        match &err {
            StorageError::ReadOnly { op, path: p } => {
                assert_eq!(*op, expected_op);
                assert_eq!(p, &path);
            }
            other => panic!("expected ReadOnly, got {other:?}"),
        }
        assert_eq!(err.to_string(), message(expected_op.as_str()));
        assert_eq!(err.operation(), Some(expected_op));
    }
    let (got, loaded) = ro.load_flow(r.id).await.unwrap();
    assert_eq!(got, r);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));
}

#[tokio::test]
async fn sqlite_read_only_does_not_create_a_missing_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("missing.db");
    let err = SqliteBackend::open_with(&path, SqliteOptions::new().read_only(true)).unwrap_err();
    assert_eq!(err.operation(), Some(Operation::Open), "{err:?}");
    assert!(!path.exists());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn sqlite_reports_a_damaged_atom_record() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let (store, r, _) = store_with_a_run(&path).await;
    let changed = rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE atoms SET state = 'EXPLODED'", [])
        .unwrap();
    assert_eq!(changed, 2);

    let err = store.load_flow(r.id).await.unwrap_err();
    match &err {
        StorageError::Corrupt { op, detail } => {
            assert_eq!(*op, Operation::LoadFlow);
            assert_eq!(
                detail,
                &format!("run {}, atom `a`: `state` holds `EXPLODED`", r.id)
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "load_flow: a stored record is damaged: run {}, atom `a`: `state` holds `EXPLODED`",
            r.id
        )
    );
    // The run itself is intact.
    assert_eq!(
        store.list_flows(flow::FlowQuery::new()).await.unwrap(),
        vec![r.clone()]
    );

    // A number out of range is damage too.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE atoms SET state = 'SUCCESS'", [])
        .unwrap();
    conn.execute("UPDATE atoms SET attempts = -1 WHERE name = 'b'", [])
        .unwrap();
    let err = store.load_flow(r.id).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "load_flow: a stored record is damaged: run {}, atom `b`: `attempts` holds `-1`",
            r.id
        )
    );
}

/// A value of the wrong SQL type (a blob where JSON text belongs, text where a
/// number belongs) is a damaged record like any other, not a failure of the
/// backend.
#[tokio::test]
async fn sqlite_reports_a_value_of_the_wrong_type_as_a_damaged_record() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let (store, r, _) = store_with_a_run(&path).await;
    let conn = rusqlite::Connection::open(&path).unwrap();

    conn.execute("UPDATE atoms SET result = x'00ff' WHERE name = 'a'", [])
        .unwrap();
    let err = store.load_flow(r.id).await.unwrap_err();
    let prefix = format!("run {}, atom `a`: `result` holds ", r.id);
    assert!(
        matches!(&err, StorageError::Corrupt { op: Operation::LoadFlow, detail }
            if detail.starts_with(&prefix)),
        "expected Corrupt {{ op: LoadFlow, detail: {prefix}... }}, got {err:?}"
    );

    conn.execute("UPDATE atoms SET result = '[7]' WHERE name = 'a'", [])
        .unwrap();
    conn.execute("UPDATE flows SET updated_at = 'yesterday'", [])
        .unwrap();
    let expected = format!("run {}: `updated_at` holds `yesterday`", r.id);
    for (op, err) in [
        (
            Operation::LoadFlow,
            store.load_flow(r.id).await.unwrap_err(),
        ),
        (
            Operation::ListFlows,
            store.list_flows(flow::FlowQuery::new()).await.unwrap_err(),
        ),
    ] {
        assert!(
            matches!(&err, StorageError::Corrupt { op: got, detail }
                if *got == op && *detail == expected),
            "expected Corrupt {{ op: {op:?}, detail: {expected:?} }}, got {err:?}"
        );
    }
}

#[tokio::test]
async fn sqlite_reports_a_damaged_run_record() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let (store, r, _) = store_with_a_run(&path).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE flows SET meta = '{not json'", [])
        .unwrap();
    let expected = format!("run {}: `meta` holds `{{not json`", r.id);
    for (op, err) in [
        (
            Operation::LoadFlow,
            store.load_flow(r.id).await.unwrap_err(),
        ),
        (
            Operation::ListFlows,
            store.list_flows(flow::FlowQuery::new()).await.unwrap_err(),
        ),
    ] {
        assert!(
            matches!(&err, StorageError::Corrupt { op: got, detail } if *got == op && *detail == expected),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{op}: a stored record is damaged: {expected}")
        );
    }
}

#[tokio::test]
async fn sqlite_durability_settings_round_trip_in_wal_mode() {
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("store.db");
        let store =
            SqliteBackend::open_with(&path, SqliteOptions::new().synchronous(sync)).unwrap();
        assert_eq!(store.path(), path);
        let r = run(LogbookId::new(), "durable", FlowState::Success);
        let atoms = vec![done("a", json!([1, "two"]), 2), atom("b")];
        let lease = flow_conformance::create(&store, &r, atoms.clone(), "me").await;
        let r = flow_conformance::held(r, &lease);
        let (got, loaded) = store.load_flow(r.id).await.unwrap();
        assert_eq!(got, r, "{sync:?}");
        assert_eq!(snapshots(&loaded), snapshots(&atoms), "{sync:?}");

        let mode: String = rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "{sync:?}");
        assert_eq!(pragma_i64(&path, "application_id"), APPLICATION_ID);
        assert_eq!(pragma_i64(&path, "user_version"), 5);

        // And it is still there after reopening.
        drop(store);
        let again = SqliteBackend::open(&path).unwrap();
        let (got, loaded) = again.load_flow(r.id).await.unwrap();
        assert_eq!(got, r, "{sync:?}");
        assert_eq!(snapshots(&loaded), snapshots(&atoms), "{sync:?}");
    }
}

#[tokio::test]
async fn sqlite_store_is_readable_with_the_sqlite3_tool() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let (_store, _, _) = store_with_a_run(&path).await;
    let output = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("SELECT name, state, result FROM atoms ORDER BY name")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the `sqlite3` command-line tool ({e}): install sqlite3 (for example \
                 `apt-get install sqlite3`) to run this test"
            )
        });
    assert!(
        output.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "a|SUCCESS|[7]\nb|PENDING|\n"
    );
}

/// 1,000 concurrent writes through one writer, a tenth of them for a run that is
/// not in the store: those fail alone, the others are all written.
async fn group_commit(options: SqliteOptions) {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(SqliteBackend::open_with(dir.path().join("store.db"), options).unwrap());
    let r = run(LogbookId::new(), "group", FlowState::Running);
    let lease = flow_conformance::create(&*store, &r, Vec::new(), "me").await;
    let r = flow_conformance::held(r, &lease);
    let unknown = FlowId::new();

    let tasks: Vec<_> = (0..1000u64)
        .map(|i| {
            let store = store.clone();
            let target = if i % 10 == 9 { unknown } else { r.id };
            tokio::spawn(async move {
                store
                    .save_atoms(target, 1, vec![done(&format!("a{i:04}"), json!([i]), i)])
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        if i % 10 == 9 {
            assert!(
                matches!(result, Err(StorageError::NotFound(id)) if id == unknown),
                "write {i}: {result:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("write {i}: {e}"));
        }
    }

    let (got, atoms) = store.load_flow(r.id).await.unwrap();
    assert_eq!(got, r);
    let expected: Vec<AtomDetail> = (0..1000u64)
        .filter(|i| i % 10 != 9)
        .map(|i| done(&format!("a{i:04}"), json!([i]), i))
        .collect();
    assert_eq!(atoms.len(), 900);
    assert_eq!(snapshots(&atoms), snapshots(&expected));
    assert!(matches!(
        store.load_flow(unknown).await,
        Err(StorageError::NotFound(id)) if id == unknown
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_group_commit_of_1000_concurrent_writes() {
    group_commit(SqliteOptions::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_group_commit_in_small_batches() {
    group_commit(SqliteOptions::new().max_batch(7)).await;
}

#[tokio::test]
async fn sqlite_an_empty_file_becomes_a_store_but_is_not_one_read_only() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let err = SqliteBackend::open_with(&path, SqliteOptions::new().read_only(true)).unwrap_err();
    assert_eq!(err.to_string(), not_a_store_message(&path, "an empty file"));
    assert_eq!(std::fs::read(&path).unwrap(), b"");

    let store = SqliteBackend::open(&path).unwrap();
    let r = run(LogbookId::new(), "in an empty file", FlowState::Pending);
    let lease = flow_conformance::create(&store, &r, Vec::new(), "me").await;
    assert_eq!(
        store.list_flows(flow::FlowQuery::new()).await.unwrap(),
        vec![flow_conformance::held(r, &lease)]
    );
    assert_eq!(pragma_i64(&path, "user_version"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_journals_an_engine_run_that_reads_back_after_reopening() {
    let dir = TempDir::new().unwrap();
    let path: PathBuf = dir.path().join("runs.db");

    let add = FnTask::sync(
        Signature::new().requires::<u32>("x").provides::<u32>("y"),
        |a| Ok(Outputs::one(a.get::<u32>(0)? + 1)),
    );
    let label = FnTask::sync(
        Signature::new()
            .requires::<u32>("y")
            .provides::<String>("label"),
        |a| Ok(Outputs::one(format!("y={}", a.get::<u32>(0)?))),
    );
    let flow = Flow::linear("journaled")
        .input::<u32>("x")
        .add(Atom::new("add", add))
        .add(Atom::new("label", label))
        .build()
        .unwrap();
    let run_id = {
        let store = Arc::new(SqliteBackend::open(&path).unwrap());
        let mut engine = Engine::builder(flow)
            .input("x", 41u32)
            .storage(store.clone())
            .build();
        engine.run().await.unwrap();
        assert_eq!(engine.state(), FlowState::Success);
        let id = engine.run_id();
        drop(engine);
        drop(store);
        id
    };

    let store = SqliteBackend::open(&path).unwrap();
    let (journaled, atoms) = store.load_flow(run_id).await.unwrap();
    assert_eq!(journaled.id, run_id);
    assert_eq!(journaled.name, "journaled");
    assert_eq!(journaled.state, FlowState::Success);
    assert_eq!(
        journaled.meta,
        json!({
            "inputs": { "x": 41 },
            "atoms": [["add", "TASK"], ["label", "TASK"]],
            "edges": [["add", "label"]],
            "all_atoms": true,
            "revert_all": false,
            "cancelled": false,
        })
    );
    // The run ended and was given back: nobody holds it.
    assert_eq!(journaled.ownership.owner, None);
    assert_eq!(journaled.ownership.fence, 1);
    assert_eq!(
        store.list_flows(flow::FlowQuery::new()).await.unwrap(),
        vec![journaled.clone()]
    );
    // Every atom was written when the run was created (`add` already
    // running, `label` pending), then once per change.
    let expected = [
        done("add", json!([42]), 2),
        done("label", json!(["y=42"]), 3),
    ];
    // Each atom's record says when its execute started and ended, in order:
    // `label` after `add`, both within the run.
    let mut atoms = atoms;
    atoms.sort_by(|a, b| a.name.cmp(&b.name));
    let times: Vec<(f64, f64)> = atoms
        .iter_mut()
        .map(|a| {
            let t = std::mem::take(&mut a.meta);
            (
                t["started_at"].as_f64().unwrap(),
                t["ended_at"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(journaled.created_at <= times[0].0, "{times:?}");
    assert!(
        times[0].0 <= times[0].1 && times[0].1 <= times[1].0,
        "{times:?}"
    );
    assert!(
        times[1].0 <= times[1].1 && times[1].1 <= journaled.updated_at,
        "{times:?}"
    );
    assert_eq!(snapshots(&atoms), snapshots(&expected));

    // The run's logbook was written too.
    let books: Vec<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT id FROM logbooks")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(books, [journaled.logbook.to_string()]);
}

/// Writes queued while the writer waits go into one transaction: with the
/// store locked by another connection, 100 writes are queued; once the lock
/// is released they take at most two commits (the one the writer had started
/// before the others arrived, and one for the rest).
#[tokio::test]
async fn sqlite_writes_queued_during_a_commit_share_the_next_one() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteBackend::open_with(
        &path,
        SqliteOptions::new().busy_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let r = run(LogbookId::new(), "batched", FlowState::Running);
    flow_conformance::create(&store, &r, Vec::new(), "me").await;
    let before = store.stats();
    assert_eq!((before.commits, before.writes), (1, 1));

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Each call hands its write to the writer at once; none can commit yet.
    let pending: Vec<_> = (0..100)
        .map(|i| store.save_atoms(r.id, 1, vec![atom(&format!("a{i:03}"))]))
        .collect();
    other.execute_batch("ROLLBACK").unwrap();
    for result in futures::future::join_all(pending).await {
        result.unwrap();
    }

    let after = store.stats();
    assert_eq!(after.writes - before.writes, 100);
    let commits = after.commits - before.commits;
    assert!(
        (1..=2).contains(&commits),
        "100 queued writes took {commits} commits"
    );
    let (_, atoms) = store.load_flow(r.id).await.unwrap();
    assert_eq!(atoms.len(), 100);
    assert_eq!(atoms[99].name, "a099");
}
