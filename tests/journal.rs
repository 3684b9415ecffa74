//! The journal boundary: what the engine writes through the storage trait (here
//! the memory backend), and how an interrupted run continues.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{failing, progressing};
use flow::{
    Atom, AtomState, Backend, Engine, Exec, Flow, FlowState, FnTask, Intention, MemoryBackend,
    Outputs, Signature, StorageError,
};
use serde_json::json;

async fn atoms_by_name(
    journal: &MemoryBackend,
    engine: &Engine,
) -> BTreeMap<String, flow::AtomDetail> {
    let (_, atoms) = journal.load_flow(engine.run_id()).await.unwrap();
    atoms.into_iter().map(|a| (a.name.clone(), a)).collect()
}

#[tokio::test]
async fn a_successful_run_is_journaled_with_results_and_inputs() {
    let add = FnTask::sync(
        Signature::new().requires::<u32>("x").provides::<u32>("y"),
        |a| Ok(Outputs::one(a.get::<u32>(0)? + 1)),
    );
    let flow = Flow::linear("journaled")
        .input::<u32>("x")
        .add(Atom::new("add", add))
        .add(progressing("five"))
        .build()
        .unwrap();
    let journal = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(flow)
        .input("x", 41u32)
        .storage(journal.clone())
        .build();
    engine.run().await.unwrap();

    let (run, _) = journal.load_flow(engine.run_id()).await.unwrap();
    assert_eq!(run.name, "journaled");
    assert_eq!(run.state, FlowState::Success);
    assert_eq!(
        run.meta,
        json!({
            "inputs": { "x": 41 },
            "atoms": [["add", "TASK"], ["five", "TASK"]],
            "edges": [["add", "five"]],
            "all_atoms": true,
            "revert_all": false,
            "cancelled": false,
        })
    );
    assert!(journal.logbook(run.logbook).is_some());

    let atoms = atoms_by_name(&journal, &engine).await;
    assert_eq!(atoms.len(), 2);
    let add = &atoms["add"];
    assert_eq!(add.state, AtomState::Success);
    assert_eq!(add.intention, Intention::Execute);
    assert_eq!(add.result, Some(json!([42])));
    assert_eq!(add.attempts, 1);
    assert_eq!(add.progress, 1.0);
    // Written RUNNING (before the task ran), then SUCCESS.
    assert_eq!(add.version, 2);
    assert_eq!(atoms["five"].result, Some(json!([5])));
    assert_eq!(
        journal
            .list_flows(flow::FlowQuery::new())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_reverted_run_is_journaled_with_failures_intentions_and_revert_results() {
    let undo = FnTask::sync(Signature::new().provides::<u32>("n"), |_| {
        Ok(Outputs::one(1u32))
    })
    .on_revert_sync(|_| Ok(Some(flow::Value::new(String::from("undone")))));
    let flow = Flow::linear("reverted")
        .add(Atom::new("undo", undo))
        .add(failing("fail"))
        .build()
        .unwrap();
    let journal = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(flow).storage(journal.clone()).build();
    engine.run().await.unwrap_err();

    let (run, _) = journal.load_flow(engine.run_id()).await.unwrap();
    assert_eq!(run.state, FlowState::Reverted);
    let atoms = atoms_by_name(&journal, &engine).await;
    let undo = &atoms["undo"];
    assert_eq!(undo.state, AtomState::Reverted);
    assert_eq!(undo.intention, Intention::Revert);
    assert_eq!(undo.result, None, "outputs are gone once reverted");
    assert_eq!(undo.revert_result, Some(json!("undone")));
    let fail = &atoms["fail"];
    assert_eq!(fail.state, AtomState::Reverted);
    assert_eq!(fail.failure.as_ref().map(|f| f.message()), Some("Woot!"));
    assert_eq!(fail.revert_failure.as_ref().map(|f| f.message()), None);
}

#[tokio::test]
async fn a_revert_failure_is_journaled() {
    let bad_undo = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()))
        .on_revert_sync(|_| Err(flow::TaskError::msg("cannot undo")));
    let flow = Flow::linear("stuck")
        .add(Atom::new("bad_undo", bad_undo))
        .add(failing("fail"))
        .build()
        .unwrap();
    let journal = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(flow).storage(journal.clone()).build();
    engine.run().await.unwrap_err();
    let atoms = atoms_by_name(&journal, &engine).await;
    assert_eq!(atoms["bad_undo"].state, AtomState::RevertFailure);
    assert_eq!(
        atoms["bad_undo"]
            .revert_failure
            .as_ref()
            .map(|f| f.message()),
        Some("cannot undo")
    );
    let (run, _) = journal.load_flow(engine.run_id()).await.unwrap();
    assert_eq!(run.state, FlowState::Failure);
}

