//! What only the PostgreSQL store does: its schema (versions, a schema of
//! another application, processes opening a new database at once, names),
//! readability with `psql`, numbers as JSONB gives them back, values it
//! cannot hold, group commit with a write the server refuses in the batch,
//! and an engine run read back by another connection.
//!
//! The tests that need a server are skipped (they pass at once, saying so)
//! without `FLOW_TEST_POSTGRES`.

mod support;

use std::sync::Arc;

use flow::postgres::{ConfigError, PostgresBackend, PostgresOptions, Unstorable};
use flow::{
    Atom, AtomDetail, AtomState, Backend, Engine, Flow, FlowId, FlowState, FnTask, LogbookId,
    Outputs, Signature, StorageError,
};
use flow_conformance::{atom, done, run, snapshots};
use serde_json::json;
use support::Schema;

fn config(err: &StorageError) -> &ConfigError {
    match err {
        StorageError::Backend { source, .. } => source
            .downcast_ref::<ConfigError>()
            .unwrap_or_else(|| panic!("not a ConfigError: {source}")),
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_refuses_a_bad_url_and_a_bad_schema_name_before_connecting() {
    let err = PostgresBackend::connect("postgres://me:secret@db:notaport/x")
        .await
        .unwrap_err();
    assert!(
        matches!(config(&err), ConfigError::Url { url, .. } if url == "postgres://me:***@db:notaport/x"),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");

    let options = PostgresOptions::new().schema("runs; DROP TABLE x");
    let err = PostgresBackend::connect_with("postgres://127.0.0.1/x", options)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "open: the storage backend failed: `runs; DROP TABLE x` cannot name the store's schema: \
         use letters, digits and `_`, not starting with a digit, at most 63 bytes"
    );
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn postgres_without_tls_refuses_a_url_that_requires_it() {
    let err = PostgresBackend::connect("postgres://127.0.0.1/x?sslmode=require")
        .await
        .unwrap_err();
    assert!(matches!(config(&err), ConfigError::TlsNotBuilt), "{err}");
}

#[tokio::test]
async fn postgres_store_is_readable_with_psql() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    let store = Arc::new(
        PostgresBackend::connect_with(&url, support::options(&schema))
            .await
            .unwrap(),
    );
    let seven = FnTask::sync(Signature::new().provides::<u32>("n"), |_| {
        Ok(Outputs::one(7u32))
    });
    let path = FnTask::sync(
        Signature::new()
            .requires::<u32>("n")
            .provides::<String>("path"),
        |a| {
            Ok(Outputs::one(format!(
                "/var/backups/{}.sql",
                a.get::<u32>(0)?
            )))
        },
    );
    let flow = Flow::linear("readable")
        .add(Atom::new("a", seven))
        .add(Atom::new("b", path))
        .build()
        .unwrap();
    let mut engine = Engine::builder(flow).storage(store.clone()).build();
    engine.run().await.unwrap();
    let output = std::process::Command::new("psql")
        .arg(&url)
        .args(["-X", "-A", "-t", "-c"])
        .arg(format!(
            "SELECT name, state, result FROM {}.atoms ORDER BY name",
            schema.name
        ))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the `psql` command-line tool ({e}): install the PostgreSQL client \
                 (Debian: apt-get install postgresql-client) to run this test"
            )
        });
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "a|SUCCESS|[7]\nb|SUCCESS|[\"/var/backups/7.sql\"]\n"
    );
    let flows = support::query(
        &url,
        &format!(
            "SELECT name, state, fence, owner IS NULL FROM {}.flows",
            schema.name
        ),
    );
    assert_eq!(flows, ["readable|SUCCESS|1|t"]);
}

#[tokio::test]
async fn postgres_refuses_a_store_of_a_newer_schema() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    drop(
        PostgresBackend::connect_with(&url, support::options(&schema))
            .await
            .unwrap(),
    );
    assert_eq!(
        support::query(
            &url,
            &format!("SELECT version FROM {}.schema_version", schema.name)
        ),
        [PostgresBackend::SCHEMA_VERSION.to_string()]
    );
    schema.execute(&format!(
        "UPDATE {}.schema_version SET version = 99",
        schema.name
    ));
    let err = PostgresBackend::connect_with(&url, support::options(&schema))
        .await
        .unwrap_err();
    match &err {
        StorageError::NewerSchema {
            path,
            found,
            supported,
        } => {
            assert_eq!((*found, *supported), (99, PostgresBackend::SCHEMA_VERSION));
            let shown = path.display().to_string();
            assert!(shown.starts_with("postgres://"), "{shown}");
            assert!(
                shown.ends_with(&format!("(schema \"{}\")", schema.name)),
                "{shown}"
            );
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("upgrade flow to open it"), "{err}");
    // Nothing was changed.
    assert_eq!(
        support::query(
            &url,
            &format!("SELECT version FROM {}.schema_version", schema.name)
        ),
        ["99"]
    );
}

