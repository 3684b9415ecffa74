//! Looking at runs: a list with filters, and one run with its steps, their
//! states, attempts, durations, exit codes and the end of their output.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use flow::{AtomDetail, AtomKind, AtomState, FlowDetail, FlowId, FlowQuery, FlowState, storage};
use flow_pipeline::status_of;

use super::stored::{StoredRun, report, undo_report};
use super::time::{between, format_time_ms};
use super::{OpsError, Store};

/// How a run stands, in the words the `flow` command and its JSON use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunStatus {
    /// Posted as a job, or made and not started.
    Pending,
    /// Running (or caught running by a crash, and not taken up since).
    Running,
    /// Suspending or suspended: it continues when resumed.
    Suspended,
    /// Every step succeeded.
    Succeeded,
    /// A step failed, or the run was cancelled, and what had run was undone.
    Reverted,
    /// A step failed and undoing what had run failed too.
    Failed,
}

impl RunStatus {
    /// The status of a run in `state`.
    pub fn of(state: FlowState) -> RunStatus {
        match state {
            FlowState::Pending => RunStatus::Pending,
            FlowState::Success => RunStatus::Succeeded,
            FlowState::Reverted => RunStatus::Reverted,
            FlowState::Failure => RunStatus::Failed,
            FlowState::Suspending | FlowState::Suspended => RunStatus::Suspended,
            _ => RunStatus::Running,
        }
    }

    /// `pending`, `running`, `suspended`, `succeeded`, `reverted`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Suspended => "suspended",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Reverted => "reverted",
            RunStatus::Failed => "failed",
        }
    }

    /// Whether the run has ended.
    pub fn ended(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Reverted | RunStatus::Failed
        )
    }

    /// The journal's states a filter on this word selects: `failed` selects
    /// every run that failed, reverted or not.
    pub fn states(self) -> &'static [FlowState] {
        match self {
            RunStatus::Pending => &[FlowState::Pending],
            RunStatus::Running => &[FlowState::Running, FlowState::Resuming],
            RunStatus::Suspended => &[FlowState::Suspending, FlowState::Suspended],
            RunStatus::Succeeded => &[FlowState::Success],
            RunStatus::Reverted => &[FlowState::Reverted],
            RunStatus::Failed => &[FlowState::Failure, FlowState::Reverted],
        }
    }

    /// `query` narrowed to also select runs of this status (the journal's
    /// [`states`](RunStatus::states) it stands for, each once).
    pub fn select(self, mut query: FlowQuery) -> FlowQuery {
        for state in self.states() {
            if !query.states.contains(state) {
                query = query.state(*state);
            }
        }
        query
    }

    /// The status a word names.
    pub fn parse(word: &str) -> Option<RunStatus> {
        [
            RunStatus::Pending,
            RunStatus::Running,
            RunStatus::Suspended,
            RunStatus::Succeeded,
            RunStatus::Reverted,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run in a list of runs (`flow runs`, and each element of
/// `flow runs --output json`).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run's id.
    pub id: FlowId,
    /// The flow's (the pipeline's) name.
    pub flow: String,
    /// How it stands.
    pub state: RunStatus,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// When its record last changed.
    pub updated_at: String,
    /// From its creation to its last change (to now, while it runs), in
    /// milliseconds.
    pub duration_ms: u64,
    /// Who holds it, or held it last.
    pub owner: Option<String>,
    /// Whether its owner's lease is live now: a process is running it.
    pub held: bool,
    /// Whether someone asked it to cancel.
    pub cancel_requested: bool,
    /// The hash of the pipeline definition it runs, for a pipeline's run.
    pub definition: Option<String>,
    /// When it was created, in seconds since the Unix epoch.
    #[serde(skip)]
    pub created: f64,
    /// How long it took (or has taken so far).
    #[serde(skip)]
    pub duration: Duration,
}

impl RunSummary {
    pub(crate) fn of(detail: &FlowDetail, now: f64) -> RunSummary {
        let state = RunStatus::of(detail.state);
        let end = if state.ended() || state == RunStatus::Suspended {
            detail.updated_at
        } else {
            now.max(detail.updated_at)
        };
        let duration = between(Some(detail.created_at), Some(end)).unwrap_or_default();
        RunSummary {
            id: detail.id,
            flow: detail.name.clone(),
            state,
            created_at: format_time_ms(detail.created_at),
            updated_at: format_time_ms(detail.updated_at),
            duration_ms: millis(duration),
            owner: detail.ownership.owner.clone(),
            held: detail.ownership.is_live(now),
            cancel_requested: detail.ownership.cancel_requested,
            definition: super::stored::input_str(detail, super::stored::DEFINITION)
                .map(str::to_string),
            created: detail.created_at,
            duration,
        }
    }
}

/// The runs `query` asks for, newest first. Narrow it to the runs of a
/// [`RunStatus`] with [`RunStatus::select`].
///
/// # Errors
/// What the store says.
pub async fn list_runs(store: &Store, query: FlowQuery) -> Result<Vec<RunSummary>, OpsError> {
    let runs = store
        .backend()
        .list_flows(query)
        .await
        .map_err(OpsError::Store)?;
    let now = storage::now_unix();
    Ok(runs.iter().map(|r| RunSummary::of(r, now)).collect())
}

/// One run with its steps (`flow show`, and `flow show --output json`).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RunView {
    /// The run, as a list shows it.
    #[serde(flatten)]
    pub run: RunSummary,
    /// The values of the pipeline's parameters (the flow's inputs, for a
    /// flow that is not a pipeline), by name.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The directory of the run's logs, for a pipeline's run.
    pub log_dir: Option<String>,
    /// Every step, in the order of the definition.
    pub steps: Vec<StepView>,
}

/// One step of a run.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct StepView {
    /// Its name.
    pub name: String,
    /// How it stands: `waiting`, `pending`, `running`, `succeeded`,
    /// `failed`, `reverting`, `reverted`, `skipped`.
    pub state: String,
    /// How many times its command was started.
    pub attempts: u32,
    /// The steps it waits for.
    pub depends_on: Vec<String>,
    /// When its latest attempt started (RFC 3339, UTC).
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// How long it took (so far, while it runs), in milliseconds.
    pub duration_ms: Option<u64>,
    /// The exit code of its command, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended its command, when one did.
    pub signal: Option<i32>,
    /// Why it failed: the first line of its failure.
    pub error: Option<String>,
    /// The last lines of its standard output.
    pub stdout_tail: Option<String>,
    /// The last lines of its standard error.
    pub stderr_tail: Option<String>,
    /// Its undo command, once it ran.
    pub undo: Option<UndoView>,
    /// How long it took.
    #[serde(skip)]
    pub duration: Option<Duration>,
}