#[tokio::test]
async fn the_memory_backend_rejects_atoms_of_an_unknown_run() {
    let journal = MemoryBackend::new();
    let id = flow::FlowId::new();
    let err = journal.save_atoms(id, 1, Vec::new()).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(got) if got == id));
    assert_eq!(
        err.to_string(),
        format!("no run with id {id} in the store: list the runs with `Backend::list_flows`")
    );
    assert!(matches!(
        journal.load_flow(id).await,
        Err(StorageError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_interrupted_run_continues_and_reruns_the_atom_that_was_running() {
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    // First attempt never finishes; later attempts succeed at once.
    let slow = FnTask::new(Signature::new().provides::<u32>("done"), move |_, ctx| {
        let attempt = ctx.attempt();
        let _ = started_tx.send(attempt);
        Exec::future(async move {
            if attempt == 1 {
                futures::future::pending::<()>().await;
            }
            Ok(Outputs::one(attempt))
        })
    });
    let flow = Flow::linear("interrupted")
        .add(progressing("before"))
        .add(Atom::new("slow", slow))
        .add(progressing("after"))
        .build()
        .unwrap();
    let journal = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(flow).storage(journal.clone()).build();

    tokio::select! {
        _ = engine.run() => panic!("the first attempt never finishes"),
        attempt = started_rx.recv() => assert_eq!(attempt, Some(1)),
    }
    assert_eq!(engine.state(), FlowState::Running);
    assert_eq!(engine.atom_state("before"), Some(AtomState::Success));
    assert_eq!(engine.atom_state("slow"), Some(AtomState::Running));
    assert_eq!(engine.atom_state("after"), Some(AtomState::Pending));
    // The journal saw RUNNING before the task started.
    assert_eq!(
        atoms_by_name(&journal, &engine).await["slow"].state,
        AtomState::Running
    );

    engine.run().await.unwrap();
    assert_eq!(started_rx.recv().await, Some(2));
    assert_eq!(engine.state(), FlowState::Success);
    assert_eq!(
        engine.attempts("before"),
        Some(1),
        "a finished atom is not run again"
    );
    assert_eq!(engine.attempts("slow"), Some(2));
    assert_eq!(engine.fetch::<u32>("done"), Some(&2));
    let atoms = atoms_by_name(&journal, &engine).await;
    assert_eq!(atoms["slow"].attempts, 2);
    assert_eq!(atoms["after"].state, AtomState::Success);
}

struct Panicky;

impl flow::Listener for Panicky {
    fn on_event(&self, _: &flow::Event<'_>) {
        panic!("listener bug");
    }
}

#[tokio::test]
async fn a_panicking_listener_does_not_stop_the_engine_or_other_listeners() {
    let capture = flow::CaptureListener::new();
    let flow = Flow::linear("f").add(progressing("t")).build().unwrap();
    let mut engine = Engine::builder(flow)
        .listener(Panicky)
        .listener(capture.clone())
        .build();
    engine.run().await.unwrap();
    assert_eq!(
        capture.events(),
        [
            "f.f RUNNING",
            "t.t RUNNING",
            "t.t SUCCESS(5)",
            "f.f SUCCESS"
        ]
    );
}

#[test]
fn running_in_parallel_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let flow = Flow::linear("outside")
        .add(progressing("t"))
        .build()
        .unwrap();
    let mut engine = Engine::builder(flow.clone()).parallel(2).build();
    let err = futures::executor::block_on(engine.run()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flow `outside` needs a tokio runtime to run in parallel: run the engine inside one (for \
         example under `#[tokio::main]`)"
    );
    // The serial engine needs no runtime for tasks that do not block.
    let mut serial = Engine::builder(flow).build();
    futures::executor::block_on(serial.run()).unwrap();
    assert_eq!(serial.state(), FlowState::Success);
}
