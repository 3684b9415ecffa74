//! Pipelines: flows written as YAML files, made of shell steps.
//!
//! Operations teams write their workflows as commands: "check the web server"
//! is `ping {ip}`, then `curl`, then a report. A *pipeline* is such a flow in
//! a file: typed parameters, steps that run programs, and the order between
//! them. It becomes an ordinary [`Flow`](flow_core::Flow) (a graph of one
//! atom per step), so it gets everything a flow has: both engines, revert,
//! retries, the journal, resumption.
//!
//! This crate is `flow::pipeline`, behind the `flow` crate's `pipeline`
//! feature (off by default); its examples are written as a user of `flow`
//! writes them.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # mod flow { pub use flow_core::*; pub use flow_pipeline as pipeline; }
//! use flow::pipeline::{Params, Pipeline, Settings};
//!
//! let pipeline = Pipeline::from_str("greet.yaml", r#"
//! name: greet
//! parameters:
//!   who: {type: string, default: world}
//!   times: {type: int, default: 2}
//! steps:
//!   - name: hello
//!     command: [echo, "hello, {who}"]
//!     output: greeting
//!   - name: repeat
//!     depends-on: [hello]
//!     script: for i in $(seq {times}); do echo {greeting}; done
//! "#)?;
//! let logs = tempfile::tempdir()?;
//! let run = pipeline.to_flow(&Params::new().set("who", "ops"), &Settings::new(logs.path()))?;
//! let dir = run.log_dir().to_path_buf();
//! let mut engine = run.engine()?.build();
//! engine.run().await?;
//! assert_eq!(engine.fetch::<String>("greeting").map(String::as_str), Some("hello, ops"));
//! assert_eq!(std::fs::read_to_string(dir.join("repeat.stdout"))?, "hello, ops\nhello, ops\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # The file
//!
//! ```yaml
//! name: web-check                 # the flow's name
//! description: Check a server.    # optional
//! parameters:                     # optional; a parameter without a default is required
//!   ip: {type: string, default: 127.0.0.1, description: The server.}
//!   port: {type: int, default: 80}          # string, int, float, bool
//!   mode: {one-of: [fast, slow], default: fast}
//! steps:
//!   - name: ping                  # letters, digits, `_`, `-`, `.`
//!     command: [ping, -c, 2, "{ip}"]        # a program and its arguments...
//!   - name: fetch
//!     script: curl -s http://{ip}:{port}/   # ...or a script run by `sh -c`
//!     output: page                # its standard output becomes the value `page`
//!     timeout: 30s                # then SIGTERM to its process group, SIGKILL after a grace
//!     retry: {attempts: 3, delay: 1s, backoff: exponential, max-delay: 10s, jitter: true}
//!     env: {LANG: C}
//!     working-directory: /tmp
//!   - name: report
//!     depends-on: [ping, fetch]   # starts when both have succeeded
//!     command: [echo, "{page}"]   # an output is usable by the steps that run after its step
//!     undo: {command: [echo, undone]}   # run if the pipeline reverts after this step succeeded
//! ```
//!
//! `pipeline.schema.json`, beside this crate's `Cargo.toml`, is the format's
//! JSON Schema, for editors.
//!
//! Several start steps, several end steps and steps with no edge at all are
//! normal. A step starts when every step it depends on has succeeded. When a
//! step fails (after its retries), nothing new starts, running steps finish,
//! and the undo commands of the steps that succeeded run in reverse
//! dependency order.
//!
//! # Checks
//!
//! [`Pipeline::from_str`] and [`Pipeline::from_path`] check the whole file
//! before anything runs and report every problem together ([`Problems`]),
//! each with its file, line, column and the offending text: text that is not
//! YAML, unknown or missing keys, values of the wrong type, invalid names,
//! duplicate steps, unknown dependencies, cycles (naming their steps),
//! placeholders that name no parameter and no output of a step that runs
//! before, defaults of the wrong type. [`Pipeline::check`] then checks the
//! values of a run ([`Params`]): a required parameter given none, a value of
//! the wrong type (never silently replaced by the default), a value for no
//! parameter. [`Problems::render`] draws them as a terminal shows them.
//!
//! # Values, safely
//!
//! `{name}` stands for a parameter's value or a step's output; `{{` and `}}`
//! write literal braces, and any other brace is a problem. A value is never
//! read as code:
//!
//! - in a `command`, each value goes inside the one argument where its
//!   placeholder stands, never split or re-read;
//! - in a `script`, a placeholder becomes a quoted reference to an
//!   environment variable that holds the value (`{ip}` reads
//!   `$FLOW_VALUE_ip`): the value never becomes shell text, so
//!   `127.0.0.1; rm -rf ~` is a host name that does not resolve;
//! - in `env` and `working-directory`, the value goes in as it is.
//!
//! Values are UTF-8 text without NUL bytes: a value that is not (given as
//! [`Params::text`], or printed by a step whose output is a value) is
//! refused with a problem naming it, since no program can receive a NUL in an
//! argument and the journal keeps values as UTF-8. A step also sees
//! `FLOW_STEP` (its name), `FLOW_ATTEMPT` (which execution this is, from 1:
//! a step caught running by a crash runs again) and `FLOW_RUN` (the run's key).
//!
//! # Running
//!
//! [`Pipeline::to_flow`] takes the values and the [`Settings`] and returns a
//! [`PipelineRun`]: the flow, and its inputs (each parameter's value, typed:
//! `String`, `i64`, `f64`, `bool`; and the run's key). The engine journals the
//! inputs with the run, so a run is resumed from the definition and the
//! journal alone: build [`Pipeline::flow`] and call
//! [`EngineBuilder::resume`](flow_core::EngineBuilder::resume).
//!
//! Each step is a child process in a process group of its own. Its standard
//! output and error go to files as they are produced,
//! `<logs>/<run key>/<step>.stdout` and `.stderr` (`<step>.undo.stdout` and
//! `.stderr` for its undo), never into memory; a step run again starts its
//! files anew. Its result in the journal is a [`StepReport`]: the exit status
//! and the last few KiB of each output ([`Settings::tail`]). Exit status 0 is
//! success; any other is a [`StepError`] whose message names the step and the
//! status and shows the tails. A timeout, or a cancel of the run
//! ([`RunHandle::cancel`](flow_core::RunHandle::cancel)), stops the step's
//! whole process group: `SIGTERM`, then `SIGKILL` after [`Settings::grace`].
//! An undo runs to its end even when the run was cancelled.
//!
//! # Definitions and status
//!
//! [`Pipeline::save`] keeps the definition in a store
//! ([`Backend::save_definition`](flow_core::Backend::save_definition)) under
//! its [`hash`](Pipeline::hash), which every run carries among its inputs;
//! [`Pipeline::load`] reads it back, and [`pipeline_status`] shows a run as
//! operators know it, from the store alone: the run `running`, `failed` or
//! `finished`, each step `waiting`, `pending`, `running`, `succeeded`,
//! `failed`, `reverting`, `reverted` or `skipped`, with its dependencies, its
//! undo and its attempts. It is a view over the journal's atom states, not a
//! second record.
//!
//! A step's `output` is its standard output without the line ends that close
//! it, at most [`Settings::max_output`] bytes (64 KiB by default).
//!
//! A runner that dies while a step runs (a crash, `kill -9`) leaves that
//! step's process group running: Rust cannot ask the kernel to end a child
//! with its parent without `unsafe`. When the run is resumed, the step runs
//! again from the start, and first stops the copy left from before
//! (`SIGTERM`, then `SIGKILL`), which it finds through `<step>.pid` in the
//! run's log directory; the leader's start time and the boot's id must match
//! too, so that a reused process id is never signalled.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod error;
mod model;
mod params;
mod parse;
mod reader;
mod run;
mod shell;
mod source;
mod status;
mod template;
mod yaml;

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use error::{Location, Problem, ProblemKind, Problems};
pub use model::{Param, ParamType, ParamValue, Pipeline, Step};
pub use params::Params;
pub use run::PipelineRun;
pub use run::report::{LogTail, StepError, StepReport};
pub use run::settings::Settings;
pub use status::{
    PipelineStatus, RunState, StatusError, StepState, StepStatus, pipeline_status, status_of,
};

