//! Helpers shared by the integration tests: the tasks of the conformance
//! scenarios and engine constructors for both modes.
#![allow(dead_code, unreachable_pub)]

use flow::{
    Atom, CaptureListener, CompiledFlow, Engine, FnTask, Mode, Outputs, Signature, TaskError,
};

/// Provides `5` under `<name>_out`... no: provides nothing by name conflict;
/// returns 5 as its single unnamed result (published under `name`).
pub fn progressing(name: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(Signature::new().provides::<u32>(name), |_| {
            Ok(Outputs::one(5u32))
        }),
    )
}

/// Fails with `Woot!`.
pub fn failing(name: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(Signature::new(), |_| Err(TaskError::msg("Woot!"))),
    )
}

/// Requires `x: u32` and `y: u32`; fails with `Woot!` unless they are equal.
pub fn conditional(name: &'static str) -> Atom {
    Atom::new(
        name,
        FnTask::sync(
            Signature::new().requires::<u32>("x").requires::<u32>("y"),
            |a| {
                if a.get::<u32>(0)? == a.get::<u32>(1)? {
                    Ok(Outputs::new())
                } else {
                    Err(TaskError::msg("Woot!"))
                }
            },
        ),
    )
}

/// Both engine modes, for tests that run on each.
pub const MODES: [Mode; 2] = [Mode::Serial, Mode::Parallel(4)];

/// An engine for `flow` in `mode`, capturing every event.
pub fn engine(flow: CompiledFlow, mode: Mode) -> (Engine, CaptureListener) {
    let capture = CaptureListener::new();
    let engine = Engine::builder(flow)
        .mode(mode)
        .listener(capture.clone())
        .build();
    (engine, capture)
}

/// Index of `event` in `events`, panicking with the list when absent.
pub fn pos(events: &[String], event: &str) -> usize {
    events
        .iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("event `{event}` not found in {events:#?}"))
}

/// The four events of an atom that ran, returned `result` and was reverted.
pub fn ran_and_reverted(name: &str, result: &str) -> [String; 4] {
    [
        format!("{name}.t RUNNING"),
        format!("{name}.t SUCCESS({result})"),
        format!("{name}.t REVERTING"),
        format!("{name}.t REVERTED(())"),
    ]
}

/// A linear chain of `n` tasks: task `t{i}` requires `v{i}: u64` and provides
/// `v{i+1}` = input + 1; the flow declares the input `v0`.
pub fn chain(n: usize) -> flow::Flow {
    let mut flow = flow::Flow::linear("chain").input::<u64>("v0");
    for i in 0..n {
        let task = FnTask::sync(
            Signature::new()
                .requires::<u64>(format!("v{i}"))
                .provides::<u64>(format!("v{}", i + 1)),
            |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)),
        );
        flow.push(Atom::new(format!("t{i}"), task));
    }
    flow
}

/// A task gathering the `u32` symbols `names`, in that order, into
/// `list: Vec<u32>`.
pub fn gatherer(names: [&'static str; 2]) -> FnTask {
    FnTask::sync(
        Signature::new()
            .collect::<u32>("parts", names)
            .provides::<Vec<u32>>("list"),
        |a| {
            Ok(Outputs::one(
                a.list::<u32>(0)?.into_iter().copied().collect::<Vec<_>>(),
            ))
        },
    )
}

/// Sends `sig` (`-STOP`, `-CONT`, ...) to process `pid` with the `kill`
/// command.
pub fn kill(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// Stops process `pid` with SIGSTOP at an instant when it is not in the
/// middle of a commit to the SQLite store `db`: a process stopped while it
/// holds the store's write lock blocks every other process's writes until
/// it goes on (a limitation of SQLite that the README states).
pub fn pause_between_writes(pid: u32, db: &std::path::Path) {
    for _ in 0..1000 {
        kill(pid, "-STOP");
        let conn = rusqlite::Connection::open(db).expect("the store opens");
        conn.busy_timeout(std::time::Duration::from_millis(20))
            .expect("a timeout");
        if conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok() {
            return;
        }
        kill(pid, "-CONT");
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    panic!("process {pid} never let go of the store's write lock");
}

/// A writer that keeps what a `tracing` subscriber writes, for tests that
/// read their log lines back.
#[derive(Clone, Default)]
pub struct Buffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
