//! Damaged stores are named, never guessed at: a run whose records
//! contradict each other, a record altered below the library (a flipped bit,
//! a hand edit), an unreadable column, a damaged schema version, a malformed
//! file and a full disk are each a typed error, found before anything runs,
//! naming the run and the atom.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flow::{
    Atom, AtomState, Backend, Claim, CompiledFlow, Engine, Flow, FlowId, FlowState, FnTask,
    Intention, Outputs, ResumeError, Retry, RunError, Signature, SqliteBackend, SqliteOptions,
    StorageError,
};
use serde_json::json;
use tempfile::TempDir;

/// `a` provides `n = 145`, `b` reads it, `c` fails on the first attempt of
/// the retry group holding `b` and `c`; `calls` counts every execute.
fn definition(calls: &Arc<AtomicUsize>) -> CompiledFlow {
    let counted = |calls: &Arc<AtomicUsize>, sig: Signature, out: Option<u64>| {
        let calls = calls.clone();
        FnTask::sync(sig, move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(out.map_or_else(Outputs::new, Outputs::one))
        })
    };
    let attempt = Arc::new(AtomicUsize::new(0));
    let c_calls = calls.clone();
    let c = FnTask::sync(Signature::new(), move |_| {
        c_calls.fetch_add(1, Ordering::SeqCst);
        if attempt.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(flow::TaskError::msg("not yet"))
        } else {
            Ok(Outputs::new())
        }
    });
    Flow::linear("damaged")
        .add(Atom::new(
            "a",
            counted(calls, Signature::new().provides::<u64>("n"), Some(145)),
        ))
        .add(
            Flow::linear("group")
                .retry(Retry::times(3).named("r"))
                .add(Atom::new(
                    "b",
                    counted(calls, Signature::new().requires::<u64>("n"), None),
                ))
                .add(Atom::new("c", c)),
        )
        .build()
        .expect("the flow is valid")
}

/// A store holding a finished run of the flow, and the run's id.
async fn finished_store(dir: &Path) -> (PathBuf, FlowId) {
    let path = dir.join("store.db");
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(SqliteBackend::open(&path).expect("the store opens"));
    let mut engine = Engine::builder(definition(&calls))
        .storage(store.clone())
        .build();
    engine.run().await.expect("the run succeeds");
    let id = engine.run_id();
    drop(engine);
    drop(store);
    (path, id)
}

/// Resumes `id` from the store at `path` with nothing allowed to run.
async fn resume(path: &Path, id: FlowId) -> Result<Engine, ResumeError> {
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(SqliteBackend::open(path).expect("the store opens"));
    let resumed = Engine::builder(definition(&calls))
        .storage(store)
        .resume(id)
        .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing runs before the checks"
    );
    resumed
}

/// Rewrites atom `name` of run `id` through the store's own API, so that
/// the record is well-formed (its checksum matches) but says something the
/// rest of the run contradicts.
async fn rewrite(path: &Path, id: FlowId, change: impl FnOnce(&mut flow::AtomDetail)) {
    rewrite_run(path, id, |_, atoms| {
        change(atoms);
    })
    .await;
}

async fn rewrite_run(
    path: &Path,
    id: FlowId,
    change: impl FnOnce(&mut flow::FlowDetail, &mut flow::AtomDetail),
) {
    let store = SqliteBackend::open(path).expect("the store opens");
    let (mut run, atoms) = store.load_flow(id).await.expect("the run is stored");
    let mut a = atoms.into_iter().find(|a| a.name == "a").expect("atom a");
    change(&mut run, &mut a);
    let lease = store
        .claim_flow(id, Claim::new("editor", std::time::Duration::from_secs(60)))
        .await
        .expect("the run is claimed");
    store
        .save_run(id, lease.fence, Some(run), vec![a])
        .await
        .expect("the change is written");
    store
        .release_flow(&lease)
        .await
        .expect("the run is given back");
}

fn sql(path: &Path, statement: &str) {
    rusqlite::Connection::open(path)
        .expect("sqlite opens")
        .execute_batch(statement)
        .expect("the statement runs");
}

fn damaged(err: &ResumeError, id: FlowId, atom: Option<&str>, detail: &str) {
    match err {
        ResumeError::Damaged {
            run,
            atom: a,
            detail: d,
        } => {
            assert_eq!(*run, id);
            assert_eq!(a.as_deref(), atom);
            assert_eq!(d, detail);
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
    let at = atom.map(|a| format!(" at atom `{a}`")).unwrap_or_default();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot resume run {id}: the store is damaged{at}: {detail}; restore the store from \
             a backup, or start a new run"
        )
    );
}

