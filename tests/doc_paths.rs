//! The documentation shown on `flow`'s pages is written for a user of the
//! `flow` crate: no example or sentence names `flow_core::`, which such a user
//! cannot write. `flow` re-exports `flow-core`'s items, so their doc comments
//! are `flow`'s pages; the macros' pages and the README are too.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every file under `dir` whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, exts, out);
        } else if exts
            .iter()
            .any(|ext| path.extension().is_some_and(|e| e == *ext))
        {
            out.push(path);
        }
    }
}

/// The crate paths a user of `flow` cannot write.
const INNER_CRATES: [&str; 3] = ["flow_core::", "flow_pipeline::", "flow_postgres::"];

/// What a reader of the page sees of a line: a doc comment's text without
/// the targets of its links (`[`Flow`](flow_core::Flow)` shows `Flow`);
/// nothing of a line a doc test hides (`# ...`).
fn shown(line: &str) -> String {
    let text = line.trim_start();
    let text = text
        .strip_prefix("///")
        .or_else(|| text.strip_prefix("//!"))
        .unwrap_or(text)
        .trim_start();
    if text == "#" || text.starts_with("# ") {
        return String::new();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        out.push_str(&rest[..at + 1]);
        rest = &rest[at + 2..];
        rest = rest.find(')').map_or("", |end| &rest[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// The lines of documentation in `path` that name `flow_core::` or
/// `flow_pipeline::` where a reader sees it, as `file:line: text`. In Rust
/// sources only doc comments count (`///`, `//!`); in Markdown every line
/// does.
fn offending_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).expect("a readable source file");
    let markdown = path.extension().is_some_and(|e| e == "md");
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let trimmed = line.trim_start();
            (markdown || trimmed.starts_with("///") || trimmed.starts_with("//!"))
                && INNER_CRATES.iter().any(|c| shown(line).contains(c))
        })
        .map(|(n, line)| format!("{}:{}: {}", path.display(), n + 1, line.trim()))
        .collect()
}

/// The documentation `flow`'s pages show, from the sources that hold it.
fn documented_sources() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut out = Vec::new();
    files(&root.join("flow-core/src"), &["rs"], &mut out);
    files(&root.join("flow-macros/src"), &["rs"], &mut out);
    files(&root.join("flow-pipeline/src"), &["rs"], &mut out);
    files(&root.join("flow-postgres/src"), &["rs"], &mut out);
    files(&root.join("src"), &["rs", "md"], &mut out);
    out.push(root.join("README.md"));
    out
}

#[test]
fn no_flow_page_names_flow_core() {
    let sources = documented_sources();
    // The scan reaches the files that hold the pages (guards against a moved tree).
    for must in [
        "flow-core/src/lib.rs",
        "flow-core/src/task/mod.rs",
        "src/docs/flow.md",
        "flow-pipeline/src/lib.rs",
    ] {
        assert!(
            sources.iter().any(|p| p.ends_with(must)),
            "{must} is not scanned"
        );
    }
    let offending: Vec<String> = sources.iter().flat_map(|p| offending_lines(p)).collect();
    assert!(
        offending.is_empty(),
        "these doc lines name `flow_core::` or `flow_pipeline::`; write `flow::` or \
         `flow::pipeline::` as a user of `flow` does:\n{}",
        offending.join("\n")
    );
}

#[test]
fn the_scan_finds_a_doc_line_naming_flow_core() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let rs = dir.path().join("lib.rs");
    fs::write(
        &rs,
        "// flow_core::Internal in a plain comment is fine\n/// use flow_core::Flow;\n\
         /// # use flow_core::Hidden;\n/// A [`Flow`](flow_core::Flow) link.\n\
         /// use flow_pipeline::Pipeline;\nfn f() {}\n",
    )
    .expect("written");
    let md = dir.path().join("page.md");
    fs::write(&md, "use flow::Flow;\nuse flow_core::Engine;\n").expect("written");
    assert_eq!(
        offending_lines(&rs),
        [
            format!("{}:2: /// use flow_core::Flow;", rs.display()),
            format!("{}:5: /// use flow_pipeline::Pipeline;", rs.display()),
        ]
    );
    assert_eq!(
        offending_lines(&md),
        [format!("{}:2: use flow_core::Engine;", md.display())]
    );
}