/// What a step's undo command did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct UndoView {
    /// How long it took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Run `run` with its steps; `tail` is how many last lines of each output
/// to show.
///
/// # Errors
/// [`OpsError::UnknownRun`]; [`OpsError::MissingDefinition`] and
/// [`OpsError::BadDefinition`] for a pipeline's run whose definition the
/// store lacks; what the store says.
pub async fn show_run(store: &Store, run: FlowId, tail: usize) -> Result<RunView, OpsError> {
    let stored = StoredRun::load(store, run).await?;
    Ok(view_of(store, &stored, tail))
}

/// Run `run` with its steps, as [`show_run`], and its graph, as
/// [`run_graph`](super::run_graph), from one reading of the store.
///
/// # Errors
/// As [`show_run`] and [`run_graph`](super::run_graph).
pub async fn show_run_graph(
    store: &Store,
    run: FlowId,
    tail: usize,
) -> Result<(RunView, flow::FlowGraph), OpsError> {
    let stored = StoredRun::load(store, run).await?;
    let graph = super::graph::graph_of(&stored)?;
    Ok((view_of(store, &stored, tail), graph))
}

fn view_of(store: &Store, stored: &StoredRun, tail: usize) -> RunView {
    let now = storage::now_unix();
    let log_dir = stored.log_dir(store).filter(|_| stored.pipeline.is_some());
    let steps = match &stored.pipeline {
        Some(pipeline) => {
            let status = status_of(pipeline, &stored.detail, &stored.atoms);
            status
                .steps
                .iter()
                .map(|s| {
                    let mut view = step_view(
                        &s.name,
                        s.state.as_str().to_string(),
                        stored.atom(&s.name),
                        now,
                        tail,
                        log_dir.as_deref(),
                    );
                    view.depends_on.clone_from(&s.depends_on);
                    view.attempts = s.attempts;
                    view
                })
                .collect()
        }
        None => atom_order(&stored.detail, &stored.atoms)
            .into_iter()
            .map(|a| step_view(&a.name, atom_word(a.state), Some(a), now, tail, None))
            .collect(),
    };
    RunView {
        run: RunSummary::of(&stored.detail, now),
        params: stored.params_json(),
        log_dir: log_dir.map(|d| d.display().to_string()),
        steps,
    }
}

