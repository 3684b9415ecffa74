//! The subcommands that do not drive a run in the foreground.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::CommandFactory;

use flow::conductor::Conductor;
use flow::{AtomKind, Event, FlowQuery, Listener};
use flow_cli::ops::{self, Access, GraphFormat, OpsError, RunStatus, Stream, parse_time};
use flow_pipeline::Pipeline;

use super::args::{Cli, GraphFormatArg, OutputFormat, ParamArgs};
use super::{StoreArgs, exit, note, out, prompt, show};

/// `flow check FILE...`.
pub(crate) fn check(files: &[PathBuf]) -> Result<u8, OpsError> {
    let mut problems = Vec::new();
    for file in files {
        match Pipeline::from_path(file) {
            Ok(p) => out!(
                "{}: ok ({}, {}, definition {})",
                file.display(),
                plural(p.steps().len(), "step"),
                plural(p.parameters().len(), "parameter"),
                p.hash().get(..12).unwrap_or(p.hash())
            ),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        return Ok(exit::OK);
    }
    let count: usize = problems.iter().map(|p| p.len()).sum();
    let err = OpsError::Problems { problems };
    note!("{err}");
    let bad = match &err {
        OpsError::Problems { problems } => problems.len(),
        _ => 0,
    };
    note!(
        "flow: {} in {bad} of {}: fix them and check again",
        plural(count, "problem"),
        plural(files.len(), "file")
    );
    Ok(exit::BAD_INPUT)
}

/// `1 step`, `2 steps`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<(), OpsError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| OpsError::Io {
        what: "cannot write JSON to",
        path: PathBuf::from("<stdout>"),
        source: std::io::Error::other(e),
    })?;
    out!("{text}");
    Ok(())
}

/// `flow runs`.
pub(crate) async fn runs(
    store: &StoreArgs,
    states: Vec<RunStatus>,
    flow: Option<String>,
    since: Option<String>,
    limit: usize,
    output: OutputFormat,
) -> Result<u8, OpsError> {
    let mut query = FlowQuery::new().limit(limit);
    for state in states {
        query = state.select(query);
    }
    if let Some(flow) = flow {
        query = query.name(flow);
    }
    if let Some(since) = since {
        query = query.created_after(parse_time(&since, flow::storage::now_unix())?);
    }
    let store = store.open(Access::Existing).await?;
    let runs = ops::list_runs(&store, query).await?;
    match output {
        OutputFormat::Json => json(&runs)?,
        OutputFormat::Text if runs.is_empty() => {
            note!("no runs match: `flow runs` without options lists every run");
        }
        OutputFormat::Text => print!("{}", show::runs(&runs)),
    }
    Ok(exit::OK)
}

/// `flow show RUN`.
pub(crate) async fn show(
    store: &StoreArgs,
    run: &str,
    tail: usize,
    output: OutputFormat,
) -> Result<u8, OpsError> {
    let store = store.open(Access::Existing).await?;
    let run = store.resolve_run(run).await?;
    let view = ops::show_run(&store, run, tail).await?;
    match output {
        OutputFormat::Json => json(&view)?,
        OutputFormat::Text => print!("{}", show::run(&view)),
    }
    Ok(exit::OK)
}

/// `flow logs RUN STEP`.
pub(crate) async fn logs(
    store: &StoreArgs,
    run: &str,
    step: &str,
    follow: bool,
    undo: bool,
) -> Result<u8, OpsError> {
    let store = store.open(Access::Existing).await?;
    let run = store.resolve_run(run).await?;
    let logs = ops::step_logs(&store, run, step, undo).await?;
    if !follow && !logs.exist() {
        return Err(logs.missing());
    }
    let mut follower = if follow { logs.follow() } else { logs.read() };
    while let Some(chunk) = follower.next(&store).await? {
        let written = match chunk.stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&chunk.bytes).and_then(|()| out.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(&chunk.bytes),
        };
        if written.is_err() {
            // The reader went away (`flow logs ... | head`).
            break;
        }
    }
    Ok(exit::OK)
}

