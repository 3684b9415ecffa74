//! One owner per run, across processes: real child processes (this test
//! binary, run again as a child) sharing one SQLite store.
//!
//! - Two processes resume one run at the same instant, 50 times over: exactly
//!   one executes it, the other is told who holds it.
//! - A process resumes a run another is running: refused, naming the owner.
//! - A process paused (SIGSTOP) past its lease, then continued: its next
//!   write is refused and it starts nothing more; the process that took the
//!   run over finishes it, and every step journaled SUCCESS ran once after
//!   the takeover (the step caught running runs again, as documented).
//!
//! Steps leave side-effect lines in a log file (`<step> <owner> <attempt>`)
//! so that the test counts what ran where.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow::{
    Atom, Backend, CompiledFlow, Engine, Flow, FlowId, FlowState, FnTask, Outputs, ResumeError,
    RunError, Signature, SqliteBackend,
};
use tempfile::TempDir;

const STEPS: [&str; 4] = ["s1", "s2", "s3", "s4"];

/// Waits until `path` exists (another process's signal), polling with a
/// deadline.
async fn until_exists(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the log opens");
    writeln!(f, "{line}").expect("the log is written");
}

/// Four steps in a line, each logging `<step> <owner> <attempt>` and
/// returning its owner's name; `s2` first writes `<dir>/s2-<owner>` and,
/// when `<dir>/gate-<owner>` is named by `gated`, waits for that file.
fn flow(dir: &Path, owner: &str, gated: bool) -> CompiledFlow {
    let mut flow = Flow::linear("owned");
    for step in STEPS {
        let dir = dir.to_path_buf();
        let owner = owner.to_string();
        let task =
            FnTask::asynchronous(Signature::new().provides::<String>(step), move |_, ctx| {
                let dir = dir.clone();
                let owner = owner.clone();
                async move {
                    if step == "s2" {
                        std::fs::write(dir.join(format!("s2-{owner}")), b"")?;
                        if gated {
                            until_exists(&dir.join(format!("gate-{owner}"))).await;
                        }
                    }
                    append(
                        &dir.join("log"),
                        &format!("{step} {owner} {}", ctx.attempt()),
                    );
                    Ok(Outputs::one(owner))
                }
            });
        flow.push(Atom::new(step, task));
    }
    flow.build().expect("the flow is valid")
}

/// The side-effect lines, in the order they were written.
fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// What this binary does when run as a child: `FLOW_OWNERSHIP_CHILD` is
/// `resume` (wait for `<dir>/go`, resume the run) or `run` (start a new run,
/// printing its id).
#[test]
fn child() {
    let Ok(mode) = std::env::var("FLOW_OWNERSHIP_CHILD") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let dir = PathBuf::from(var("FLOW_DIR"));
    let owner = var("FLOW_OWNER");
    let gated = var("FLOW_GATED") == "1";
    let lease = Duration::from_millis(var("FLOW_LEASE_MS").parse().unwrap_or(30_000));
    let say = |line: String| {
        println!("{line}");
        let _ = std::io::stdout().flush();
    };
    runtime().block_on(async {
        let store = Arc::new(SqliteBackend::open(dir.join("store.db")).expect("the store opens"));
        let builder = Engine::builder(flow(&dir, &owner, gated))
            .storage(store)
            .owner(owner.clone())
            .lease(lease)
            .renew_every(lease / 4);
        let mut engine = if mode == "resume" {
            until_exists(&dir.join("go")).await;
            let run: FlowId = var("FLOW_RUN").parse().expect("a run id");
            match builder.resume(run).await {
                Ok(engine) => {
                    say("CLAIMED".into());
                    engine
                }
                Err(ResumeError::Owned { owner, .. }) => return say(format!("OWNED {owner}")),
                Err(other) => return say(format!("ERROR {other}")),
            }
        } else {
            let engine = builder.build();
            say(format!("RUN {}", engine.run_id()));
            engine
        };
        match engine.run().await {
            Ok(()) => say("DONE".into()),
            Err(RunError::OwnershipLost {
                fence,
                current,
                holder,
                ..
            }) => say(format!("LOST {fence} {current} {holder:?}")),
            Err(other) => say(format!("ERROR {other}")),
        }
    });
}

