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
//! Every run is journaled to a SQLite store, `upgrade.db` in the current
//! directory unless `--store FILE` names another: each step's state and result
//! are on disk before the next step starts. The program prints the run's id.
//! `--store postgres://user@host:5432/db` journals to PostgreSQL instead (build
//! with `--features postgres`), where any machine reaching the server can take
//! the run up.
//!
//! Run with `--fail-app-upgrade` to make the application upgrade fail: the
//! engine then reverts everything that ran, in reverse order (both upgrades,
//! then the backup, then the stop), and the program exits with status 1.
//!
//! Run with `--crash-during STEP` to make the process die in the middle of a
//! step, as if the machine lost power. Then `--resume RUN-ID` takes the run up
//! from the store: the steps that had finished are not run again (their
//! results come from the store), the step that was running runs again, and the
//! rest follows. The crashed process held the run with a lease of 2 seconds:
//! the resume waits for it to run out (a live owner's run is never taken).
//! `--list` lists the runs in the store.
//!
//! ```text
//! cargo run --example upgrade
//! cargo run --example upgrade -- --fail-app-upgrade
//! cargo run --example upgrade -- --crash-during upgrade-database
//! cargo run --example upgrade -- --resume 67e55044-10b1-426f-9247-bb680e5fe0c8
//! cargo run --example upgrade -- --list
//! cargo run --example upgrade --features postgres -- --store postgres://postgres@127.0.0.1/flow
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flow::{
    Backend, Detail, Engine, Event, Failures, FlowId, Listener, Outcome, RunError, SqliteBackend,
    TaskError, TypedFlow, flow, task,
};

const USAGE: &str = "usage: upgrade [--store FILE|postgres://URL] [--fail-app-upgrade] \
                     [--crash-during STEP] [--resume RUN-ID] [--list] [--help]";

/// How long this process's claim on its run lasts unless renewed: after a
/// crash, another process can take the run up this long after.
const LEASE: Duration = Duration::from_secs(2);

/// The store, in the current directory unless `--store` says otherwise.
const DEFAULT_STORE: &str = "upgrade.db";

/// The steps, by name.
const STEPS: [&str; 5] = [
    "stop-server",
    "backup-database",
    "upgrade-database",
    "upgrade-application",
    "start-server",
];

/// The step in which to simulate a crash (`--crash-during`).
static CRASH_DURING: OnceLock<String> = OnceLock::new();

/// This run's id and store, for the hint printed at a simulated crash.
static RUN: OnceLock<(FlowId, String)> = OnceLock::new();

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

/// With `--crash-during STEP`, the process dies in the middle of `STEP`, as if
/// the machine lost power: nothing is cleaned up, and the run stays in the
/// store as it was at that instant.
fn maybe_crash(step: &str) {
    if CRASH_DURING.get().map(String::as_str) == Some(step) {
        say!("      *** the process dies here (simulated crash) ***");
        if let Some((id, store)) = RUN.get() {
            let features = if is_postgres(store) {
                " --features postgres"
            } else {
                ""
            };
            say!(
                "resume with: cargo run --example upgrade{features} -- --store {store} --resume {id}"
            );
        }
        std::process::exit(137);
    }
}

