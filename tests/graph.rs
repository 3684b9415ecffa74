//! Graph export: a flow's graph as Graphviz DOT and as Mermaid, exactly,
//! drawn for a run with its states, tries and durations; text from the
//! flow cannot break out of a label; Graphviz's `dot` draws what is written.

use std::sync::Arc;

use flow::{
    Atom, AtomKind, Backend, CompiledFlow, Engine, Flow, FlowGraph, FnTask, MemoryBackend, Outputs,
    Retry, Signature, TaskError,
};

fn task() -> FnTask {
    FnTask::sync(Signature::new(), |_| Ok(Outputs::new()))
}

/// `stop`, then `backup` and `upgrade` in a retry group of two tries, then
/// `start`; `upgrade` fails when `fail` is set.
fn deploy(fail: bool) -> CompiledFlow {
    let upgrade = if fail {
        FnTask::sync(Signature::new(), |_| Err(TaskError::msg("no")))
    } else {
        task()
    };
    Flow::linear("deploy")
        .add(Atom::new("stop", task()))
        .add(
            Flow::linear("risky")
                .retry(Retry::times(2).named("again"))
                .add(Atom::new("backup", task()))
                .add(Atom::new("upgrade", upgrade)),
        )
        .add(Atom::new("start", task()))
        .build()
        .unwrap()
}

#[test]
fn a_flow_is_drawn_in_dot_and_mermaid() {
    let graph = deploy(false).graph();
    let names: Vec<&str> = graph.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["stop", "again", "backup", "upgrade", "start"]);
    assert_eq!(graph.nodes()[1].kind, AtomKind::Retry);
    assert_eq!(graph.edges(), [(0, 1), (1, 2), (2, 3), (3, 4)]);
    assert_eq!(
        graph.to_dot(),
        r##"digraph "deploy" {
  rankdir=LR;
  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];
  "stop" [label="stop", fillcolor="#ffffff", color="#9e9e9e"];
  "again" [label="again", fillcolor="#ffffff", color="#9e9e9e", shape=diamond, style=filled];
  "backup" [label="backup", fillcolor="#ffffff", color="#9e9e9e"];
  "upgrade" [label="upgrade", fillcolor="#ffffff", color="#9e9e9e"];
  "start" [label="start", fillcolor="#ffffff", color="#9e9e9e"];
  "stop" -> "again";
  "again" -> "backup";
  "backup" -> "upgrade";
  "upgrade" -> "start";
}
"##
    );
    assert_eq!(
        graph.to_mermaid(),
        r#"flowchart LR
  n0["stop"]
  n1{{"again"}}
  n2["backup"]
  n3["upgrade"]
  n4["start"]
  n0 --> n1
  n1 --> n2
  n2 --> n3
  n3 --> n4
"#
    );
}

#[tokio::test]
async fn a_run_is_drawn_with_its_states_and_durations() {
    let store = Arc::new(MemoryBackend::new());
    let mut engine = Engine::builder(deploy(true)).storage(store.clone()).build();
    engine.run().await.expect_err("upgrade fails twice");
    let (run, mut atoms) = store.load_flow(engine.run_id()).await.unwrap();
    // Known times, for an exact drawing: `upgrade` took 1.25 s.
    for a in &mut atoms {
        a.meta["started_at"] = serde_json::json!(100.0);
        a.meta["ended_at"] = serde_json::json!(if a.name == "upgrade" { 101.25 } else { 100.5 });
    }
    let graph = deploy(true).graph().with_run(&atoms, run.updated_at);
    let states: Vec<String> = graph
        .nodes()
        .iter()
        .map(|n| format!("{} {:?} {:?}", n.name, n.state, n.attempts))
        .collect();
    assert_eq!(
        states,
        [
            "stop Some(Reverted) Some(1)",
            "again Some(Reverted) Some(2)",
            "backup Some(Reverted) Some(2)",
            "upgrade Some(Reverted) Some(2)",
            "start Some(Pending) Some(0)"
        ]
    );
    let dot = graph.to_dot();
    assert!(
        dot.contains(r##""upgrade" [label="upgrade\nREVERTED 1.2s 2 tries", fillcolor="#fff9c4", color="#f9a825"];"##),
        "{dot}"
    );
    assert!(
        dot.contains(
            r##""stop" [label="stop\nREVERTED 500ms", fillcolor="#fff9c4", color="#f9a825"];"##
        ),
        "{dot}"
    );
    let mermaid = graph.to_mermaid();
    assert!(
        mermaid.contains("  n3[\"upgrade<br/>REVERTED 1.2s 2 tries\"]\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.ends_with(
            "  classDef pending fill:#ffffff,stroke:#9e9e9e;\n  class n4 pending;\n  \
             classDef reverted fill:#fff9c4,stroke:#f9a825;\n  class n0,n1,n2,n3 reverted;\n"
        ),
        "{mermaid}"
    );
}

#[test]
fn names_from_a_flow_stay_inside_their_labels() {
    let graph = FlowGraph::new(
        "x\"y",
        [
            ("<script>alert(1)</script>".to_string(), AtomKind::Task),
            ("a\"b\\c\nd #1".to_string(), AtomKind::Task),
        ],
        [(0, 1), (1, 7)],
    );
    assert_eq!(graph.edges(), [(0, 1)], "an edge to no atom is left out");
    assert_eq!(
        graph.to_dot(),
        r##"digraph "x\"y" {
  rankdir=LR;
  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];
  "<script>alert(1)</script>" [label="<script>alert(1)</script>", fillcolor="#ffffff", color="#9e9e9e"];
  "a\"b\\c\nd #1" [label="a\"b\\c\nd #1", fillcolor="#ffffff", color="#9e9e9e"];
  "<script>alert(1)</script>" -> "a\"b\\c\nd #1";
}
"##
    );
    assert_eq!(
        graph.to_mermaid(),
        "flowchart LR\n  n0[\"#lt;script#gt;alert(1)#lt;/script#gt;\"]\n  n1[\"a#quot;b\\c d #35;1\"]\n  n0 --> n1\n"
    );
}

#[test]
fn graphviz_draws_what_is_written() {
    let graph = deploy(false).graph();
    let tricky = FlowGraph::new(
        "odd names",
        [
            ("<b>bold</b>".to_string(), AtomKind::Task),
            ("quote\"back\\slash".to_string(), AtomKind::Retry),
        ],
        [(0, 1)],
    );
    for dot in [graph.to_dot(), tricky.to_dot()] {
        let mut child = std::process::Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run Graphviz's `dot` ({e}): install graphviz (for example \
                     `apt-get install graphviz`) to run this test"
                )
            });
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let svg = String::from_utf8(out.stdout).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
