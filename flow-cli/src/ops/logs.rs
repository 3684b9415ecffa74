//! The output of a step: the files its standard output and error went to,
//! read whole or followed while the step runs.
//!
//! A log is named by a run and one of its steps, never by a path: the files
//! are always those of the run's own directory of logs.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use flow::{AtomState, FlowId};

use super::inspect::RunStatus;
use super::stored::StoredRun;
use super::{OpsError, Store};

/// Which output of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// The log files of one step of a run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StepLogs {
    /// The run.
    pub run: FlowId,
    /// The step.
    pub step: String,
    /// The file of its standard output.
    pub stdout: PathBuf,
    /// The file of its standard error.
    pub stderr: PathBuf,
    /// Whether these are the logs of its undo command.
    pub undo: bool,
}

/// The log files of step `step` of run `run` (of its undo command, with
/// `undo`).
///
/// # Errors
/// [`OpsError::UnknownStep`] for a step the run's pipeline does not have;
/// [`OpsError::NotAPipeline`]; what the store says.
pub async fn step_logs(
    store: &Store,
    run: FlowId,
    step: &str,
    undo: bool,
) -> Result<StepLogs, OpsError> {
    let stored = StoredRun::load(store, run).await?;
    let pipeline = stored.require_pipeline("read for their logs")?;
    // Only a step of the run names a file: nothing given here becomes a path.
    let Some(known) = pipeline.step(step) else {
        return Err(OpsError::UnknownStep {
            run,
            step: step.to_string(),
            known: pipeline
                .steps()
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
        });
    };
    let dir = stored
        .log_dir(store)
        .unwrap_or_else(|| store.logs().to_path_buf());
    let base = if undo {
        format!("{}.undo", known.name())
    } else {
        known.name().to_string()
    };
    Ok(StepLogs {
        run,
        step: known.name().to_string(),
        stdout: dir.join(format!("{base}.stdout")),
        stderr: dir.join(format!("{base}.stderr")),
        undo,
    })
}

impl StepLogs {
    /// The file of `stream`.
    pub fn path(&self, stream: Stream) -> &PathBuf {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    /// Whether the step has written any log (its files exist).
    pub fn exist(&self) -> bool {
        self.stdout.exists() || self.stderr.exists()
    }

    /// The error that says the step has no log yet.
    pub fn missing(&self) -> OpsError {
        OpsError::NoLog {
            run: self.run,
            step: self.step.clone(),
            what: if self.undo { "undo output" } else { "output" },
            path: self.stdout.clone(),
        }
    }

    /// Reads the files as they are now, from their start.
    pub fn read(&self) -> LogFollower {
        LogFollower {
            ended: true,
            ..self.follow()
        }
    }

    /// Follows the files from their start: see [`LogFollower`].
    pub fn follow(&self) -> LogFollower {
        LogFollower {
            logs: self.clone(),
            offsets: [0, 0],
            skip: [false, false],
            ended: false,
            every: Duration::from_millis(100),
        }
    }
}

/// A piece of a step's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Which output.
    pub stream: Stream,
    /// What the step wrote (at most 64 KiB).
    pub bytes: Vec<u8>,
}

/// Reads a step's log files as they grow, until the step has ended and all
/// of them was read.
#[derive(Debug)]
pub struct LogFollower {
    logs: StepLogs,
    offsets: [u64; 2],
    skip: [bool; 2],
    ended: bool,
    every: Duration,
}

impl LogFollower {
    /// Sets how often the files and the step's state are looked at when
    /// nothing new was written (default 100 ms).
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Starts reading `stream` at byte `offset` rather than at its start
    /// (a page that already showed the first part).
    pub fn starting_at(mut self, stream: Stream, offset: u64) -> Self {
        self.offsets[stream as usize] = offset;
        self
    }

    /// Reads only `stream`: the other one is taken as already read to its
    /// end, whatever it holds now or later.
    pub fn only(mut self, stream: Stream) -> Self {
        let other = match stream {
            Stream::Stdout => Stream::Stderr,
            Stream::Stderr => Stream::Stdout,
        };
        self.skip[other as usize] = true;
        self
    }

    /// The next piece of output; `None` once the step has ended (or the run
    /// has, before the step started) and everything it wrote was returned.
    ///
    /// # Errors
    /// When a file or the store cannot be read.
    pub async fn next(&mut self, store: &Store) -> Result<Option<Chunk>, OpsError> {
        loop {
            for (k, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if self.skip[k] {
                    continue;
                }
                if let Some(bytes) = self.read_more(stream, k)? {
                    return Ok(Some(Chunk { stream, bytes }));
                }
            }
            if self.ended {
                return Ok(None);
            }
            // Looked at after the files: what was written before the step
            // ended is read on the next turn.
            self.ended = self.step_ended(store).await?;
            if !self.ended {
                tokio::time::sleep(self.every).await;
            }
        }
    }

    fn read_more(&mut self, stream: Stream, k: usize) -> Result<Option<Vec<u8>>, OpsError> {
        const PIECE: u64 = 64 * 1024;
        let path = self.logs.path(stream);
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(OpsError::Io {
                    what: "cannot read the log",
                    path: path.clone(),
                    source,
                });
            }
        };
        let io = |source| OpsError::Io {
            what: "cannot read the log",
            path: path.clone(),
            source,
        };
        let len = file.metadata().map_err(io)?.len();
        if len < self.offsets[k] {
            // The step started again (a retry, a resume): its file anew.
            self.offsets[k] = 0;
        }
        if len == self.offsets[k] {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(self.offsets[k])).map_err(io)?;
        let mut buf = Vec::new();
        file.take(PIECE).read_to_end(&mut buf).map_err(io)?;
        self.offsets[k] += buf.len() as u64;
        Ok((!buf.is_empty()).then_some(buf))
    }

    async fn step_ended(&self, store: &Store) -> Result<bool, OpsError> {
        let (detail, atoms) = store
            .backend()
            .load_flow(self.logs.run)
            .await
            .map_err(|e| OpsError::storage(e, store.location()))?;
        if RunStatus::of(detail.state).ended() {
            return Ok(true);
        }
        let state = atoms
            .iter()
            .find(|a| a.name == self.logs.step)
            .map(|a| a.state);
        Ok(if self.logs.undo {
            !matches!(
                state,
                Some(AtomState::Reverting | AtomState::Success | AtomState::Failure)
            )
        } else {
            !matches!(
                state,
                None | Some(AtomState::Pending | AtomState::Running | AtomState::Retrying)
            )
        })
    }
}