#[tokio::test]
async fn postgres_refuses_a_schema_of_another_application() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    schema.execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.flows (id int PRIMARY KEY, title text)",
        s = schema.name
    ));
    let err = PostgresBackend::connect_with(&url, support::options(&schema))
        .await
        .unwrap_err();
    match &err {
        StorageError::NotAStore { detail, .. } => assert_eq!(
            detail,
            &format!(
                "schema \"{}\" holds tables of another application (flows) and no flow schema \
                 version",
                schema.name
            )
        ),
        other => panic!("expected NotAStore, got {other:?}"),
    }
    // Its table is as it was.
    assert_eq!(
        support::query(
            &url,
            &format!(
                "SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM \
                 information_schema.columns WHERE table_schema = '{}'",
                schema.name
            )
        ),
        ["id,title"]
    );
}

/// Eight processes' worth of backends (each its own pool and thread) open
/// one new schema at the same instant: the advisory lock has them take
/// turns, one migrates, and all of them work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_opening_a_new_schema_at_once_does_not_race() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let opens = (0..8).map(|_| {
        let (url, options, barrier) = (url.clone(), support::options(&schema), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            PostgresBackend::connect_with(&url, options).await
        })
    });
    let stores: Vec<PostgresBackend> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        support::query(
            &url,
            &format!("SELECT version FROM {}.schema_version", schema.name)
        ),
        [PostgresBackend::SCHEMA_VERSION.to_string()]
    );
    // Every one of them writes and reads the same store.
    let r = run(LogbookId::new(), "shared", FlowState::Running);
    let lease = flow_conformance::create(&stores[0], &r, vec![atom("a")], "first").await;
    for (i, store) in stores.iter().enumerate() {
        store
            .save_atoms(r.id, lease.fence, vec![done("a", json!([i]), i as u64 + 1)])
            .await
            .unwrap();
        let (_, atoms) = stores[(i + 1) % 8].load_flow(r.id).await.unwrap();
        assert_eq!(atoms[0].result, Some(json!([i])));
    }
}

/// Numbers come back as JSONB gives them: the same numbers, the records'
/// checksums matching, and each decodes into the `f64` it was.
#[tokio::test]
async fn postgres_numbers_come_back_as_jsonb_gives_them() {
    let Some((_schema, store)) = support::fresh().await else {
        return;
    };
    let floats = [
        1e16,
        -0.0,
        1.5e-7,
        5e-324,
        1e300,
        -1e19,
        f64::MAX,
        0.1,
        -123.456e-10,
        2.5e17,
    ];
    let r = run(LogbookId::new(), "numbers", FlowState::Running);
    let mut r = r;
    r.meta["inputs"]["x"] = json!(1e20);
    let lease = flow_conformance::create(&store, &r, Vec::new(), "me").await;
    let written = AtomDetail {
        meta: json!({ "history": [{ "value": 3e16, "failures": {} }] }),
        ..done("a", json!(floats), 1)
    };
    store
        .save_atoms(r.id, lease.fence, vec![written])
        .await
        .unwrap();
    let (flow, atoms) = store.load_flow(r.id).await.unwrap();
    assert_eq!(flow.meta["inputs"]["x"], json!(1e20));
    let result = atoms[0].result.clone().unwrap();
    assert_eq!(
        result.to_string(),
        "[10000000000000000,0.0,1.5e-7,5e-324,1e+300,-1e+19,1.7976931348623157e+308,0.1,\
         -1.23456e-8,250000000000000000]"
    );
    let back: Vec<f64> = serde_json::from_value(result).unwrap();
    assert_eq!(back, floats);
    assert_eq!(
        atoms[0].meta,
        json!({ "history": [{ "value": 30_000_000_000_000_000u64, "failures": {} }] })
    );
}

