//! The seed scenario of `flow`: upgrade a server, or leave it as it was.
//!
//! ```text
//! stop-server -> backup-database -> { upgrade-database, upgrade-application } -> start-server
//! ```
//!
//! Each step is a function (or, for the application upgrade, a struct) made a
//! task by `#[task]`: its parameters are the symbols it requires, `provides`
//! names what it returns, and `revert` names the function that undoes it.
//! `flow!` arranges the steps; the two upgrades form an unordered group and run
//! at the same time on the parallel engine. The compiler checks that every
//! step gets every input it needs, with the right type, from a step that runs
//! before it: the run is given `server` and `version`, `backup-database`
//! provides `backup` for `upgrade-database`, which provides `schema`, and
//! `upgrade-application` provides `app_version`; `start-server` needs both.
//!
//! Run with `--fail-app-upgrade` to make the application upgrade fail: the
//! engine then reverts everything that ran, in reverse order (both upgrades,
//! then the backup, then the stop), and the program exits with status 1.
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
    Detail, Event, Failures, Listener, Outcome, RunError, TaskError, TypedFlow, flow, task,
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

/// Stops the server; undone by starting it again.
#[task(name = "stop-server", revert = start_again)]
fn stop_server(server: &str) {
    say!("      stopping {server}");
}

fn start_again(server: &str, _outcome: &Outcome, _failures: &Failures) {
    say!("      undo: starting {server} again");
}

/// Backs the database up; undone by deleting the backup.
#[task(name = "backup-database", provides = backup, revert = delete_backup)]
async fn backup_database(server: &str, version: &str) -> String {
    let backup = format!("/var/backups/{server}-before-{version}.sql");
    say!("      backing up the database of {server} to {backup}");
    work(30).await;
    backup
}

async fn delete_backup(_server: &str, _version: &str, outcome: &Outcome, _failures: &Failures) {
    if let Some(backup) = outcome.output::<String>(0) {
        say!("      undo: deleting the backup {backup}");
    }
}

/// Migrates the schema; undone by restoring the backup.
#[task(name = "upgrade-database", provides = schema, revert = restore_database)]
async fn upgrade_database(_backup: &str, version: &str) -> u32 {
    say!("      migrating the database schema to {version}");
    work(50).await;
    42
}

async fn restore_database(backup: &str, _version: &str, _outcome: &Outcome, failures: &Failures) {
    let why: Vec<&str> = failures.keys().map(String::as_str).collect();
    say!(
        "      undo: restoring the database from {backup} (because {} failed)",
        why.join(", ")
    );
}

/// Installs the new release; fails on purpose when `fail` is set.
#[derive(Clone, Debug)]
struct UpgradeApplication {
    fail: bool,
}

#[task(name = "upgrade-application", provides = app_version)]
impl UpgradeApplication {
    async fn execute(&self, server: &str, version: &str) -> Result<String, TaskError> {
        say!("      installing application {version} on {server}");
        work(100).await;
        if self.fail {
            return Err(TaskError::msg(format!(
                "package checksum mismatch for application {version}"
            )));
        }
        Ok(version.to_string())
    }

    fn revert(&self, server: &str, outcome: &Outcome) {
        if outcome.is_success() {
            say!("      undo: reinstalling the previous release on {server}");
        } else {
            // This step is the one that failed: clean up what it left behind.
            say!("      undo: removing the half-installed release from {server}");
        }
    }
}

/// Starts the server on the new release; undone by stopping it again.
#[task(name = "start-server", revert = stop_again)]
fn start_server(server: &str, schema: u32, app_version: &str) {
    say!("      starting {server} (application {app_version}, schema {schema})");
}

fn stop_again(server: &str, _schema: u32, _app_version: &str, _o: &Outcome, _f: &Failures) {
    say!("      undo: stopping {server}");
}

/// The upgrade, checked by the compiler: every input has an earlier provider
/// of its type.
fn upgrade_flow(fail_app_upgrade: bool) -> TypedFlow<(String, String), ()> {
    flow! {
        upgrade(server: String, version: String) {
            stop_server,
            backup_database,
            unordered upgrades {
                upgrade_database,
                UpgradeApplication { fail: fail_app_upgrade },
            },
            start_server,
        }
    }
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
    let upgrade = upgrade_flow(fail_app_upgrade);
    let builder = match upgrade.engine(("web-01".to_string(), "2.0.0".to_string())) {
        Ok(builder) => builder,
        Err(error) => {
            complain!("upgrade: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut engine = builder.parallel(2).listener(Progress).build();
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
