//! A flow's graph, to draw: as Graphviz DOT or as Mermaid, and, for a run,
//! with each step's state and duration.
//!
//! ```
//! use flow::{Atom, Flow, FnTask, Outputs, Signature};
//! let t = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
//! let flow = Flow::linear("deploy").add(Atom::new("build", t())).add(Atom::new("ship", t())).build().unwrap();
//! let graph = flow.graph();
//! assert!(graph.to_dot().contains("\"build\" -> \"ship\";"));
//! assert!(graph.to_mermaid().contains("n0 --> n1"));
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::compile::CompiledFlow;
use crate::engine::state::{AtomKind, AtomState};
use crate::storage::AtomDetail;

/// A flow's atoms and the order between them, with what a run recorded of
/// each, if drawn for a run.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowGraph {
    name: String,
    nodes: Vec<GraphNode>,
    edges: Vec<(usize, usize)>,
}

/// One atom of a [`FlowGraph`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct GraphNode {
    /// The atom's name.
    pub name: String,
    /// Task or retry controller.
    pub kind: AtomKind,
    /// Its state in the run, when drawn for one.
    pub state: Option<AtomState>,
    /// How long its latest `execute` took (or has been running, as of the
    /// run's record), when drawn for a run.
    pub duration: Option<Duration>,
    /// How many times its `execute` started, when drawn for a run.
    pub attempts: Option<u32>,
}

impl CompiledFlow {
    /// The flow's graph: its atoms in declaration order, and an edge from
    /// each atom to each atom that waits for it.
    pub fn graph(&self) -> FlowGraph {
        let nodes = self
            .atom_names()
            .map(|name| GraphNode {
                name: name.to_string(),
                kind: self
                    .0
                    .index_of(name)
                    .map_or(AtomKind::Task, |i| self.0.nodes[i as usize].kind()),
                state: None,
                duration: None,
                attempts: None,
            })
            .collect::<Vec<_>>();
        let position = |name: &str| nodes.iter().position(|n| n.name == name);
        let mut edges = Vec::new();
        for (to, node) in nodes.iter().enumerate() {
            for p in self.predecessors(&node.name).unwrap_or_default() {
                if let Some(from) = position(p) {
                    edges.push((from, to));
                }
            }
        }
        edges.sort_unstable();
        FlowGraph {
            name: self.name().to_string(),
            nodes,
            edges,
        }
    }
}

impl FlowGraph {
    /// A graph of atoms and edges given as they are: for flows not held as a
    /// [`CompiledFlow`] (a pipeline read from a file, a run read from a
    /// store). Edges naming no atom are left out.
    pub fn new(
        name: impl Into<String>,
        atoms: impl IntoIterator<Item = (String, AtomKind)>,
        edges: impl IntoIterator<Item = (usize, usize)>,
    ) -> Self {
        let nodes: Vec<GraphNode> = atoms
            .into_iter()
            .map(|(name, kind)| GraphNode {
                name,
                kind,
                state: None,
                duration: None,
                attempts: None,
            })
            .collect();
        let n = nodes.len();
        let mut edges: Vec<(usize, usize)> =
            edges.into_iter().filter(|&(a, b)| a < n && b < n).collect();
        edges.sort_unstable();
        edges.dedup();
        FlowGraph {
            name: name.into(),
            nodes,
            edges,
        }
    }

