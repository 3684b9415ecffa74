//! The storage layer: one conformance suite for the `Backend` trait, run against
//! both `MemoryBackend` and `SqliteBackend` (round trips of every field, upserts,
//! unknown runs, all-or-none writes, listing, concurrent writers, runs that share
//! atom names), then what only the SQLite store does: refusing files that are not
//! stores and stores of a newer schema, migrating old ones, lock and read-only
//! errors, damaged records, durability settings, readability with the `sqlite3`
//! tool, group commit, and an engine run journaled to a file and read back.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flow::{
    Atom, AtomDetail, AtomKind, AtomState, Backend, Engine, Failure, FailureKind, Flow, FlowDetail,
    FlowId, FlowState, FnTask, Intention, LogBook, LogbookId, MemoryBackend, Operation, Outputs,
    Signature, SqliteBackend, SqliteOptions, StorageError, Synchronous, TaskError,
};
use serde_json::{Value, json};
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

const INTENTIONS: [Intention; 4] = [
    Intention::Execute,
    Intention::Revert,
    Intention::Retry,
    Intention::Ignore,
];

const KINDS: [AtomKind; 2] = [AtomKind::Task, AtomKind::Retry];

// The lists above name every variant: these matches stop compiling when one is added.
const _: fn(AtomState) = |s| match s {
    AtomState::Pending
    | AtomState::Running
    | AtomState::Success
    | AtomState::Failure
    | AtomState::Reverting
    | AtomState::Reverted
    | AtomState::RevertFailure
    | AtomState::Ignore
    | AtomState::Retrying => {}
};
const _: fn(FlowState) = |s| match s {
    FlowState::Pending
    | FlowState::Running
    | FlowState::Success
    | FlowState::Failure
    | FlowState::Reverted
    | FlowState::Suspending
    | FlowState::Suspended
    | FlowState::Resuming => {}
};
const _: fn(Intention) = |i| match i {
    Intention::Execute | Intention::Revert | Intention::Retry | Intention::Ignore => {}
};
const _: fn(AtomKind) = |k| match k {
    AtomKind::Task | AtomKind::Retry => {}
};

/// An error with a cause, to give a failure a chain of causes.
#[derive(Debug)]
struct DiskFull(std::io::Error);

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk full on /var")
    }
}