/// The atoms of a run that is not a pipeline's, in the order of its
/// definition (the journal keeps it), controllers left out.
fn atom_order<'a>(detail: &FlowDetail, atoms: &'a [AtomDetail]) -> Vec<&'a AtomDetail> {
    let order: Vec<&str> = detail
        .meta
        .get("atoms")
        .and_then(|a| a.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|pair| pair.get(0).and_then(|n| n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<&AtomDetail> = atoms.iter().filter(|a| a.kind == AtomKind::Task).collect();
    out.sort_by_key(|a| {
        order
            .iter()
            .position(|n| *n == a.name)
            .unwrap_or(usize::MAX)
    });
    out
}

/// An atom's state in the words of steps.
fn atom_word(state: AtomState) -> String {
    match state {
        AtomState::Pending => "pending",
        AtomState::Running | AtomState::Retrying => "running",
        AtomState::Success => "succeeded",
        AtomState::Failure | AtomState::RevertFailure => "failed",
        AtomState::Reverting => "reverting",
        AtomState::Reverted => "reverted",
        AtomState::Ignore => "skipped",
    }
    .to_string()
}

fn step_view(
    name: &str,
    state: String,
    atom: Option<&AtomDetail>,
    now: f64,
    tail: usize,
    log_dir: Option<&Path>,
) -> StepView {
    let at = |k: &str| atom.and_then(|a| a.meta.get(k)).and_then(|v| v.as_f64());
    let started = at("started_at");
    // A step that failed and was reverted before the journal's next write
    // has no end of its own: it ended when its revert started.
    let ended = at("ended_at").or_else(|| started.and(at("revert_started_at")));
    let running = atom.is_some_and(|a| a.state == AtomState::Running);
    let duration = if running {
        between(started, Some(now))
    } else {
        between(started, ended)
    };
    let report = atom.and_then(report);
    let failure = atom.and_then(|a| a.failure.as_ref());
    let (mut exit_code, mut signal) = (
        report.as_ref().and_then(|r| r.code),
        report.as_ref().and_then(|r| r.signal),
    );
    if let Some(f) = failure {
        (exit_code, signal) = exit_of(f.message());
    } else if report.is_none()
        && atom.is_some_and(|a| matches!(a.state, AtomState::Reverting | AtomState::Reverted))
    {
        // A step is undone only after it succeeded, and a step succeeds
        // only by exiting with status 0; its report went with the revert.
        exit_code = Some(0);
    }
    let (stdout_tail, stderr_tail) = match &report {
        Some(r) => (
            Some(last_lines(&r.stdout.tail, tail)),
            Some(last_lines(&r.stderr.tail, tail)),
        ),
        None => match log_dir {
            Some(dir) if atom.is_some_and(|a| a.attempts > 0) => (
                read_tail(&dir.join(format!("{name}.stdout")), tail),
                read_tail(&dir.join(format!("{name}.stderr")), tail),
            ),
            _ => (None, None),
        },
    };
    let undo = atom.and_then(|a| {
        let (start, end) = (
            a.meta.get("revert_started_at").and_then(|v| v.as_f64()),
            a.meta.get("revert_ended_at").and_then(|v| v.as_f64()),
        );
        let report = undo_report(a);
        let error = a.revert_failure.as_ref().map(|f| first_line(f.message()));
        if report.is_none() && error.is_none() {
            return None;
        }
        Some(UndoView {
            duration_ms: between(start, end).map(millis),
            exit_code: report.and_then(|r| r.code),
            error,
        })
    });
    StepView {
        name: name.to_string(),
        state,
        attempts: atom.map_or(0, |a| a.attempts),
        depends_on: Vec::new(),
        started_at: started.map(format_time_ms),
        ended_at: ended.filter(|_| !running).map(format_time_ms),
        duration_ms: duration.map(millis),
        exit_code,
        signal,
        error: failure.map(|f| first_line(f.message())),
        stdout_tail: stdout_tail.filter(|t| !t.is_empty()),
        stderr_tail: stderr_tail.filter(|t| !t.is_empty()),
        undo,
        duration,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// The exit code or signal a step's failure names (`step `x` failed: exit
/// status 4`, `... killed by signal 9`), read from its message: the journal
/// keeps a failure as text.
pub(crate) fn exit_of(message: &str) -> (Option<i32>, Option<i32>) {
    let line = message.lines().next().unwrap_or_default();
    let number = |marker: &str| {
        let rest = &line[line.rfind(marker)? + marker.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    (number("exit status "), number("killed by signal "))
}

/// The last `n` lines of `text`, without the line end that closes it.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() || n == 0 {
        return String::new();
    }
    let mut start = text.len();
    for _ in 0..n {
        match text[..start].rfind('\n') {
            Some(i) => start = i,
            None => return text.to_string(),
        }
    }
    text[start + 1..].to_string()
}

/// The last `n` lines of the file at `path` (from its last 16 KiB, however
/// large the file), if it can be read.
pub fn read_tail(path: &Path, n: usize) -> Option<String> {
    const WINDOW: u64 = 16 * 1024;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)))
        .ok()?;
    let mut buf = Vec::new();
    file.take(WINDOW).read_to_end(&mut buf).ok()?;
    Some(last_lines(&String::from_utf8_lossy(&buf), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals_are_read_from_failures() {
        assert_eq!(
            exit_of("step `switch` failed: exit status 4\n---"),
            (Some(4), None)
        );
        assert_eq!(
            exit_of("step `a` failed: killed by signal 9"),
            (None, Some(9))
        );
        assert_eq!(exit_of("step `a` timed out after 1s"), (None, None));
    }

    #[test]
    fn last_lines_keep_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb\nc", 5), "a\nb\nc");
        assert_eq!(last_lines("", 3), "");
        assert_eq!(last_lines("a\n", 0), "");
    }

    #[test]
    fn status_words_round_trip() {
        for s in [
            "pending",
            "running",
            "suspended",
            "succeeded",
            "reverted",
            "failed",
        ] {
            assert_eq!(RunStatus::parse(s).map(RunStatus::as_str), Some(s));
        }
        assert_eq!(RunStatus::parse("done"), None);
        assert_eq!(RunStatus::of(FlowState::Failure), RunStatus::Failed);
    }
}
