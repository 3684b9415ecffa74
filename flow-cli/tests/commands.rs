//! End-to-end tests of the `flow` subcommands: the built binary on a real
//! SQLite store, real child processes, snapshots of what it prints.

mod common;

use common::{Scratch, fixture, step_state};

#[test]
fn check_reports_every_problem_of_every_file_at_once() {
    let s = Scratch::new();
    let (code, out, err) = s.run(&[
        "check",
        &fixture("chain.yaml"),
        &fixture("broken.yaml"),
        &fixture("not-yaml.yaml"),
    ]);
    assert_eq!(code, 2);
    snap!(s, "check_ok", out);
    snap!(s, "check_problems", err);
}

#[test]
fn check_of_good_files_succeeds_and_of_no_file_is_refused() {
    let s = Scratch::new();
    let (code, out, _) = s.run(&["check", &fixture("chain.yaml"), &fixture("gated.yaml")]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2);
    let (code, _, err) = s.run(&["check"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("required arguments were not provided"),
        "{err}"
    );
    let (code, _, err) = s.run(&["check", "nowhere.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("nowhere.yaml"), "{err}");
}

#[test]
fn run_succeeds_with_plain_lines_off_a_terminal() {
    let s = Scratch::new();
    let (code, out, err) = s.run(&["run", &fixture("chain.yaml"), "-p", "version=2.1"]);
    assert_eq!(code, 0, "{err}");
    snap!(s, "run_success", out);
    // What the steps wrote is in the logs, by run.
    let run = s.newest_run();
    let (code, out, _) = s.run(&["logs", &run, "build"]);
    assert_eq!(code, 0);
    assert_eq!(out, "compiling 2.1\nlinking 2.1\n");
}

#[test]
fn a_failed_run_exits_1_after_reverting_and_shows_why() {
    let s = Scratch::new();
    let (code, out, _) = s.run(&["run", &fixture("chain.yaml"), "-p", "fail_at=test"]);
    assert_eq!(code, 1);
    snap!(s, "run_failure", out);
    let run = s.newest_run();
    let (code, out, _) = s.run(&["show", &run]);
    assert_eq!(code, 0);
    snap!(s, "show_failed_run", out);
    let (code, json, _) = s.run(&["show", &run[..8], "--output", "json"]);
    assert_eq!(code, 0);
    snap!(s, "show_failed_run_json", json);
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(view["state"], "reverted");
    assert_eq!(view["steps"][2]["exit_code"], 4);
    assert_eq!(view["steps"][1]["undo"]["exit_code"], 0);
}

#[test]
fn missing_and_wrong_parameters_are_refused_off_a_terminal() {
    let s = Scratch::new();
    let (code, out, err) = s.run(&["run", &fixture("needs.yaml"), "-p", "count=two"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    snap!(s, "run_missing_parameter", err);
    // Nothing ran, and no store was made.
    assert!(!s.store().exists());
    let (code, _, err) = s.run(&["run", &fixture("needs.yaml"), "-p", "nonsense"]);
    assert_eq!(code, 2);
    assert!(err.contains("give a parameter as NAME=VALUE"), "{err}");
    let (code, _, err) = s.run(&[
        "run",
        &fixture("needs.yaml"),
        "-p",
        "host=a",
        "-p",
        "count=1",
        "-p",
        "colour=red",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("colour"), "{err}");
    let (code, out, _) = s.run(&[
        "run",
        &fixture("needs.yaml"),
        "-p",
        "host=db-1",
        "-p",
        "count=2",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("greet  succeeded"), "{out}");
}

#[test]
fn runs_lists_newest_first_with_filters_and_json() {
    let s = Scratch::new();
    assert_eq!(s.run(&["run", &fixture("chain.yaml")]).0, 0);
    assert_eq!(
        s.run(&["run", &fixture("chain.yaml"), "-p", "fail_at=build"])
            .0,
        1
    );
    assert_eq!(
        s.run(&[
            "run",
            &fixture("needs.yaml"),
            "-p",
            "host=h",
            "-p",
            "count=1"
        ])
        .0,
        0
    );
    let (code, out, _) = s.run(&["runs"]);
    assert_eq!(code, 0);
    snap!(s, "runs_table", out);
    let all = s.json(&["runs", "--output", "json"]);
    let flows: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["flow"].as_str().unwrap())
        .collect();
    assert_eq!(flows, ["needs", "chain", "chain"]);
    let failed = s.json(&["runs", "--state", "failed", "--output", "json"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["state"], "reverted");
    let chains = s.json(&[
        "runs",
        "--flow",
        "chain",
        "--state",
        "succeeded",
        "--output",
        "json",
    ]);
    assert_eq!(chains.as_array().unwrap().len(), 1);
    assert_eq!(
        s.json(&["runs", "--limit", "2", "--output", "json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let recent = s.json(&["runs", "--since", "1h", "--output", "json"]);
    assert_eq!(recent.as_array().unwrap().len(), 3);
    let future = s.json(&["runs", "--since", "2999-01-01", "--output", "json"]);
    assert_eq!(future.as_array().unwrap().len(), 0);
    let (code, _, err) = s.run(&["runs", "--state", "done"]);
    assert_eq!(code, 2);
    assert!(err.contains("`done` is not a state"), "{err}");
    let (code, _, err) = s.run(&["runs", "--since", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a time"), "{err}");
}

#[test]
fn unknown_runs_bad_ids_and_missing_stores_are_told_apart() {
    let s = Scratch::new();
    let (code, _, err) = s.run(&["show", "67e55044-10b1-426f-9247-bb680e5fe0c8"]);
    assert_eq!(code, 3);
    snap!(s, "no_store", err);
    assert_eq!(s.run(&["run", &fixture("chain.yaml")]).0, 0);
    let (code, _, err) = s.run(&["show", "67e55044-10b1-426f-9247-bb680e5fe0c8"]);
    assert_eq!(code, 3);
    snap!(s, "unknown_run", err);
    let (code, _, err) = s.run(&["show", "not-a-run!"]);
    assert_eq!(code, 2);
    snap!(s, "bad_run_id", err);
    let run = s.newest_run();
    let (code, _, err) = s.run(&["logs", &run, "deploy"]);
    assert_eq!(code, 3);
    snap!(s, "unknown_step", err);
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let s = Scratch::new();
    std::fs::write(s.store(), "these are my notes, not a database\n").unwrap();
    for args in [vec!["runs"], vec!["run", &fixture("chain.yaml")]] {
        let (code, _, err) = s.run(&args.iter().map(|a| a.as_ref()).collect::<Vec<&str>>());
        assert_eq!(code, 4, "{args:?}");
        assert!(err.contains("is not a flow store"), "{err}");
    }
    let (code, _, err) = s.run(&["runs"]);
    snap!(s, "not_a_store", err);
    assert_eq!(code, 4);
    assert_eq!(
        std::fs::read_to_string(s.store()).unwrap(),
        "these are my notes, not a database\n"
    );
    #[cfg(not(feature = "postgres"))]
    {
        let (code, _, err) = s.run(&["--store", "postgres://ops:secret@db/flow", "runs"]);
        assert_eq!(code, 4);
        assert!(!err.contains("secret"), "{err}");
        snap!(s, "postgres_unsupported", err);
    }
    // With PostgreSQL: a schema that cannot be one is refused before
    // anything is sent, the password never shown.
    #[cfg(feature = "postgres")]
    {
        let url = "postgres://ops:secret@db/flow?schema=no-such";
        let (code, _, err) = s.run(&["--store", url, "runs"]);
        assert_eq!(code, 4, "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(
            err.contains("`no-such` cannot name the store's schema"),
            "{err}"
        );
    }
}

#[test]
fn rerun_starts_a_new_run_with_the_same_definition_and_values() {
    let s = Scratch::new();
    assert_eq!(
        s.run(&[
            "run",
            &fixture("chain.yaml"),
            "-p",
            "fail_at=build",
            "-p",
            "version=3"
        ])
        .0,
        1
    );
    let first = s.newest_run();
    let (code, out, _) = s.run(&["rerun", &first]);
    assert_eq!(code, 1, "the same values fail the same way");
    assert!(out.starts_with(&format!("rerun of run {first}\n")), "{out}");
    let second = s.newest_run();
    assert_ne!(first, second);
    let a = s.json(&["show", &first, "--output", "json"]);
    let b = s.json(&["show", &second, "--output", "json"]);
    assert_eq!(a["definition"], b["definition"]);
    assert_eq!(a["params"], b["params"]);
    assert_eq!(b["params"]["version"], "3");
    assert_eq!(step_state(&b, "build"), "reverted");
    let (code, _, err) = s.run(&["rerun", "0000"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn resume_and_cancel_refuse_runs_that_ended() {
    let s = Scratch::new();
    assert_eq!(s.run(&["run", &fixture("chain.yaml")]).0, 0);
    let run = s.newest_run();
    let (code, _, err) = s.run(&["resume", &run]);
    assert_eq!(code, 5);
    snap!(s, "resume_ended", err);
    let (code, _, err) = s.run(&["cancel", &run]);
    assert_eq!(code, 5);
    snap!(s, "cancel_ended", err);
}

#[test]
fn logs_print_stdout_and_stderr_apart_and_undo_logs_on_request() {
    let s = Scratch::new();
    assert_eq!(
        s.run(&["run", &fixture("chain.yaml"), "-p", "fail_at=build"])
            .0,
        1
    );
    let run = s.newest_run();
    let (code, out, err) = s.run(&["logs", &run, "build"]);
    assert_eq!(code, 0);
    assert_eq!(out, "compiling 1.0\nlinking 1.0\n");
    assert_eq!(err, "error: the linker ran out of memory\n");
    let (code, out, _) = s.run(&["logs", &run, "prepare", "--undo"]);
    assert_eq!(code, 0);
    assert_eq!(out, "unprepared\n");
    let (code, _, err) = s.run(&["logs", &run, "test"]);
    assert_eq!(code, 3);
    assert!(err.contains("has no output yet"), "{err}");
    // --follow of a step that has ended prints it all and returns.
    let (code, out, _) = s.run(&["logs", &run, "build", "--follow"]);
    assert_eq!(code, 0);
    assert_eq!(out, "compiling 1.0\nlinking 1.0\n");
}

#[test]
fn prune_deletes_ended_runs_and_their_logs() {
    let s = Scratch::new();
    assert_eq!(s.run(&["run", &fixture("chain.yaml")]).0, 0);
    assert_eq!(
        s.run(&["run", &fixture("chain.yaml"), "-p", "fail_at=test"])
            .0,
        1
    );
    let logs: Vec<_> = std::fs::read_dir(s.path().join("flow-logs"))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 2);
    let (code, out, _) = s.run(&["prune", "--before", "2000-01-01"]);
    assert_eq!(code, 0);
    snap!(s, "prune_nothing", out);
    let (code, out, _) = s.run(&["prune", "--before", "2999-01-01", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("2 runs ended before 2999-01-01T00:00:00Z: `flow prune` without --dry-run deletes them\n"), "{out}");
    assert_eq!(
        s.json(&["runs", "--output", "json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (code, out, _) = s.run(&["prune", "--before", "2999-01-01"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "deleted 2 runs that ended before 2999-01-01T00:00:00Z, and 2 directories of logs\n"
    );
    assert_eq!(s.json(&["runs", "--output", "json"]), serde_json::json!([]));
    assert_eq!(
        std::fs::read_dir(s.path().join("flow-logs"))
            .unwrap()
            .count(),
        0
    );
    let (code, _, err) = s.run(&["prune", "--before", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("`soon` is not a time"), "{err}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let s = Scratch::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef flow"),
        ("fish", "complete -c flow"),
    ] {
        let (code, out, _) = s.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains(marker), "{shell}: {out}");
        for sub in ["rerun", "conductor", "prune"] {
            assert!(out.contains(sub), "{shell} lacks {sub}");
        }
    }
    let (code, _, err) = s.run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn help_lists_the_exit_codes() {
    let s = Scratch::new();
    let (code, out, _) = s.run(&["--help"]);
    assert_eq!(code, 0);
    snap!(s, "help", out);
}