impl std::error::Error for DiskFull {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn woot() -> Failure {
    Failure::from_error(TaskError::msg("Woot!"))
}

fn disk_full() -> Failure {
    Failure::from_error(TaskError::from(DiskFull(std::io::Error::other(
        "no space left on device",
    ))))
}

fn logbook(name: &str) -> LogBook {
    LogBook {
        id: LogbookId::new(),
        name: name.to_string(),
        created_at: 1_700_000_000.25,
        updated_at: 1_700_000_100.5,
        meta: json!({ "owner": name }),
    }
}

fn run(book: LogbookId, name: &str, state: FlowState) -> FlowDetail {
    FlowDetail {
        id: FlowId::new(),
        logbook: book,
        name: name.to_string(),
        state,
        meta: json!({
            "inputs": { "x": 41, "label": "ü ✓ \"quoted\"" },
            "atoms": [["a", "TASK"], ["r", "RETRY"]],
            "revert_all": false,
        }),
        updated_at: 1_700_000_123.125,
    }
}

/// A plain pending atom.
fn atom(name: &str) -> AtomDetail {
    AtomDetail {
        name: name.to_string(),
        kind: AtomKind::Task,
        state: AtomState::Pending,
        intention: Intention::Execute,
        result: None,
        failure: None,
        revert_result: None,
        revert_failure: None,
        progress: 0.0,
        attempts: 0,
        version: 0,
        meta: Value::Null,
    }
}

/// A successful atom with `result` as its outputs.
fn done(name: &str, result: Value, version: u64) -> AtomDetail {
    AtomDetail {
        state: AtomState::Success,
        result: Some(result),
        progress: 1.0,
        attempts: 1,
        version,
        ..atom(name)
    }
}

/// Everything a detail holds, failures included (kind, message, type name,
/// causes): `AtomDetail` is not `PartialEq`, its JSON is.
fn snapshot(a: &AtomDetail) -> Value {
    serde_json::to_value(a).unwrap()
}

fn snapshots(atoms: &[AtomDetail]) -> Vec<Value> {
    let mut atoms = atoms.to_vec();
    atoms.sort_by(|a, b| a.name.cmp(&b.name));
    atoms.iter().map(snapshot).collect()
}

fn by_name(atoms: Vec<AtomDetail>) -> BTreeMap<String, AtomDetail> {
    atoms.into_iter().map(|a| (a.name.clone(), a)).collect()
}

fn sorted_by_id(mut flows: Vec<FlowDetail>) -> Vec<FlowDetail> {
    flows.sort_by_key(|f| f.id);
    flows
}

fn not_found_message(id: FlowId) -> String {
    format!("no run with id {id} in the store: list the runs with `Backend::list_flows`")
}

// ---------------------------------------------------------------------------
// The conformance suite
// ---------------------------------------------------------------------------

/// Every field of a run and of its atoms comes back as written, for every
/// state, intention and kind.
async fn check_round_trip(b: &dyn Backend) {
    let book = logbook("book");
    b.save_logbook(book.clone()).await.unwrap();

    // One run per flow state.
    let mut runs = Vec::new();
    for (i, state) in FlowState::ALL.into_iter().enumerate() {
        let mut r = run(book.id, &format!("run-{i}"), state);
        r.updated_at += i as f64;
        b.save_flow(r.clone()).await.unwrap();
        runs.push(r);
    }
    for r in &runs {
        let (got, atoms) = b.load_flow(r.id).await.unwrap();
        assert_eq!(&got, r);
        assert!(atoms.is_empty(), "{atoms:?}");
    }

    // One atom per atom state, cycling through kinds and intentions.
    let target = &runs[1];
    let failures = [Some(woot()), Some(disk_full()), None];
    let mut atoms = Vec::new();
    for (i, state) in AtomState::ALL.into_iter().enumerate() {
        let n = i as u64;
        atoms.push(AtomDetail {
            name: format!("atom-{i}"),
            kind: KINDS[i % KINDS.len()],
            state,
            intention: INTENTIONS[i % INTENTIONS.len()],
            result: (i % 2 == 0).then(|| json!([n, format!("out-{i}"), { "nested": [n] }])),
            failure: failures[i % failures.len()].clone(),
            revert_result: (i % 3 == 0).then(|| json!(format!("undone-{i}"))),
            revert_failure: failures[(i + 1) % failures.len()].clone(),
            progress: i as f32 * 0.1,
            attempts: i as u32 * 3,
            version: 1_000_000_007 * n,
            meta: match i % 3 {
                0 => json!({ "history": [{ "value": 1, "failures": {} }] }),
                1 => json!({ "k": i, "list": [true, null, "s"] }),
                _ => Value::Null,
            },
        });
    }
    b.save_atoms(target.id, atoms.clone()).await.unwrap();

    let (got, loaded) = b.load_flow(target.id).await.unwrap();
    assert_eq!(&got, target);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));

    // Field by field, for the fields whose type is not `PartialEq`.
    let loaded = by_name(loaded);
    assert_eq!(loaded.len(), AtomState::ALL.len());
    for (i, state) in AtomState::ALL.into_iter().enumerate() {
        let a = &loaded[&format!("atom-{i}")];
        assert_eq!(a.state, state);
        assert_eq!(a.kind, KINDS[i % 2]);
        assert_eq!(a.intention, INTENTIONS[i % 4]);
        assert_eq!(a.progress, i as f32 * 0.1);
        assert_eq!(a.attempts, i as u32 * 3);
        assert_eq!(a.version, 1_000_000_007 * i as u64);
    }
    let woot_atom = &loaded["atom-0"];
    let f = woot_atom.failure.as_ref().unwrap();
    assert_eq!(f.kind(), FailureKind::Error);
    assert_eq!(f.message(), "Woot!");
    assert_eq!(f.to_string(), "Failure: Woot!");
    assert_eq!(f.causes(), [] as [String; 0]);
    let rf = woot_atom.revert_failure.as_ref().unwrap();
    assert_eq!(rf.message(), "disk full on /var");
    assert_eq!(rf.causes(), ["no space left on device"]);
    assert!(rf.type_name().ends_with("DiskFull"), "{}", rf.type_name());
    assert_eq!(
        woot_atom.meta,
        json!({ "history": [{ "value": 1, "failures": {} }] })
    );
    assert_eq!(
        woot_atom.result,
        Some(json!([0, "out-0", { "nested": [0] }]))
    );
    assert_eq!(woot_atom.revert_result, Some(json!("undone-0")));
    let third = &loaded["atom-2"];
    assert!(third.failure.is_none());
    assert_eq!(third.revert_failure.as_ref().unwrap().message(), "Woot!");
    assert_eq!(third.meta, Value::Null);
    assert_eq!(loaded["atom-1"].result, None);
    assert_eq!(loaded["atom-1"].revert_result, None);

    // The other runs got no atoms.
    for r in runs.iter().filter(|r| r.id != target.id) {
        assert!(b.load_flow(r.id).await.unwrap().1.is_empty());
    }
}

