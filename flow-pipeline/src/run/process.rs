//! One child process per step, in a process group of its own, its outputs
//! written straight to files (the step's memory never holds them), stopped
//! with its whole group on a timeout or a cancel: `SIGTERM`, then `SIGKILL`
//! after a grace period.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// What to start.
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) stdout: std::fs::File,
    pub(crate) stderr: std::fs::File,
}

/// How the process ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It ended by itself.
    Exited(ExitStatus),
    /// It ran out of time and was stopped.
    TimedOut,
    /// The run was cancelled and it was stopped.
    Cancelled,
}

/// Kills a process group when dropped, unless disarmed: a step whose future
/// is dropped (its engine gone) leaves no process behind.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

/// Starts `launch`, in a new process group.
pub(crate) fn spawn(launch: Launch) -> std::io::Result<Child> {
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(launch.stdout))
        .stderr(Stdio::from(launch.stderr))
        .process_group(0);
    if let Some(dir) = &launch.dir {
        cmd.current_dir(dir);
    }
    cmd.spawn()
}

/// Waits for `child` to end, stopping its group when `timeout` passes or
/// `cancelled` resolves.
pub(crate) async fn wait(
    mut child: Child,
    timeout: Option<Duration>,
    cancelled: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<(Ended, ExitStatus)> {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let mut guard = GroupGuard(pid);
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        status = child.wait() => {
            guard.0 = None;
            let status = status?;
            return Ok((Ended::Exited(status), status));
        }
        () = deadline => Ended::TimedOut,
        () = cancelled => Ended::Cancelled,
    };
    let status = stop(&mut child, pid, grace).await?;
    guard.0 = None;
    Ok((ended, status))
}

/// Stops `child` and its group: `SIGTERM` to the group, then, once the group
/// is empty or `grace` has passed, `SIGKILL` to what is left of it.
async fn stop(child: &mut Child, pid: Option<Pid>, grace: Duration) -> std::io::Result<ExitStatus> {
    let Some(pid) = pid else {
        // The child was reaped already.
        return child.wait().await;
    };
    let _ = kill_process_group(pid, Signal::TERM);
    let deadline = Instant::now() + grace;
    let mut status = tokio::time::timeout_at(deadline, child.wait()).await.ok();
    // The leader is gone; its children may not be: give them the rest of the
    // grace period.
    while test_kill_process_group(pid).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = kill_process_group(pid, Signal::KILL);
    if status.is_none() {
        status = Some(child.wait().await);
    }
    match status {
        Some(s) => s,
        None => child.wait().await,
    }
}
