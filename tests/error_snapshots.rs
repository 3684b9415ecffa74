//! The compile errors of `#[task]` and `flow!` stay short and speak the
//! user's language: each error in a trybuild snapshot (`tests/ui/*/*.stderr`)
//! is at most ten lines and names nothing internal (no `__` names), and every
//! compiler output the README or the macros' docs show is one of those
//! snapshots, verbatim.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The most lines one error may take.
const LIMIT: usize = 10;

/// Snapshots with an error still longer than [`LIMIT`], each with the lines
/// its longest error takes today: they may shrink, never grow. What is left
/// is the compiler's own shaping of a builder call, not of `flow!` or
/// `#[task]`: for a function given to `Atom::of`, it points at the bound of
/// `Atom::of` and at the same-named task type.
const NOT_YET_SHORT: &[(&str, usize)] = &[("task/function-instead-of-task.stderr", 22)];

fn snapshots() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["tests/ui/flow", "tests/ui/task"] {
        for entry in fs::read_dir(Path::new(ROOT).join(dir)).expect("the UI test directory") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "stderr") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `dir/name.stderr` of a snapshot path.
fn short_name(path: &Path) -> String {
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .expect("a directory");
    let file = path.file_name().expect("a file name");
    format!("{}/{}", dir.to_string_lossy(), file.to_string_lossy())
}

/// The errors of a compiler output: each starts at a line `error...`, and
/// runs to the next one (blank lines between them not counted).
fn errors(stderr: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("error") || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut().expect("an error").push(line);
    }
    for error in &mut out {
        while error.last().is_some_and(|l| l.trim().is_empty()) {
            error.pop();
        }
    }
    out
}

/// The longest error of a compiler output, in lines.
fn longest(stderr: &str) -> usize {
    errors(stderr).iter().map(Vec::len).max().unwrap_or(0)
}

#[test]
fn every_error_is_short_and_names_nothing_internal() {
    let snapshots = snapshots();
    assert!(snapshots.len() >= 40, "found {} snapshots", snapshots.len());
    let mut problems = Vec::new();
    for path in &snapshots {
        let name = short_name(path);
        let text = fs::read_to_string(path).expect("a snapshot");
        if text.contains("__") {
            problems.push(format!("{name} names an internal item (`__`)"));
        }
        let allowed = NOT_YET_SHORT
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(LIMIT, |&(_, lines)| lines);
        let lines = longest(&text);
        if lines > allowed {
            problems.push(format!(
                "{name} has an error of {lines} lines (at most {allowed})"
            ));
        }
    }
    // The list of exceptions names snapshots that exist and are still long.
    for (name, _) in NOT_YET_SHORT {
        let path = snapshots
            .iter()
            .find(|p| short_name(p) == *name)
            .unwrap_or_else(|| panic!("{name} is listed but does not exist"));
        let lines = longest(&fs::read_to_string(path).expect("a snapshot"));
        if lines <= LIMIT {
            problems.push(format!(
                "{name} is short now ({lines} lines): take it off NOT_YET_SHORT"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The ```text blocks of a Markdown file that hold compiler output.
fn quoted_errors(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match &mut block {
            None if line.trim_start() == "```text" => block = Some(Vec::new()),
            None => {}
            Some(lines) if line.trim_start() == "```" => {
                if lines.first().is_some_and(|l| l.starts_with("error")) {
                    out.push(lines.join("\n"));
                }
                block = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    out
}

#[test]
fn the_docs_quote_the_snapshots_verbatim() {
    let snapshots: Vec<String> = snapshots()
        .iter()
        .map(|p| {
            fs::read_to_string(p)
                .expect("a snapshot")
                .trim_end()
                .to_string()
        })
        .collect();
    let mut quoted = 0;
    for doc in ["README.md", "src/docs/flow.md", "src/docs/task.md"] {
        let text = fs::read_to_string(Path::new(ROOT).join(doc)).expect("a doc page");
        for block in quoted_errors(&text) {
            quoted += 1;
            assert!(
                snapshots.contains(&block),
                "{doc} shows compiler output that is no snapshot:\n{block}"
            );
        }
    }
    assert!(quoted >= 2, "the README and flow! docs quote errors");
}

#[test]
fn errors_are_split_and_measured_as_the_compiler_prints_them() {
    let two = "error: first\n --> a.rs:1:1\n  |\n\nerror[E0308]: second\n --> a.rs:2:1\n";
    assert_eq!(
        errors(two),
        [
            vec!["error: first", " --> a.rs:1:1", "  |"],
            vec!["error[E0308]: second", " --> a.rs:2:1"],
        ]
    );
    assert_eq!(longest(two), 3);
    let md = "text\n```text\nerror: quoted\n  |\n```\n```text\nnot an error\n```\n";
    assert_eq!(quoted_errors(md), ["error: quoted\n  |"]);
}