/// The format of a pipeline definition, as a store of definitions names it:
/// part of what [`Pipeline::hash`] hashes.
pub const FORMAT: &str = "pipeline/yaml";

impl Pipeline {
    /// Reads and checks the pipeline in the file at `path`.
    ///
    /// # Errors
    /// Every problem of the file, together (see [`Pipeline::from_str`]); a
    /// file that cannot be read is one problem of kind
    /// [`ProblemKind::Read`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Pipeline, Problems> {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Pipeline::from_str(name, &text),
            Err(e) => {
                let source = source::Source::new(name, String::new());
                Err(Problems::new(vec![Problem::whole(
                    &source,
                    ProblemKind::Read {
                        message: e.to_string(),
                    },
                )]))
            }
        }
    }

    /// Reads and checks a pipeline from `text`, reported as file `name`.
    ///
    /// # Errors
    /// Every problem, together, each pointing at its line and column: text
    /// that is not YAML, unknown or missing keys, values of the wrong type,
    /// invalid names, duplicate steps, unknown dependencies, cycles,
    /// placeholders that name no parameter and no output of a step that runs
    /// before, defaults of the wrong type.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(name: impl Into<String>, text: &str) -> Result<Pipeline, Problems> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let canonical = text.replace("\r\n", "\n");
        let source = source::Source::new(name, canonical);
        let root = yaml::load(&source).map_err(|p| Problems::new(vec![p]))?;
        let mut reader = parse::Reader::new(&source);
        let parsed = parse::definition(&mut reader, &root);
        if let Some(parsed) = &parsed {
            check::check(&mut reader, parsed);
        }
        match parsed {
            Some(p) if reader.problems.is_empty() => {
                let mut hasher = Sha256::new();
                hasher.update(FORMAT.as_bytes());
                hasher.update([0u8]);
                hasher.update(source.text.as_bytes());
                let hash = hex(&hasher.finalize());
                Ok(Pipeline {
                    source: Arc::clone(&source),
                    hash,
                    name: p.name,
                    description: p.description,
                    params: p.params,
                    steps: p.steps,
                })
            }
            _ => Err(Problems::new(reader.problems)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
