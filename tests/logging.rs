//! The logging listener: every state change of a run goes through `tracing`,
//! inside the run's span.
//!
//! This test has a binary of its own. `tracing` decides once per call site
//! whether it is enabled, for the whole process; a test on another thread that
//! runs an engine while no subscriber is set there can have the run's span
//! judged disabled before this test's subscriber is registered.

mod common;

use common::{Buffer, failing};
use flow::{Engine, Flow, LoggingListener};

#[tokio::test]
async fn the_logging_listener_writes_every_state_change_through_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let _guard = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .finish()
        .set_default();
    let flow = Flow::linear("logged").add(failing("fail")).build().unwrap();
    let mut engine = Engine::builder(flow).listener(LoggingListener).build();
    engine.run().await.unwrap_err();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    // Inside the run's span, which names the run and the flow.
    let span = format!("run{{run={} flow=\"logged\"}}: ", engine.run_id());
    let expected = [
        (0, " INFO ", "flow: flow RUNNING"),
        (1, " INFO ", "flow: fail.t RUNNING"),
        (2, " WARN ", "flow: fail.t FAILURE(Failure: Woot!)"),
        (4, " INFO ", "flow: fail.t REVERTED(())"),
        (5, " INFO ", "flow: flow REVERTED"),
    ];
    for (line, level, rest) in expected {
        assert!(
            lines[line].starts_with(&format!("{level}{span}{rest}")),
            "line {line}: {}",
            lines[line]
        );
    }
    assert!(lines[2].contains("failure=Woot!"), "{}", lines[2]);
}
