//! Flows assembled at run time from data (here, JSON describing shell-like
//! steps) get the checks of `flow!`, with the same sentences, when they are
//! built: before anything runs.

use flow::{Atom, Flow, FnTask, Outputs, Signature, TaskError, TypeInfo, Value};
use serde::Deserialize;

/// One step of a data-defined flow: what it reads and what it writes.
#[derive(Debug, Deserialize)]
struct Step {
    name: String,
    #[serde(default)]
    requires: Vec<(String, String)>,
    #[serde(default)]
    provides: Vec<(String, String)>,
}

/// A flow file: the declared inputs and the steps, in order.
#[derive(Debug, Deserialize)]
struct FlowFile {
    name: String,
    #[serde(default)]
    inputs: Vec<(String, String)>,
    #[serde(default)]
    parallel: bool,
    steps: Vec<Step>,
}

fn typed(sig: Signature, kind: &str, name: &str, input: bool) -> Result<Signature, String> {
    Ok(match (kind, input) {
        ("string", true) => sig.requires::<String>(name.to_string()),
        ("int", true) => sig.requires::<i64>(name.to_string()),
        ("string", false) => sig.provides::<String>(name.to_string()),
        ("int", false) => sig.provides::<i64>(name.to_string()),
        (other, _) => return Err(format!("unknown type `{other}`")),
    })
}

/// Builds the flow a file describes; every step echoes its outputs.
fn load(json: &str) -> Result<Result<flow::CompiledFlow, flow::BuildErrors>, String> {
    let file: FlowFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut flow = if file.parallel {
        Flow::unordered(file.name.clone())
    } else {
        Flow::linear(file.name.clone())
    };
    for (name, kind) in &file.inputs {
        flow = match kind.as_str() {
            "string" => flow.input::<String>(name.clone()),
            "int" => flow.input::<i64>(name.clone()),
            other => return Err(format!("unknown type `{other}`")),
        };
    }
    for step in file.steps {
        let mut sig = Signature::new();
        for (n, k) in &step.requires {
            sig = typed(sig, k, n, true)?;
        }
        let mut outputs = Vec::new();
        for (n, k) in &step.provides {
            sig = typed(sig, k, n, false)?;
            outputs.push(k.clone());
        }
        let task = FnTask::sync(sig, move |_| {
            outputs
                .iter()
                .map(|k| match k.as_str() {
                    "int" => Ok(Value::new(1i64)),
                    _ => Ok(Value::new(String::from("ok"))),
                })
                .collect::<Result<Outputs, TaskError>>()
        });
        flow = flow.add(Atom::new(step.name, task));
    }
    Ok(flow.build())
}

fn first_error(json: &str) -> String {
    match load(json).unwrap() {
        Ok(_) => "built".to_string(),
        Err(errors) => errors.errors()[0].to_string(),
    }
}

#[test]
fn a_well_formed_file_builds() {
    let json = r#"{
        "name": "deploy",
        "inputs": [["host", "string"]],
        "steps": [
            {"name": "stop_server", "requires": [["host", "string"]], "provides": [["stopped", "int"]]},
            {"name": "start_server", "requires": [["host", "string"], ["stopped", "int"]]}
        ]
    }"#;
    let built = load(json).unwrap().unwrap();
    assert_eq!(
        built.atom_names().collect::<Vec<_>>(),
        ["stop_server", "start_server"]
    );
    assert_eq!(built.inputs()[0].ty(), TypeInfo::of::<String>());
}

#[test]
fn a_missing_input_reads_as_the_compile_time_error() {
    let json = r#"{
        "name": "deploy",
        "inputs": [["host", "string"]],
        "steps": [{"name": "stop_server", "requires": [["db", "string"]]}]
    }"#;
    assert_eq!(
        first_error(json),
        "task `stop_server` requires `db: String`, but no earlier task in flow `deploy` \
         provides `db` and the flow does not declare it as an input"
    );
}

#[test]
fn a_provider_that_runs_after_reads_as_the_compile_time_error() {
    let json = r#"{
        "name": "upgrade",
        "inputs": [["db", "string"]],
        "steps": [
            {"name": "migrate", "requires": [["backup", "string"]]},
            {"name": "back_up", "requires": [["db", "string"]], "provides": [["backup", "string"]]}
        ]
    }"#;
    assert_eq!(
        first_error(json),
        "task `migrate` requires `backup: String`, but `backup` is provided only by `back_up`, \
         which does not run before it: move `back_up` earlier"
    );
}

#[test]
fn a_concurrent_provider_reads_as_the_compile_time_error() {
    let json = r#"{
        "name": "both",
        "parallel": true,
        "inputs": [["db", "string"]],
        "steps": [
            {"name": "back_up", "requires": [["db", "string"]], "provides": [["backup", "string"]]},
            {"name": "migrate", "requires": [["backup", "string"]]}
        ]
    }"#;
    assert_eq!(
        first_error(json),
        "task `migrate` requires `backup: String`, but `backup` is provided only by `back_up`, \
         which runs concurrently with it (same unordered group `both`)"
    );
}

#[test]
fn a_type_mismatch_is_reported_before_anything_runs() {
    let json = r#"{
        "name": "serve",
        "steps": [
            {"name": "pick_port", "provides": [["port", "string"]]},
            {"name": "listen", "requires": [["port", "int"]]}
        ]
    }"#;
    assert_eq!(
        first_error(json),
        "task `listen` requires `port: i64`, but its provider `pick_port` provides `port` as \
         `String`: make the types agree, or rebind the input to another symbol"
    );
}

#[test]
fn an_unknown_type_in_the_file_is_an_error_not_a_panic() {
    let json = r#"{"name": "x", "steps": [{"name": "a", "requires": [["p", "float"]]}]}"#;
    assert_eq!(load(json).unwrap_err(), "unknown type `float`");
}