#[tokio::test]
async fn a_success_without_its_result_is_damage() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    rewrite_run(&path, id, |run, a| {
        run.state = FlowState::Running;
        a.result = None;
    })
    .await;
    let err = resume(&path, id).await.unwrap_err();
    damaged(
        &err,
        id,
        Some("a"),
        "it is recorded SUCCESS, but its result is missing",
    );
}

#[tokio::test]
async fn a_deleted_atom_record_is_damage() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    sql(&path, "DELETE FROM atoms WHERE name = 'b'");
    let err = resume(&path, id).await.unwrap_err();
    damaged(&err, id, Some("b"), "its record is missing");
}

#[tokio::test]
async fn a_run_state_that_its_atoms_deny_is_damage() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    rewrite(&path, id, |a| {
        a.state = AtomState::Pending;
        a.result = None;
    })
    .await;
    let err = resume(&path, id).await.unwrap_err();
    damaged(
        &err,
        id,
        Some("a"),
        "the run is recorded SUCCESS, but this atom is PENDING",
    );

    rewrite_run(&path, id, |run, a| {
        run.state = FlowState::Failure;
        a.state = AtomState::Success;
        a.result = Some(json!([145]));
    })
    .await;
    let err = resume(&path, id).await.unwrap_err();
    damaged(
        &err,
        id,
        None,
        "the run is recorded FAILURE, but no atom's revert failed",
    );
}

#[tokio::test]
async fn a_failure_state_without_its_failure_is_damage() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    rewrite_run(&path, id, |run, a| {
        run.state = FlowState::Running;
        a.state = AtomState::Failure;
        a.result = None;
    })
    .await;
    let err = resume(&path, id).await.unwrap_err();
    damaged(
        &err,
        id,
        Some("a"),
        "it is recorded FAILURE, but its failure is missing",
    );
}

#[tokio::test]
async fn a_retry_history_that_does_not_decode_is_damage() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    let store = SqliteBackend::open(&path).unwrap();
    let (_, atoms) = store.load_flow(id).await.unwrap();
    let r = atoms.iter().find(|a| a.name == "r").unwrap();
    assert_eq!(r.meta["history"].as_array().map(Vec::len), Some(2));
    let mut r = r.clone();
    r.meta["history"][0]["failures"] = json!({ "c": "not a failure" });
    let lease = store
        .claim_flow(id, Claim::new("editor", std::time::Duration::from_secs(60)))
        .await
        .unwrap();
    store.save_atoms(id, lease.fence, vec![r]).await.unwrap();
    store.release_flow(&lease).await.unwrap();
    drop(store);
    let err = resume(&path, id).await.unwrap_err();
    let ResumeError::Damaged { atom, detail, .. } = &err else {
        panic!("expected Damaged, got {err:?}");
    };
    assert_eq!(atom.as_deref(), Some("r"));
    assert!(
        detail.starts_with("attempt 1 of its retry history does not decode: "),
        "{detail}"
    );
}

#[tokio::test]
async fn an_intention_this_engine_never_writes_is_refused() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    rewrite_run(&path, id, |run, a| {
        run.state = FlowState::Running;
        a.intention = Intention::Retry;
    })
    .await;
    let err = resume(&path, id).await.unwrap_err();
    damaged(
        &err,
        id,
        Some("a"),
        "its intention is RETRY, which this version of flow never records: the run was \
         written by something else",
    );
}

