//! The layering of `flow-core`'s modules, written in `src/lib.rs`, checked:
//! every module names only modules of its own layer or below, and no two
//! modules name each other, directly or round a circle.
//!
//! A module is a source file: `src/task/context.rs` is `task::context`,
//! `src/compile/mod.rs` is `compile`. A module names another when its code
//! (not its comments, not its tests) says `crate::other::...`, or
//! `super::...` for a neighbour. A module using its own parts (`compile`
//! using `compile::fast`) assembles them; that is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module belongs to the layer of the longest
/// prefix that names it.
const LAYERS: &[&[&str]] = &[
    &["exact", "symbol", "symbol_hash", "pattern"],
    &["failure"],
    &["engine::state", "engine::control"],
    &["storage"],
    &["error"],
    &["task::signature", "task::args", "task::outputs"],
    &["notify"],
    &["task"],
    &["retry", "decider", "define"],
    &["flow", "tree", "link_order"],
    &["compile"],
    &["engine"],
    &["export", "checked"],
    &["conductor"],
];

fn layer_of(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (layer, prefixes) in LAYERS.iter().enumerate() {
        for prefix in *prefixes {
            let matches = module == *prefix || module.starts_with(&format!("{prefix}::"));
            if matches && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), layer));
            }
        }
    }
    best.map(|(_, layer)| layer)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `task/context.rs` -> `task::context`; `compile/mod.rs` -> `compile`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments and its `#[cfg(test)]` modules.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            skipping = true;
        }
        if skipping {
            continue;
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The longest known module that `path` (`a::b::c::Item`) starts with.
fn resolve(modules: &BTreeSet<String>, path: &[&str]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

/// Every module a module names, read from its code.
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(src, &mut all);
    let modules: BTreeSet<String> = all.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &all {
        let module = module_of(src, file);
        if module == "lib" || file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a readable source file");
        let code = code(&text);
        // Where `super` points: the parent of this module (of its directory
        // for a `mod.rs`).
        let here: Vec<&str> = module.split("::").collect();
        let parent = &here[..here.len() - 1];
        for (at, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at..];
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let full: Vec<&str> = match path.first() {
                Some(&"crate") => path[1..].to_vec(),
                Some(&"super") => parent
                    .iter()
                    .copied()
                    .chain(path[1..].iter().copied())
                    .collect(),
                _ => continue,
            };
            let Some(target) = resolve(&modules, &full) else {
                continue;
            };
            // Itself, or one of its own parts.
            if target == module || target.starts_with(&format!("{module}::")) {
                continue;
            }
            edges.entry(module.clone()).or_default().insert(target);
        }
    }
    edges
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_has_a_layer() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let missing: Vec<String> = all
        .iter()
        .map(|f| module_of(&src(), f))
        .filter(|m| m != "lib" && layer_of(m).is_none())
        .collect();
    assert_eq!(missing, Vec::<String>::new(), "modules with no layer");
}

#[test]
fn no_module_names_a_module_above_it() {
    let mut upward = Vec::new();
    for (from, targets) in edges(&src()) {
        for to in targets {
            if let (Some(a), Some(b)) = (layer_of(&from), layer_of(&to))
                && b > a
            {
                upward.push(format!("{from} (layer {a}) -> {to} (layer {b})"));
            }
        }
    }
    assert_eq!(upward, Vec::<String>::new(), "upward imports");
}

#[test]
fn no_two_modules_name_each_other() {
    let edges = edges(&src());
    // Depth-first, colouring modules: a grey module met again closes a
    // circle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        Grey,
        Black,
    }
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, Colour>,
        path: &mut Vec<String>,
        circles: &mut Vec<String>,
    ) {
        colour.insert(m.to_string(), Colour::Grey);
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flatten() {
            match colour.get(next) {
                Some(Colour::Grey) => {
                    let start = path.iter().position(|p| p == next).expect("on the path");
                    let mut circle = path[start..].to_vec();
                    circle.push(next.clone());
                    circles.push(circle.join(" -> "));
                }
                Some(Colour::Black) => {}
                None => visit(next, edges, colour, path, circles),
            }
        }
        path.pop();
        colour.insert(m.to_string(), Colour::Black);
    }
    let mut colour = BTreeMap::new();
    let mut circles = Vec::new();
    for m in edges.keys() {
        if !colour.contains_key(m) {
            visit(m, &edges, &mut colour, &mut Vec::new(), &mut circles);
        }
    }
    assert_eq!(circles, Vec::<String>::new(), "circular imports");
}
