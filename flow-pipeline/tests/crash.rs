//! A process running a pipeline on a SQLite store is killed with SIGKILL in
//! the middle of a step; a new process resumes the run from the pipeline's
//! definition and the journal alone. The steps that had finished do not run
//! again (marker files count executions); the one caught running runs once
//! more. The first process held its run with a 2-second lease: the new one
//! waits for it to run out before it takes the run.
//!
//! The test runs itself as the child: with `CRASH_CHILD=start` it starts a
//! run and prints its id, with `CRASH_CHILD=resume` it resumes one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_core::{Engine, FlowId, FlowState, SqliteBackend};
use flow_pipeline::{Params, Pipeline, Settings};

const PIPELINE: &str = r#"
name: crash
parameters:
  markers: {type: string}
steps:
  - name: first
    script: echo "first $FLOW_ATTEMPT" >> {markers}/first
  - name: slow
    depends-on: [first]
    script: |
      echo "slow $FLOW_ATTEMPT" >> {markers}/slow
      echo $$ > {markers}/slow.pid
      # The first execution waits for ever; the second, for the release.
      while [ ! -e {markers}/release ] || [ "$FLOW_ATTEMPT" = 1 ]; do sleep 0.02; done
  - name: last
    depends-on: [slow]
    script: echo "last $FLOW_ATTEMPT" >> {markers}/last
"#;

fn child(mode: &str, dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pipeline = Pipeline::from_str("crash.yaml", PIPELINE).unwrap();
        let settings = Settings::new(dir.join("logs"));
        let store = Arc::new(SqliteBackend::open(dir.join("flow.db")).unwrap());
        let mut engine: Engine = if mode == "start" {
            let params = Params::new().set("markers", dir.join("markers").to_str().unwrap());
            let run = pipeline.to_flow(&params, &settings).unwrap();
            // A short lease, so that the resumed run need not wait long for
            // the dead process's claim to run out.
            let engine = run
                .engine()
                .unwrap()
                .storage(store)
                .lease(Duration::from_secs(2))
                .build();
            println!("{}", engine.run_id());
            engine
        } else {
            let id: FlowId = std::fs::read_to_string(dir.join("run-id"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let flow = pipeline.flow(&settings).build().unwrap();
            Engine::builder(flow)
                .storage(store)
                .wait_for_lease(Duration::from_secs(30))
                .resume(id)
                .await
                .unwrap()
        };
        engine.run().await.unwrap();
        assert_eq!(engine.state(), FlowState::Success);
    });
}

/// Whether process `pid` is alive (present and not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        !matches!(state, Some("Z" | "X"))
    })
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn me(mode: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("CRASH_CHILD", mode).env("CRASH_DIR", dir);
    cmd
}

fn main() {
    if let Ok(mode) = std::env::var("CRASH_CHILD") {
        let dir = PathBuf::from(std::env::var("CRASH_DIR").unwrap());
        child(&mode, &dir);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let markers = dir.join("markers");
    std::fs::create_dir(&markers).unwrap();

    // Start a run; kill it while `slow` runs.
    let mut running = me("start", dir).stdout(Stdio::piped()).spawn().unwrap();
    let mut id = String::new();
    BufReader::new(running.stdout.take().unwrap())
        .read_line(&mut id)
        .unwrap();
    std::fs::write(dir.join("run-id"), id.trim()).unwrap();
    wait_for(&markers.join("slow.pid"));
    running.kill().unwrap();
    let status = running.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    // The step's own process group outlives the runner that was killed.
    let pid: u32 = std::fs::read_to_string(markers.join("slow.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid), "the step's shell runs on after its runner died");

    assert_eq!(lines(&markers.join("first")), ["first 1"]);
    assert_eq!(lines(&markers.join("slow")), ["slow 1"]);
    assert_eq!(lines(&markers.join("last")), Vec::<String>::new());

    // Resume in a new process.
    std::fs::write(markers.join("release"), "").unwrap();
    let status = me("resume", dir).status().unwrap();
    assert!(status.success(), "the resumed run failed: {status}");
    // The resumed run stopped the copy left running before it ran the step
    // again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the leftover step {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lines(&markers.join("first")), ["first 1"]);
    assert_eq!(lines(&markers.join("slow")), ["slow 1", "slow 2"]);
    assert_eq!(lines(&markers.join("last")), ["last 1"]);
    println!("test a_run_killed_mid_step_resumes_in_a_new_process ... ok");
    println!("1 passed, 0 failed");
}
