//! `flow graph`: a pipeline file or a run, as DOT that Graphviz draws and as
//! Mermaid that passes a structural check of the flowchart syntax.
//!
//! The Mermaid check is written here, against the subset of the flowchart
//! grammar that `flow` writes (the `@mermaid-js/mermaid-cli` renderer needs
//! a browser download that CI cannot make): a `flowchart` header with a
//! direction; node statements `nK["label"]` and `nK{{"label"}}` whose labels
//! hold no raw quote, bracket or markup other than `<br/>`; edges `nA --> nB`
//! between declared nodes; `classDef` with `fill` and `stroke` colours; and
//! `class` statements naming declared nodes and defined classes.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{Scratch, fixture};

/// Checks that `text` is a well-formed Mermaid flowchart of the subset
/// `flow` writes; returns the nodes and edges it declares.
fn check_mermaid(text: &str) -> Result<(usize, usize), String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("an empty graph")?;
    let dir = header
        .strip_prefix("flowchart ")
        .ok_or_else(|| format!("not a flowchart header: {header:?}"))?;
    if !["LR", "RL", "TB", "TD", "BT"].contains(&dir) {
        return Err(format!("unknown direction {dir:?}"));
    }
    let id = |s: &str| -> Result<String, String> {
        let ok = s.starts_with('n') && s.len() > 1 && s[1..].chars().all(|c| c.is_ascii_digit());
        if ok {
            Ok(s.to_string())
        } else {
            Err(format!("bad node id {s:?}"))
        }
    };
    let (mut nodes, mut edges, mut classes) = (HashSet::new(), 0, HashSet::new());
    let mut used_classes = Vec::new();
    for line in lines {
        let stmt = line
            .strip_prefix("  ")
            .ok_or_else(|| format!("not indented: {line:?}"))?;
        if let Some((from, to)) = stmt.split_once(" --> ") {
            let (from, to) = (id(from)?, id(to)?);
            if !nodes.contains(&from) || !nodes.contains(&to) {
                return Err(format!("edge between undeclared nodes: {stmt:?}"));
            }
            edges += 1;
        } else if let Some(rest) = stmt.strip_prefix("classDef ") {
            let (name, style) = rest
                .split_once(' ')
                .ok_or_else(|| format!("classDef without a style: {stmt:?}"))?;
            let style = style.strip_suffix(';').ok_or("classDef without `;`")?;
            for part in style.split(',') {
                let (key, value) = part.split_once(':').ok_or("a style without `:`")?;
                let colour = value.len() == 7
                    && value.starts_with('#')
                    && value[1..].chars().all(|c| c.is_ascii_hexdigit());
                if !["fill", "stroke"].contains(&key) || !colour {
                    return Err(format!("bad style {part:?}"));
                }
            }
            classes.insert(name.to_string());
        } else if let Some(rest) = stmt.strip_prefix("class ") {
            let (ids, name) = rest.split_once(' ').ok_or("class without a name")?;
            let name = name.strip_suffix(';').ok_or("class without `;`")?;
            for n in ids.split(',') {
                if !nodes.contains(&id(n)?) {
                    return Err(format!("class of an undeclared node: {stmt:?}"));
                }
            }
            used_classes.push(name.to_string());
        } else {
            let open = stmt
                .find(['[', '{'])
                .ok_or_else(|| format!("unknown statement {stmt:?}"))?;
            let node = id(&stmt[..open])?;
            let shape = &stmt[open..];
            let label = shape
                .strip_prefix("[\"")
                .and_then(|s| s.strip_suffix("\"]"))
                .or_else(|| {
                    shape
                        .strip_prefix("{{\"")
                        .and_then(|s| s.strip_suffix("\"}}"))
                })
                .ok_or_else(|| format!("bad node shape {stmt:?}"))?;
            let bare = label.replace("<br/>", "");
            if bare.contains(['"', '<', '>']) {
                return Err(format!("raw syntax in a label: {label:?}"));
            }
            if !nodes.insert(node) {
                return Err(format!("a node declared twice: {stmt:?}"));
            }
        }
    }
    if let Some(c) = used_classes.iter().find(|c| !classes.contains(*c)) {
        return Err(format!("class {c:?} is used but not defined"));
    }
    Ok((nodes.len(), edges))
}