/// A child process of this binary, and its output, line by line.
struct Proc {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(mode: &str, dir: &Path, owner: &str, extra: &[(&str, String)]) -> Proc {
        let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
        cmd.args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
            .env("FLOW_OWNERSHIP_CHILD", mode)
            .env("FLOW_DIR", dir)
            .env("FLOW_OWNER", owner)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the child starts");
        let out = BufReader::new(child.stdout.take().expect("its stdout"));
        Proc { child, out }
    }

    /// The next line the child printed that says something (the test
    /// harness prints its own lines too).
    fn line(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.out.read_line(&mut line).expect("the child's output");
            assert!(n > 0, "the child ended without a word");
            let line = line.trim().to_string();
            let ours = ["CLAIMED", "OWNED", "ERROR", "RUN", "DONE", "LOST"];
            if ours.iter().any(|w| line.starts_with(w)) {
                return line;
            }
        }
    }

    fn finish(mut self) {
        let status = self.child.wait().expect("the child ends");
        assert!(status.success(), "the child failed: {status}");
    }
}

/// A run that is in the store, suspended before any step ran: anyone may
/// take it up.
fn suspended_run(rt: &tokio::runtime::Runtime, dir: &Path) -> FlowId {
    rt.block_on(async {
        let store = Arc::new(SqliteBackend::open(dir.join("store.db")).expect("the store opens"));
        let mut engine = Engine::builder(flow(dir, "setup", false))
            .storage(store.clone())
            .build();
        engine.handle().suspend();
        assert!(matches!(
            engine.run().await,
            Err(RunError::Suspended { .. })
        ));
        let (run, _) = store
            .load_flow(engine.run_id())
            .await
            .expect("the run is stored");
        assert_eq!(run.state, FlowState::Suspended);
        assert_eq!(run.ownership.owner, None, "the run was given back");
        engine.run_id()
    })
}

#[test]
fn two_processes_resume_one_run_at_once_and_exactly_one_runs_it() {
    let rt = runtime();
    for round in 0..50 {
        let tmp = TempDir::new().expect("a directory");
        let dir = tmp.path();
        let run = suspended_run(&rt, dir);
        let env = [
            ("FLOW_RUN", run.to_string()),
            ("FLOW_GATED", "1".to_string()),
        ];
        let mut a = Proc::spawn("resume", dir, "A", &env);
        let mut b = Proc::spawn("resume", dir, "B", &env);
        // Both wait for this file, then claim at once.
        std::fs::write(dir.join("go"), b"").expect("the signal is written");
        let (said_a, said_b) = (a.line(), b.line());
        let (winner, winner_proc, loser_said) = match (said_a.as_str(), said_b.as_str()) {
            ("CLAIMED", _) => ("A", &mut a, said_b.clone()),
            (_, "CLAIMED") => ("B", &mut b, said_a.clone()),
            _ => panic!("round {round}: neither claimed: {said_a:?}, {said_b:?}"),
        };
        assert_eq!(loser_said, format!("OWNED {winner}"), "round {round}");
        // The loser is done; the winner runs to the end once let through.
        std::fs::write(dir.join(format!("gate-{winner}")), b"").expect("the gate opens");
        assert_eq!(winner_proc.line(), "DONE", "round {round}");
        a.finish();
        b.finish();
        let expected: Vec<String> = STEPS.iter().map(|s| format!("{s} {winner} 1")).collect();
        assert_eq!(log(dir), expected, "round {round}");
    }
}

