//! The compiled graph: its nodes, where each argument comes from, and the
//! public [`CompiledFlow`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use super::arena::NONE;
use crate::decider::Decider;
use crate::engine::state::AtomKind;
use crate::retry::Retry;
use crate::symbol::{Name, SymbolSpec, Value};
use crate::task::AtomNames;
use crate::task::{Runner, Signature};

/// Where an argument comes from at run time.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// Output `index` of atom `atom`.
    Output { atom: u32, index: u32 },
    /// Declared input `0` of the store.
    Store(u32),
    /// A constant injected at the use site.
    Injected(Value),
    /// An optional input with no provider.
    Absent,
    /// A collection, in the listed order.
    Many(Box<[Source]>),
    /// A map collection, keyed by symbol name.
    Named(Box<[(Name, Source)]>),
}

/// One node of the execution graph.
///
/// No larger than a flow's [`Item`], so that a flat flow's items become its
/// nodes in place, in the same allocation (see [`compile`]).
pub(crate) struct Node {
    pub(crate) name: Name,
    /// `None` for the internal barriers that join wide groups.
    pub(crate) task: Option<Runner>,
    pub(crate) signature: Signature,
    /// Where this node's sources start in `Graph::sources`: one per input of
    /// `execute`, then one per revert-only input of `revert`.
    pub(super) sources: u32,
    /// The nearest retry controller whose sub-flow holds this node, or `NONE`.
    pub(crate) enclosing: u32,
    /// What few nodes have: a retry controller, a gate, a priority, renamed
    /// outputs, a time limit.
    pub(super) rare: Option<Box<Rare>>,
}

/// The parts of a node that most nodes leave empty, kept apart so that the
/// graph stays small.
pub(super) struct Rare {
    /// For a retry controller: the controller and its sub-flow's atoms
    /// (`scope.0..scope.1`).
    pub(super) retry: Option<(Retry, (u32, u32))>,
    /// The gate (deciders) this node must pass before it starts, or `NONE`.
    pub(super) gate: u32,
    pub(super) priority: i32,
    /// The published output names, when some output is renamed.
    pub(super) renamed: Option<Box<[Box<str>]>>,
    pub(super) timeout: Option<std::time::Duration>,
}

impl Node {
    pub(crate) fn is_barrier(&self) -> bool {
        self.task.is_none()
    }

    /// A task or a retry controller.
    pub(crate) fn kind(&self) -> AtomKind {
        if self.retry().is_some() {
            AtomKind::Retry
        } else {
            AtomKind::Task
        }
    }

    /// For a retry controller: the controller and its sub-flow's atoms
    /// (`scope.0..scope.1`).
    pub(crate) fn retry(&self) -> Option<&(Retry, (u32, u32))> {
        self.rare.as_ref().and_then(|r| r.retry.as_ref())
    }

    /// The gate (deciders) this node must pass before it starts, or `NONE`.
    pub(crate) fn gate(&self) -> u32 {
        self.rare.as_ref().map_or(NONE, |r| r.gate)
    }

    /// The node's priority among ready nodes: higher starts first.
    pub(crate) fn priority(&self) -> i32 {
        self.rare.as_ref().map_or(0, |r| r.priority)
    }

    /// A task that an engine may run on the spot with nothing but its
    /// arguments (the serial engine's loop, a parallel worker's smaller
    /// jobs): not a barrier, retry controller or gated node, neither blocking
    /// nor under a time limit.
    pub(crate) fn is_plain(&self) -> bool {
        self.task.is_some()
            && self
                .rare
                .as_ref()
                .is_none_or(|r| r.retry.is_none() && r.gate == NONE && r.timeout.is_none())
            && !self.blocking()
    }

    /// Whether the task blocks its thread while it runs.
    pub(crate) fn blocking(&self) -> bool {
        self.signature.is_blocking()
    }

    /// How long `execute` may run.
    pub(crate) fn timeout(&self) -> Option<std::time::Duration> {
        self.rare.as_ref().and_then(|r| r.timeout)
    }

    /// The published name of output `k`.
    pub(crate) fn output_name(&self, k: usize) -> &str {
        match self.rare.as_ref().and_then(|r| r.renamed.as_ref()) {
            Some(names) => names.get(k).map_or("", |n| n),
            None => self.signature.outputs().get(k).map_or("", SymbolSpec::name),
        }
    }

    /// The position of the output published as `name`.
    pub(crate) fn output_position(&self, name: &str) -> Option<usize> {
        (0..self.signature.outputs().len()).find(|&k| self.output_name(k) == name)
    }
}