/// Saving again replaces: the run, and an atom by name, the others untouched.
async fn check_upsert(b: &dyn Backend) {
    let book = logbook("book");
    b.save_logbook(book.clone()).await.unwrap();
    let first = run(book.id, "upsert", FlowState::Running);
    b.save_flow(first.clone()).await.unwrap();
    let atoms = vec![
        done("a", json!([1]), 2),
        done("b", json!([2]), 2),
        done("c", json!([3]), 2),
    ];
    b.save_atoms(first.id, atoms.clone()).await.unwrap();

    // The same logbook again, changed: still accepted.
    b.save_logbook(LogBook {
        name: "renamed".into(),
        ..book.clone()
    })
    .await
    .unwrap();

    let second = FlowDetail {
        state: FlowState::Success,
        meta: json!({ "inputs": {}, "second": true }),
        updated_at: first.updated_at + 10.0,
        ..first.clone()
    };
    b.save_flow(second.clone()).await.unwrap();
    let (got, loaded) = b.load_flow(first.id).await.unwrap();
    assert_eq!(got, second);
    assert_eq!(snapshots(&loaded), snapshots(&atoms), "atoms survive");
    assert_eq!(b.list_flows().await.unwrap(), vec![second.clone()]);

    let b2 = AtomDetail {
        state: AtomState::Reverted,
        intention: Intention::Revert,
        result: None,
        revert_result: Some(json!("undone")),
        failure: Some(woot()),
        version: 4,
        ..atoms[1].clone()
    };
    b.save_atoms(first.id, vec![b2.clone()]).await.unwrap();
    let (got, loaded) = b.load_flow(first.id).await.unwrap();
    assert_eq!(got, second);
    assert_eq!(
        snapshots(&loaded),
        snapshots(&[atoms[0].clone(), b2, atoms[2].clone()])
    );
}

/// Atoms of a run that is not in the store are refused, and nothing is written.
async fn check_unknown_run(b: &dyn Backend) {
    let book = logbook("book");
    b.save_logbook(book.clone()).await.unwrap();
    let known = run(book.id, "known", FlowState::Running);
    b.save_flow(known.clone()).await.unwrap();
    b.save_atoms(known.id, vec![done("a", json!([1]), 1)])
        .await
        .unwrap();

    let id = FlowId::new();
    let err = b
        .save_atoms(id, vec![done("a", json!([99]), 9), atom("b")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::NotFound(got) if got == id),
        "{err:?}"
    );
    assert_eq!(err.to_string(), not_found_message(id));
    assert_eq!(err.operation(), None);

    let err = b.load_flow(id).await.unwrap_err();
    assert!(
        matches!(err, StorageError::NotFound(got) if got == id),
        "{err:?}"
    );
    assert_eq!(err.to_string(), not_found_message(id));

    // Nothing was written: not the run, not its atoms, not into the other run.
    assert_eq!(b.list_flows().await.unwrap(), vec![known.clone()]);
    let (_, atoms) = b.load_flow(known.id).await.unwrap();
    assert_eq!(snapshots(&atoms), snapshots(&[done("a", json!([1]), 1)]));
    let late = FlowDetail {
        id,
        ..run(book.id, "late", FlowState::Pending)
    };
    b.save_flow(late.clone()).await.unwrap();
    let (got, atoms) = b.load_flow(id).await.unwrap();
    assert_eq!(got, late);
    assert!(atoms.is_empty(), "atoms of the refused write: {atoms:?}");
}

/// Several atoms in one call are all written.
async fn check_save_atoms_writes_all(b: &dyn Backend) {
    let r = run(LogbookId::new(), "many", FlowState::Running);
    b.save_flow(r.clone()).await.unwrap();
    let atoms: Vec<AtomDetail> = (0..50)
        .map(|i| AtomDetail {
            attempts: i,
            ..done(&format!("t{i:02}"), json!([i, i * 2]), u64::from(i) + 1)
        })
        .collect();
    b.save_atoms(r.id, atoms.clone()).await.unwrap();
    let (_, loaded) = b.load_flow(r.id).await.unwrap();
    assert_eq!(loaded.len(), 50);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));
    // An empty write is a no-op.
    b.save_atoms(r.id, Vec::new()).await.unwrap();
    assert_eq!(
        snapshots(&b.load_flow(r.id).await.unwrap().1),
        snapshots(&atoms)
    );
}

