//! The words of a run's events, and the plain view: one line per change,
//! for output that is not a terminal (a log, a pipe, CI).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use flow::AtomState;
use flow_cli::ops::{RunEvent, read_tail, short_duration};
use flow_pipeline::Pipeline;

use super::out;
use super::watch::View;

/// How many last lines of a failed step's output are shown.
const TAIL_LINES: usize = 5;

/// Turns step events into lines, timing each step from its start.
pub(crate) struct Words {
    width: usize,
    log_dir: PathBuf,
    started: HashMap<String, Instant>,
    /// Steps that failed: their revert undoes nothing, and is not shown.
    failed: HashSet<String>,
}

/// What a step event says.
pub(crate) enum Said {
    /// The step started (again, on a later attempt).
    Started,
    /// A line that stays, and lines of output under it.
    Ended {
        ok: bool,
        line: String,
        tail: Vec<String>,
    },
    /// Its undo started.
    Reverting,
    /// Nothing worth a line.
    Nothing,
}

impl Words {
    pub(crate) fn new(pipeline: &Pipeline, log_dir: &Path) -> Self {
        Words {
            width: pipeline
                .steps()
                .iter()
                .map(|s| s.name().len())
                .max()
                .unwrap_or(0),
            log_dir: log_dir.to_path_buf(),
            started: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    /// `name` padded to the longest step name.
    pub(crate) fn name(&self, name: &str) -> String {
        format!("{name:<w$}", w = self.width)
    }

    /// The blank that stands under a name.
    pub(crate) fn indent(&self) -> String {
        " ".repeat(self.width)
    }

    fn took(&self, step: &str) -> String {
        self.started
            .get(step)
            .map(|t| format!(" in {}", short_duration(t.elapsed())))
            .unwrap_or_default()
    }

    /// What `event` says about its step.
    pub(crate) fn step(&mut self, step: &str, state: AtomState, failure: Option<&str>) -> Said {
        let name = self.name(step);
        match state {
            AtomState::Running => {
                self.failed.remove(step);
                self.started.insert(step.to_string(), Instant::now());
                Said::Started
            }
            AtomState::Reverting | AtomState::Reverted if self.failed.contains(step) => {
                Said::Nothing
            }
            AtomState::Success => Said::Ended {
                ok: true,
                line: format!("{name}  succeeded{}", self.took(step)),
                tail: Vec::new(),
            },
            AtomState::Failure
                if failure
                    .is_some_and(|f| f.starts_with(&format!("step `{step}` was cancelled"))) =>
            {
                self.failed.insert(step.to_string());
                Said::Ended {
                    ok: false,
                    line: format!(
                        "{name}  cancelled{}",
                        self.took(step).replace(" in ", " after ")
                    ),
                    tail: Vec::new(),
                }
            }
            AtomState::Failure => {
                self.failed.insert(step.to_string());
                Said::Ended {
                    ok: false,
                    line: format!(
                        "{name}  failed{}: {}",
                        self.took(step),
                        reason(step, failure.unwrap_or("it failed"))
                    ),
                    tail: self.tail(step),
                }
            }
            AtomState::Reverting => {
                self.started.insert(step.to_string(), Instant::now());
                Said::Reverting
            }
            AtomState::Reverted => Said::Ended {
                ok: true,
                line: format!("{name}  reverted"),
                tail: Vec::new(),
            },
            AtomState::RevertFailure => Said::Ended {
                ok: false,
                line: format!(
                    "{name}  revert failed: {}",
                    reason(step, failure.unwrap_or("its undo failed"))
                ),
                tail: self.undo_tail(step),
            },
            AtomState::Ignore => Said::Ended {
                ok: true,
                line: format!("{name}  skipped"),
                tail: Vec::new(),
            },
            _ => Said::Nothing,
        }
    }

    /// The last lines a failed step wrote: its standard error, else its
    /// standard output.
    fn tail(&self, step: &str) -> Vec<String> {
        self.tail_of(step)
    }

    fn undo_tail(&self, step: &str) -> Vec<String> {
        self.tail_of(&format!("{step}.undo"))
    }

    fn tail_of(&self, base: &str) -> Vec<String> {
        for stream in ["stderr", "stdout"] {
            let path = self.log_dir.join(format!("{base}.{stream}"));
            if let Some(text) = read_tail(&path, TAIL_LINES)
                && !text.is_empty()
            {
                return text.lines().map(str::to_string).collect();
            }
        }
        Vec::new()
    }
}

/// A failure's first line without the words that repeat the step's name:
/// `step `switch` failed: exit status 4` says `exit status 4`.
pub(crate) fn reason(step: &str, message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix(&format!("step `{step}` "))
        .unwrap_or(first);
    rest.strip_prefix("failed: ").unwrap_or(rest).to_string()
}

/// One line per change.
pub(crate) struct Plain {
    words: Words,
}

impl Plain {
    pub(crate) fn new(pipeline: &Pipeline, log_dir: &Path) -> Self {
        Plain {
            words: Words::new(pipeline, log_dir),
        }
    }
}

impl View for Plain {
    fn line(&mut self, text: &str) {
        out!("{text}");
    }

    fn event(&mut self, event: &RunEvent) {
        let RunEvent::Step {
            step,
            state,
            failure,
        } = event
        else {
            return;
        };
        match self.words.step(step, *state, failure.as_deref()) {
            Said::Started => out!("{}  running", self.words.name(step)),
            Said::Reverting => out!("{}  reverting", self.words.name(step)),
            Said::Ended { line, tail, .. } => {
                out!("{line}");
                for l in tail {
                    out!("{}  | {l}", self.words.indent());
                }
            }
            Said::Nothing => {}
        }
    }

    fn close(&mut self, last: &str) {
        if !last.is_empty() {
            out!("{last}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn reasons_do_not_repeat_the_step() {
        assert_eq!(
            reason("switch", "step `switch` failed: exit status 4\n--- x"),
            "exit status 4"
        );
        assert_eq!(
            reason(
                "a",
                "step `a` timed out after 1s: its processes were sent SIGTERM"
            ),
            "timed out after 1s: its processes were sent SIGTERM"
        );
        assert_eq!(reason("a", "a panic"), "a panic");
    }
}
