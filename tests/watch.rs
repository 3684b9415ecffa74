//! Following a run from the store, as another process would: a watch sees
//! each atom where it is at each look, then the run's end.

use std::sync::Arc;
use std::time::Duration;

use flow::storage::{RunChange, RunWatch};
use flow::{Atom, Engine, Flow, FlowState, FnTask, MemoryBackend, Outputs, Signature};

fn seen(changes: &[RunChange]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            RunChange::Flow { state } => format!("run {state}"),
            RunChange::Atom {
                name,
                state,
                attempts,
                ..
            } => format!("{name} {state} {attempts}"),
            _ => "?".into(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_a_run_in_progress_to_its_end() {
    let store = Arc::new(MemoryBackend::new());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel::<()>();
    let g = gate.clone();
    let slow = FnTask::asynchronous(Signature::new(), move |_, _| {
        let (g, reached) = (g.clone(), reached_tx.clone());
        async move {
            let _ = reached.send(());
            g.acquire().await.map_err(flow::TaskError::from)?.forget();
            Ok(Outputs::new())
        }
    });
    let quick = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    let flow = Flow::linear("watched")
        .add(Atom::new("first", quick()))
        .add(Atom::new("slow", slow))
        .add(Atom::new("last", quick()))
        .build()
        .unwrap();
    let mut engine = Engine::builder(flow).storage(store.clone()).build();
    let id = engine.run_id();
    let running = tokio::spawn(async move { engine.run().await });
    reached.recv().await.expect("slow starts");

    let mut watch = RunWatch::new(store, id);
    assert_eq!(
        seen(&watch.poll().await.unwrap()),
        [
            "first SUCCESS 1",
            "last PENDING 0",
            "slow RUNNING 1",
            "run RUNNING"
        ]
    );
    assert!(
        seen(&watch.poll().await.unwrap()).is_empty(),
        "nothing changed since"
    );
    assert_eq!(watch.state(), Some(FlowState::Running));
    assert!(!watch.ended());

    gate.add_permits(1);
    let mut later = Vec::new();
    while !watch.ended() {
        later.extend(seen(&watch.next(Duration::from_millis(2)).await.unwrap()));
    }
    running.await.unwrap().unwrap();
    assert_eq!(later.last().map(String::as_str), Some("run SUCCESS"));
    assert!(later.contains(&"last SUCCESS 1".to_string()), "{later:?}");
    assert!(later.contains(&"slow SUCCESS 1".to_string()), "{later:?}");
    assert!(
        watch
            .next(Duration::from_millis(2))
            .await
            .unwrap()
            .is_empty()
    );
}