/// Stops the server; undone by starting it again.
#[task(name = "stop-server", revert = start_again)]
fn stop_server(server: &str) {
    say!("      stopping {server}");
    maybe_crash("stop-server");
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
    maybe_crash("backup-database");
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
    maybe_crash("upgrade-database");
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
        maybe_crash("upgrade-application");
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
    maybe_crash("start-server");
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

/// What the command line asks for.
#[derive(Debug, Default)]
struct Options {
    store: Option<String>,
    fail_app_upgrade: bool,
    crash_during: Option<String>,
    resume: Option<FlowId>,
    list: bool,
}

/// Reads the command line: the options, or the exit code to stop with.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Options, ExitCode> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    let usage = |message: String| {
        complain!("upgrade: {message}\n{USAGE}");
        ExitCode::from(2)
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.to_str() {
            Some("--fail-app-upgrade") => options.fail_app_upgrade = true,
            Some("--list") => options.list = true,
            Some("--store") => options.store = Some(value("--store")?),
            Some("--crash-during") => {
                let step = value("--crash-during")?;
                if !STEPS.contains(&step.as_str()) {
                    return Err(usage(format!(
                        "--crash-during: no step `{step}`; the steps are {}",
                        STEPS.join(", ")
                    )));
                }
                options.crash_during = Some(step);
            }
            Some("--resume") => {
                let id = value("--resume")?;
                options.resume = Some(id.parse().map_err(|e| usage(format!("--resume: {e}")))?);
            }
            Some("-h" | "--help") => {
                say!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            _ => return Err(usage(format!("unknown argument {arg:?}"))),
        }
    }
    Ok(options)
}

/// Whether `store` names a PostgreSQL server rather than a file.
fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// Opens the store: a SQLite file, or a PostgreSQL server.
async fn open(store: &str) -> Result<Arc<dyn Backend>, String> {
    if is_postgres(store) {
        #[cfg(feature = "postgres")]
        {
            return flow::PostgresBackend::connect(store)
                .await
                .map(|b| Arc::new(b) as Arc<dyn Backend>)
                .map_err(|e| e.to_string());
        }
        #[cfg(not(feature = "postgres"))]
        {
            return Err(format!(
                "`{store}` is a PostgreSQL store, and this build has no PostgreSQL support: \
                 build with `--features postgres` (cargo run --example upgrade --features postgres \
                 -- --store ...)"
            ));
        }
    }
    SqliteBackend::open(PathBuf::from(store))
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .map_err(|e| e.to_string())
}

/// Lists the runs in the store.
async fn list(store: &dyn Backend) -> ExitCode {
    match store.list_flows(flow::FlowQuery::new()).await {
        Ok(runs) => {
            for run in runs {
                say!("{}  {:<10} {}", run.id, run.state.as_str(), run.name);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            complain!("upgrade: {error}");
            ExitCode::FAILURE
        }
    }
}

// One thread is enough: the steps only wait, and the two upgrades still overlap.
// It also keeps the printed output in a stable order.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let path = options
        .store
        .clone()
        .unwrap_or_else(|| DEFAULT_STORE.to_string());
    let store = match open(&path).await {
        Ok(store) => store,
        Err(error) => {
            complain!("upgrade: {error}");
            return ExitCode::FAILURE;
        }
    };
    if options.list {
        return list(&*store).await;
    }
    if let Some(step) = options.crash_during.clone() {
        let _ = CRASH_DURING.set(step);
    }
    let upgrade = upgrade_flow(options.fail_app_upgrade);
    let engine = match options.resume {
        Some(id) => {
            say!("resuming run {id} from {path}");
            let builder = match upgrade.resuming() {
                Ok(builder) => builder,
                Err(error) => {
                    complain!("upgrade: {error}");
                    return ExitCode::FAILURE;
                }
            };
            // A process that crashed holds the run until its lease runs out.
            let resumed = builder
                .storage(store)
                .parallel(2)
                .lease(LEASE)
                .wait_for_lease(LEASE * 3)
                .listener(Progress)
                .resume(id)
                .await;
            match resumed {
                Ok(engine) => engine,
                Err(error) => {
                    complain!("upgrade: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => {
            let builder = match upgrade.engine(("web-01".to_string(), "2.0.0".to_string())) {
                Ok(builder) => builder,
                Err(error) => {
                    complain!("upgrade: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let engine = builder
                .storage(store)
                .parallel(2)
                .lease(LEASE)
                .listener(Progress)
                .build();
            say!("run {} in {path}", engine.run_id());
            engine
        }
    };
    let _ = RUN.set((engine.run_id(), path.clone()));
    finish(engine).await
}

async fn finish(mut engine: Engine) -> ExitCode {
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
