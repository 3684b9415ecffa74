//! The `flow` command's library: the operations on runs of flows and
//! pipelines ([`ops`]), apart from the command line that calls them.
//!
//! The binary (`flow`, in this crate) parses arguments and draws on the
//! terminal; everything it does to a store goes through [`ops`], which the
//! web page of `flow serve` ([`serve`]) calls the same way.
//!
//! # The JSON of `--output json`
//!
//! `flow runs --output json` prints an array of runs, newest first, each a
//! [`RunSummary`](ops::RunSummary):
//!
//! ```json
//! {"id": "67e55044-10b1-426f-9247-bb680e5fe0c8", "flow": "deploy", "state": "reverted",
//!  "created_at": "2026-05-01T14:30:00.120Z", "updated_at": "2026-05-01T14:30:02.480Z",
//!  "duration_ms": 2360, "owner": "web-1:8812:1f3a9c2e", "held": false,
//!  "cancel_requested": false, "definition": "9f86d08…"}
//! ```
//!
//! `state` is one of `pending`, `running`, `suspended`, `succeeded`,
//! `reverted` (a step failed, or the run was cancelled, and what had run was
//! undone) and `failed` (undoing failed too). `owner` is who holds the run or
//! held it last, `held` whether that owner's lease is live now (a process is
//! running it), `definition` the hash of the pipeline definition it ran
//! (`null` for a flow written in Rust).
//!
//! `flow show RUN --output json` prints one [`RunView`](ops::RunView): the
//! same fields, and `params` (the parameters' values, by name), `log_dir`,
//! and `steps`, in the order of the definition, each a
//! [`StepView`](ops::StepView):
//!
//! ```json
//! {"name": "switch", "state": "failed", "attempts": 1, "depends_on": ["unpack"],
//!  "started_at": "2026-05-01T14:30:01.900Z", "ended_at": "2026-05-01T14:30:01.950Z",
//!  "duration_ms": 50, "exit_code": 4, "signal": null,
//!  "error": "step `switch` failed: exit status 4",
//!  "stdout_tail": null, "stderr_tail": "cannot switch the link", "undo": null}
//! ```
//!
//! A step's `state` is one of `waiting`, `pending`, `running`, `succeeded`,
//! `failed`, `reverting`, `reverted`, `skipped`; `undo`, once the step's undo
//! command ran, is `{"duration_ms": .., "exit_code": .., "error": ..}`. Times
//! are RFC 3339 in UTC; a field that does not apply is `null`. Fields may be
//! added; none is removed or changes meaning within a major version.

pub mod ops;
pub mod serve;