#[tokio::test]
async fn an_edited_value_fails_its_checksum() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    sql(&path, "UPDATE atoms SET result = '[144]' WHERE name = 'a'");
    let err = resume(&path, id).await.unwrap_err();
    let ResumeError::Storage {
        source: StorageError::Corrupt { detail, .. },
        ..
    } = &err
    else {
        panic!("expected a damaged record, got {err:?}");
    };
    let start = format!("run {id}, atom `a`: its checksum does not match its contents (stored 0x");
    assert!(detail.starts_with(&start), "{detail}");
    assert!(
        detail.ends_with("): the record was altered or damaged"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_column_that_cannot_be_read_is_a_damaged_record() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    // Text that is not UTF-8.
    sql(
        &path,
        "UPDATE atoms SET meta = CAST(x'c328' AS TEXT) WHERE name = 'b'",
    );
    let err = resume(&path, id).await.unwrap_err();
    let ResumeError::Storage {
        source: StorageError::Corrupt { detail, .. },
        ..
    } = &err
    else {
        panic!("expected a damaged record, got {err:?}");
    };
    let start = format!("run {id}, atom `b`: `meta` cannot be read: ");
    assert!(detail.starts_with(&start), "{detail}");
}

/// Every single-bit flip among the bytes of the store's records either
/// reads back exactly as written or is a typed error: none loads other
/// values, none panics.
#[tokio::test]
async fn no_flipped_bit_reads_as_other_data() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    let pristine = std::fs::read(&path).unwrap();
    let expected = {
        let store = SqliteBackend::open(&path).unwrap();
        let loaded = store.load_flow(id).await.unwrap();
        drop(store);
        std::fs::write(&path, &pristine).unwrap();
        serde_json::to_value(&loaded).unwrap()
    };
    // Where the records' bytes are: the results, names, states and JSON.
    let mut offsets = Vec::new();
    for needle in [
        &b"[145]"[..],
        b"SUCCESS",
        b"EXECUTE",
        b"history",
        b"damaged",
        b"not yet",
    ] {
        let mut from = 0;
        while let Some(k) = find(&pristine[from..], needle) {
            offsets.extend((from + k)..(from + k + needle.len()));
            from += k + 1;
        }
    }
    offsets.sort_unstable();
    offsets.dedup();
    assert!(offsets.len() >= 40, "found {} record bytes", offsets.len());
    let (mut same, mut refused, mut flips) = (0, 0, 0);
    for (n, &offset) in offsets.iter().enumerate().take(60) {
        for bit in [n % 8, (n + 3) % 8] {
            flips += 1;
            let mut bytes = pristine.clone();
            bytes[offset] ^= 1 << bit;
            let flipped = dir.path().join("flipped.db");
            let _ = std::fs::remove_file(&flipped);
            std::fs::write(&flipped, &bytes).unwrap();
            let outcome =
                match SqliteBackend::open_with(&flipped, SqliteOptions::new().read_only(true)) {
                    Err(_) => None,
                    Ok(store) => store.load_flow(id).await.ok(),
                };
            match outcome {
                None => refused += 1,
                Some(loaded) => {
                    assert_eq!(
                        serde_json::to_value(&loaded).unwrap(),
                        expected,
                        "a flip of bit {bit} at byte {offset} read back as other data"
                    );
                    same += 1;
                }
            }
        }
    }
    assert_eq!(flips, 120);
    assert_eq!(same + refused, 120);
    // Some of the bytes found lie in records a load does not read (the
    // logbook's, pages freed by updates): those flips change nothing read.
    // The rest are all refused.
    assert!(
        refused >= 60,
        "only {refused} of 120 flips hit what a load reads"
    );
    eprintln!("{refused} of 120 flips refused, {same} changed nothing read");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn a_negative_schema_version_is_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let (path, _) = finished_store(dir.path()).await;
    sql(&path, "PRAGMA user_version = -1");
    for options in [SqliteOptions::new(), SqliteOptions::new().read_only(true)] {
        let err = SqliteBackend::open_with(&path, options).unwrap_err();
        assert!(
            matches!(&err, StorageError::UnknownSchema { found: -1, path: p } if *p == path),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "the store `{}` has schema version -1, which no version of flow writes: the \
                 file is damaged; restore it from a backup",
                path.display()
            )
        );
    }
}

#[tokio::test]
async fn a_malformed_file_has_an_error_of_its_own() {
    let dir = TempDir::new().unwrap();
    let (path, id) = finished_store(dir.path()).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 3 * page, "{} bytes", bytes.len());
    // The b-tree page headers of every page but the first: garbage.
    for p in 1..bytes.len() / page {
        for b in &mut bytes[p * page..p * page + 12] {
            *b = 0xA5;
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = match SqliteBackend::open_with(&path, SqliteOptions::new().read_only(true)) {
        Err(e) => e,
        Ok(store) => store.load_flow(id).await.unwrap_err(),
    };
    assert!(matches!(err, StorageError::Malformed { .. }), "{err:?}");
    assert!(
        err.to_string().contains("the database file is malformed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_full_disk_stops_the_run_with_its_own_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("small.db");
    // A store that may not grow past 40 pages: a run of large values fills it.
    let store = Arc::new(
        SqliteBackend::open_with(&path, SqliteOptions::new().max_size(40 * 4096)).unwrap(),
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let mut flow = Flow::linear("big");
    for i in 0..200 {
        let ran = ran.clone();
        let task = FnTask::sync(
            Signature::new().provides::<String>(format!("v{i}")),
            move |_| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(Outputs::one("x".repeat(4000)))
            },
        );
        flow.push(Atom::new(format!("t{i}"), task));
    }
    let mut engine = Engine::builder(flow.build().unwrap())
        .storage(store.clone())
        .build();
    let err = engine.run().await.unwrap_err();
    let RunError::Storage(StorageError::DiskFull { path: p, .. }) = &err else {
        panic!("expected DiskFull, got {err:?}");
    };
    assert_eq!(p, &path);
    assert!(
        err.to_string()
            .contains("is full: free some space, then resume the run"),
        "{err}"
    );
    // It stopped at the write that did not fit: far fewer than 200 ran.
    let ran = ran.load(Ordering::SeqCst);
    assert!((1..100).contains(&ran), "{ran} tasks ran");
}
