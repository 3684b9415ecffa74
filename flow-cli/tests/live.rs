//! The live view in a real terminal (a pseudo-terminal): steps appear,
//! finish and fail as they do; Ctrl-C cancels and reverts; a second Ctrl-C
//! leaves the run for `flow resume`. The final screen, as a terminal
//! emulator draws it, is kept as a snapshot (and shown in the README).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Scratch, fixture, step_state};
use expectrl::WaitStatus;
use expectrl::{Eof, Regex, Session};

const COLS: u16 = 90;
const ROWS: u16 = 24;

/// `flow` in a pseudo-terminal, and everything it drew.
struct Terminal {
    session: Session,
    drawn: Vec<u8>,
}

impl Terminal {
    fn start(s: &Scratch, args: &[&str]) -> Terminal {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("flow"));
        cmd.args(args)
            .current_dir(s.path())
            .env("FLOW_STORE", s.store())
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .env_remove("FLOW_LOGS");
        let mut session = Session::spawn(cmd).expect("a pseudo-terminal");
        let _ = session.get_process_mut().set_window_size(COLS, ROWS);
        session.set_expect_timeout(Some(Duration::from_secs(20)));
        Terminal {
            session,
            drawn: Vec::new(),
        }
    }

    /// Waits until the terminal shows text matching `pattern`.
    fn expect(&mut self, pattern: &str) {
        match self.session.expect(Regex(pattern)) {
            Ok(found) => self.drawn.extend_from_slice(found.as_bytes()),
            Err(e) => panic!(
                "the terminal never showed {pattern:?} ({e}); it showed:\n{}",
                self.screen()
            ),
        }
    }

    fn ctrl_c(&mut self) {
        self.session.send([3u8]).expect("Ctrl-C sent");
    }

    /// Reads to the end and returns the exit code.
    fn exit_code(&mut self) -> i32 {
        if let Ok(rest) = self.session.expect(Eof) {
            self.drawn.extend_from_slice(rest.as_bytes());
        }
        match self.session.get_process().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            other => panic!("flow did not exit: {other:?}"),
        }
    }

    /// The screen as a terminal emulator draws what was written.
    fn screen(&self) -> String {
        let mut parser = vt100::Parser::new(ROWS, COLS, 0);
        // The terminal's line discipline turns a line feed into a carriage
        // return and a line feed (ONLCR); the emulator gets what it shows.
        let mut shown = Vec::with_capacity(self.drawn.len());
        for (i, b) in self.drawn.iter().enumerate() {
            if *b == b'\n' && (i == 0 || self.drawn[i - 1] != b'\r') {
                shown.push(b'\r');
            }
            shown.push(*b);
        }
        parser.process(&shown);
        let rows: Vec<String> = parser.screen().rows(0, COLS).collect();
        let lines: Vec<&str> = rows.iter().map(|r| r.trim_end()).collect();
        let end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        lines[..end].join("\n") + "\n"
    }
}

fn touch(s: &Scratch, name: &str) {
    std::fs::write(s.path().join(name), "").expect("a gate");
}

#[test]
fn the_live_view_shows_steps_start_finish_and_fail_as_they_do() {
    let s = Scratch::new();
    std::fs::create_dir(s.path().join("gates")).unwrap();
    let gates = format!("gates={}", s.path().join("gates").display());
    let mut t = Terminal::start(&s, &["run", &fixture("live.yaml"), "-p", &gates]);
    t.expect(r"checkout +running");
    t.expect(r"0/4 steps done");
    touch(&s, "gates/checkout");
    t.expect(r"checkout\S* +succeeded in");
    t.expect(r"1/4 steps done");
    t.expect(r"build +running");
    t.expect(r"lint +running");
    touch(&s, "gates/lint");
    t.expect(r"lint\S* +failed in \S+: exit status 3");
    t.expect(r"src/lib.rs:40: missing docs");
    t.expect(r"1 failed");
    touch(&s, "gates/build");
    t.expect(r"build\S* +succeeded in");
    t.expect(r"build\S* +reverted");
    t.expect(r"checkout\S* +reverted");
    t.expect(r"live failed, and what had run was reverted");
    assert_eq!(t.exit_code(), 1);
    let screen = t.screen();
    // `package` never ran: it waited for `lint`.
    assert!(!screen.contains("package"), "{screen}");
    for line in [
        "✔ checkout  succeeded in",
        "✘ lint      failed in",
        "✔ build     succeeded in",
        "↺ build     reverted",
        "↺ checkout  reverted",
    ] {
        assert!(
            screen.contains(line),
            "{line:?} is not on the screen:\n{screen}"
        );
    }
    // Every column of this screen has a fixed width: kept as drawn.
    snap!(s, "live-view", screen, false);
}