    /// The graph of a stored run, as the journal recorded it when the run was
    /// created (its atoms and the order between them, in the run's
    /// metadata): for drawing a run without the program that started it.
    /// `None` for a run written before runs recorded their graph.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flow::{Atom, Backend, Engine, Flow, FlowGraph, FnTask, MemoryBackend, Outputs, Signature};
    /// let t = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    /// let flow = Flow::linear("f").add(Atom::new("a", t())).add(Atom::new("b", t())).build().unwrap();
    /// let store = Arc::new(MemoryBackend::new());
    /// let mut engine = Engine::builder(flow).storage(store.clone()).build();
    /// engine.run().await.unwrap();
    /// let (run, atoms) = store.load_flow(engine.run_id()).await.unwrap();
    /// let graph = FlowGraph::recorded(&run).unwrap().with_run(&atoms, run.updated_at);
    /// assert_eq!(graph.edges(), [(0, 1)]);
    /// assert!(graph.to_dot().contains("\"b\" [label=\"b\\nSUCCESS"));
    /// # });
    /// ```
    pub fn recorded(run: &crate::storage::FlowDetail) -> Option<FlowGraph> {
        let atoms: Vec<(String, AtomKind)> = run
            .meta
            .get("atoms")?
            .as_array()?
            .iter()
            .filter_map(|entry| {
                let name = entry.get(0)?.as_str()?.to_string();
                let kind = match entry.get(1)?.as_str()? {
                    "RETRY" => AtomKind::Retry,
                    _ => AtomKind::Task,
                };
                Some((name, kind))
            })
            .collect();
        let position = |name: &str| atoms.iter().position(|(n, _)| n == name);
        let edges: Vec<(usize, usize)> = run
            .meta
            .get("edges")?
            .as_array()?
            .iter()
            .filter_map(|e| {
                Some((
                    position(e.get(0)?.as_str()?)?,
                    position(e.get(1)?.as_str()?)?,
                ))
            })
            .collect();
        Some(FlowGraph::new(run.name.clone(), atoms, edges))
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The atoms, in declaration order.
    pub fn nodes(&self) -> &[GraphNode] {
        &self.nodes
    }

    /// The edges, as positions in [`nodes`](FlowGraph::nodes): from an atom
    /// to one that waits for it.
    pub fn edges(&self) -> &[(usize, usize)] {
        &self.edges
    }

    /// The graph as a run recorded it: each atom's state, attempts and
    /// duration from the run's atom records (`now` is when a step still
    /// running is measured to, in seconds since the Unix epoch).
    pub fn with_run(mut self, atoms: &[AtomDetail], now: f64) -> Self {
        for node in &mut self.nodes {
            let Some(a) = atoms.iter().find(|a| a.name == node.name) else {
                continue;
            };
            node.state = Some(a.state);
            node.attempts = Some(a.attempts);
            let at = |k: &str| a.meta.get(k).and_then(serde_json::Value::as_f64);
            node.duration = match (at("started_at"), at("ended_at")) {
                (Some(start), Some(end)) => Duration::try_from_secs_f64(end - start).ok(),
                (Some(start), None) if a.state == AtomState::Running => {
                    Duration::try_from_secs_f64(now - start).ok()
                }
                _ => None,
            };
        }
        self
    }

    fn label(node: &GraphNode) -> Vec<String> {
        let mut lines = vec![node.name.clone()];
        let mut status = Vec::new();
        if let Some(state) = node.state {
            status.push(state.to_string());
        }
        if let Some(d) = node.duration {
            status.push(short_duration(d));
        }
        if let Some(n) = node.attempts.filter(|n| *n > 1) {
            status.push(format!("{n} tries"));
        }
        if !status.is_empty() {
            lines.push(status.join(" "));
        }
        lines
    }

    /// The graph in Graphviz's DOT language (`dot -Tsvg` draws it): retry
    /// controllers as diamonds, states as colours.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_string(&self.name));
        out.push_str("  rankdir=LR;\n");
        out.push_str(
            "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\"];\n",
        );
        for node in &self.nodes {
            let label = Self::label(node).join("\n");
            let shape = match node.kind {
                AtomKind::Retry => ", shape=diamond, style=filled",
                AtomKind::Task => "",
            };
            let (fill, border) = colours(node.state);
            let _ = writeln!(
                out,
                "  {} [label={}, fillcolor=\"{fill}\", color=\"{border}\"{shape}];",
                dot_string(&node.name),
                dot_string(&label)
            );
        }
        for &(from, to) in &self.edges {
            let _ = writeln!(
                out,
                "  {} -> {};",
                dot_string(&self.nodes[from].name),
                dot_string(&self.nodes[to].name)
            );
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart: retry controllers as hexagons,
    /// states as classes.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (k, node) in self.nodes.iter().enumerate() {
            let label = Self::label(node)
                .iter()
                .map(|l| mermaid_text(l))
                .collect::<Vec<_>>()
                .join("<br/>");
            let (open, close) = match node.kind {
                AtomKind::Retry => ("{{\"", "\"}}"),
                AtomKind::Task => ("[\"", "\"]"),
            };
            let _ = writeln!(out, "  n{k}{open}{label}{close}");
        }
        for &(from, to) in &self.edges {
            let _ = writeln!(out, "  n{from} --> n{to}");
        }
        let mut used: Vec<AtomState> = self.nodes.iter().filter_map(|n| n.state).collect();
        used.sort_by_key(|s| *s as u8);
        used.dedup();
        for state in used {
            let (fill, border) = colours(Some(state));
            let class = state.as_str().to_lowercase();
            let _ = writeln!(out, "  classDef {class} fill:{fill},stroke:{border};");
            let members: Vec<String> = (self.nodes.iter().enumerate())
                .filter(|(_, n)| n.state == Some(state))
                .map(|(k, _)| format!("n{k}"))
                .collect();
            let _ = writeln!(out, "  class {} {class};", members.join(","));
        }
        out
    }
}

/// The fill and border colours of a state.
fn colours(state: Option<AtomState>) -> (&'static str, &'static str) {
    match state {
        None | Some(AtomState::Pending) => ("#ffffff", "#9e9e9e"),
        Some(AtomState::Running) => ("#bbdefb", "#1565c0"),
        Some(AtomState::Success) => ("#c8e6c9", "#2e7d32"),
        Some(AtomState::Failure) => ("#ffcdd2", "#c62828"),
        Some(AtomState::Reverting) => ("#ffe0b2", "#ef6c00"),
        Some(AtomState::Reverted) => ("#fff9c4", "#f9a825"),
        Some(AtomState::RevertFailure) => ("#ef9a9a", "#b71c1c"),
        Some(AtomState::Ignore) => ("#eeeeee", "#757575"),
        Some(AtomState::Retrying) => ("#e1bee7", "#6a1b9a"),
    }
}

/// A duration as a person reads it: `850ms`, `1.2s`, `3m04s`.
fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    }
}

/// A DOT string: quoted, with quotes and backslashes escaped and newlines
/// as DOT's line breaks.
fn dot_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text inside a quoted Mermaid label: characters Mermaid would read as
/// syntax or markup written as its entity codes.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{dot_string, mermaid_text, short_duration};
    use std::time::Duration;

    #[test]
    fn text_from_a_run_cannot_break_out_of_its_label() {
        assert_eq!(dot_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(
            mermaid_text("<script>alert(\"#1\")</script> & co"),
            "#lt;script#gt;alert(#quot;#35;1#quot;)#lt;/script#gt; #amp; co"
        );
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(short_duration(Duration::from_millis(1240)), "1.2s");
        assert_eq!(short_duration(Duration::from_secs(184)), "3m04s");
    }
}
