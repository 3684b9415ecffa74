//! Records: every field comes back as written; writes upsert, all or none.

use flow_core::{
    AtomDetail, AtomState, Backend, FailureKind, FlowDetail, FlowId, FlowQuery, FlowState,
    Intention, LogBook, StorageError,
};
use serde_json::{Value, json};

use crate::{
    INTENTIONS, KINDS, atom, by_name, create, disk_full, done, logbook, run, snapshots, stored,
    woot,
};

fn not_found_message(id: FlowId) -> String {
    format!("no run with id {id} in the store: list the runs with `Backend::list_flows`")
}

/// Every field of a run and of its atoms comes back as written, for every
/// state, intention and kind.
pub async fn round_trip(b: &dyn Backend) {
    let book = logbook("book");
    b.save_logbook(book.clone()).await.unwrap();

    // One run per flow state.
    let mut runs = Vec::new();
    for (i, state) in FlowState::ALL.into_iter().enumerate() {
        let mut r = run(book.id, &format!("run-{i}"), state);
        r.updated_at += i as f64;
        r.created_at += i as f64 / 4.0;
        let lease = create(b, &r, Vec::new(), "creator").await;
        runs.push((r, lease));
    }
    for (r, _) in &runs {
        let (got, atoms) = stored(b, r.id).await;
        assert_eq!(&got, r);
        assert!(atoms.is_empty(), "{atoms:?}");
    }

    // One atom per atom state, cycling through kinds and intentions.
    let (target, lease) = &runs[1];
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
                1 => json!({ "k": i, "list": [true, null, "s"], "big": u64::MAX, "neg": i64::MIN }),
                _ => Value::Null,
            },
        });
    }
    b.save_atoms(target.id, lease.fence, atoms.clone())
        .await
        .unwrap();

    let (got, loaded) = stored(b, target.id).await;
    assert_eq!(&got, target);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));

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
        woot_atom.result,
        Some(json!([0, "out-0", { "nested": [0] }]))
    );
    assert_eq!(woot_atom.revert_result, Some(json!("undone-0")));
    assert_eq!(
        loaded["atom-1"].meta,
        json!({ "k": 1, "list": [true, null, "s"], "big": u64::MAX, "neg": i64::MIN })
    );
    assert_eq!(loaded["atom-1"].result, None);
    assert_eq!(loaded["atom-2"].meta, Value::Null);

    // The other runs got no atoms.
    for (r, _) in runs.iter().filter(|(r, _)| r.id != target.id) {
        assert!(b.load_flow(r.id).await.unwrap().1.is_empty());
    }
}

/// Saving again replaces: the run, and an atom by name, the others untouched.
pub async fn upsert(b: &dyn Backend) {
    let book = logbook("book");
    b.save_logbook(book.clone()).await.unwrap();
    let first = run(book.id, "upsert", FlowState::Running);
    let atoms = vec![
        done("a", json!([1]), 2),
        done("b", json!([2]), 2),
        done("c", json!([3]), 2),
    ];
    let lease = create(b, &first, atoms.clone(), "me").await;

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
    b.save_flow(second.clone(), lease.fence).await.unwrap();
    let (got, loaded) = stored(b, first.id).await;
    assert_eq!(got, second);
    assert_eq!(snapshots(&loaded), snapshots(&atoms), "atoms survive");

    let b2 = AtomDetail {
        state: AtomState::Reverted,
        intention: Intention::Revert,
        result: None,
        revert_result: Some(json!("undone")),
        failure: Some(woot()),
        version: 4,
        ..atoms[1].clone()
    };
    // The run's record and an atom in one write.
    let third = FlowDetail {
        state: FlowState::Reverted,
        ..second.clone()
    };
    b.save_run(first.id, lease.fence, Some(third.clone()), vec![b2.clone()])
        .await
        .unwrap();
    let (got, loaded) = stored(b, first.id).await;
    assert_eq!(got, third);
    assert_eq!(
        snapshots(&loaded),
        snapshots(&[atoms[0].clone(), b2, atoms[2].clone()])
    );
}

/// Writes to a run that is not in the store are refused, and nothing is
/// written.
pub async fn unknown_run(b: &dyn Backend) {
    let book = logbook("book");
    b.save_logbook(book.clone()).await.unwrap();
    let known = run(book.id, "known", FlowState::Running);
    let lease = create(b, &known, vec![done("a", json!([1]), 1)], "me").await;

    let id = FlowId::new();
    let err = b
        .save_atoms(id, lease.fence, vec![done("a", json!([99]), 9), atom("b")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::NotFound(got) if got == id),
        "{err:?}"
    );
    assert_eq!(err.to_string(), not_found_message(id));
    assert_eq!(err.operation(), None);

    let late = FlowDetail {
        id,
        ..run(book.id, "late", FlowState::Pending)
    };
    let err = b.save_flow(late.clone(), 1).await.unwrap_err();
    assert!(
        matches!(err, StorageError::NotFound(got) if got == id),
        "{err:?}"
    );
    for err in [
        b.load_flow(id).await.unwrap_err(),
        b.request_cancel(id).await.unwrap_err(),
        b.claim_flow(id, flow_core::Claim::new("x", crate::LIVE))
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, StorageError::NotFound(got) if got == id),
            "{err:?}"
        );
    }

    // Nothing was written: not the run, not its atoms, not into the other run.
    let listed = b.list_flows(FlowQuery::new()).await.unwrap();
    assert_eq!(listed.iter().map(|f| f.id).collect::<Vec<_>>(), [known.id]);
    let (_, atoms) = b.load_flow(known.id).await.unwrap();
    assert_eq!(snapshots(&atoms), snapshots(&[done("a", json!([1]), 1)]));
}