/// `flow prune --before TIME`.
pub(crate) async fn prune(store: &StoreArgs, before: &str, dry_run: bool) -> Result<u8, OpsError> {
    let at = parse_time(before, flow::storage::now_unix())?;
    let store = store.open(Access::Existing).await?;
    let pruned = ops::prune_runs(&store, at, dry_run).await?;
    let n = pruned.runs.len();
    let runs = if n == 1 { "run" } else { "runs" };
    if dry_run {
        if n > 0 {
            print!("{}", show::runs(&pruned.runs));
        }
        out!(
            "{n} {runs} ended before {}: `flow prune` without --dry-run deletes them",
            ops::format_time(at)
        );
    } else {
        out!(
            "deleted {n} {runs} that ended before {}, and {} directories of logs",
            ops::format_time(at),
            pruned.log_dirs
        );
    }
    Ok(exit::OK)
}

/// `flow graph FILE|RUN`.
pub(crate) async fn graph(
    store: &StoreArgs,
    target: &str,
    format: GraphFormatArg,
) -> Result<u8, OpsError> {
    let format = match format {
        GraphFormatArg::Dot => GraphFormat::Dot,
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
    };
    let path = Path::new(target);
    let graph = if path.is_file() || target.ends_with(".yaml") || target.ends_with(".yml") {
        ops::pipeline_graph(&Pipeline::from_path(path)?)
    } else {
        let store = store.open(Access::Existing).await?;
        let run = store.resolve_run(target).await?;
        ops::run_graph(&store, run).await?
    };
    print!("{}", ops::render_graph(&graph, format));
    Ok(exit::OK)
}

/// `flow post FILE -p ...`.
pub(crate) async fn post(
    store: &StoreArgs,
    file: &Path,
    params: &ParamArgs,
) -> Result<u8, OpsError> {
    let pipeline = Pipeline::from_path(file)?;
    let Some(values) = prompt::values(&pipeline, params)? else {
        return Ok(exit::INTERRUPTED);
    };
    let store = store.open(Access::Create).await?;
    let posted = ops::post_run(&store, &pipeline, &values).await?;
    out!(
        "posted job {} for a conductor of {} (definition {}): its run is {}",
        posted.job,
        posted.flow,
        posted.version.get(..12).unwrap_or(&posted.version),
        posted.run
    );
    Ok(exit::OK)
}

/// Prints each step of the conductor's runs as it goes.
struct Progress;

impl Listener for Progress {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Flow { flow, state } => out!("{flow}: {}", RunStatus::of(*state)),
            Event::Atom {
                atom,
                kind: AtomKind::Task,
                state,
                ..
            } => out!("  {atom}: {}", state.as_str().to_lowercase()),
            _ => {}
        }
    }

    fn wants_progress(&self) -> bool {
        false
    }
}

/// `flow conductor --pipelines ...`.
pub(crate) async fn conductor(
    store: &StoreArgs,
    paths: &[PathBuf],
    name: Option<String>,
    concurrency: usize,
    lease: Duration,
    poll: Duration,
) -> Result<u8, OpsError> {
    let pipelines = ops::read_pipelines(paths)?;
    let store = store.open(Access::Create).await?;
    let registry = ops::pipeline_registry(&store, &pipelines).await?;
    let mut conductor = Conductor::new(store.board().clone(), registry)
        .concurrency(concurrency)
        .lease(lease)
        .renew_every((lease / 3).min(Duration::from_secs(1)))
        .poll(poll)
        .mode(flow::Mode::Parallel(4))
        .listener(Arc::new(Progress));
    if let Some(name) = name {
        conductor = conductor.owner(name);
    }
    let stop = conductor.handle();
    let names: Vec<String> = pipelines
        .iter()
        .map(|p| format!("{} ({})", p.name(), p.hash().get(..12).unwrap_or(p.hash())))
        .collect();
    out!(
        "conductor of {} on {}: waiting for jobs (SIGTERM or Ctrl-C stops it)",
        names.join(", "),
        store.location()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| OpsError::Io {
            what: "cannot watch for SIGTERM in",
            path: PathBuf::from("flow conductor"),
            source,
        })?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        out!("stopping: the running steps finish, then their jobs are handed back");
        stop.shutdown();
    });
    let summary = conductor.run().await.map_err(OpsError::Store)?;
    out!(
        "conductor stopped: {} job(s) completed, {} handed back, {} taken over by others",
        summary.completed,
        summary.handed_back,
        summary.lost
    );
    Ok(exit::OK)
}

/// `flow completions SHELL`.
pub(crate) fn completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "flow", &mut std::io::stdout());
}
