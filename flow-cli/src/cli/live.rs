//! The live view of a run on a terminal: a line per running step with its
//! elapsed time, a bar of the steps done, and each step's end, failures with
//! the last lines of their output, printed above them as they happen.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use flow::{AtomState, FlowState};
use flow_cli::ops::RunEvent;
use flow_pipeline::Pipeline;

use super::plain::{Said, Words};
use super::watch::View;

/// How often the running lines are drawn again.
const TICK: Duration = Duration::from_millis(100);

pub(crate) struct Live {
    words: Words,
    bars: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, ProgressBar>,
    done: u64,
    failed: u64,
}

fn seconds(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
}

fn step_style(what: &str) -> ProgressStyle {
    let template = format!("{{spinner:.cyan}} {{prefix}}  {what} {{secs:.dim}}");
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("secs", seconds)
}

impl Live {
    pub(crate) fn new(pipeline: &Pipeline, log_dir: &Path) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let total = pipeline.steps().len() as u64;
        let overall = bars.add(ProgressBar::new(total));
        overall.set_style(
            ProgressStyle::with_template(
                "{bar:30.green/dim} {pos}/{len} steps done  {secs:.dim}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("secs", seconds)
            .progress_chars("━╸━"),
        );
        overall.enable_steady_tick(TICK);
        Live {
            words: Words::new(pipeline, log_dir),
            bars,
            overall,
            running: HashMap::new(),
            done: 0,
            failed: 0,
        }
    }

    fn start(&mut self, step: &str, what: &str) {
        let bar = self
            .bars
            .insert_before(&self.overall, ProgressBar::new_spinner());
        bar.set_style(step_style(what));
        bar.set_prefix(self.words.name(step));
        bar.enable_steady_tick(TICK);
        if let Some(old) = self.running.insert(step.to_string(), bar) {
            old.finish_and_clear();
            self.bars.remove(&old);
        }
    }

    fn stop(&mut self, step: &str) {
        if let Some(bar) = self.running.remove(step) {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }
}

impl View for Live {
    fn line(&mut self, text: &str) {
        let _ = self.bars.println(text);
    }

    fn event(&mut self, event: &RunEvent) {
        let (step, state, failure) = match event {
            RunEvent::Run { state } => {
                if *state == FlowState::Suspending {
                    self.overall.set_message("suspending");
                }
                return;
            }
            RunEvent::Step {
                step,
                state,
                failure,
            } => (step, *state, failure.as_deref()),
            _ => return,
        };
        match self.words.step(step, state, failure) {
            Said::Started => self.start(step, "running"),
            Said::Reverting => {
                self.overall.set_message(if self.failed > 0 {
                    format!("{} failed, reverting", self.failed)
                } else {
                    "reverting".to_string()
                });
                self.start(step, "reverting");
            }
            Said::Ended { ok, line, tail } => {
                self.stop(step);
                if state == AtomState::Success {
                    self.done += 1;
                    self.overall.set_position(self.done);
                }
                let mark = match state {
                    _ if !ok => style("✘").red().bold(),
                    AtomState::Reverted => style("↺").yellow(),
                    AtomState::Ignore => style("-").dim(),
                    _ => style("✔").green(),
                };
                if !ok {
                    self.failed += 1;
                    self.overall.set_message(format!("{} failed", self.failed));
                }
                let _ = self.bars.println(format!("{mark} {line}"));
                for l in tail {
                    let _ = self.bars.println(format!(
                        "  {}  {} {l}",
                        self.words.indent(),
                        style("│").dim()
                    ));
                }
            }
            Said::Nothing => {}
        }
    }

    fn done_before(&mut self, steps: usize) {
        self.done = steps as u64;
        self.overall.set_position(self.done);
    }

    fn close(&mut self, last: &str) {
        for (_, bar) in self.running.drain() {
            bar.finish_and_clear();
        }
        self.overall.abandon();
        if !last.is_empty() {
            super::out!("{last}");
        }
    }
}
