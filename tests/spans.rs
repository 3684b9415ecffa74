//! `tracing` spans: a task's own log lines say which run, flow, atom and
//! attempt they come from, on both engines, for synchronous and
//! asynchronous tasks, in `execute` and in `revert`.

mod common;

use common::Buffer;
use flow::{Atom, Engine, Flow, FnTask, Mode, Outputs, Signature, TaskError};

fn lines(mode: Mode) -> (String, Vec<String>) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let sync_step = FnTask::sync(Signature::new(), |_| {
        tracing::info!("copying the backup");
        Ok(Outputs::new())
    })
    .on_revert_sync(|_| {
        tracing::info!("deleting the copy");
        Ok(None)
    });
    let async_step = FnTask::asynchronous(Signature::new(), |_, _| async {
        tokio::task::yield_now().await;
        tracing::info!("migrating");
        Err(TaskError::msg("no"))
    });
    let flow = Flow::linear("upgrade")
        .add(Atom::new("copy", sync_step))
        .add(Atom::new("migrate", async_step))
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let mut engine = Engine::builder(flow).mode(mode).build();
            engine.run().await.expect_err("migrate fails");
            engine.run_id()
        })
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (
        id.to_string(),
        text.lines()
            .filter(|l| !l.contains("flow: "))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn a_tasks_log_lines_say_where_they_come_from() {
    for mode in [Mode::Serial, Mode::Parallel(2)] {
        let (id, lines) = lines(mode);
        let run = format!("run{{run={id} flow=\"upgrade\"}}");
        assert_eq!(
            lines,
            [
                format!(
                    " INFO {run}:atom{{atom=\"copy\" attempt=1 method=\"execute\"}}: copying the backup"
                ),
                format!(
                    " INFO {run}:atom{{atom=\"migrate\" attempt=1 method=\"execute\"}}: migrating"
                ),
                format!(
                    " INFO {run}:atom{{atom=\"copy\" attempt=1 method=\"revert\"}}: deleting the copy"
                ),
            ],
            "{mode:?}"
        );
    }
}