/// The compiled, immutable form of a flow.
pub(crate) struct Graph {
    pub(crate) name: Arc<str>,
    pub(crate) nodes: Vec<Node>,
    /// How many nodes are atoms (the rest are barriers).
    pub(crate) atoms: usize,
    pub(crate) succ_off: Vec<u32>,
    pub(crate) succ: Vec<u32>,
    pub(crate) pred_off: Vec<u32>,
    pub(crate) pred: Vec<u32>,
    /// How many nodes have no predecessor: the ready queue's size at the
    /// start of a run.
    pub(crate) roots: usize,
    pub(crate) inputs: Vec<SymbolSpec>,
    /// Atom names to positions, made on the first look-up by name.
    pub(super) by_name: OnceLock<FxHashMap<Box<str>, u32>>,
    pub(super) sources: Vec<Source>,
    pub(crate) gates: Vec<Gate>,
    /// Whether any node has a priority: without one, the ready queue's key
    /// is the position alone and nodes need not be read for it.
    pub(crate) prioritized: bool,
}

impl Graph {
    /// The position of the atom named `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        let map = self.by_name.get_or_init(|| {
            let mut map = FxHashMap::default();
            map.reserve(self.atoms);
            for (i, node) in self.nodes[..self.atoms].iter().enumerate() {
                map.insert(Box::from(&*node.name), i as u32);
            }
            map
        });
        map.get(name).copied()
    }

    /// The sources of node `i`'s `execute` inputs.
    pub(crate) fn exec_sources(&self, i: u32) -> &[Source] {
        let node = &self.nodes[i as usize];
        let a = node.sources as usize;
        &self.sources[a..a + node.signature.inputs().len()]
    }

    /// The sources of node `i`'s `revert` inputs: those of `execute`, then the
    /// revert-only ones.
    pub(crate) fn revert_sources(&self, i: u32) -> &[Source] {
        let node = &self.nodes[i as usize];
        let a = node.sources as usize;
        let sig = &node.signature;
        &self.sources[a..a + sig.inputs().len() + sig.revert_inputs().len()]
    }

    pub(crate) fn succs(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.succ[self.succ_off[i] as usize..self.succ_off[i + 1] as usize]
    }

    pub(crate) fn preds(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.pred[self.pred_off[i] as usize..self.pred_off[i + 1] as usize]
    }
}

/// A validated flow, compiled into its execution graph; ready for an
/// [`Engine`](crate::Engine). Cheap to clone and to share between engines.
#[derive(Clone)]
pub struct CompiledFlow(pub(crate) Arc<Graph>);

impl CompiledFlow {
    /// The latest atom, in declaration order, that publishes `name`, and the
    /// output's position.
    pub(crate) fn provider_of(&self, name: &str) -> Option<(usize, usize)> {
        let g = &self.0;
        (0..g.atoms)
            .rev()
            .find_map(|i| Some((i, g.nodes[i].output_position(name)?)))
    }

    /// The root flow's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// How many atoms the flow has.
    pub fn len(&self) -> usize {
        self.0.atoms
    }

    /// Whether the flow has no atoms.
    pub fn is_empty(&self) -> bool {
        self.0.atoms == 0
    }

    /// The atoms' names, in declaration order.
    pub fn atom_names(&self) -> impl Iterator<Item = &str> {
        self.0.nodes[..self.0.atoms].iter().map(|n| &*n.name)
    }

    /// The declared inputs.
    pub fn inputs(&self) -> &[SymbolSpec] {
        &self.0.inputs
    }

    /// The names of the atoms that must finish before `atom` starts (direct
    /// predecessors, internal joins expanded), or `None` for an unknown atom.
    ///
    /// ```
    /// use flow::{Atom, Flow, FnTask, Outputs, Signature};
    /// let t = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    /// let flow = Flow::linear("f").add(Atom::new("a", t())).add(Atom::new("b", t())).build().unwrap();
    /// assert_eq!(flow.predecessors("b").unwrap(), ["a"]);
    /// assert!(flow.predecessors("a").unwrap().is_empty());
    /// ```
    pub fn predecessors(&self, atom: &str) -> Option<Vec<&str>> {
        let g = &self.0;
        let start = g.index_of(atom)?;
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            for &p in g.preds(i) {
                if g.nodes[p as usize].is_barrier() {
                    stack.push(p);
                } else {
                    out.push(&*g.nodes[p as usize].name);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }
}

impl fmt::Debug for CompiledFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledFlow")
            .field("name", &self.0.name)
            .field("atoms", &self.0.atoms)
            .field("edges", &self.0.succ.len())
            .finish()
    }
}

impl AtomNames for Graph {
    fn atom_name(&self, index: u32) -> &str {
        self.nodes.get(index as usize).map_or("", |n| &n.name)
    }
}

/// The deciders in front of a graph item.
pub(crate) struct Gate {
    /// The source atom of each decider link, with its decider.
    pub(crate) deciders: Vec<(u32, Decider)>,
    /// The atoms of the item the deciders guard.
    pub(crate) region: (u32, u32),
    /// The atoms of the graph flow holding it.
    pub(crate) graph: (u32, u32),
    /// The atoms of each flow nested in that graph flow (as its item), in
    /// order: the graph's own atoms are the others.
    pub(crate) nested: Arc<[(u32, u32)]>,
}
