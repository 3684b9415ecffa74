//! What a `#[task]` function may return beyond a value or a tuple: a struct
//! whose fields are provided as separate symbols (semantics.md 2.1).

mod common;

use common::MODES;
use flow::{Atom, Engine, Flow, TaskDef, TaskError, flow, task};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Port(u16);

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
async fn resolve_checked(name: &str) -> Result<Endpoint, TaskError> {
    if name.is_empty() {
        return Err(TaskError::msg("an empty name resolves to nothing"));
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
