//! What a `#[task]` function may return beyond a value or a tuple: a struct
//! whose fields are provided as separate symbols (semantics.md 2.1), and the
//! error types applications use: `Box<dyn Error + Send + Sync>` and
//! `anyhow::Error` (the `anyhow` feature).

mod common;

use std::error::Error;

use common::MODES;
use flow::{Atom, Engine, Failure, FailureKind, Flow, RunError, TaskDef, flow, task};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Port(u16);

/// The one failure of a reverted run, which must be `atom`'s.
fn only_failure(err: &RunError, atom: &str) -> Failure {
    let RunError::Reverted { failures, .. } = err else {
        panic!("expected a revert, got {err:?}");
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].atom, atom);
    failures[0].failure.clone()
}

/// What `resolve` returns: two of its fields are provided, one is not.
struct Endpoint {
    host: String,
    port: Port,
    #[allow(dead_code)]
    comment: &'static str,
}

#[task(provides = Endpoint { host: String, port: Port })]
fn resolve(name: &str) -> Endpoint {
    Endpoint {
        host: format!("{name}.internal"),
        port: Port(5432),
        comment: "not provided",
    }
}

#[task(provides = Endpoint { port: Port, host: String })]
async fn resolve_checked(name: &str) -> Result<Endpoint, Box<dyn Error + Send + Sync>> {
    if name.is_empty() {
        return Err("an empty name resolves to nothing".into());
    }
    Ok(Endpoint {
        host: name.to_string(),
        port: Port(80),
        comment: "",
    })
}

#[task(provides = url)]
fn connect(host: &str, port: &Port) -> String {
    format!("postgres://{host}:{}", port.0)
}

#[test]
fn struct_fields_are_the_outputs_in_the_order_written() {
    let names: Vec<_> = resolve::INFO
        .outputs
        .iter()
        .map(|o| (o.name, o.ty))
        .collect();
    assert_eq!(names, [("host", "String"), ("port", "Port")]);
    let names: Vec<_> = resolve_checked::INFO
        .outputs
        .iter()
        .map(|o| (o.name, o.ty))
        .collect();
    assert_eq!(names, [("port", "Port"), ("host", "String")]);
    // The function stays callable as written.
    assert_eq!(resolve("db").host, "db.internal");
}

#[tokio::test]
async fn struct_outputs_feed_a_checked_flow() {
    let connect_db = flow! {
        connect_db(name: String) -> (url: String, port: Port) {
            resolve,
            connect,
        }
    };
    let (url, port) = connect_db.run(("db".to_string(),)).await.expect("runs");
    assert_eq!(url, "postgres://db.internal:5432");
    assert_eq!(port, Port(5432));
}

#[tokio::test]
async fn struct_outputs_on_both_engines_through_the_builder() {
    for mode in MODES {
        let flow = Flow::linear("connect")
            .input::<String>("name")
            .add(Atom::of(resolve_checked {}))
            .add(Atom::of(connect {}))
            .build()
            .expect("valid");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("name", "web".to_string())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<String>("url").unwrap(), "postgres://web:80");
        assert_eq!(engine.fetch::<Port>("port").unwrap(), &Port(80));
    }
}

#[tokio::test]
async fn a_boxed_error_fails_the_task_with_its_message() {
    let connect_db = flow! {
        connect_db(name: String) -> (url: String) {
            resolve_checked,
            connect,
        }
    };
    let err = connect_db.run((String::new(),)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "flow `connect_db` was reverted: task `resolve_checked` failed: an empty name resolves to nothing"
    );
    let failure = only_failure(&err, "resolve_checked");
    assert_eq!(failure.kind(), FailureKind::Error);
    assert_eq!(failure.message(), "an empty name resolves to nothing");
    assert_eq!(failure.type_name(), "Box<dyn Error + Send + Sync>");
}

#[derive(Debug)]
struct Closed(u16);

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "port {} is closed", self.0)
    }
}

impl Error for Closed {}

#[task(provides = banner)]
fn probe(port: &Port) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let answer: Result<String, Closed> = Err(Closed(port.0));
    answer.with_context(|| format!("probing port {}", port.0))
}

#[tokio::test]
async fn an_anyhow_error_fails_the_task_with_its_context_chain() {
    let check = flow! {
        check(name: String) {
            resolve,
            probe,
        }
    };
    let err = check.run(("db".to_string(),)).await.unwrap_err();
    let failure = only_failure(&err, "probe");
    assert_eq!(failure.message(), "probing port 5432");
    assert_eq!(failure.causes(), ["port 5432 is closed"]);
    assert_eq!(failure.type_name(), "anyhow::Error");
}
