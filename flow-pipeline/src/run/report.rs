//! What the journal keeps of a step's process: how it ended and the end of
//! what it printed; and the typed errors of a step.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How a step's program ended, and the end of its outputs: a step's result in
/// the journal (and its undo's revert result).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// The exit code, when the program exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: LogTail,
    /// Standard error.
    pub stderr: LogTail,
}

/// The end of one output of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTail {
    /// The file that holds all of it.
    pub path: String,
    /// How many bytes it holds.
    pub bytes: u64,
    /// Its last bytes (at most the configured tail; UTF-8, with any byte
    /// that is not shown as U+FFFD).
    pub tail: String,
}

impl LogTail {
    /// Reads the last `max` bytes of the file at `path`.
    pub(crate) fn read(path: &Path, max: usize) -> std::io::Result<LogTail> {
        let mut file = std::fs::File::open(path)?;
        let bytes = file.metadata()?.len();
        let start = bytes.saturating_sub(max as u64);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity(max.min(1 << 20));
        file.take(max as u64).read_to_end(&mut buf)?;
        // A tail that starts inside a character starts at the next one.
        let skip = if start > 0 {
            buf.iter()
                .take(3)
                .take_while(|b| (**b & 0xC0) == 0x80)
                .count()
        } else {
            0
        };
        Ok(LogTail {
            path: path.display().to_string(),
            bytes,
            tail: String::from_utf8_lossy(&buf[skip..]).into_owned(),
        })
    }
}

impl fmt::Display for StepReport {
    /// `exit status 3`, `killed by signal 9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => f.write_str("ended"),
        }
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The program ended with a non-zero status or by a signal.
    #[error("step `{step}` failed: {report}{}", tails(.report))]
    Failed {
        /// The step.
        step: String,
        /// How it ended and what it printed last.
        report: Box<StepReport>,
    },
    /// It ran longer than its `timeout`.
    #[error(
        "step `{step}` timed out after {timeout:?}: its processes were sent SIGTERM, and \
         SIGKILL {grace:?} later if any remained{}", tails(.report)
    )]
    TimedOut {
        /// The step.
        step: String,
        /// Its time limit.
        timeout: std::time::Duration,
        /// The grace period.
        grace: std::time::Duration,
        /// What it printed last.
        report: Box<StepReport>,
    },
    /// The run was cancelled while it ran.
    #[error("step `{step}` was cancelled: its processes were stopped{}", tails(.report))]
    Cancelled {
        /// The step.
        step: String,
        /// What it printed last.
        report: Box<StepReport>,
    },
    /// The program could not be started.
    #[error("step `{step}` could not start `{program}`: {source}")]
    Spawn {
        /// The step.
        step: String,
        /// The program.
        program: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// Its log files could not be written or read.
    #[error("step `{step}` could not use its log file {path}: {source}")]
    Log {
        /// The step.
        step: String,
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// Its standard output cannot be the value it declares.
    #[error("step `{step}` succeeded, but its output cannot be the value `{output}`: {reason}")]
    Output {
        /// The step.
        step: String,
        /// The value's name.
        output: String,
        /// Why.
        reason: String,
    },
    /// A value it was given cannot be handed to a program.
    #[error("step `{step}` cannot use the value of `{name}`: {reason}")]
    Value {
        /// The step.
        step: String,
        /// The value.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The tails of a report's outputs, each under a line that says which file
/// it ends; empty when the step printed nothing.
fn tails(report: &StepReport) -> String {
    let mut out = String::new();
    for (what, log) in [("output", &report.stdout), ("error", &report.stderr)] {
        if log.tail.is_empty() {
            continue;
        }
        let part = if log.bytes as usize > log.tail.len() {
            format!("the last {} bytes of its standard {what}", log.tail.len())
        } else {
            format!("its standard {what}")
        };
        if out.is_empty() {
            out.push('\n');
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("--- {part} ({}) ---\n{}", log.path, log.tail));
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
