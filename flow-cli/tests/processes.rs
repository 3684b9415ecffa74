//! The commands that steer a run another process is running: following a
//! step's log, cancelling through the store, cancelling a run whose process
//! died, and conductors running posted jobs until SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Scratch, fixture, step_state};

/// Reads lines of `child`'s standard output until one starts with
/// `prefix`, and returns it.
fn line_starting(reader: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("a line");
        assert!(
            n > 0,
            "the output ended before a line starting with {prefix:?}"
        );
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
    }
}

/// Starts `flow run gated.yaml` and returns it, its output, and its run's
/// id, once its step `wait` runs.
fn start_gated(
    s: &Scratch,
    extra: &[&str],
) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let gate = s.path().join("gate").display().to_string();
    let mut args = vec![
        "run".to_string(),
        fixture("gated.yaml"),
        "-p".into(),
        format!("gate={gate}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut child = s.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let header = line_starting(&mut out, "run ");
    let run = header.split_whitespace().nth(1).expect("an id").to_string();
    let running = line_starting(&mut out, "wait ");
    assert!(running.ends_with(" running"), "{running}");
    // The event comes before the journal's write: wait for the write too.
    s.wait_for(&run, "ran `wait`", |v| step_state(v, "wait") == "running");
    (child, out, run)
}

fn rest(mut out: BufReader<std::process::ChildStdout>) -> String {
    let mut text = String::new();
    out.read_to_string(&mut text)
        .expect("the rest of the output");
    text
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("a status") {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "the process did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logs_follow_prints_a_running_step_until_it_ends() {
    let s = Scratch::new();
    let (mut run_child, run_out, run) = start_gated(&s, &["--plain"]);
    let mut follow = s.spawn(&["logs", &run, "wait", "--follow"]);
    let mut followed = BufReader::new(follow.stdout.take().expect("piped"));
    assert_eq!(
        line_starting(&mut followed, "waiting"),
        "waiting for the gate"
    );
    // The step is still running, and the follower still waiting.
    assert_eq!(follow.try_wait().unwrap(), None);
    std::fs::write(s.path().join("gate"), "").unwrap();
    assert_eq!(line_starting(&mut followed, "released"), "released");
    assert_eq!(wait_exit(&mut follow), 0);
    assert_eq!(wait_exit(&mut run_child), 0);
    assert!(rest(run_out).contains("gated succeeded in"));
}

#[test]
fn cancel_asks_the_process_that_runs_the_run_through_the_store() {
    let s = Scratch::new();
    let (mut run_child, run_out, run) = start_gated(&s, &["--plain"]);
    let view = s.json(&["show", &run, "--output", "json"]);
    assert_eq!(view["held"], true);
    let (code, out, err) = s.run(&["cancel", &run[..8], "--wait"]);
    assert_eq!(code, 0, "{err}");
    let owner = view["owner"].as_str().unwrap();
    assert_eq!(
        out,
        format!(
            "asked `{owner}`, which runs run {run}, to cancel it: it stops the running steps \
             and reverts what ran\nrun {run} ended: reverted\n"
        )
    );
    // The process that ran it stopped the step, reverted, and said so.
    assert_eq!(wait_exit(&mut run_child), 1);
    let text = rest(run_out);
    assert!(text.contains("wait   cancelled after"), "{text}");
    assert!(text.contains("first  reverted"), "{text}");
    assert!(
        text.ends_with("gated was cancelled, and what had run was reverted\n"),
        "{text}"
    );
    let view = s.json(&["show", &run, "--output", "json"]);
    assert_eq!(step_state(&view, "first"), "reverted");
    assert_eq!(step_state(&view, "last"), "skipped");
    assert_eq!(view["cancel_requested"], true);
    let (_, undo, _) = s.run(&["logs", &run, "first", "--undo"]);
    assert_eq!(undo, "undid first\n");
}

#[test]
fn cancel_reverts_here_a_run_whose_process_died() {
    let s = Scratch::new();
    let (mut run_child, _out, run) = start_gated(&s, &["--plain", "--lease", "300ms"]);
    run_child.kill().expect("SIGKILL");
    run_child.wait().unwrap();
    // Nobody holds it once the dead process's lease has run out.
    s.wait_for(&run, "was let go", |v| v["held"] == false);
    let (code, out, err) = s.run(&["cancel", &run]);
    // The step left running by the dead process ends with the gate.
    std::fs::write(s.path().join("gate"), "").unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "nobody was running run {run}: reverting what it ran, here\n"
        )),
        "{out}"
    );
    assert!(out.contains("first  reverted"), "{out}");
    assert!(
        out.ends_with("gated was cancelled, and what had run was reverted\n"),
        "{out}"
    );
    let view = s.json(&["show", &run, "--output", "json"]);
    assert_eq!(view["state"], "reverted");
    let (_, undo, _) = s.run(&["logs", &run, "first", "--undo"]);
    assert_eq!(undo, "undid first\n");
}

