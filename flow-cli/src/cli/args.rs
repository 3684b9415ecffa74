//! The command line: every subcommand and option, with its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit codes, as `--help` and the README list them.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0    success: the command did what was asked; a run succeeded
  1    a run failed: a step failed and what had run was reverted (or reverting failed too)
  2    bad input: the command line, a pipeline file, or the values of its parameters
  3    not found: no such run, step, log or store
  4    the store cannot be used: not a store, damaged, written by a newer flow, locked
  5    refused: the run is held by another process, or has already ended
  130  stopped by Ctrl-C: the run was cancelled and reverted, or left for `flow resume`";

/// Run pipelines, watch them, and inspect and steer their runs.
///
/// Runs are kept in a store (an SQLite file, `flow.db` unless --store or
/// FLOW_STORE say otherwise); the output of their steps goes to files in a
/// directory beside it (`flow-logs`).
#[derive(Debug, Parser)]
#[command(name = "flow", version, after_help = EXIT_CODES, max_term_width = 100)]
pub(crate) struct Cli {
    /// The store: an SQLite file, or a postgres:// URL.
    #[arg(
        long,
        global = true,
        env = "FLOW_STORE",
        default_value = "flow.db",
        value_name = "FILE|URL"
    )]
    pub(crate) store: String,

    /// Where the output of steps goes [default: beside the store, `flow.db` keeps its logs in
    /// `flow-logs`].
    #[arg(long, global = true, env = "FLOW_LOGS", value_name = "DIR")]
    pub(crate) logs: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check pipeline files: every problem of every file, with its line and column.
    Check {
        /// The pipeline files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run a pipeline, showing its steps as they run.
    ///
    /// On a terminal, a line per running step with its time, a bar of the steps done, and
    /// each failure with the last lines of its output; elsewhere, a plain line per change.
    /// Required parameters not given with -p are asked for on a terminal. Ctrl-C cancels
    /// the run (its running steps are stopped and what had run is reverted); a second
    /// Ctrl-C leaves it as it is, for `flow resume`.
    Run {
        /// The pipeline file.
        file: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List runs, newest first.
    Runs {
        /// Only runs in this state: pending, running, suspended, succeeded, reverted, failed
        /// (`failed` also lists the reverted ones). May be given more than once.
        #[arg(long, value_name = "STATE", value_parser = parse_status)]
        state: Vec<flow_cli::ops::RunStatus>,
        /// Only runs of this pipeline (flow).
        #[arg(long, value_name = "NAME")]
        flow: Option<String>,
        /// Only runs started since this time: a date (2026-05-01), a time in UTC
        /// (2026-05-01T14:30:00Z), or how long ago (90m, 2h, 7days).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a run: its steps, their states, attempts, durations, exit codes and last lines of
    /// output.
    Show {
        /// The run's id, or its first characters.
        run: String,
        /// How many last lines of each step's output to show.
        #[arg(long, default_value_t = 3, value_name = "LINES")]
        tail: usize,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print what a step of a run wrote: its standard output to standard output, its
    /// standard error to standard error.
    Logs {
        /// The run's id, or its first characters.
        run: String,
        /// The step.
        step: String,
        /// Keep printing what the step writes until it ends.
        #[arg(long, short)]
        follow: bool,
        /// The output of the step's undo command instead.
        #[arg(long)]
        undo: bool,
    },
    /// Take up a run where it stopped (after a crash, a second Ctrl-C, or a suspend).
    Resume {
        /// The run's id, or its first characters.
        run: String,
        /// Wait up to this long for a lease left by a process that died to run out.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        wait: Option<Duration>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Cancel a run: its running steps are stopped and what had run is reverted.
    ///
    /// A run that another process is running is asked through the store to cancel: that
    /// process stops it within a second or two (within its lease renewal). A run nobody
    /// runs (its process died, or was left with a second Ctrl-C) is reverted here.
    Cancel {
        /// The run's id, or its first characters.
        run: String,
        /// When another process runs it, wait until it has ended.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Start a new run of the definition a run ran, with the same parameters.
    Rerun {
        /// The run's id, or its first characters.
        run: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Delete the runs that ended before a time, with their logs.
    Prune {
        /// Delete runs that ended before this time: a date (2026-05-01), a time in UTC
        /// (2026-05-01T14:30:00Z), or how long ago (30days).
        #[arg(long, value_name = "TIME")]
        before: String,
        /// Only list the runs that would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Draw a pipeline, or a run with the state and duration of each step.
    Graph {
        /// A pipeline file, or a run's id (or its first characters).
        target: String,
        /// The language to write the graph in.
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
        format: GraphFormatArg,
    },
    /// Post a run of a pipeline as a job, for a conductor (`flow conductor`) to run.
    Post {
        /// The pipeline file.
        file: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Run the jobs of the given pipelines until stopped.
    ///
    /// SIGTERM or Ctrl-C stops it: it claims nothing more, lets its running steps finish,
    /// hands its jobs back for another conductor, and exits.
    Conductor {
        /// Pipeline files, or directories of them (.yaml, .yml).
        #[arg(long, required = true, num_args = 1.., value_name = "DIR|FILE")]
        pipelines: Vec<PathBuf>,
        /// Its name, shown as the owner of the runs it holds [default: host:pid:random].
        #[arg(long)]
        name: Option<String>,
        /// How many jobs it runs at once.
        #[arg(long, default_value_t = 2, value_name = "N")]
        concurrency: usize,
        /// How long its claim on a job outlives it if it dies.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
        lease: Duration,
        /// How often it looks for new jobs when idle.
        #[arg(long, default_value = "500ms", value_name = "DURATION", value_parser = parse_duration)]
        poll: Duration,
    },
    /// Serve a web page to watch runs, start pipelines, and cancel, resume and re-run runs.
    ///
    /// It binds a loopback address unless --public is given. Actions need the token: the one
    /// given (--token, FLOW_TOKEN), or a new one printed at start. The pipelines that can be
    /// started from the page are those of --pipelines, read once at start; runs of any
    /// pipeline in the store can be watched, resumed and re-run. The JSON API under the page
    /// is described in the README.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
        bind: std::net::SocketAddr,
        /// The token actions need [default: a new one, printed at start].
        #[arg(long, env = "FLOW_TOKEN", hide_env_values = true, value_name = "TOKEN")]
        token: Option<String>,
        /// Pipeline files, or directories of them (.yaml, .yml), that may be started from the
        /// page.
        #[arg(long, num_args = 1.., value_name = "DIR|FILE")]
        pipelines: Vec<PathBuf>,
        /// Allow an address that is not loopback: the page is then open to the network.
        #[arg(long)]
        public: bool,
        /// How many steps of each run may run at once.
        #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
        jobs: usize,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    ///
    /// For bash: `flow completions bash > ~/.local/share/bash-completion/completions/flow`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ParamArgs {
    /// A parameter's value (repeat for each parameter).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub(crate) params: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    /// How many steps may run at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub(crate) jobs: usize,
    /// How long this process's claim on the run outlives it if it dies: the wait before
    /// another process may take the run up.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) lease: Duration,
    /// Plain lines, even on a terminal.
    #[arg(long)]
    pub(crate) plain: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// How to print: a table for people, or JSON for programs (its shape is in the README).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormatArg {
    /// Graphviz (`flow graph ... | dot -Tsvg > graph.svg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("`{text}`: give a parameter as NAME=VALUE")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): write it as 500ms, 10s, 2m"))
}

fn parse_status(text: &str) -> Result<flow_cli::ops::RunStatus, String> {
    flow_cli::ops::RunStatus::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a state: give pending, running, suspended, succeeded, reverted or \
             failed"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parameters_split_at_the_first_equals_sign() {
        assert_eq!(parse_param("url=a=b"), Ok(("url".into(), "a=b".into())));
        assert_eq!(parse_param("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_param("=x").is_err());
        assert!(parse_param("novalue").is_err());
    }
}
