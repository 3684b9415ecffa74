use flow_core::FlowState;
use flow_pipeline::{Params, Pipeline, Settings};

#[tokio::test]
async fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::from_str(
        "s.yaml",
        r#"
name: s
parameters:
  who: {default: world}
  n: {type: int, default: 3}
steps:
  - name: a
    command: [echo, "hello {who}", "{n}"]
    output: greeting
  - name: b
    script: echo "got {greeting}"; exit 0
    depends-on: [a]
    retry: {attempts: 2}
  - name: c
    command: ["true"]
"#,
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let run = p
        .to_flow(&Params::new(), &Settings::new(dir.path()))
        .unwrap();
    let logs = run.log_dir().to_path_buf();
    let mut engine = run
        .engine()
        .unwrap_or_else(|e| panic!("{e}"))
        .parallel(4)
        .build();
    engine.run().await.unwrap();
    assert_eq!(engine.state(), FlowState::Success);
    assert_eq!(
        engine.fetch::<String>("greeting").map(String::as_str),
        Some("hello world 3")
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("b.stdout")).unwrap(),
        "got hello world 3\n"
    );
}
