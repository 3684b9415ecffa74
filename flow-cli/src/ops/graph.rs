//! Drawing a pipeline, or a run of one with each step's state, tries and
//! duration: as Graphviz DOT or as a Mermaid flowchart.

use flow::{AtomKind, FlowGraph, FlowId, storage};
use flow_pipeline::Pipeline;

use super::stored::StoredRun;
use super::{OpsError, Store};

/// The language a graph is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphFormat {
    /// Graphviz's DOT (`dot -Tsvg` draws it).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// The graph of a pipeline: one node per step, an edge from each step to
/// each step that depends on it.
///
/// ```
/// use flow_pipeline::Pipeline;
/// let p = Pipeline::from_str("p.yaml", "
/// name: p
/// steps:
///   - {name: build, command: [make]}
///   - {name: ship, command: [make, ship], depends-on: [build]}
/// ").unwrap();
/// let graph = flow_cli::ops::pipeline_graph(&p);
/// assert_eq!(graph.edges(), [(0, 1)]);
/// assert!(graph.to_dot().contains("\"build\" -> \"ship\";"));
/// ```
pub fn pipeline_graph(pipeline: &Pipeline) -> FlowGraph {
    let steps = pipeline.steps();
    let index = |name: &str| steps.iter().position(|s| s.name() == name);
    let edges: Vec<(usize, usize)> = steps
        .iter()
        .enumerate()
        .flat_map(|(to, s)| s.depends_on().filter_map(index).map(move |from| (from, to)))
        .collect();
    FlowGraph::new(
        pipeline.name(),
        steps.iter().map(|s| (s.name().to_string(), AtomKind::Task)),
        edges,
    )
}

/// The graph of run `run`, each step with its state, tries and duration: a
/// pipeline's from its stored definition, any other flow's as the journal
/// recorded it when the run was created.
///
/// # Errors
/// [`OpsError::NotAPipeline`] for a run of a flow written in Rust that was
/// created before runs recorded their graph; what the store says.
pub async fn run_graph(store: &Store, run: FlowId) -> Result<FlowGraph, OpsError> {
    let stored = StoredRun::load(store, run).await?;
    graph_of(&stored)
}

/// The graph of a stored run, each step with its state, tries and duration.
pub(crate) fn graph_of(stored: &StoredRun) -> Result<FlowGraph, OpsError> {
    let run = stored.detail.id;
    let graph = match &stored.pipeline {
        Some(pipeline) => pipeline_graph(pipeline),
        None => FlowGraph::recorded(&stored.detail).ok_or_else(|| OpsError::NotAPipeline {
            run,
            flow: stored.detail.name.clone(),
            what: "drawn",
        })?,
    };
    Ok(graph.with_run(&stored.atoms, storage::now_unix()))
}

/// `graph` written in `format`.
pub fn render_graph(graph: &FlowGraph, format: GraphFormat) -> String {
    match format {
        GraphFormat::Dot => graph.to_dot(),
        GraphFormat::Mermaid => graph.to_mermaid(),
    }
}