/// A value PostgreSQL cannot hold (U+0000) fails its own write, at once,
/// and the writes beside it go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_value_it_cannot_hold_fails_its_own_write() {
    let Some((_schema, store)) = support::fresh().await else {
        return;
    };
    let r = run(LogbookId::new(), "nul", FlowState::Running);
    let lease = flow_conformance::create(&store, &r, Vec::new(), "me").await;
    let writes = (0..20u64).map(|i| {
        let value = if i == 7 {
            json!(["a\u{0}b"])
        } else {
            json!([i])
        };
        store.save_atoms(r.id, lease.fence, vec![done(&format!("a{i:02}"), value, 1)])
    });
    let results = futures::future::join_all(writes).await;
    for (i, result) in results.iter().enumerate() {
        if i == 7 {
            match result {
                Err(StorageError::Backend { source, .. }) => {
                    let e = source.downcast_ref::<Unstorable>().expect("an Unstorable");
                    assert_eq!(e.what, format!("run {}, atom `a07`: its result", r.id));
                }
                other => panic!("write 7: {other:?}"),
            }
        } else {
            result.as_ref().unwrap();
        }
    }
    let (_, atoms) = store.load_flow(r.id).await.unwrap();
    assert_eq!(atoms.len(), 19);
    assert!(atoms.iter().all(|a| a.name != "a07"));
}

/// 1,000 concurrent writes through one writer: a tenth for a run that is
/// not in the store, one the server refuses (a constraint added by hand);
/// those fail alone, the others are all written, many to a commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_group_commit_of_1000_concurrent_writes() {
    let Some((schema, store)) = support::fresh().await else {
        return;
    };
    schema.execute(&format!(
        "ALTER TABLE {}.atoms ADD CONSTRAINT no_poison CHECK (name <> 'poison')",
        schema.name
    ));
    let store = Arc::new(store);
    let r = run(LogbookId::new(), "group", FlowState::Running);
    let lease = flow_conformance::create(&*store, &r, Vec::new(), "me").await;
    let unknown = FlowId::new();
    let before = store.stats();
    let tasks: Vec<_> = (0..1000u64)
        .map(|i| {
            let store = store.clone();
            let target = if i % 10 == 9 { unknown } else { r.id };
            let name = if i == 500 {
                "poison".to_string()
            } else {
                format!("a{i:04}")
            };
            let fence = lease.fence;
            tokio::spawn(async move {
                store
                    .save_atoms(target, fence, vec![done(&name, json!([i]), i)])
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
        } else if i == 500 {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("no_poison"), "{err}");
        } else {
            result.unwrap_or_else(|e| panic!("write {i}: {e}"));
        }
    }
    let stats = store.stats();
    let (commits, writes) = (stats.commits - before.commits, stats.writes - before.writes);
    // Every write but the refused one was in a batch that committed.
    assert_eq!(writes, 999, "{stats:?}");
    assert!(
        commits * 5 <= writes,
        "{commits} commits for {writes} writes: no group commit"
    );
    let (_, atoms) = store.load_flow(r.id).await.unwrap();
    let expected: Vec<AtomDetail> = (0..1000u64)
        .filter(|i| i % 10 != 9 && *i != 500)
        .map(|i| done(&format!("a{i:04}"), json!([i]), i))
        .collect();
    assert_eq!(atoms.len(), 899);
    assert_eq!(snapshots(&atoms), snapshots(&expected));
}

/// A run journaled through one backend reads back through another, with its
/// atoms, ended and released; resuming it returns the recorded outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_journals_an_engine_run_that_reads_back_after_reconnecting() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    let make = || {
        let mut flow = Flow::linear("chain").input::<u64>("v0");
        for i in 0..20 {
            flow.push(Atom::new(
                format!("t{i:02}"),
                FnTask::sync(
                    Signature::new()
                        .requires::<u64>(format!("v{i}"))
                        .provides::<u64>(format!("v{}", i + 1)),
                    |a| Ok(Outputs::one(a.get::<u64>(0)? * 2 + 1)),
                ),
            ));
        }
        flow.build().unwrap()
    };
    let first = Arc::new(
        PostgresBackend::connect_with(&url, support::options(&schema))
            .await
            .unwrap(),
    );
    let mut engine = Engine::builder(make())
        .input("v0", 1u64)
        .storage(first.clone())
        .build();
    engine.run().await.unwrap();
    let id = engine.run_id();
    drop(engine);
    drop(first);

    let second = Arc::new(
        PostgresBackend::connect_with(&url, support::options(&schema))
            .await
            .unwrap(),
    );
    let (flow, atoms) = second.load_flow(id).await.unwrap();
    assert_eq!(flow.state, FlowState::Success);
    assert_eq!(flow.ownership.owner, None);
    assert_eq!(atoms.len(), 20);
    assert!(atoms.iter().all(|a| a.state == AtomState::Success));
    let last = atoms.iter().find(|a| a.name == "t19").unwrap();
    assert_eq!(last.result, Some(json!([(1u64 << 21) - 1])));
    let resumed = Engine::builder(make())
        .storage(second.clone())
        .resume(id)
        .await
        .unwrap();
    assert_eq!(resumed.state(), FlowState::Success);
    assert_eq!(resumed.fetch::<u64>("v20"), Some(&((1u64 << 21) - 1)));
}
