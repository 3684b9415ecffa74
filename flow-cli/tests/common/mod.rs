//! What the command tests share: a scratch directory with a store, the
//! built `flow` binary pointed at it, the fixtures, and the filters that
//! make snapshots deterministic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory; the store is `flow.db` in it.
pub(crate) struct Scratch {
    pub(crate) dir: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.path().join("flow.db")
    }

    /// `flow` run in the scratch directory, on its store.
    pub(crate) fn flow(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("flow").expect("the flow binary");
        cmd.current_dir(self.path())
            .env("FLOW_STORE", self.store())
            .env_remove("FLOW_LOGS")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(60));
        cmd
    }

    /// `flow` as a child process with piped standard output.
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin("flow"))
            .args(args)
            .current_dir(self.path())
            .env("FLOW_STORE", self.store())
            .env_remove("FLOW_LOGS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flow starts")
    }

    /// Runs `flow` with `args` and returns (exit code, stdout, stderr).
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.flow().args(args).output().expect("flow runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The JSON `flow` prints for `args`.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "flow {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// The id of the newest run.
    pub(crate) fn newest_run(&self) -> String {
        let runs = self.json(&["runs", "--output", "json"]);
        runs[0]["id"].as_str().expect("a run").to_string()
    }

    /// Waits until `flow show RUN --output json` satisfies `ok` (20 s at
    /// most), and returns that view.
    pub(crate) fn wait_for(
        &self,
        run: &str,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, out, _) = self.run(&["show", run, "--output", "json"]);
            if code == 0
                && let Ok(view) = serde_json::from_str::<serde_json::Value>(&out)
                && ok(&view)
            {
                return view;
            }
            assert!(Instant::now() < deadline, "run {run} never {what}: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The state of step `name` in a `flow show --output json` view.
pub(crate) fn step_state<'a>(view: &'a serde_json::Value, name: &str) -> &'a str {
    view["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .and_then(|s| s["state"].as_str())
        .unwrap_or("")
}

/// A fixture pipeline.
pub(crate) fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The filters that make outputs deterministic: ids, times, durations,
/// scratch paths, and the padding that depends on their widths.
pub(crate) fn filters(scratch: &Scratch, collapse: bool) -> Vec<(String, String)> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut filters = vec![
        (
            regex_escape(&scratch.path().display().to_string()),
            "[scratch]".into(),
        ),
        (
            regex_escape(&fixtures.display().to_string()),
            "[fixtures]".into(),
        ),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".into(),
            "[id]".into(),
        ),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z".into(),
            "[time]".into(),
        ),
        (
            r"\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d\ds\b".into(),
            "[dur]".into(),
        ),
        (
            r#""duration_ms": \d+"#.into(),
            r#""duration_ms": "[ms]""#.into(),
        ),
    ];
    if collapse {
        // Columns padded to the width of a cell redacted above.
        filters.push((r"(\S)[ \t]{2,}".into(), "$1  ".into()));
    }
    filters
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Asserts a snapshot of `text` with the filters.
#[macro_export]
macro_rules! snap {
    ($scratch:expr, $name:expr, $text:expr) => {
        snap!($scratch, $name, $text, true)
    };
    ($scratch:expr, $name:expr, $text:expr, $collapse:expr) => {{
        let mut settings = insta::Settings::clone_current();
        for (from, to) in common::filters(&$scratch, $collapse) {
            settings.add_filter(&from, to);
        }
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}