fn dot_draws(dot: &str) {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run Graphviz's `dot` ({e}): install graphviz to run this test")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.is_empty(),
        "dot refused it: {err}\n{dot}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn a_pipeline_file_is_drawn_as_dot_and_mermaid() {
    let s = Scratch::new();
    let (code, dot, _) = s.run(&["graph", &fixture("live.yaml")]);
    assert_eq!(code, 0);
    snap!(s, "graph_file_dot", dot);
    dot_draws(&dot);
    let (code, mermaid, _) = s.run(&["graph", &fixture("live.yaml"), "--format", "mermaid"]);
    assert_eq!(code, 0);
    snap!(s, "graph_file_mermaid", mermaid);
    assert_eq!(check_mermaid(&mermaid), Ok((4, 4)));
}

#[test]
fn a_run_is_drawn_with_states_and_durations() {
    let s = Scratch::new();
    assert_eq!(
        s.run(&["run", &fixture("chain.yaml"), "-p", "fail_at=test"])
            .0,
        1
    );
    let run = s.newest_run();
    let (code, dot, _) = s.run(&["graph", &run[..6]]);
    assert_eq!(code, 0);
    snap!(s, "graph_run_dot", dot);
    dot_draws(&dot);
    assert!(
        dot.contains("\"prepare\" [label=\"prepare\\nREVERTED "),
        "{dot}"
    );
    let (code, mermaid, _) = s.run(&["graph", &run, "--format", "mermaid"]);
    assert_eq!(code, 0);
    snap!(s, "graph_run_mermaid", mermaid);
    assert_eq!(check_mermaid(&mermaid), Ok((4, 3)));
}

#[test]
fn graph_refuses_malformed_files_and_unknown_runs() {
    let s = Scratch::new();
    let (code, out, err) = s.run(&["graph", &fixture("broken.yaml")]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("the steps depend on each other in a cycle"),
        "{err}"
    );
    assert_eq!(s.run(&["run", &fixture("chain.yaml")]).0, 0);
    let (code, _, err) = s.run(&["graph", "deadbeef"]);
    assert_eq!(code, 3);
    assert!(err.contains("there is no run `deadbeef`"), "{err}");
}

#[test]
fn the_mermaid_check_catches_what_mermaid_would_refuse() {
    assert_eq!(
        check_mermaid("flowchart LR\n  n0[\"a\"]\n  n1[\"b\"]\n  n0 --> n1\n"),
        Ok((2, 1))
    );
    for bad in [
        "graph LR\n",
        "flowchart XY\n",
        "flowchart LR\n  n0[\"a\"]\n  n0 --> n1\n",
        "flowchart LR\n  n0[\"a \"quoted\"\"]\n",
        "flowchart LR\n  n0[\"<script>\"]\n",
        "flowchart LR\n  n0[\"a\"\n",
        "flowchart LR\n  n0[\"a\"]\n  class n0 done;\n",
        "flowchart LR\n  n0[\"a\"]\n  classDef done fill:red;\n",
        "flowchart LR\n  n0[\"a\"]\n  n0[\"b\"]\n",
    ] {
        assert!(check_mermaid(bad).is_err(), "accepted {bad:?}");
    }
}

/// A run of a flow written in Rust is drawn from the graph its journal
/// recorded: the program that ran it is not needed.
#[test]
fn a_run_of_a_rust_flow_is_drawn_from_its_journal() {
    use flow::{Atom, Engine, Flow, FnTask, Outputs, Signature, SqliteBackend, TaskError};
    let s = Scratch::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let run = rt.block_on(async {
        let store = std::sync::Arc::new(SqliteBackend::open(s.store()).unwrap());
        let ok = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
        let boom = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("no")));
        let flow = Flow::graph("rusty")
            .add(Atom::new("fetch", ok()))
            .add(Atom::new("build", ok()))
            .add(Atom::new("ship", boom))
            .link("fetch", "ship")
            .link("build", "ship")
            .build()
            .unwrap();
        let mut engine = Engine::builder(flow).storage(store).build();
        engine.run().await.unwrap_err();
        engine.run_id().to_string()
    });
    let (code, dot, err) = s.run(&["graph", &run]);
    assert_eq!(code, 0, "{err}");
    dot_draws(&dot);
    assert!(dot.starts_with("digraph \"rusty\" {"), "{dot}");
    assert!(
        dot.contains("\"fetch\" -> \"ship\";") && dot.contains("\"build\" -> \"ship\";"),
        "{dot}"
    );
    assert!(dot.contains("\"ship\" [label=\"ship\\nREVERTED"), "{dot}");
    let (code, mermaid, _) = s.run(&["graph", &run, "--format", "mermaid"]);
    assert_eq!(code, 0);
    assert_eq!(check_mermaid(&mermaid), Ok((3, 2)));
}
