//! A rollout over hosts known only at run time, inside a checked `flow!`.
//!
//! ```text
//! announce -> upgrades { upgrade-web-01 -> upgrade-web-02 -> ... } -> report
//! ```
//!
//! The hosts come from the command line, so the group of upgrades is built at
//! run time with the builder (one atom per host, each publishing its
//! `healthy` output as `healthy_<host>`). `flow!` still checks the rest at
//! compile time: the group declares what it requires (`version: String`) and
//! what it provides (`healthy_*: bool`), `report` gathers every `healthy_*`
//! with `#[collect(healthy_*)]`, and when the flow is built the group's
//! contents are checked against that declaration.
//!
//! Every run is journaled to a SQLite file, `rollout.db` unless `--store FILE`
//! names another; the program prints the run's id.
//!
//! - `--fail HOST` makes the upgrade of `HOST` fail: the engine reverts every
//!   host upgraded before it, last first, then the announcement, and the
//!   program exits with status 1.
//! - `--crash-during HOST` makes the process die in the middle of `HOST`'s
//!   upgrade (exit status 137). `--resume RUN-ID`, with the same hosts, takes
//!   the run up from the store: the hosts upgraded before the crash are not
//!   upgraded again, the one caught running is.
//!
//! ```text
//! cargo run --example rollout -- web-01 web-02 web-03
//! cargo run --example rollout -- --fail web-02 web-01 web-02 web-03
//! cargo run --example rollout -- --crash-during web-02 web-01 web-02 web-03
//! cargo run --example rollout -- --resume 67e55044-10b1-426f-9247-bb680e5fe0c8 web-01 web-02 web-03
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flow::{
    Atom, Event, Failures, Flow, FlowId, Listener, Outcome, RunError, SqliteBackend, TaskError,
    TypedFlow, flow, task,
};

const USAGE: &str = "usage: rollout [--store FILE] [--version V] [--fail HOST] \
                     [--crash-during HOST] [--resume RUN-ID] HOST...";

/// How long this process's claim on its run lasts unless renewed.
const LEASE: Duration = Duration::from_secs(2);

/// The host whose upgrade the process dies in (`--crash-during`).
static CRASH_DURING: OnceLock<String> = OnceLock::new();

/// Prints a line to stdout, without panicking when stdout is closed.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Opens the maintenance window; undone by closing it.
#[task(provides = window, revert = close_window)]
fn announce(version: &str) -> String {
    say!("      announcing the rollout of {version}");
    format!("rollout-{version}")
}

fn close_window(version: &str, _outcome: &Outcome, _failures: &Failures) {
    say!("      undo: closing the maintenance window for {version}");
}

/// Upgrades one host; fails on purpose for the host given to `--fail`.
#[derive(Clone, Debug)]
struct UpgradeHost {
    host: String,
    fail: bool,
}

#[task(provides = healthy)]
impl UpgradeHost {
    async fn execute(&self, version: &str) -> Result<bool, TaskError> {
        say!("      upgrading {} to {version}", self.host);
        tokio::time::sleep(Duration::from_millis(10)).await;
        if CRASH_DURING.get() == Some(&self.host) {
            say!("      *** the process dies here (simulated crash) ***");
            say!("resume with --resume RUN-ID and the same hosts");
            std::process::exit(137);
        }
        if self.fail {
            return Err(TaskError::msg(format!("{} did not come back", self.host)));
        }
        Ok(true)
    }

    fn revert(&self) {
        say!(
            "      undo: rolling {} back to the previous release",
            self.host
        );
    }
}

/// Says how the rollout went, from every `healthy_<host>`.
#[task(provides = summary)]
fn report(#[collect(healthy_*)] healthy: BTreeMap<String, bool>) -> String {
    let up: Vec<&str> = (healthy.iter())
        .filter(|(_, ok)| **ok)
        .map(|(symbol, _)| symbol.trim_start_matches("healthy_"))
        .collect();
    format!(
        "{} of {} hosts healthy: {}",
        up.len(),
        healthy.len(),
        up.join(", ")
    )
}

