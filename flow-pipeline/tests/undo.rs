//! Undo commands run when the run reverts: only for steps that succeeded,
//! in reverse dependency order, with their outputs logged.

use std::path::Path;

use flow_core::{FlowState, RunError};
use flow_pipeline::{Params, Pipeline, Settings, StepReport};

/// a -> b -> c -> fail; a -> d; e alone; f after fail.
const DEPLOY: &str = r#"
name: deploy
parameters:
  record: {type: string}
  fail: {type: bool, default: true}
steps:
  - name: a
    script: echo do-a >> {record}
    undo: {script: 'echo undo-a >> {record}; echo a is undone'}
  - name: b
    script: echo do-b >> {record}; echo made-b-42
    output: thing
    depends-on: [a]
    undo: {command: [sh, -c, 'echo "undo-b $1" >> "$0"; echo removed "$1" >&2', '{record}', '{thing}']}
  - name: c
    script: echo do-c >> {record}
    depends-on: [b]
    undo: {script: 'echo undo-c >> {record}'}
  - name: d
    script: echo do-d >> {record}
    depends-on: [a]
    undo: {script: 'echo undo-d >> {record}'}
  - name: no-undo
    script: echo do-no-undo >> {record}
    depends-on: [a]
  - name: fail
    script: |
      echo do-fail >> {record}
      echo about to fail
      echo the disk is full >&2
      [ {fail} = false ]
    depends-on: [c, d, no-undo]
    undo: {script: 'echo undo-fail >> {record}'}
  - name: after
    script: echo do-after >> {record}
    depends-on: [fail]
    undo: {script: 'echo undo-after >> {record}'}
"#;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn undo_commands_run_in_reverse_dependency_order_with_their_outputs_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("record");
    let pipeline = Pipeline::from_str("deploy.yaml", DEPLOY).unwrap();
    let run = pipeline
        .to_flow(
            &Params::new().set("record", record.to_str().unwrap()),
            &Settings::new(tmp.path().join("logs")),
        )
        .unwrap();
    let logs = run.log_dir().to_path_buf();
    let mut engine = run.engine().unwrap().build();
    let err = engine.run().await.unwrap_err();
    assert!(matches!(err, RunError::Reverted { .. }));
    assert_eq!(engine.state(), FlowState::Reverted);
    // The serial engine: declaration order forward, reverse dependency order
    // back; `fail` failed (no undo), `after` never ran (no undo), `no-undo`
    // has none.
    assert_eq!(
        lines(&record),
        [
            "do-a",
            "do-b",
            "do-c",
            "do-d",
            "do-no-undo",
            "do-fail",
            "undo-d",
            "undo-c",
            "undo-b made-b-42",
            "undo-a",
        ]
    );
    assert_eq!(
        engine.failure("fail").map(|f| f.message().to_string()),
        Some(format!(
            "step `fail` failed: exit status 1\n\
             --- its standard output ({0}/fail.stdout) ---\nabout to fail\n\
             --- its standard error ({0}/fail.stderr) ---\nthe disk is full\n",
            logs.display()
        ))
    );
    // The undo commands' outputs are logged beside the steps'.
    assert_eq!(
        std::fs::read_to_string(logs.join("a.undo.stdout")).unwrap(),
        "a is undone\n"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("b.undo.stderr")).unwrap(),
        "removed made-b-42\n"
    );
    assert!(!logs.join("fail.undo.stdout").exists());
    assert!(!logs.join("after.stdout").exists());
    // The revert result of a step is its undo's report.
    let undone: &StepReport = engine
        .revert_result("a")
        .and_then(|v| v.downcast_ref())
        .unwrap();
    assert_eq!(
        (undone.code, undone.stdout.tail.as_str()),
        (Some(0), "a is undone\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_parallel_each_undo_waits_for_the_undo_of_every_step_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("record");
    let pipeline = Pipeline::from_str("deploy.yaml", DEPLOY).unwrap();
    let run = pipeline
        .to_flow(
            &Params::new().set("record", record.to_str().unwrap()),
            &Settings::new(tmp.path().join("logs")),
        )
        .unwrap();
    let mut engine = run.engine().unwrap().parallel(4).build();
    engine.run().await.unwrap_err();
    let seen = lines(&record);
    let at = |line: &str| {
        seen.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line} in {seen:?}"))
    };
    assert!(at("undo-c") < at("undo-b made-b-42"));
    assert!(at("undo-b made-b-42") < at("undo-a"));
    assert!(at("undo-d") < at("undo-a"));
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(!seen.iter().any(|l| l == "undo-fail" || l.contains("after")));
}

#[tokio::test]
async fn a_run_that_does_not_fail_undoes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("record");
    let pipeline = Pipeline::from_str("deploy.yaml", DEPLOY).unwrap();
    let run = pipeline
        .to_flow(
            &Params::new()
                .set("record", record.to_str().unwrap())
                .set("fail", false),
            &Settings::new(tmp.path().join("logs")),
        )
        .unwrap();
    let mut engine = run.engine().unwrap().build();
    engine.run().await.unwrap();
    assert_eq!(
        lines(&record),
        [
            "do-a",
            "do-b",
            "do-c",
            "do-d",
            "do-no-undo",
            "do-fail",
            "do-after"
        ]
    );
    assert_eq!(
        engine.fetch::<String>("thing").map(String::as_str),
        Some("made-b-42")
    );
}