/// Several atoms in one call are all written; an empty write changes nothing.
pub async fn save_writes_all(b: &dyn Backend) {
    let r = run(flow_core::LogbookId::new(), "many", FlowState::Running);
    let lease = create(b, &r, Vec::new(), "me").await;
    let atoms: Vec<AtomDetail> = (0..50)
        .map(|i| AtomDetail {
            attempts: i,
            ..done(&format!("t{i:02}"), json!([i, i * 2]), u64::from(i) + 1)
        })
        .collect();
    b.save_atoms(r.id, lease.fence, atoms.clone())
        .await
        .unwrap();
    let (_, loaded) = b.load_flow(r.id).await.unwrap();
    assert_eq!(loaded.len(), 50);
    assert_eq!(snapshots(&loaded), snapshots(&atoms));
    b.save_atoms(r.id, lease.fence, Vec::new()).await.unwrap();
    b.save_run(r.id, lease.fence, None, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        snapshots(&b.load_flow(r.id).await.unwrap().1),
        snapshots(&atoms)
    );
}

/// 200 writers at once, each a run then 10 atoms one by one.
pub async fn concurrent_writers(b: &dyn Backend) {
    let book = logbook("busy");
    b.save_logbook(book.clone()).await.unwrap();
    let runs: Vec<FlowDetail> = (0..200)
        .map(|i| run(book.id, &format!("run-{i}"), FlowState::Running))
        .collect();
    let writers = runs.iter().enumerate().map(|(i, r)| async move {
        let lease = b
            .create_flow(
                r.clone(),
                Vec::new(),
                flow_core::Claim::new(format!("w{i}"), crate::LIVE),
            )
            .await?;
        for k in 0..10u64 {
            b.save_atoms(
                r.id,
                lease.fence,
                vec![done(&format!("atom-{k}"), json!([i, k]), k + 1)],
            )
            .await?;
        }
        Ok::<(), StorageError>(())
    });
    for result in futures::future::join_all(writers).await {
        result.unwrap();
    }
    let listed = b.list_flows(FlowQuery::new()).await.unwrap();
    assert_eq!(listed.len(), 200);
    for (i, r) in runs.iter().enumerate() {
        let (got, atoms) = stored(b, r.id).await;
        assert_eq!(&got, r);
        let expected: Vec<AtomDetail> = (0..10u64)
            .map(|k| done(&format!("atom-{k}"), json!([i, k]), k + 1))
            .collect();
        assert_eq!(snapshots(&atoms), snapshots(&expected), "run {i}");
    }
}

/// Two runs with the same atom names keep their own atoms.
pub async fn runs_do_not_mix(b: &dyn Backend) {
    let book = logbook("book");
    let one = run(book.id, "same", FlowState::Running);
    let two = run(book.id, "same", FlowState::Running);
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
    let lease_one = create(b, &one, atoms_one.clone(), "me").await;
    create(b, &two, atoms_two.clone(), "me").await;
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
    b.save_atoms(one.id, lease_one.fence, vec![a1.clone()])
        .await
        .unwrap();
    assert_eq!(
        snapshots(&b.load_flow(one.id).await.unwrap().1),
        snapshots(&[a1, atoms_one[1].clone()])
    );
    assert_eq!(
        snapshots(&b.load_flow(two.id).await.unwrap().1),
        snapshots(&atoms_two)
    );
}

/// A run is created once: a second creation with its id is refused and
/// changes nothing.
pub async fn create_refuses_an_existing_run(b: &dyn Backend) {
    let r = run(flow_core::LogbookId::new(), "once", FlowState::Running);
    create(b, &r, vec![done("a", json!([1]), 1)], "first").await;
    let again = FlowDetail {
        state: FlowState::Success,
        ..r.clone()
    };
    let err = b
        .create_flow(
            again,
            vec![atom("a")],
            flow_core::Claim::new("second", crate::LIVE),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Exists(id) if id == r.id),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "a run with id {} is in the store already: a new run needs a new id",
            r.id
        )
    );
    let (flow, atoms) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow.state, FlowState::Running);
    assert_eq!(flow.ownership.owner.as_deref(), Some("first"));
    assert_eq!(flow.ownership.fence, 1);
    assert_eq!(snapshots(&atoms), snapshots(&[done("a", json!([1]), 1)]));
}
