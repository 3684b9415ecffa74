//! Runs shared across processes: conductors claim jobs from a job board in a
//! SQLite store, and when one dies another takes its jobs over.
//!
//! In three terminals:
//!
//! ```text
//! cargo run --example conductor -- work --name a      # a conductor
//! cargo run --example conductor -- work --name b      # another one
//! cargo run --example conductor -- post --count 6     # six upgrade jobs
//! ```
//!
//! Kill conductor `a` (Ctrl-C hands its jobs back at once; `kill -9` leaves
//! them held until its 5 s lease runs out): `b` takes them over and finishes
//! them, from where `a` was. `cargo run --example conductor -- status` shows
//! where each job is. The store is `conductor.db` (`--store` to change it).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use flow::conductor::{Conductor, Registry};
use flow::storage::{JobBoard, JobQuery, NewJob};
use flow::{Atom, Event, Flow, FnTask, Listener, Outputs, Signature, SqliteBackend, TaskError};

const USAGE: &str = "usage: conductor work [--name NAME] [--store PATH]
       conductor post [--count N] [--fail-every N] [--store PATH]
       conductor status [--store PATH]";

/// How long a conductor's claim on a job outlives it if it dies.
const LEASE: Duration = Duration::from_secs(5);

macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// A step of the upgrade: takes a moment, then says so; `upgrade-app` fails
/// when the job asks for it.
fn step(name: &'static str) -> Atom {
    let task = FnTask::asynchronous(
        Signature::new()
            .requires::<String>("host")
            .requires::<bool>("fail"),
        move |args, _| async move {
            let (host, fail) = (args.get::<String>(0)?.clone(), *args.get::<bool>(1)?);
            tokio::time::sleep(Duration::from_millis(700)).await;
            if fail && name == "upgrade-app" {
                return Err(TaskError::msg(format!(
                    "{host}: the new release does not start"
                )));
            }
            Ok(Outputs::new())
        },
    )
    .on_revert_sync(move |_| Ok(None));
    Atom::new(name, task)
}

/// The flows this conductor knows: `upgrade` at version 1.
fn registry() -> Registry {
    let upgrade = [
        "stop-server",
        "back-up",
        "upgrade-db",
        "upgrade-app",
        "start-server",
    ]
    .into_iter()
    .fold(
        Flow::linear("upgrade")
            .input::<String>("host")
            .input::<bool>("fail"),
        |f, s| f.add(step(s)),
    );
    let mut registry = Registry::new();
    registry.register("1", upgrade.build().expect("the upgrade flow is valid"));
    registry
}

/// Prints each step as the conductor's runs go.
struct Progress(String);

impl Listener for Progress {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Atom { atom, state, .. } = event {
            say!("[{}] {atom:<13} {state}", self.0);
        }
    }

    fn wants_progress(&self) -> bool {
        false
    }
}

struct Options {
    command: String,
    store: PathBuf,
    name: String,
    count: u32,
    fail_every: u32,
}

fn parse(args: impl Iterator<Item = OsString>) -> Result<Options, String> {
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    let command = args.next().ok_or_else(|| USAGE.to_string())?;
    let mut o = Options {
        command,
        store: PathBuf::from("conductor.db"),
        name: format!("conductor-{}", std::process::id()),
        count: 3,
        fail_every: 0,
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--store" => o.store = PathBuf::from(value()?),
            "--name" => o.name = value()?,
            "--count" => o.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--fail-every" => {
                o.fail_every = value()?.parse().map_err(|e| format!("--fail-every: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

async fn work(board: Arc<dyn JobBoard>, name: String) -> ExitCode {
    let conductor = Conductor::new(board, registry())
        .owner(name.clone())
        .concurrency(2)
        .lease(LEASE)
        .poll(Duration::from_millis(200))
        .listener(Arc::new(Progress(name.clone())));
    let stop = conductor.handle();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => return say!("cannot watch for SIGTERM: {e}"),
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        say!("[{name}] stopping: the running steps finish, then the jobs are handed back");
        stop.shutdown();
    });
    match conductor.run().await {
        Ok(s) => {
            say!(
                "conductor done: {} job(s) completed, {} handed back, {} taken over by others",
                s.completed,
                s.handed_back,
                s.lost
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conductor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn post(board: Arc<dyn JobBoard>, count: u32, fail_every: u32) -> ExitCode {
    for i in 1..=count {
        let fail = fail_every > 0 && i % fail_every == 0;
        let job = NewJob::new("upgrade", "1")
            .input("host", format!("web-{i:02}"))
            .input("fail", fail);
        match board.post(job).await {
            Ok(job) => say!(
                "posted job {} (web-{i:02}{})",
                job.id,
                if fail { ", made to fail" } else { "" }
            ),
            Err(e) => {
                eprintln!("post: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

async fn status(board: Arc<dyn JobBoard>) -> ExitCode {
    match board.list_jobs(JobQuery::new()).await {
        Ok(jobs) => {
            for j in jobs {
                let host = j.inputs["host"].as_str().unwrap_or("?").to_string();
                let outcome = j.outcome.map_or("-".to_string(), |o| o.to_string());
                let owner = j.owner.unwrap_or_else(|| "-".into());
                say!(
                    "{} {host} {:<9} {outcome:<9} claims={} owner={owner}",
                    j.id,
                    j.state,
                    j.claims
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("status: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let board: Arc<dyn JobBoard> = match SqliteBackend::open(&options.store) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            eprintln!("conductor: {e}");
            return ExitCode::FAILURE;
        }
    };
    match options.command.as_str() {
        "work" => work(board, options.name).await,
        "post" => post(board, options.count, options.fail_every).await,
        "status" => status(board).await,
        other => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