/// Every run is listed; an empty store lists nothing.
async fn check_list_flows(b: &dyn Backend) {
    assert_eq!(b.list_flows().await.unwrap(), Vec::<FlowDetail>::new());
    let books = [logbook("one"), logbook("two")];
    for book in &books {
        b.save_logbook(book.clone()).await.unwrap();
    }
    let mut runs = Vec::new();
    for (i, state) in FlowState::ALL.into_iter().enumerate() {
        let mut r = run(books[i % 2].id, &format!("r{i}"), state);
        // Not in id order.
        r.updated_at = 1_700_000_000.0 - i as f64;
        b.save_flow(r.clone()).await.unwrap();
        runs.push(r);
    }
    let listed = b.list_flows().await.unwrap();
    assert_eq!(listed.len(), FlowState::ALL.len());
    assert_eq!(sorted_by_id(listed), sorted_by_id(runs));
}

/// 200 writers at once, each a run then 10 atoms one by one.
async fn check_concurrent_writers(b: &dyn Backend) {
    let book = logbook("busy");
    b.save_logbook(book.clone()).await.unwrap();
    let runs: Vec<FlowDetail> = (0..200)
        .map(|i| run(book.id, &format!("run-{i}"), FlowState::Running))
        .collect();
    let writers = runs.iter().enumerate().map(|(i, r)| async move {
        b.save_flow(r.clone()).await?;
        for k in 0..10u64 {
            b.save_atoms(r.id, vec![done(&format!("atom-{k}"), json!([i, k]), k + 1)])
                .await?;
        }
        Ok::<(), StorageError>(())
    });
    for result in futures::future::join_all(writers).await {
        result.unwrap();
    }
    assert_eq!(
        sorted_by_id(b.list_flows().await.unwrap()),
        sorted_by_id(runs.clone())
    );
    for (i, r) in runs.iter().enumerate() {
        let (got, atoms) = b.load_flow(r.id).await.unwrap();
        assert_eq!(&got, r);
        let expected: Vec<AtomDetail> = (0..10u64)
            .map(|k| done(&format!("atom-{k}"), json!([i, k]), k + 1))
            .collect();
        assert_eq!(snapshots(&atoms), snapshots(&expected), "run {i}");
    }
}

/// Two runs with the same atom names keep their own atoms.
async fn check_runs_do_not_mix(b: &dyn Backend) {
    let book = logbook("book");
    let one = run(book.id, "same", FlowState::Running);
    let two = run(book.id, "same", FlowState::Running);
    b.save_flow(one.clone()).await.unwrap();
    b.save_flow(two.clone()).await.unwrap();
    let atoms_one = vec![done("a", json!([1]), 1), done("b", json!(["one"]), 1)];
    let atoms_two = vec![
        AtomDetail {
            failure: Some(woot()),
            state: AtomState::Failure,
            result: None,
            ..done("a", json!([2]), 7)
        },
        atom("b"),
    ];
    b.save_atoms(one.id, atoms_one.clone()).await.unwrap();
    b.save_atoms(two.id, atoms_two.clone()).await.unwrap();
    assert_eq!(
        snapshots(&b.load_flow(one.id).await.unwrap().1),
        snapshots(&atoms_one)
    );
    assert_eq!(
        snapshots(&b.load_flow(two.id).await.unwrap().1),
        snapshots(&atoms_two)
    );

    // Updating `a` of one run leaves `a` of the other alone.
    let a1 = AtomDetail {
        state: AtomState::Reverted,
        ..done("a", json!([1]), 2)
    };
    b.save_atoms(one.id, vec![a1.clone()]).await.unwrap();
    assert_eq!(
        snapshots(&b.load_flow(one.id).await.unwrap().1),
        snapshots(&[a1, atoms_one[1].clone()])
    );
    assert_eq!(
        snapshots(&b.load_flow(two.id).await.unwrap().1),
        snapshots(&atoms_two)
    );
}

/// A fresh SQLite store in its own directory (kept alive by the `TempDir`).
fn fresh_sqlite() -> (TempDir, SqliteBackend) {
    let dir = TempDir::new().unwrap();
    let store = SqliteBackend::open(dir.path().join("store.db")).unwrap();
    (dir, store)
}

macro_rules! conformance {
    ($($check:ident => $memory:ident, $sqlite:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            $check(&MemoryBackend::new()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let (_dir, store) = fresh_sqlite();
            $check(&store).await;
        }
    )*};
}