#[test]
fn ctrl_c_cancels_the_run_and_reverts_what_ran() {
    let s = Scratch::new();
    let gate = format!("gate={}", s.path().join("gate").display());
    let mut t = Terminal::start(&s, &["run", &fixture("gated.yaml"), "-p", &gate]);
    t.expect(r"wait +running");
    let run = s.newest_run();
    s.wait_for(&run, "ran `wait`", |v| step_state(v, "wait") == "running");
    t.ctrl_c();
    t.expect(r"cancelling: reverting what ran");
    t.expect(r"wait\S* +cancelled after");
    t.expect(r"first\S* +reverted");
    t.expect(r"gated was cancelled, and what had run was reverted");
    assert_eq!(t.exit_code(), 130);
    let screen = t.screen();
    for line in ["✘ wait   cancelled after", "↺ first  reverted"] {
        assert!(
            screen.contains(line),
            "{line:?} is not on the screen:\n{screen}"
        );
    }
    let view = s.json(&["show", &run, "--output", "json"]);
    assert_eq!(view["state"], "reverted");
    assert_eq!(view["held"], false);
    assert_eq!(step_state(&view, "last"), "skipped");
    let (_, undo, _) = s.run(&["logs", &run, "first", "--undo"]);
    assert_eq!(undo, "undid first\n");
}

#[test]
fn a_second_ctrl_c_leaves_the_run_for_resume() {
    let s = Scratch::new();
    let gate = format!("gate={}", s.path().join("gate").display());
    let mut t = Terminal::start(
        &s,
        &[
            "run",
            &fixture("gated.yaml"),
            "-p",
            &gate,
            "-p",
            "slow_undo=true",
        ],
    );
    t.expect(r"wait +running");
    let run = s.newest_run();
    s.wait_for(&run, "ran `wait`", |v| step_state(v, "wait") == "running");
    t.ctrl_c();
    // The undo of `first` waits for its gate: the run is mid-revert.
    t.expect(r"first +reverting");
    s.wait_for(&run, "reverted `first`", |v| {
        step_state(v, "first") == "reverting"
    });
    t.ctrl_c();
    t.expect(&format!(
        r"left run {run} as it was: `flow resume {run}` takes it up"
    ));
    assert_eq!(t.exit_code(), 130);
    // Given back at once: nobody holds it, and it has not ended.
    let view = s.json(&["show", &run, "--output", "json"]);
    assert_eq!(
        (view["state"].as_str(), view["held"].as_bool()),
        (Some("running"), Some(false))
    );
    touch(&s, "gate");
    touch(&s, "gate.undo");
    let (code, out, err) = s.run(&["resume", &run]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("first  reverted"), "{out}");
    let view = s.json(&["show", &run, "--output", "json"]);
    assert_eq!(view["state"], "reverted");
    let (_, undo, _) = s.run(&["logs", &run, "first", "--undo"]);
    assert_eq!(undo, "undid first\n");
}

#[test]
fn required_parameters_are_asked_for_on_a_terminal() {
    let s = Scratch::new();
    let mut t = Terminal::start(&s, &["run", &fixture("needs.yaml"), "--plain"]);
    t.expect(r"needs needs 2 more values:");
    t.expect(r"host \(a string\) The host to greet.");
    t.session.send_line("db-1").unwrap();
    t.expect(r"count \(an integer\) How many times.");
    t.session.send_line("two").unwrap();
    t.expect(r"this must be an integer");
    // A wrong value is asked for again, not run with.
    t.session.send([0x7fu8, 0x7f, 0x7f]).unwrap();
    t.session.send_line("2").unwrap();
    t.expect(r"greet +succeeded");
    assert_eq!(t.exit_code(), 0);
    let run = s.newest_run();
    let (_, out, _) = s.run(&["logs", &run, "greet"]);
    assert_eq!(out, "hello db-1 (loud=false)\nhello db-1 (loud=false)\n");
}