#[test]
fn resuming_a_run_that_another_process_is_running_is_refused() {
    let rt = runtime();
    let tmp = TempDir::new().expect("a directory");
    let dir = tmp.path();
    let mut runner = Proc::spawn("run", dir, "runner", &[("FLOW_GATED", "1".into())]);
    let said = runner.line();
    let run: FlowId = said
        .strip_prefix("RUN ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected the run's id, got {said:?}"));
    rt.block_on(until_exists(&dir.join("s2-runner")));

    let store = Arc::new(SqliteBackend::open(dir.join("store.db")).expect("the store opens"));
    let refused = rt.block_on(
        Engine::builder(flow(dir, "me", false))
            .storage(store.clone())
            .resume(run),
    );
    let err = refused.expect_err("the run is held");
    match &err {
        ResumeError::Owned {
            run: r,
            owner,
            expires_at,
        } => {
            assert_eq!((*r, owner.as_str()), (run, "runner"));
            assert!(*expires_at > flow::now_unix(), "the lease is live");
        }
        other => panic!("expected Owned, got {other:?}"),
    }
    let text = err.to_string();
    let expected_start = format!("cannot resume run {run}: it is held by `runner` until ");
    assert!(text.starts_with(&expected_start), "{text}");
    assert!(
        text.ends_with(
            " (its lease): wait for that engine to finish or for its lease to run out \
             (`EngineBuilder::wait_for_lease`), or stop that process"
        ),
        "{text}"
    );
    assert_eq!(log(dir), ["s1 runner 1"], "nothing ran here");

    std::fs::write(dir.join("gate-runner"), b"").expect("the gate opens");
    assert_eq!(runner.line(), "DONE");
    runner.finish();
    // Finished: taken up again, it returns its outcome and runs nothing.
    let mut done = rt
        .block_on(
            Engine::builder(flow(dir, "me", false))
                .storage(store)
                .resume(run),
        )
        .expect("a finished run can be read");
    assert_eq!(done.state(), FlowState::Success);
    rt.block_on(done.run()).expect("it had succeeded");
    let expected: Vec<String> = STEPS.iter().map(|s| format!("{s} runner 1")).collect();
    assert_eq!(log(dir), expected);
}

#[test]
fn a_process_paused_past_its_lease_writes_nothing_and_starts_nothing_more() {
    let rt = runtime();
    let tmp = TempDir::new().expect("a directory");
    let dir = tmp.path();
    let lease_ms = 400;
    let mut a = Proc::spawn(
        "run",
        dir,
        "A",
        &[
            ("FLOW_GATED", "1".into()),
            ("FLOW_LEASE_MS", lease_ms.to_string()),
        ],
    );
    let said = a.line();
    let run: FlowId = said
        .strip_prefix("RUN ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected the run's id, got {said:?}"));
    rt.block_on(until_exists(&dir.join("s2-A")));
    let pid = a.child.id().to_string();
    let signal = |sig: &str| {
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {pid} failed");
    };
    signal("-STOP");

    // B waits for A's lease to run out, takes the run over and finishes it.
    let store = Arc::new(SqliteBackend::open(dir.join("store.db")).expect("the store opens"));
    let (outcome, stored) = rt.block_on(async {
        let mut b = Engine::builder(flow(dir, "B", false))
            .storage(store.clone())
            .owner("B")
            .wait_for_lease(Duration::from_secs(30))
            .resume(run)
            .await
            .expect("B takes the run over once A's lease ran out");
        let outcome = b.run().await;
        (
            outcome,
            store.load_flow(run).await.expect("the run is stored"),
        )
    });
    outcome.expect("B finishes the run");
    assert_eq!(stored.0.state, FlowState::Success);
    assert_eq!(
        stored.0.ownership.fence, 2,
        "B's claim raised the fencing number"
    );

    // A goes on: its step ends, its write is refused, it starts nothing more.
    std::fs::write(dir.join("gate-A"), b"").expect("the gate opens");
    signal("-CONT");
    assert_eq!(a.line(), "LOST 1 2 None");
    a.finish();

    let lines = log(dir);
    assert_eq!(lines[..4], ["s1 A 1", "s2 B 2", "s3 B 1", "s4 B 1"]);
    assert_eq!(lines[4..], ["s2 A 1"], "A's step ended after B's takeover");
    // The journal holds what B did; nothing A did after B's claim.
    let (_, atoms) = rt
        .block_on(store.load_flow(run))
        .expect("the run is stored");
    let results: Vec<(String, serde_json::Value, u32)> = atoms
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                a.result.clone().unwrap_or_default(),
                a.attempts,
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("s1".to_string(), serde_json::json!(["A"]), 1),
            ("s2".to_string(), serde_json::json!(["B"]), 2),
            ("s3".to_string(), serde_json::json!(["B"]), 1),
            ("s4".to_string(), serde_json::json!(["B"]), 1),
        ]
    );
}
