//! A step's process group left running by a runner that died (a crash, a
//! `kill -9`): the step is run again when its run is resumed, and the copy
//! left from before is stopped first, so that two never run at once.
//!
//! While a step runs, `<step>.pid` in the run's log directory names its
//! process group's leader, with the leader's start time and the boot's id:
//! a process is taken for the leftover only if all three still match, so a
//! reused process id (after a reboot, or much later) is never signalled.
//! The file is removed when the step ends. Only the leader can be told
//! apart so: members of a group whose leader ended are left alone.

use std::path::Path;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// The boot's id, and a process's start time (in clock ticks since boot).
fn identity(pid: u32) -> Option<(String, u64)> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's name: state is the 3rd field of the
    // line, start time the 22nd.
    let rest = stat.rsplit_once(')')?.1;
    let start = rest.split_whitespace().nth(19)?.parse().ok()?;
    let state = rest.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    Some((boot.trim().to_string(), start))
}

/// Notes that `pid` leads the step's process group.
pub(crate) fn record(path: &Path, pid: u32) {
    if let Some((boot, start)) = identity(pid) {
        // Best effort: without the file, a leftover is not stopped on resume.
        let _ = std::fs::write(path, format!("{pid} {start} {boot}\n"));
    }
}

/// Forgets the step's process group (it ended).
pub(crate) fn forget(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Stops the process group that `path` names, if its leader is still the
/// process that was recorded: `SIGTERM`, then `SIGKILL` after `grace`.
/// Returns the leader's id when it stopped one.
pub(crate) async fn stop_leftover(path: &Path, grace: Duration) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    forget(path);
    let mut fields = text.split_whitespace();
    let pid: u32 = fields.next()?.parse().ok()?;
    let start: u64 = fields.next()?.parse().ok()?;
    let boot = fields.next()?;
    let (now_boot, now_start) = identity(pid)?;
    if now_boot != boot || now_start != start {
        return None;
    }
    let group = Pid::from_raw(i32::try_from(pid).ok()?)?;
    let _ = kill_process_group(group, Signal::TERM);
    let deadline = tokio::time::Instant::now() + grace;
    while test_kill_process_group(group).is_ok() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = kill_process_group(group, Signal::KILL);
    Some(pid)
}
