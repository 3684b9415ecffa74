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

/// The lines of documentation in `path` that name `flow_core::`, as
/// `file:line: text`. In Rust sources only doc comments count (`///`, `//!`);
/// in Markdown every line does.
fn offending_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).expect("a readable source file");
    let markdown = path.extension().is_some_and(|e| e == "md");
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let trimmed = line.trim_start();
            (markdown || trimmed.starts_with("///") || trimmed.starts_with("//!"))
                && line.contains("flow_core::")
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
    ] {
        assert!(
            sources.iter().any(|p| p.ends_with(must)),
            "{must} is not scanned"
        );
    }
    let offending: Vec<String> = sources.iter().flat_map(|p| offending_lines(p)).collect();
    assert!(
        offending.is_empty(),
        "these doc lines name `flow_core::`; write `flow::` as a user of `flow` does:\n{}",
        offending.join("\n")
    );
}

#[test]
fn the_scan_finds_a_doc_line_naming_flow_core() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let rs = dir.path().join("lib.rs");
    fs::write(
        &rs,
        "// flow_core::Internal in a plain comment is fine\n/// use flow_core::Flow;\nfn f() {}\n",
    )
    .expect("written");
    let md = dir.path().join("page.md");
    fs::write(&md, "use flow::Flow;\nuse flow_core::Engine;\n").expect("written");
    assert_eq!(
        offending_lines(&rs),
        [format!("{}:2: /// use flow_core::Flow;", rs.display())]
    );
    assert_eq!(
        offending_lines(&md),
        [format!("{}:2: use flow_core::Engine;", md.display())]
    );
}
