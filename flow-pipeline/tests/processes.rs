//! Process trees: a step that times out, or is cancelled, loses its whole
//! process group (SIGTERM, then SIGKILL after the grace period), checked
//! through /proc.

use std::path::Path;
use std::time::{Duration, Instant};

use flow_core::{Engine, RunError};
use flow_pipeline::{Params, Pipeline, Settings};

/// Whether process `pid` is alive: present in /proc and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// The live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the name: state, ppid, pgrp.
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Waits (polling, with a deadline) until `path` holds `lines` lines.
fn wait_for_lines(path: &Path, lines: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.len() >= lines {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got {lines} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (polling, with a deadline) until none of `pids` is alive and the
/// group `pgid` is empty; returns what is still alive at the deadline.
fn survivors(pids: &[u32], pgid: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        left.extend(group_members(pgid));
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A step whose shell starts children and grandchildren, one of which
/// ignores SIGTERM, and records their process ids (the shell's first).
const TREE: &str = r#"
name: tree
parameters:
  pids: {type: string}
steps:
  - name: spawn
    timeout: 1h
    script: |
      echo $$ >> {pids}
      sleep 300 & echo $! >> {pids}
      (trap '' TERM; sleep 300 & echo $! >> {pids}; wait) & echo $! >> {pids}
      sh -c 'sleep 300 & echo $! >> "$0"; wait' {pids} & echo $! >> {pids}
      wait
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_times_out_leaves_no_process_of_its_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let pids_file = tmp.path().join("pids");
    let text = TREE.replace("timeout: 1h", "timeout: 1s");
    let pipeline = Pipeline::from_str("tree.yaml", &text).expect("valid");
    let settings = Settings::new(tmp.path().join("logs")).grace(Duration::from_millis(300));
    let run = pipeline
        .to_flow(
            &Params::new().set("pids", pids_file.to_str().unwrap()),
            &settings,
        )
        .unwrap();
    let mut engine = run.engine().unwrap().build();
    let err = engine.run().await.unwrap_err();
    assert!(matches!(err, RunError::Reverted { .. }), "{err}");
    let failure = engine.failure("spawn").expect("the step failed");
    assert_eq!(
        failure.message(),
        "step `spawn` timed out after 1s: its processes were sent SIGTERM, and SIGKILL 300ms \
         later if any remained"
    );
    // The shell, two children, the subshell's sleep, the inner shell's sleep.
    let pids = wait_for_lines(&pids_file, 6);
    let shell = pids[0];
    assert_eq!(survivors(&pids, shell), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_step_leaves_no_process_of_its_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let pids_file = tmp.path().join("pids");
    let pipeline = Pipeline::from_str("tree.yaml", TREE).expect("valid");
    let settings = Settings::new(tmp.path().join("logs")).grace(Duration::from_millis(300));
    let run = pipeline
        .to_flow(
            &Params::new().set("pids", pids_file.to_str().unwrap()),
            &settings,
        )
        .unwrap();
    let mut engine: Engine = run.engine().unwrap().build();
    let handle = engine.handle();
    let file = pids_file.clone();
    let canceller = tokio::task::spawn_blocking(move || {
        let pids = wait_for_lines(&file, 6);
        handle.cancel();
        pids
    });
    let err = engine.run().await.unwrap_err();
    assert!(matches!(err, RunError::Cancelled { .. }), "{err}");
    assert_eq!(
        engine.failure("spawn").map(|f| f.message().to_string()),
        Some("step `spawn` was cancelled: its processes were stopped".to_string())
    );
    let pids = canceller.await.unwrap();
    assert_eq!(survivors(&pids, pids[0]), Vec::<u32>::new());
}