#[test]
fn resume_is_refused_while_another_process_runs_the_run() {
    let s = Scratch::new();
    let (mut run_child, run_out, run) = start_gated(&s, &["--plain"]);
    let (code, _, err) = s.run(&["resume", &run]);
    assert_eq!(code, 5);
    assert!(err.contains(&format!("run {run} is held by `")), "{err}");
    assert!(err.contains("`flow cancel"), "{err}");
    std::fs::write(s.path().join("gate"), "").unwrap();
    assert_eq!(wait_exit(&mut run_child), 0);
    assert!(rest(run_out).contains("last   succeeded"));
}

#[test]
fn conductors_run_posted_jobs_and_stop_on_sigterm() {
    let s = Scratch::new();
    let chain = fixture("chain.yaml");
    let (code, out, err) = s.run(&["post", &chain, "-p", "version=7"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("posted job "), "{out}");
    let run = out.trim_end().rsplit(' ').next().unwrap().to_string();
    let pending = s.json(&["runs", "--output", "json"]);
    assert_eq!(pending[0]["state"], "pending");
    assert_eq!(pending[0]["id"], run.as_str());
    let (code, out, _) = s.run(&["post", &chain, "-p", "fail_at=build"]);
    assert_eq!(code, 0);
    let failing = out.trim_end().rsplit(' ').next().unwrap().to_string();
    let (code, _, err) = s.run(&["post", &fixture("needs.yaml")]);
    assert_eq!(code, 2, "a job with a missing parameter is refused");
    assert!(err.contains("parameter `host` is required"), "{err}");

    let mut conductor = s.spawn(&[
        "conductor",
        "--pipelines",
        &chain,
        "--poll",
        "100ms",
        "--name",
        "c1",
    ]);
    s.wait_for(&run, "succeeded", |v| v["state"] == "succeeded");
    let view = s.wait_for(&failing, "was reverted", |v| v["state"] == "reverted");
    assert_eq!(step_state(&view, "build"), "reverted");
    let (_, report, _) = s.run(&["logs", &run, "report"]);
    assert_eq!(report, "chain 7 is ready\n");
    let pid = conductor.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(wait_exit(&mut conductor), 0);
    let mut out = String::new();
    conductor
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.starts_with("conductor of chain ("), "{out}");
    assert!(
        out.ends_with(
            "conductor stopped: 2 job(s) completed, 0 handed back, 0 taken over by others\n"
        ),
        "{out}"
    );
}

#[test]
fn a_job_nobody_claimed_is_cancelled_on_the_board() {
    let s = Scratch::new();
    let (code, out, _) = s.run(&["post", &fixture("chain.yaml")]);
    assert_eq!(code, 0);
    let run = out.trim_end().rsplit(' ').next().unwrap().to_string();
    let (code, out, err) = s.run(&["cancel", &run]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("cancelled job "), "{out}");
    assert!(
        out.ends_with(&format!(
            "before any conductor took it: nothing ran (run {run})\n"
        )),
        "{out}"
    );
}
