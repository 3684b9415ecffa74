//! Runs whose steps count their executions, for the fault tests: many at
//! once, then checked against the journal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow::postgres::PostgresBackend;
use flow::{
    Atom, AtomState, Backend, CompiledFlow, Engine, Exec, Flow, FlowId, FlowState, FnTask, Outputs,
    RunError, Signature, StorageError,
};
use serde_json::json;

/// Which tasks ran, how many times: (run's label, task) -> executions.
pub type Ran = Arc<Mutex<HashMap<(String, String), usize>>>;

/// A chain of `n` tasks; each counts its executions in `ran` under the
/// run's label (its input `run`), first calls `hook` with its index, and
/// takes as long as `hook` says.
pub fn counted_chain(
    n: usize,
    ran: Ran,
    hook: Arc<dyn Fn(usize) -> Duration + Send + Sync>,
) -> CompiledFlow {
    let mut flow = Flow::linear("counted")
        .input::<String>("run")
        .input::<u64>("v0");
    for i in 0..n {
        let (ran, hook) = (ran.clone(), hook.clone());
        let name = format!("t{i:02}");
        let task_name = name.clone();
        let task = FnTask::new(
            Signature::new()
                .requires::<String>("run")
                .requires::<u64>(format!("v{i}"))
                .provides::<u64>(format!("v{}", i + 1)),
            move |a, _| {
                let (ran, hook, task_name) = (ran.clone(), hook.clone(), task_name.clone());
                let label = a.get::<String>(0).cloned();
                let v = a.get::<u64>(1).copied();
                Exec::future(async move {
                    let takes = hook(i);
                    *ran.lock().unwrap().entry((label?, task_name)).or_default() += 1;
                    tokio::time::sleep(takes).await;
                    Ok(Outputs::one(v? + 1))
                })
            },
        );
        flow.push(Atom::new(name, task));
    }
    flow.build().expect("the chain builds")
}

/// The tasks of run `label` that ran, as `name x times`, sorted.
pub fn executed(ran: &Ran, label: &str) -> Vec<String> {
    let mut v: Vec<String> = ran
        .lock()
        .unwrap()
        .iter()
        .filter(|((r, _), _)| r == label)
        .map(|((_, t), n)| format!("{t}x{n}"))
        .collect();
    v.sort();
    v
}

/// Runs `runs` chains of `tasks` at once on `store`: each run's label, id
/// and outcome.
pub async fn many_runs(
    store: Arc<PostgresBackend>,
    runs: usize,
    tasks: usize,
    ran: &Ran,
    hook: &Arc<dyn Fn(usize) -> Duration + Send + Sync>,
) -> Vec<(String, FlowId, Result<(), RunError>)> {
    let mut set = tokio::task::JoinSet::new();
    for k in 0..runs {
        let label = format!("r{k:03}");
        let mut engine = Engine::builder(counted_chain(tasks, ran.clone(), hook.clone()))
            .input("run", label.clone())
            .input("v0", 0u64)
            .storage(store.clone())
            .build();
        set.spawn(async move {
            let outcome = engine.run().await;
            (label, engine.run_id(), outcome)
        });
    }
    let mut out = Vec::with_capacity(runs);
    while let Some(done) = set.join_next().await {
        out.push(done.expect("a run did not panic"));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What the runs left: each either finished, its journal complete, or
/// failed with a typed storage error; every step journaled `SUCCESS` ran
/// exactly once. Returns how many finished.
pub async fn check_runs(
    store: &PostgresBackend,
    outcomes: &[(String, FlowId, Result<(), RunError>)],
    tasks: usize,
    ran: &Ran,
) -> usize {
    let mut finished = 0;
    for (label, id, outcome) in outcomes {
        let times = executed(ran, label);
        let atoms = match outcome {
            Ok(()) => {
                finished += 1;
                let (flow, atoms) = store.load_flow(*id).await.unwrap();
                assert_eq!(flow.state, FlowState::Success, "{label}");
                assert_eq!(atoms.len(), tasks, "{label}");
                atoms
            }
            Err(RunError::Storage(e)) => {
                assert!(
                    matches!(e, StorageError::Unavailable { .. }),
                    "{label}: {e:?}"
                );
                match store.load_flow(*id).await {
                    Ok((_, atoms)) => atoms,
                    // Its creation never went through: nothing of it ran.
                    Err(StorageError::NotFound(_)) => {
                        assert_eq!(times, Vec::<String>::new(), "{label}");
                        Vec::new()
                    }
                    Err(e) => panic!("{label}: {e}"),
                }
            }
            Err(other) => panic!("{label}: {other:?}"),
        };
        for a in &atoms {
            let n = times
                .iter()
                .find(|t| t.starts_with(&format!("{}x", a.name)))
                .map(|t| t.rsplit('x').next().unwrap().to_string());
            if a.state == AtomState::Success {
                assert_eq!(
                    n.as_deref(),
                    Some("1"),
                    "{label}: {} ran {n:?} times",
                    a.name
                );
                let i: u64 = a.name[1..].parse().unwrap();
                assert_eq!(a.result, Some(json!([i + 1])), "{label}: {}", a.name);
            }
        }
    }
    finished
}
