//! The seed scenario of `flow`: upgrade a server, or leave it as it was.
//!
//! ```text
//! stop-server -> backup-database -> { upgrade-database, upgrade-application } -> start-server
//! ```
//!
//! The two upgrades form an unordered group and run at the same time on the
//! parallel engine. Data passes between the steps as typed symbols: the run is
//! given `server: String` and `version: String`, `backup-database` provides
//! `backup: String` for `upgrade-database`, which provides `schema: u32`, and
//! `upgrade-application` provides `app_version: String`; `start-server` needs
//! both. `Flow::build` checks all of this before anything runs.
//!
//! Every step has a revert that undoes it. Run with `--fail-app-upgrade` to make
//! the application upgrade fail: the engine then reverts everything that ran, in
//! reverse order (both upgrades, then the backup, then the stop), and the
//! program exits with status 1.
//!
//! ```text
//! cargo run --example upgrade
//! cargo run --example upgrade -- --fail-app-upgrade
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use flow::{
    Atom, CompiledFlow, Detail, Engine, Event, Flow, FnTask, Listener, Outcome, Outputs, RunError,
    Signature, TaskError,
};

const USAGE: &str = "usage: upgrade [--fail-app-upgrade] [--help]";

/// Prints a line to stdout. Unlike `println!`, it does not panic when stdout
/// is closed (for example when piped into `head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints a line to stderr, without panicking either.
macro_rules! complain {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Simulated work: the steps wait as if on the network or a disk.
async fn work(millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// `stop-server(server: String)`; its revert starts the server again.
fn stop_server() -> FnTask {
    FnTask::sync(Signature::new().requires::<String>("server"), |args| {
        say!("      stopping {}", args.get::<String>(0)?);
        Ok(Outputs::new())
    })
    .on_revert_sync(|input| {
        say!(
            "      undo: starting {} again",
            input.args.get::<String>(0)?
        );
        Ok(None)
    })
}

/// `backup-database(server: String, version: String) -> backup: String`; its
/// revert deletes the backup.
fn backup_database() -> FnTask {
    let signature = Signature::new()
        .requires::<String>("server")
        .requires::<String>("version")
        .provides::<String>("backup");
    FnTask::asynchronous(signature, |args, _ctx| async move {
        let server = args.get::<String>(0)?;
        let version = args.get::<String>(1)?;
        let backup = format!("/var/backups/{server}-before-{version}.sql");
        say!("      backing up the database of {server} to {backup}");
        work(30).await;
        Ok(Outputs::one(backup))
    })
    .on_revert_sync(|input| {
        let backup = match &input.outcome {
            Outcome::Success(out) => out
                .values()
                .first()
                .and_then(|v| v.downcast_ref::<String>()),
            Outcome::Failure(_) => None,
        };
        if let Some(backup) = backup {
            say!("      undo: deleting the backup {backup}");
        }
        Ok(None)
    })
}

/// `upgrade-database(backup: String, version: String) -> schema: u32`; its
/// revert restores the database from the backup.
fn upgrade_database() -> FnTask {
    let signature = Signature::new()
        .requires::<String>("backup")
        .requires::<String>("version")
        .provides::<u32>("schema");
    FnTask::asynchronous(signature, |args, _ctx| async move {
        say!(
            "      migrating the database schema to {}",
            args.get::<String>(1)?
        );
        work(50).await;
        Ok(Outputs::one(42u32))
    })
    .on_revert_sync(|input| {
        let backup = input.args.get::<String>(0)?;
        let why: Vec<&str> = input.failures.keys().map(String::as_str).collect();
        say!(
            "      undo: restoring the database from {backup} (because {} failed)",
            why.join(", ")
        );
        Ok(None)
    })
}

/// `upgrade-application(server: String, version: String) -> app_version: String`;
/// fails on purpose when `fail` is set. Its revert puts the old release back.
fn upgrade_application(fail: bool) -> FnTask {
    let signature = Signature::new()
        .requires::<String>("server")
        .requires::<String>("version")
        .provides::<String>("app_version");
    FnTask::asynchronous(signature, move |args, _ctx| async move {
        let server = args.get::<String>(0)?;
        let version = args.get::<String>(1)?;
        say!("      installing application {version} on {server}");
        work(100).await;
        if fail {
            return Err(TaskError::msg(format!(
                "package checksum mismatch for application {version}"
            )));
        }
        Ok(Outputs::one(version.clone()))
    })
    .on_revert_sync(|input| {
        let server = input.args.get::<String>(0)?;
        match &input.outcome {
            Outcome::Success(_) => {
                say!("      undo: reinstalling the previous release on {server}")
            }
            // This step is the one that failed: clean up what it left behind.
            Outcome::Failure(_) => {
                say!("      undo: removing the half-installed release from {server}")
            }
        }
        Ok(None)
    })
}

/// `start-server(server: String, schema: u32, app_version: String)`; its revert
/// stops the server again.
fn start_server() -> FnTask {
    let signature = Signature::new()
        .requires::<String>("server")
        .requires::<u32>("schema")
        .requires::<String>("app_version");
    FnTask::sync(signature, |args| {
        say!(
            "      starting {} (application {}, schema {})",
            args.get::<String>(0)?,
            args.get::<String>(2)?,
            args.get::<u32>(1)?
        );
        Ok(Outputs::new())
    })
    .on_revert_sync(|input| {
        say!("      undo: stopping {}", input.args.get::<String>(0)?);
        Ok(None)
    })
}

fn upgrade_flow(fail_app_upgrade: bool) -> Result<CompiledFlow, flow::BuildErrors> {
    Flow::linear("upgrade")
        .input::<String>("server")
        .input::<String>("version")
        .add(Atom::new("stop-server", stop_server()))
        .add(Atom::new("backup-database", backup_database()))
        .add(
            Flow::unordered("upgrades")
                .add(Atom::new("upgrade-database", upgrade_database()))
                .add(Atom::new(
                    "upgrade-application",
                    upgrade_application(fail_app_upgrade),
                )),
        )
        .add(Atom::new("start-server", start_server()))
        .build()
}

/// Prints each state change as a readable line.
#[derive(Debug)]
struct Progress;

impl Listener for Progress {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Flow { flow, state } => say!("flow {flow}: {state}"),
            Event::Atom {
                atom,
                state,
                detail,
                ..
            } => say!("  {atom:<20} {}", Change(state.as_str(), detail)),
            _ => {}
        }
    }
}

