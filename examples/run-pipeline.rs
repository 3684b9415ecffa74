//! Runs a pipeline file (a flow written in YAML, made of shell steps) on the
//! SQLite default store.
//!
//! ```text
//! cargo run --example run-pipeline --features pipeline -- examples/pipelines/web-check.yaml
//! cargo run --example run-pipeline --features pipeline -- examples/pipelines/web-check.yaml ip=10.0.0.7
//! cargo run --example run-pipeline --features pipeline -- examples/pipelines/deploy.yaml fail_at=switch
//! cargo run --example run-pipeline --features pipeline -- examples/pipelines/deploy.yaml --resume RUN-ID
//! cargo run --example run-pipeline --features pipeline -- examples/pipelines/deploy.yaml --check
//! cargo run --example run-pipeline --features pipeline -- --status RUN-ID
//! ```
//!
//! Parameters are given as `NAME=VALUE` and read as their declared types. The
//! run is journaled to `pipelines.db` in the current directory (`--store FILE`
//! names another), and each step's output goes to
//! `pipeline-logs/<run-key>/<step>.stdout` and `.stderr` (`--logs DIR`). The
//! program prints the run's id, each step's state as it changes, and the end
//! of what each step printed. It exits with status 0 when the run succeeded,
//! 1 when it failed (after reverting), 2 when the file or the values have
//! problems (all of them are printed, with the lines they are on). The
//! definition is kept in the store by its hash, so `--status RUN-ID` shows a
//! run's steps from the store alone.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use flow::pipeline::{Params, Pipeline, Settings, StepReport, pipeline_status};
use flow::{AtomKind, Detail, Engine, Event, FlowId, Listener, SqliteBackend};

const USAGE: &str = "usage: run-pipeline FILE [NAME=VALUE]... [--store FILE] [--logs DIR] \
                     [--resume RUN-ID] [--check]\n       run-pipeline --status RUN-ID [--store FILE]";

/// Prints a line, without panicking when stdout is closed.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints each step's state as it changes.
struct Steps;

impl Listener for Steps {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Flow { flow, state } => say!("pipeline {flow}: {state}"),
            Event::Atom {
                atom,
                kind: AtomKind::Task,
                state,
                detail,
            } => match detail {
                Detail::Failure(f) => {
                    let first = f.message().lines().next().unwrap_or("");
                    say!("  {atom:<12} {state}: {first}");
                }
                _ => say!("  {atom:<12} {state}"),
            },
            _ => {}
        }
    }

    fn wants_progress(&self) -> bool {
        false
    }
}

struct Args {
    file: Option<PathBuf>,
    status: Option<FlowId>,
    params: Params,
    store: PathBuf,
    logs: PathBuf,
    resume: Option<FlowId>,
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let mut file = None;
    let mut params = Params::new();
    let mut store = PathBuf::from("pipelines.db");
    let mut logs = PathBuf::from("pipeline-logs");
    let mut resume = None;
    let mut status = None;
    let mut check = false;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--store") => store = args.next().ok_or("--store needs a file")?.into(),
            Some("--logs") => logs = args.next().ok_or("--logs needs a directory")?.into(),
            Some("--resume") => {
                let id = args.next().ok_or("--resume needs a run id")?;
                let id = id.to_str().ok_or("a run id is text")?;
                resume = Some(id.parse().map_err(|e| format!("{id}: {e}"))?);
            }
            Some("--status") => {
                let id = args.next().ok_or("--status needs a run id")?;
                let id = id.to_str().ok_or("a run id is text")?;
                status = Some(id.parse().map_err(|e| format!("{id}: {e}"))?);
            }
            Some("--check") => check = true,
            Some("--help" | "-h") => return Err(String::new()),
            _ if file.is_none() => file = Some(PathBuf::from(arg)),
            _ => {
                use std::os::unix::ffi::OsStrExt;
                let bytes = arg.as_bytes();
                let Some(eq) = bytes.iter().position(|b| *b == b'=') else {
                    return Err(format!(
                        "{}: give parameters as NAME=VALUE",
                        arg.to_string_lossy()
                    ));
                };
                let name = String::from_utf8_lossy(&bytes[..eq]).into_owned();
                params = params.text(name, std::ffi::OsStr::from_bytes(&bytes[eq + 1..]));
            }
        }
    }
    if file.is_none() && status.is_none() {
        return Err("name a pipeline file".into());
    }
    Ok(Args {
        file,
        status,
        params,
        store,
        logs,
        resume,
        check,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("run-pipeline: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(run) = args.status {
        return show_status(&args.store, run).await;
    }
    let Some(file) = args.file.as_ref() else {
        return ExitCode::from(2);
    };
    let pipeline = match Pipeline::from_path(file) {
        Ok(p) => p,
        Err(problems) => {
            eprint!("{}", problems.render());
            return ExitCode::from(2);
        }
    };
    let settings = Settings::new(&args.logs);
    if args.check {
        return match pipeline.check(&args.params) {
            Ok(()) => {
                say!(
                    "{}: ok ({} steps, definition {})",
                    file.display(),
                    pipeline.steps().len(),
                    pipeline.hash()
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprint!("{}", problems.render());
                ExitCode::from(2)
            }
        };
    }
    let store = match SqliteBackend::open(&args.store) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("run-pipeline: {e}");
            return ExitCode::from(2);
        }
    };
    // The definition is kept by its hash, so that the run can be shown (and
    // taken up) from the store alone.
    if let Err(e) = pipeline.save(&*store).await {
        eprintln!("run-pipeline: {e}");
        return ExitCode::from(2);
    }
    let mut engine: Engine = match args.resume {
        Some(id) => {
            let flow = match pipeline.flow(&settings).build() {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("run-pipeline: {e}");
                    return ExitCode::from(2);
                }
            };
            match Engine::builder(flow)
                .storage(store)
                .listener(Steps)
                .parallel(4)
                .resume(id)
                .await
            {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("run-pipeline: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => {
            let run = match pipeline.to_flow(&args.params, &settings) {
                Ok(r) => r,
                Err(problems) => {
                    eprint!("{}", problems.render());
                    return ExitCode::from(2);
                }
            };
            let logs = run.log_dir().display().to_string();
            let builder = match run.engine() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("run-pipeline: {e}");
                    return ExitCode::from(2);
                }
            };
            let engine = builder.storage(store).listener(Steps).parallel(4).build();
            say!("run {}", engine.run_id());
            say!("logs {logs}");
            engine
        }
    };
    let result = engine.run().await;
    for step in pipeline.steps() {
        let report = engine
            .outputs(step.name())
            .and_then(|o| o.values().first())
            .and_then(|v| v.downcast_ref::<StepReport>());
        if let Some(r) = report {
            for line in r.stdout.tail.lines() {
                say!("{:<12} | {line}", step.name());
            }
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("run-pipeline: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints each step of run `run` with its state.
async fn show_status(store: &std::path::Path, run: FlowId) -> ExitCode {
    let store = match SqliteBackend::open(store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("run-pipeline: {e}");
            return ExitCode::from(2);
        }
    };
    match pipeline_status(&store, run).await {
        Ok(status) => {
            say!(
                "pipeline {} ({}): {}",
                status.pipeline,
                status.definition,
                status.state
            );
            for s in &status.steps {
                say!("  {:<12} {:<10} attempts {}", s.name, s.state, s.attempts);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("run-pipeline: {e}");
            ExitCode::from(2)
        }
    }
}
