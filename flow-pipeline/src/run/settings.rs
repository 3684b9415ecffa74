//! How steps run: where their output goes, how much of it the journal keeps,
//! how long a stopped step is given to end.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the steps of a pipeline run.
///
/// ```
/// use std::time::Duration;
/// # mod flow { pub use flow_core::*; pub use flow_pipeline as pipeline; }
/// use flow::pipeline::Settings;
///
/// let s = Settings::new("/var/log/flow").tail(8192).grace(Duration::from_secs(2));
/// assert_eq!(s.logs().to_str(), Some("/var/log/flow"));
/// assert_eq!(s.tail_bytes(), 8192);
/// assert_eq!(Settings::default().tail_bytes(), 4096);
/// ```
#[derive(Clone, Debug)]
pub struct Settings {
    logs: PathBuf,
    tail: usize,
    grace: Duration,
    max_output: usize,
    shell: PathBuf,
}

impl Default for Settings {
    /// Logs under `flow-logs` in the current directory, a 4 KiB tail, 5
    /// seconds' grace, outputs of up to 64 KiB, `/bin/sh`.
    fn default() -> Self {
        Settings {
            logs: PathBuf::from("flow-logs"),
            tail: 4096,
            grace: Duration::from_secs(5),
            max_output: 64 * 1024,
            shell: PathBuf::from("/bin/sh"),
        }
    }
}

impl Settings {
    /// The default settings, with the logs of each run in a directory of
    /// `logs` named after the run's key.
    pub fn new(logs: impl Into<PathBuf>) -> Self {
        Settings {
            logs: logs.into(),
            ..Settings::default()
        }
    }

    /// Sets how many of the last bytes of each output the journal keeps
    /// (in a step's result, and in its failure's message).
    pub fn tail(mut self, bytes: usize) -> Self {
        self.tail = bytes;
        self
    }

    /// Sets how long a step that timed out or was cancelled is given to end
    /// after `SIGTERM`, before its processes get `SIGKILL`.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets the largest standard output a step's `output` value may be; a
    /// larger one fails the step.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Sets the shell that runs scripts (`/bin/sh` by default), called as
    /// `SHELL -c SCRIPT STEP`.
    pub fn shell(mut self, shell: impl Into<PathBuf>) -> Self {
        self.shell = shell.into();
        self
    }

    /// The directory that holds a directory of logs per run.
    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// How many of the last bytes of each output the journal keeps.
    pub fn tail_bytes(&self) -> usize {
        self.tail
    }

    /// The time a stopped step is given before `SIGKILL`.
    pub fn grace_period(&self) -> Duration {
        self.grace
    }

    /// The largest output value.
    pub fn max_output_bytes(&self) -> usize {
        self.max_output
    }

    /// The shell that runs scripts.
    pub fn shell_path(&self) -> &Path {
        &self.shell
    }
}
