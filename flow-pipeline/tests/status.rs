//! Definitions kept in the store by hash, and the state of a run as
//! operators know it (`pipeline_status`), read from a real SQLite store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_core::{Atom, Backend, Engine, Flow, FnTask, Outputs, Signature, SqliteBackend};
use flow_pipeline::{
    Params, Pipeline, RunState, Settings, StatusError, StepState, StepStatus, pipeline_status,
};

const PIPELINE: &str = r#"
name: status
parameters:
  dir: {type: string}
  fail: {type: bool, default: false}
steps:
  - name: a
    command: ["true"]
    undo: {command: ["true"]}
  - name: b
    depends-on: [a]
    script: |
      touch {dir}/b.started
      while [ ! -e {dir}/release ]; do sleep 0.02; done
      [ {fail} = false ]
  - name: c
    depends-on: [b]
    command: ["true"]
  - name: lonely
    command: ["true"]
"#;

/// The `pipeline_steps` view of the store, read with the `sqlite3` tool as
/// an operator would: `step|state|attempts` per step.
fn sql_view(db: &std::path::Path, run: flow_core::FlowId) -> Vec<String> {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(format!(
            "SELECT step, state, attempts, exit_code FROM pipeline_steps WHERE run = '{run}' ORDER BY step"
        ))
        .output()
        .expect("the sqlite3 tool runs (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn step(name: &str, state: StepState, deps: &[&str], undo: bool, attempts: u32) -> StepStatus {
    StepStatus {
        name: name.to_string(),
        state,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        has_undo: undo,
        attempts,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_of_a_run_follows_its_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteBackend::open(tmp.path().join("flow.db")).unwrap());
    let pipeline = Pipeline::from_str("status.yaml", PIPELINE).unwrap();
    pipeline.save(&*store).await.unwrap();
    // Saving again changes nothing.
    pipeline.save(&*store).await.unwrap();
    let loaded = Pipeline::load(&*store, pipeline.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (loaded.source(), loaded.hash()),
        (pipeline.source(), pipeline.hash())
    );

    let params = Params::new().set("dir", tmp.path().to_str().unwrap());
    let run = pipeline
        .to_flow(&params, &Settings::new(tmp.path().join("logs")))
        .unwrap();
    let mut engine = run
        .engine()
        .unwrap()
        .storage(store.clone())
        .parallel(4)
        .build();
    let id = engine.run_id();
    let running = tokio::spawn(async move { engine.run().await });

    // While `b` runs: `a` and `lonely` succeeded, `c` waits for `b`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let during = loop {
        if tmp.path().join("b.started").exists() {
            let s = pipeline_status(&*store, id).await.unwrap();
            if s.steps.iter().all(|s| s.state != StepState::Pending) {
                break s;
            }
        }
        assert!(Instant::now() < deadline, "step b never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(during.state, RunState::Running);
    assert_eq!(during.pipeline, "status");
    assert_eq!(during.definition, pipeline.hash());
    assert_eq!(
        during.steps,
        [
            step("a", StepState::Succeeded, &[], true, 1),
            step("b", StepState::Running, &["a"], false, 1),
            step("c", StepState::Waiting, &["b"], false, 0),
            step("lonely", StepState::Succeeded, &[], false, 1),
        ]
    );

    // The same, through SQL.
    assert_eq!(
        sql_view(&tmp.path().join("flow.db"), id),
        [
            "a|succeeded|1|0",
            "b|running|1|",
            "c|waiting|0|",
            "lonely|succeeded|1|0"
        ]
    );

    std::fs::write(tmp.path().join("release"), "").unwrap();
    running.await.unwrap().unwrap();
    let after = pipeline_status(&*store, id).await.unwrap();
    assert_eq!(after.state, RunState::Finished);
    assert_eq!(
        sql_view(&tmp.path().join("flow.db"), id),
        [
            "a|succeeded|1|0",
            "b|succeeded|1|0",
            "c|succeeded|1|0",
            "lonely|succeeded|1|0"
        ]
    );
    assert!(
        after.steps.iter().all(|s| s.state == StepState::Succeeded),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_shows_what_was_undone_and_what_never_ran() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("release"), "").unwrap();
    let store = Arc::new(SqliteBackend::open(tmp.path().join("flow.db")).unwrap());
    let pipeline = Pipeline::from_str("status.yaml", PIPELINE).unwrap();
    pipeline.save(&*store).await.unwrap();
    let params = Params::new()
        .set("dir", tmp.path().to_str().unwrap())
        .set("fail", true);
    let run = pipeline
        .to_flow(&params, &Settings::new(tmp.path().join("logs")))
        .unwrap();
    let mut engine = run.engine().unwrap().storage(store.clone()).build();
    engine.run().await.unwrap_err();
    let status = pipeline_status(&*store, engine.run_id()).await.unwrap();
    assert_eq!(status.state, RunState::Failed);
    // The serial engine runs `a`, then `b`, which fails: `c` and `lonely`
    // never run. Every step that ran is reverted; `b` failed, and its
    // revert (nothing to undo) is done too.
    assert_eq!(
        status
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.state))
            .collect::<Vec<_>>(),
        [
            ("a", StepState::Reverted),
            ("b", StepState::Reverted),
            ("c", StepState::Skipped),
            ("lonely", StepState::Skipped),
        ]
    );
    assert_eq!(
        sql_view(&tmp.path().join("flow.db"), engine.run_id()),
        [
            "a|reverted|1|",
            "b|reverted|1|",
            "c|skipped|0|",
            "lonely|skipped|0|"
        ]
    );
}

#[tokio::test]
async fn runs_that_cannot_be_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteBackend::open(tmp.path().join("flow.db")).unwrap());
    // A pipeline whose definition was not saved.
    let pipeline = Pipeline::from_str("status.yaml", PIPELINE).unwrap();
    std::fs::write(tmp.path().join("release"), "").unwrap();
    let params = Params::new().set("dir", tmp.path().to_str().unwrap());
    let run = pipeline
        .to_flow(&params, &Settings::new(tmp.path().join("logs")))
        .unwrap();
    let mut engine = run.engine().unwrap().storage(store.clone()).build();
    engine.run().await.unwrap();
    let err = pipeline_status(&*store, engine.run_id()).await.unwrap_err();
    assert!(
        matches!(err, StatusError::MissingDefinition { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "run {} ran definition {}, which the store does not hold: save it with \
             Pipeline::save before running",
            engine.run_id(),
            pipeline.hash()
        )
    );
    // A flow that is not a pipeline.
    let task = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    let flow = Flow::linear("plain")
        .add(Atom::new("t", task))
        .build()
        .unwrap();
    let mut plain = Engine::builder(flow).storage(store.clone()).build();
    plain.run().await.unwrap();
    let err = pipeline_status(&*store, plain.run_id()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "run {} is not a run of a pipeline: its inputs name no definition",
            plain.run_id()
        )
    );
    let _: &dyn Backend = &*store;
}
