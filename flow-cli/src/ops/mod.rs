//! The operations on runs, apart from any way of showing them: the `flow`
//! command calls these, and so can a web server.
//!
//! - [`Store::open`]: an SQLite file or a PostgreSQL URL, and where
//!   the logs of its runs go; [`Store::resolve_run`] finds a run by its id or
//!   the start of it.
//! - [`start_run`], [`resume_run`], [`rerun`]: an [`ActiveRun`] to drive, in
//!   the foreground or spawned, with its [`RunEvent`]s as they happen.
//! - [`list_runs`], [`show_run`]: what the store says of runs and their
//!   steps, as values that serialize to the JSON of `--output json`.
//! - [`step_logs`]: a step's log files, read whole or followed
//!   ([`LogFollower`]).
//! - [`cancel_run`], [`prune_runs`], [`run_graph`] and [`pipeline_graph`],
//!   [`post_run`] and [`pipeline_registry`] for conductors.

mod cancel;
mod error;
mod graph;
mod inspect;
mod jobs;
mod logs;
mod prune;
mod start;
mod store;
mod stored;
mod time;

pub use cancel::{Cancel, cancel_run, cancelled};
pub use error::OpsError;
pub use graph::{GraphFormat, pipeline_graph, render_graph, run_graph};
pub use inspect::{
    RunStatus, RunSummary, RunView, StepView, UndoView, list_runs, read_tail, show_run,
    show_run_graph,
};
pub use jobs::{Posted, pipeline_registry, post_run, read_pipelines};
pub use logs::{Chunk, LogFollower, StepLogs, Stream, step_logs};
pub use prune::{Pruned, prune_runs};
pub use start::{ActiveRun, RunEvent, RunOptions, rerun, resume_run, run_definition, start_run};
pub use store::{Access, Store, StoreLocation};
pub use time::{format_time, parse_time, short_duration};