/// The group of upgrades, one atom per host, built at run time.
fn upgrade_group(hosts: &[String], fail: Option<&str>) -> Flow {
    let mut group = Flow::linear("upgrades");
    for host in hosts {
        let task = UpgradeHost {
            host: host.clone(),
            fail: fail == Some(host.as_str()),
        };
        group.push(
            Atom::new(format!("upgrade-{host}"), task)
                .provides_as("healthy", format!("healthy_{host}")),
        );
    }
    group
}

/// The rollout, checked by the compiler around its run-time group.
fn rollout_flow(hosts: &[String], fail: Option<&str>) -> TypedFlow<(String,), (String,)> {
    flow! {
        rollout(version: String) -> (summary: String) {
            announce,
            group upgrades(version: String) -> (healthy_*: bool) = upgrade_group(hosts, fail),
            report,
        }
    }
}

/// Prints each atom's and the flow's state changes.
#[derive(Debug)]
struct Progress;

impl Listener for Progress {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Flow { flow, state } => say!("flow {flow}: {state}"),
            Event::Atom { atom, state, .. } => say!("  {atom:<20} {}", state.as_str()),
            _ => {}
        }
    }
}

#[derive(Debug, Default)]
struct Options {
    store: Option<String>,
    version: Option<String>,
    fail: Option<String>,
    crash_during: Option<String>,
    resume: Option<FlowId>,
    hosts: Vec<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => o.store = Some(value("--store")?),
            "--version" => o.version = Some(value("--version")?),
            "--fail" => o.fail = Some(value("--fail")?),
            "--crash-during" => o.crash_during = Some(value("--crash-during")?),
            "--resume" => {
                let id = value("--resume")?;
                o.resume = Some(id.parse().map_err(|e| format!("--resume: {e}"))?);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            host => o.hosts.push(host.to_string()),
        }
    }
    if o.hosts.is_empty() {
        return Err("name at least one host".into());
    }
    Ok(o)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("rollout: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(host) = o.crash_during.clone() {
        let _ = CRASH_DURING.set(host);
    }
    let path = o.store.clone().unwrap_or_else(|| "rollout.db".into());
    let store = match SqliteBackend::open(PathBuf::from(&path)) {
        Ok(store) => Arc::new(store),
        Err(error) => {
            eprintln!("rollout: {error}");
            return ExitCode::FAILURE;
        }
    };
    let rollout = rollout_flow(&o.hosts, o.fail.as_deref());
    let version = o.version.clone().unwrap_or_else(|| "2.0".into());
    let mut engine = match o.resume {
        Some(id) => {
            say!("resuming run {id} from {path}");
            let builder = match rollout.resuming() {
                Ok(builder) => builder,
                Err(error) => return failed(&error),
            };
            let resumed = (builder.storage(store).lease(LEASE))
                .wait_for_lease(LEASE * 3)
                .listener(Progress)
                .resume(id)
                .await;
            match resumed {
                Ok(engine) => engine,
                Err(error) => {
                    eprintln!("rollout: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => {
            let builder = match rollout.engine((version,)) {
                Ok(builder) => builder,
                Err(error) => return failed(&error),
            };
            let engine = builder
                .storage(store)
                .lease(LEASE)
                .listener(Progress)
                .build();
            say!("run {} in {path}", engine.run_id());
            engine
        }
    };
    if let Err(error) = engine.run().await {
        return failed(&error);
    }
    match rollout.outputs(&engine) {
        Some((summary,)) => {
            say!("{summary}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("rollout: the run ended without its summary");
            ExitCode::FAILURE
        }
    }
}

fn failed(error: &RunError) -> ExitCode {
    match error {
        RunError::Reverted { .. } => {
            say!("rollout failed and was rolled back: {error}");
        }
        _ => eprintln!("rollout: {error}"),
    }
    ExitCode::FAILURE
}