conformance! {
    check_round_trip => memory_round_trip, sqlite_round_trip;
    check_upsert => memory_upsert, sqlite_upsert;
    check_unknown_run => memory_unknown_run, sqlite_unknown_run;
    check_save_atoms_writes_all => memory_save_atoms_writes_all, sqlite_save_atoms_writes_all;
    check_list_flows => memory_list_flows, sqlite_list_flows;
    check_concurrent_writers => memory_concurrent_writers, sqlite_concurrent_writers;
    check_runs_do_not_mix => memory_runs_do_not_mix, sqlite_runs_do_not_mix;
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
    store.save_flow(r.clone()).await.unwrap();
    let atoms = vec![done("a", json!([7]), 2), atom("b")];
    store.save_atoms(r.id, atoms.clone()).await.unwrap();
    (store, r, atoms)
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
    assert_eq!(SqliteBackend::SCHEMA_VERSION, 2);
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
                assert_eq!((*found, *supported), (99, 2));
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "the store `{}` has schema version 99, newer than the 2 this version of flow \
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
        updated_at: 1_600_000_000.5,
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
    assert_eq!(pragma_i64(&path, "user_version"), 2);
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
    assert_eq!(store.list_flows().await.unwrap(), vec![expected.clone()]);

    // Migrated once: opening again changes nothing.
    drop(store);
    let again = SqliteBackend::open(&path).unwrap();
    assert_eq!(pragma_i64(&path, "user_version"), 2);
    assert_eq!(again.load_flow(expected.id).await.unwrap().0, expected);
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
    store.save_flow(first.clone()).await.unwrap();

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let changed = FlowDetail {
        state: FlowState::Success,
        ..first.clone()
    };
    let err = store.save_flow(changed.clone()).await.unwrap_err();
    match &err {
        StorageError::Locked { op, path: p } => {
            assert_eq!(*op, Operation::SaveFlow);
            assert_eq!(p, &path);
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "save_flow: the store `{}` is locked by another connection: wait for it to finish, \
             or raise the busy timeout",
            path.display()
        )
    );
    let err = store
        .save_atoms(first.id, vec![atom("a")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Locked {
                op: Operation::SaveAtoms,
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
    store.save_flow(changed.clone()).await.unwrap();
    store.save_atoms(first.id, vec![atom("a")]).await.unwrap();
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
    assert_eq!(ro.list_flows().await.unwrap(), vec![r.clone()]);

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
            Operation::SaveFlow,
            ro.save_flow(changed).await.unwrap_err(),
        ),
        (
            Operation::SaveAtoms,
            ro.save_atoms(r.id, vec![atom("c")]).await.unwrap_err(),
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
    assert_eq!(store.list_flows().await.unwrap(), vec![r.clone()]);

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
        (Operation::ListFlows, store.list_flows().await.unwrap_err()),
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
        (Operation::ListFlows, store.list_flows().await.unwrap_err()),
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
        store.save_flow(r.clone()).await.unwrap();
        let atoms = vec![done("a", json!([1, "two"]), 2), atom("b")];
        store.save_atoms(r.id, atoms.clone()).await.unwrap();
        let (got, loaded) = store.load_flow(r.id).await.unwrap();
        assert_eq!(got, r, "{sync:?}");
        assert_eq!(snapshots(&loaded), snapshots(&atoms), "{sync:?}");

        let mode: String = rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "{sync:?}");
        assert_eq!(pragma_i64(&path, "application_id"), APPLICATION_ID);
        assert_eq!(pragma_i64(&path, "user_version"), 2);

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
    store.save_flow(r.clone()).await.unwrap();
    let unknown = FlowId::new();

    let tasks: Vec<_> = (0..1000u64)
        .map(|i| {
            let store = store.clone();
            let target = if i % 10 == 9 { unknown } else { r.id };
            tokio::spawn(async move {
                store
                    .save_atoms(target, vec![done(&format!("a{i:04}"), json!([i]), i)])
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
    store.save_flow(r.clone()).await.unwrap();
    assert_eq!(store.list_flows().await.unwrap(), vec![r]);
    assert_eq!(pragma_i64(&path, "user_version"), 2);
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
            "revert_all": false,
            "cancelled": false,
        })
    );
    assert_eq!(store.list_flows().await.unwrap(), vec![journaled.clone()]);
    let expected = [
        done("add", json!([42]), 2),
        done("label", json!(["y=42"]), 2),
    ];
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
    store.save_flow(r.clone()).await.unwrap();
    let before = store.stats();
    assert_eq!((before.commits, before.writes), (1, 1));

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Each call hands its write to the writer at once; none can commit yet.
    let pending: Vec<_> = (0..100)
        .map(|i| store.save_atoms(r.id, vec![atom(&format!("a{i:03}"))]))
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