/// An atom's new state, with what came with it.
struct Change<'a>(&'a str, &'a Detail<'a>);

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Change(state, detail) = self;
        match detail {
            Detail::Result(out) if !out.is_empty() => write!(f, "{state} -> {out:?}"),
            Detail::Failure(failure) => write!(f, "{state}: {}", failure.message()),
            _ => f.write_str(state),
        }
    }
}

/// Reads the command line: `Ok(fail_app_upgrade)`, or the exit code to stop with.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<bool, ExitCode> {
    let mut fail_app_upgrade = false;
    for arg in args {
        match arg.to_str() {
            Some("--fail-app-upgrade") => fail_app_upgrade = true,
            Some("-h" | "--help") => {
                say!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            _ => {
                complain!("upgrade: unknown argument {arg:?}\n{USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(fail_app_upgrade)
}

// One thread is enough: the steps only wait, and the two upgrades still overlap.
// It also keeps the printed output in a stable order.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let fail_app_upgrade = match parse_args(std::env::args_os().skip(1)) {
        Ok(fail) => fail,
        Err(code) => return code,
    };
    let flow = match upgrade_flow(fail_app_upgrade) {
        Ok(flow) => flow,
        Err(errors) => {
            complain!("upgrade: {errors}");
            return ExitCode::FAILURE;
        }
    };
    let mut engine = Engine::builder(flow)
        .input("server", "web-01".to_string())
        .input("version", "2.0.0".to_string())
        .parallel(2)
        .listener(Progress)
        .build();
    match engine.run().await {
        Ok(()) => {
            say!("web-01 runs application 2.0.0");
            ExitCode::SUCCESS
        }
        Err(error @ RunError::Reverted { .. }) => {
            complain!("upgrade failed and was rolled back, web-01 is as it was before: {error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            complain!("upgrade failed, web-01 needs attention: {error}");
            ExitCode::FAILURE
        }
    }
}
