//! The errors of the operations: each one a sentence that says what went
//! wrong and what to do about it.

use std::path::PathBuf;

use flow::{FlowId, ResumeError, StorageError};
use flow_pipeline::Problems;

/// Why an operation could not be done.
///
/// The messages name the `flow` command's subcommands where one helps (a web
/// page built on these operations matches on the variant and says its own
/// thing where it must).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// A command that reads runs was pointed at a store that does not exist.
    #[error(
        "there is no store at `{}`: run a pipeline first (`flow run FILE`), or name the store \
         with --store or FLOW_STORE",
        path.display()
    )]
    NoStore {
        /// The path looked at.
        path: PathBuf,
    },
    /// The store could not be opened or read.
    #[error("{0}")]
    Store(#[source] StorageError),
    /// A `postgres://` URL, in a binary built without PostgreSQL support.
    #[error(
        "`{url}` names a PostgreSQL store, and this `flow` was built without PostgreSQL support: \
         use an SQLite file (--store flow.db), or a `flow` built with PostgreSQL support"
    )]
    NoPostgres {
        /// The URL given.
        url: String,
    },
    /// The text given for a run is not an id, nor the start of one.
    #[error(
        "`{text}` is not a run id: ids look like 67e55044-10b1-426f-9247-bb680e5fe0c8, and their \
         first 4 characters or more will do when no other run starts the same way"
    )]
    BadRunId {
        /// What was given.
        text: String,
    },
    /// No run has this id (or starts with this text).
    #[error("there is no run `{text}` in the store `{store}`: `flow runs` lists the runs")]
    UnknownRun {
        /// What was given.
        text: String,
        /// The store.
        store: String,
    },
    /// Several runs start with the text given.
    #[error("`{text}` is the start of {} runs ({}): give more of the id", ids.len(), list(ids))]
    AmbiguousRun {
        /// What was given.
        text: String,
        /// The runs it could mean.
        ids: Vec<FlowId>,
    },
    /// The run has no step of this name.
    #[error("run {run} has no step `{step}`: its steps are {}", list(known))]
    UnknownStep {
        /// The run.
        run: FlowId,
        /// The name given.
        step: String,
        /// Its steps.
        known: Vec<String>,
    },
    /// Pipeline files, or the values given for a pipeline's parameters,
    /// have problems.
    #[error("{}", render(problems))]
    Problems {
        /// Every problem, with the file, line and column of each: one entry
        /// per file.
        problems: Vec<Problems>,
    },
    /// A pipeline read without problems did not build as a flow (a bug of
    /// `flow`: please report it).
    #[error("pipeline `{pipeline}` does not build as a flow: {detail}")]
    Build {
        /// The pipeline.
        pipeline: String,
        /// What the builder said.
        detail: String,
    },
    /// The operation needs a run of a pipeline, and this run is a flow
    /// written in Rust.
    #[error(
        "run {run} is a run of flow `{flow}`, which is not a pipeline: only runs of pipelines \
         can be {what} with `flow` (the program that started it can)"
    )]
    NotAPipeline {
        /// The run.
        run: FlowId,
        /// Its flow's name.
        flow: String,
        /// What was asked: `resumed`, `drawn`, ...
        what: &'static str,
    },
    /// The store lacks the definition a run ran.
    #[error(
        "run {run} ran definition {definition}, which the store does not hold: the store was \
         changed by hand, or the run was started by a program that did not save its definition"
    )]
    MissingDefinition {
        /// The run.
        run: FlowId,
        /// The definition's hash.
        definition: String,
    },
    /// A stored definition no longer reads as a pipeline.
    #[error(
        "the stored definition {definition} of run {run} does not read as a pipeline: {detail}"
    )]
    BadDefinition {
        /// The run.
        run: FlowId,
        /// The definition's hash.
        definition: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The run has ended: there is nothing to resume or cancel.
    #[error("run {run} has already ended ({state}): {hint}")]
    Ended {
        /// The run.
        run: FlowId,
        /// How it ended: `succeeded`, `reverted`, `failed`.
        state: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// Another process holds the run.
    #[error(
        "run {run} is held by `{owner}` (its lease runs until {until}): it is running in \
         another process; `flow cancel {run}` asks that process to stop, or wait for it to \
         finish (`flow resume --wait 30s` waits for a lease left by a process that died)"
    )]
    Held {
        /// The run.
        run: FlowId,
        /// Who holds it.
        owner: String,
        /// When its lease runs out, as a time.
        until: String,
    },
    /// Taking the run up from the journal failed.
    #[error("cannot take run {run} up: {source}")]
    Resume {
        /// The run.
        run: FlowId,
        /// Why.
        source: Box<ResumeError>,
    },
    /// A file or directory could not be read or written.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The step has no log file (yet).
    #[error(
        "step `{step}` of run {run} has no {what} yet (looked for `{}`): it has not started, \
         or its logs were deleted",
        path.display()
    )]
    NoLog {
        /// The run.
        run: FlowId,
        /// The step.
        step: String,
        /// `output`, or `undo output`.
        what: &'static str,
        /// The file looked for.
        path: PathBuf,
    },
    /// A time given on the command line does not read as one.
    #[error(
        "`{text}` is not a time: give a date (2026-05-01), a date and time (2026-05-01T14:30:00Z), \
         or how long ago (90m, 2h, 7days)"
    )]
    BadTime {
        /// What was given.
        text: String,
    },
    /// No pipeline file was found where the conductor was told to look.
    #[error(
        "no pipeline in {}: give pipeline files (.yaml or .yml) or directories that hold some",
        list_paths(paths)
    )]
    NoPipelines {
        /// Where it looked.
        paths: Vec<PathBuf>,
    },
}

impl OpsError {
    /// A storage error, as this layer reports it: an unknown run gets the
    /// sentence that says how to list runs.
    pub(crate) fn storage(e: StorageError, store: &impl std::fmt::Display) -> OpsError {
        match e {
            StorageError::NotFound(run) => OpsError::UnknownRun {
                text: run.to_string(),
                store: store.to_string(),
            },
            e => OpsError::Store(e),
        }
    }
}

impl From<Problems> for OpsError {
    fn from(problems: Problems) -> Self {
        OpsError::Problems {
            problems: vec![problems],
        }
    }
}

fn render(problems: &[Problems]) -> String {
    let all: String = problems.iter().map(Problems::render).collect();
    all.trim_end().to_string()
}

fn list(items: &[impl std::fmt::Display]) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = items.iter().take(SHOWN).map(|i| format!("`{i}`")).collect();
    if items.len() > SHOWN {
        out.push(format!("and {} more", items.len() - SHOWN));
    }
    out.join(", ")
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    list(&shown)
}
