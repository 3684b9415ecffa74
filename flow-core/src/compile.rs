//! Compilation of a flow tree into its flat execution graph.
//!
//! Done once per [`Flow::build`](crate::Flow::build), in time linear in the size
//! of the tree (times its nesting depth): atoms are numbered in declaration order,
//! every input is resolved to a *source* (an output slot of an earlier atom, a
//! store slot, or a constant), and the order between atoms becomes a compact
//! adjacency array. The engines never look a name up while running.

use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use smallvec::SmallVec;

use crate::decider::Decider;
use crate::engine::state::AtomKind;
use crate::error::{BuildError, BuildErrors, Method, Missing};
use crate::flow::{Atom, Flow, Item, Link, Pattern};
use crate::link_order::{Linked, Nearest};
use crate::retry::Retry;
use crate::symbol::{Name, SymbolSpec, TypeInfo, Value};
use crate::task::{InputKind, InputSpec, Runner, Signature};

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
    sources: u32,
    /// The nearest retry controller whose sub-flow holds this node, or `NONE`.
    pub(crate) enclosing: u32,
    /// What few nodes have: a retry controller, a gate, a priority, renamed
    /// outputs, a time limit.
    rare: Option<Box<Rare>>,
}

/// The parts of a node that most nodes leave empty, kept apart so that the
/// graph stays small.
struct Rare {
    /// For a retry controller: the controller and its sub-flow's atoms
    /// (`scope.0..scope.1`).
    retry: Option<(Retry, (u32, u32))>,
    /// The gate (deciders) this node must pass before it starts, or `NONE`.
    gate: u32,
    priority: i32,
    /// The published output names, when some output is renamed.
    renamed: Option<Box<[Box<str>]>>,
    timeout: Option<std::time::Duration>,
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
    by_name: OnceLock<FxHashMap<Box<str>, u32>>,
    sources: Vec<Source>,
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

/// An output visible under a name: one provider, or several with no order
/// between them.
#[derive(Clone, Debug)]
enum Export {
    One { atom: u32, index: u32 },
    Many(Box<[u32]>),
}

impl Export {
    fn atoms(&self) -> Vec<u32> {
        match self {
            Export::One { atom, .. } => vec![*atom],
            Export::Many(v) => v.to_vec(),
        }
    }

    fn merge_unordered(&mut self, other: &Export) {
        let mut all = self.atoms();
        all.extend(other.atoms());
        all.sort_unstable();
        all.dedup();
        *self = Export::Many(all.into_boxed_slice());
    }
}

/// The entry and exit atoms of a subtree.
type Ends = SmallVec<[u32; 2]>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeRef {
    Atom(u32),
    Flow(u32),
}

struct FlowInfo<'a> {
    flow: &'a Flow,
    items: Vec<NodeRef>,
    parent: Option<u32>,
    exports: FxHashMap<&'a str, Export>,
    /// The atom of the flow's retry controller.
    retry: Option<u32>,
    /// The flow's atoms, `range.0..range.1` in declaration order.
    range: (u32, u32),
    /// How many inputs its atoms read, to size what is built from them.
    inputs: u32,
}

struct AtomInfo<'a> {
    atom: &'a Atom,
    parent: u32,
    /// Where the published output names start in `Arena::outputs`.
    first_output: u32,
}

/// A flow being numbered by [`Arena::add_tree`].
struct Open<'a> {
    id: u32,
    flow: &'a Flow,
    /// The next of its items to number.
    next: usize,
    /// The nearest retry controller of its items.
    inner: u32,
    in_graph: bool,
    /// How many inputs the atoms numbered before it read.
    inputs_before: u32,
}

/// No retry controller.
pub(crate) const NONE: u32 = u32::MAX;

/// Pass 0: numbers atoms and flows in declaration order.
struct Arena<'a> {
    flows: Vec<FlowInfo<'a>>,
    atoms: Vec<AtomInfo<'a>>,
    /// Every atom's published output names (after renaming), atom after atom.
    output_names: Vec<&'a str>,
    /// How many inputs (of `execute` and `revert`) all atoms read.
    inputs: u32,
    /// For each atom, the nearest retry controller whose sub-flow holds it.
    enclosing: Vec<u32>,
    /// The atoms that rename an output, in order: noted while the atoms are
    /// numbered, so that no later pass reads every atom again for the few.
    renamed: Vec<u32>,
    /// Each atom's [`name_key`], for [`duplicate_names`].
    name_keys: Vec<u64>,
    /// The upper half of the hash of every name read by an atom inside a
    /// graph flow, in the order [`for_each_read`] gives them, atom after
    /// atom: taken while the atom's signature is read to number it, so that
    /// [`Compiler::graph_frame`] does not read every signature again.
    read_hashes: Vec<u32>,
    /// For each atom, where its names start in `read_hashes` (atoms outside
    /// graph flows record none).
    read_at: Vec<u32>,
    /// The flows that hold a nested flow, for [`Arena::sibling_duplicates`]
    /// (possibly repeated).
    nesting: Vec<u32>,
}

impl<'a> Arena<'a> {
    /// Numbers `atom`, of flow `parent`; `in_graph` when a graph flow holds
    /// it, at any depth.
    fn add_atom(&mut self, atom: &'a Atom, parent: u32, enclosing: u32, in_graph: bool) -> u32 {
        let aid = self.atoms.len() as u32;
        let first_output = self.output_names.len() as u32;
        let sig = &atom.signature;
        self.inputs += (sig.inputs().len() + sig.revert_inputs().len()) as u32;
        let renames = atom.renames();
        if renames.is_empty() {
            self.output_names
                .extend(sig.outputs().iter().map(|o| o.name()));
        } else {
            self.renamed.push(aid);
            self.output_names.extend(sig.outputs().iter().map(|o| {
                renames
                    .iter()
                    .rev()
                    .find(|(from, _)| from == o.name())
                    .map_or(o.name(), |(_, to)| &**to)
            }));
        }
        self.atoms.push(AtomInfo {
            atom,
            parent,
            first_output,
        });
        self.enclosing.push(enclosing);
        self.name_keys.push(name_key(&atom.name, aid));
        self.read_at.push(self.read_hashes.len() as u32);
        if in_graph {
            for_each_read(atom, |read| {
                self.read_hashes
                    .push(half_hash(symbol_for(atom, read)) as u32);
            });
        }
        aid
    }

    /// Numbers the flows and atoms of the tree of `root`, in declaration
    /// order, one flow after the other (no call per level: a deep tree
    /// cannot exhaust the stack). `false`, with the tree partly numbered,
    /// when flows nest deeper than [`Flow::MAX_DEPTH`].
    fn add_tree(&mut self, root: &'a Flow) -> bool {
        let mut open = vec![self.open_flow(root, None, NONE, false)];
        while let Some(top) = open.last_mut() {
            let Some(item) = top.flow.items.get(top.next) else {
                let done = open.pop().expect("the flow just looked at");
                let info = &mut self.flows[done.id as usize];
                info.range.1 = self.atoms.len() as u32;
                info.inputs = self.inputs - done.inputs_before;
                continue;
            };
            top.next += 1;
            let (parent, inner, in_graph) = (top.id, top.inner, top.in_graph);
            let r = match item {
                Item::Atom(atom) => NodeRef::Atom(self.add_atom(atom, parent, inner, in_graph)),
                Item::Flow(_) if open.len() >= Flow::MAX_DEPTH => return false,
                Item::Flow(sub) => {
                    if self.nesting.last() != Some(&parent) {
                        self.nesting.push(parent);
                    }
                    let sub = self.open_flow(sub, Some(parent), inner, in_graph);
                    let id = sub.id;
                    open.push(sub);
                    NodeRef::Flow(id)
                }
            };
            self.flows[parent as usize].items.push(r);
        }
        true
    }

    /// Numbers `flow` and its retry controller, of flow `parent`; its items
    /// are numbered next, by [`Arena::add_tree`]. `in_graph` when a graph
    /// flow holds it, at any depth.
    fn open_flow(
        &mut self,
        flow: &'a Flow,
        parent: Option<u32>,
        enclosing: u32,
        in_graph: bool,
    ) -> Open<'a> {
        let id = self.flows.len() as u32;
        self.flows.push(FlowInfo {
            flow,
            items: Vec::with_capacity(flow.items.len()),
            parent,
            exports: FxHashMap::default(),
            retry: None,
            range: (self.atoms.len() as u32, 0),
            inputs: 0,
        });
        let inputs_before = self.inputs;
        // Most items are atoms with one output: size for that at once rather
        // than growing (and copying) as the atoms are added.
        self.atoms.reserve(flow.items.len() + 1);
        self.enclosing.reserve(flow.items.len() + 1);
        self.name_keys.reserve(flow.items.len() + 1);
        self.output_names.reserve(flow.items.len() + 1);
        self.read_at.reserve(flow.items.len() + 1);
        let in_graph = in_graph || flow.pattern == Pattern::Graph;
        if in_graph {
            // Most atoms read one name.
            self.read_hashes.reserve(flow.items.len() + 1);
        }
        let mut inner = enclosing;
        if let Some(controller) = &flow.retry {
            let r = self.add_atom(&controller.0, id, enclosing, in_graph);
            self.flows[id as usize].retry = Some(r);
            inner = r;
        }
        Open {
            id,
            flow,
            next: 0,
            inner,
            in_graph,
            inputs_before,
        }
    }

    /// The atoms of an item, in declaration order.
    fn item_range(&self, r: NodeRef) -> (u32, u32) {
        match r {
            NodeRef::Atom(a) => (a, a + 1),
            NodeRef::Flow(f) => self.flows[f as usize].range,
        }
    }

    fn item_name(&self, r: NodeRef) -> &'a str {
        match r {
            NodeRef::Atom(a) => &self.atoms[a as usize].atom.name,
            NodeRef::Flow(f) => &self.flows[f as usize].flow.name,
        }
    }

    fn path_of_atom(&self, a: u32) -> String {
        let info = &self.atoms[a as usize];
        let mut parts = vec![&*info.atom.name];
        let mut f = Some(info.parent);
        while let Some(id) = f {
            parts.push(&self.flows[id as usize].flow.name);
            f = self.flows[id as usize].parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// The path of flow `f` in the tree, ending with `/`.
    fn path_of_flow(&self, f: u32) -> String {
        let mut parts = Vec::new();
        let mut f = Some(f);
        while let Some(id) = f {
            parts.push(&*self.flows[id as usize].flow.name);
            f = self.flows[id as usize].parent;
        }
        parts.reverse();
        parts.join("/") + "/"
    }

    /// The items of a flow named like a sibling sub-flow (atom names are
    /// checked across the whole tree by [`duplicate_names`]): each later
    /// one paired with the first holder of the name, as `DuplicateName`
    /// errors.
    fn sibling_duplicates(&self) -> Vec<BuildError> {
        let mut nesting = self.nesting.clone();
        nesting.sort_unstable();
        nesting.dedup();
        let mut errors = Vec::new();
        for f in nesting {
            let info = &self.flows[f as usize];
            let subs: FxHashSet<&str> = (info.items.iter())
                .filter(|r| matches!(r, NodeRef::Flow(_)))
                .map(|&r| self.item_name(r))
                .collect();
            // The first holder of each sub-flow's name, in item order, the
            // retry controller first.
            let mut first: FxHashMap<&str, NodeRef> = FxHashMap::default();
            let controller = info.retry.map(NodeRef::Atom);
            for item in controller.into_iter().chain(info.items.iter().copied()) {
                let name = self.item_name(item);
                if !subs.contains(name) {
                    continue;
                }
                let earlier = *first.entry(name).or_insert(item);
                if earlier == item {
                    continue;
                }
                let path = |r: NodeRef| match r {
                    NodeRef::Atom(a) => self.path_of_atom(a),
                    NodeRef::Flow(f) => self.path_of_flow(f),
                };
                if let (NodeRef::Atom(_), NodeRef::Atom(_)) = (earlier, item) {
                    continue; // reported with the tree's atoms
                }
                errors.push(BuildError::DuplicateName {
                    name: name.to_string(),
                    first: path(earlier),
                    second: path(item),
                });
            }
        }
        errors
    }

    fn ancestors_of_atom(&self, a: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut f = Some(self.atoms[a as usize].parent);
        while let Some(id) = f {
            out.push(id);
            f = self.flows[id as usize].parent;
        }
        out
    }

    /// Pass 1: the exports of every nested flow, children before parents. The
    /// root's exports are nobody's input, so they are not kept.
    fn compute_exports(&mut self) {
        for id in (1..self.flows.len()).rev() {
            // At least one name per output of the flow's own atoms: sized
            // at once, a large flow's map is not rehashed as it grows.
            let (first, end) = self.flows[id].range;
            let outputs = self.output_start(end) - self.output_start(first);
            let mut exports: FxHashMap<&'a str, Export> =
                FxHashMap::with_capacity_and_hasher(outputs, Default::default());
            let pattern = self.flows[id].flow.pattern;
            if let Some(r) = self.flows[id].retry {
                self.for_each_export(NodeRef::Atom(r), |name, export| {
                    exports.insert(name, export.clone());
                });
            }
            for &item in &self.flows[id].items {
                // One probe of the map per name: on a wide flow each probe is
                // a cache miss.
                self.for_each_export(item, |name, export| match exports.entry(name) {
                    Entry::Vacant(slot) => {
                        slot.insert(export.clone());
                    }
                    Entry::Occupied(mut slot) if pattern == Pattern::Linear => {
                        slot.insert(export.clone());
                    }
                    Entry::Occupied(mut slot) => slot.get_mut().merge_unordered(export),
                });
            }
            self.flows[id].exports = exports;
        }
    }

    /// Calls `f` with every symbol an item makes visible to what follows it.
    fn for_each_export(&self, item: NodeRef, mut f: impl FnMut(&'a str, &Export)) {
        match item {
            NodeRef::Atom(a) => {
                for (k, name) in self.outputs(a).iter().enumerate() {
                    f(
                        name,
                        &Export::One {
                            atom: a,
                            index: k as u32,
                        },
                    );
                }
            }
            NodeRef::Flow(sub) => {
                for (name, export) in &self.flows[sub as usize].exports {
                    f(name, export);
                }
            }
        }
    }

    /// Whether `item` exports `name`.
    fn exports(&self, item: NodeRef, name: &str) -> bool {
        match item {
            NodeRef::Atom(a) => self.outputs(a).contains(&name),
            NodeRef::Flow(sub) => self.flows[sub as usize].exports.contains_key(name),
        }
    }

    /// What `item` exports under `name`, if anything. (Inlined into the
    /// look-ups, whose commonest case is an atom just before the reader.)
    #[inline(always)]
    fn export_of(&self, item: NodeRef, name: &str) -> Option<Export> {
        match item {
            NodeRef::Atom(a) => {
                let k = self.outputs(a).iter().rposition(|n| *n == name)?;
                Some(Export::One {
                    atom: a,
                    index: k as u32,
                })
            }
            NodeRef::Flow(sub) => self.flows[sub as usize].exports.get(name).cloned(),
        }
    }

    /// The published output names of atom `a`: they end where the next
    /// atom's begin, so the atom's signature, elsewhere in memory, is not
    /// read to count them.
    fn outputs(&self, a: u32) -> &[&'a str] {
        &self.output_names[self.output_start(a)..self.output_start(a + 1)]
    }

    /// Where the published output names of atom `a` start in
    /// `output_names`; their end for `a` past the last atom.
    fn output_start(&self, a: u32) -> usize {
        (self.atoms.get(a as usize)).map_or(self.output_names.len(), |x| x.first_output as usize)
    }

    /// Where the hashes of the names atom `a` reads start in `read_hashes`;
    /// their end for `a` past the last atom.
    fn read_start(&self, a: u32) -> usize {
        (self.read_at.get(a as usize)).map_or(self.read_hashes.len(), |&at| at as usize)
    }

    fn output_type(&self, atom: u32, index: u32) -> TypeInfo {
        self.atoms[atom as usize].atom.signature.outputs()[index as usize].ty()
    }
}

enum Frame<'a> {
    /// What the items of a linear flow see: the outputs of the items before
    /// them.
    Linear {
        /// The items; `items[..done]` have been visited.
        items: &'a [NodeRef],
        done: usize,
        /// The exports of `items[..indexed]`, the latest provider of each
        /// name. Filled only when a look-up needs it: an item usually reads
        /// what the item just before it provides, which is checked first.
        visible: FxHashMap<&'a str, Export>,
        indexed: usize,
    },
    Unordered,
    Graph {
        /// Every item's exports, in item order, chained by name.
        candidates: Vec<Candidate<'a>>,
        /// The first candidate of each name the items export, as
        /// `hash << 32 | candidate` with the upper half of the name's hash,
        /// sorted by hash.
        heads: Vec<u64>,
        /// The graph's first atom: the reads of atom `a` start at
        /// `read_at[a - first] - read_at[0]` in `found` (`read_at` is the
        /// arena's, for the graph's atoms).
        first: u32,
        read_at: &'a [u32],
        /// For every read of every atom of the graph, in the order the atom
        /// reads them: the first candidate of the only exported name with the
        /// same hash (still to be compared with the name read), `NONE` when
        /// no exported name has that hash, `SEVERAL` when several do.
        found: Vec<u32>,
        current: usize,
        /// Item `a` before item `b`, from the names `b` reads.
        inferred: Vec<(u32, u32)>,
        /// The graph's items.
        items: &'a [NodeRef],
        /// The explicit links, when there are some.
        linked: Option<Box<Linked>>,
    },
}

/// An item of a graph flow that exports a name, and the next candidate for
/// the same name (`NONE` at the end).
struct Candidate<'a> {
    name: &'a str,
    export: Export,
    item: u32,
    next: u32,
}

/// The candidates for one name in a graph frame.
fn chain<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    first: u32,
) -> impl Iterator<Item = &'c Candidate<'a>> {
    std::iter::successors(candidates.get(first as usize), move |c| {
        candidates.get(c.next as usize)
    })
}

/// The most reads [`plan_graph`] leaves to the join that it looks up with a
/// pass over the exports each rather than by sorting them.
const FEW_MISSED: usize = 4;

/// In a graph frame's `found`: several exported names share the read
/// name's hash.
const SEVERAL: u32 = u32::MAX - 1;

/// The upper half of the hash of `name`, as `sort_by_high_half` orders it.
fn half_hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name) >> 32
}

/// The lower half of a `hash << 32 | index` key.
const LOW: u64 = u32::MAX as u64;

/// The most slots a graph frame's table of recent exports has (a small
/// graph's has two per export): 128 KiB, within the cache, and enough that
/// an export is seldom overwritten before a read a thousand items later (a
/// 1,024-wide grid's) finds it.
const RECENT: usize = 1 << 14;

/// The first candidate named `name` among `heads` (see [`Frame::Graph`]), or
/// `NONE`.
fn find_head(heads: &[u64], candidates: &[Candidate<'_>], name: &str) -> u32 {
    let hash = half_hash(name);
    let from = heads.partition_point(|&k| k >> 32 < hash);
    heads[from..]
        .iter()
        .take_while(|&&k| k >> 32 == hash)
        .map(|&k| (k & LOW) as u32)
        .find(|&k| candidates[k as usize].name == name)
        .unwrap_or(NONE)
}

/// Sorts `keys` by their upper halves, keeping the input order among equal
/// ones, reading and writing memory in order as far as it can (a large
/// graph's names would miss the cache at every probe of a hash table). The
/// lower halves must rise in input order, which makes a plain sort of the
/// whole keys give the same result.
///
/// Up to 2^17 keys (1 MiB, within the cache), a least-significant-digit radix
/// sort, a byte at a time. Beyond, its scattered writes miss the cache: one
/// pass spreads the keys by their top 11 bits, and each of the 2,048 groups,
/// small enough for the cache, is then sorted on its own.
fn sort_by_high_half(keys: &mut Vec<u64>) {
    if keys.len() < 1024 {
        keys.sort_unstable();
    } else if keys.len() <= 1 << 17 {
        radix_by_byte(keys);
    } else {
        spread_then_sort(keys);
    }
}

/// The keys of `keys` (`hash << 32 | index`) whose upper half at least one
/// other key shares, sorted by upper half and in their first order within
/// each: what is left of `keys` sorted by [`sort_by_high_half`] once the
/// keys alone with their hash are taken out. Nearly all are, in a flow's
/// names: the keys are spread by the top bits of the hash into groups that
/// fit the cache, and a group is sorted only when a small table of its
/// hashes finds one twice.
fn shared_hashes(mut keys: Vec<u64>) -> Vec<u64> {
    let runs = |sorted: &[u64], out: &mut Vec<u64>| {
        for same in sorted.chunk_by(|x, y| x >> 32 == y >> 32) {
            if same.len() > 1 {
                out.extend_from_slice(same);
            }
        }
    };
    let mut out = Vec::new();
    if keys.len() < 1024 {
        keys.sort_by_key(|k| k >> 32);
        runs(&keys, &mut out);
        return out;
    }
    const BITS: u32 = 11;
    let group = |k: u64| (k >> (64 - BITS)) as usize;
    let mut next = vec![0u32; 1 << BITS];
    for &k in &keys {
        next[group(k)] += 1;
    }
    let largest = next.iter().copied().max().unwrap_or(0) as usize;
    let mut sum = 0;
    for n in next.iter_mut() {
        (*n, sum) = (sum, sum + *n);
    }
    let mut spread = vec![0u64; keys.len()];
    for &k in &keys {
        let g = group(k);
        spread[next[g] as usize] = k;
        next[g] += 1;
    }
    drop(keys);
    // Each slot: a hash, above the number of the group that wrote it (plus
    // one), so that the table is never cleared.
    let size = (2 * largest).next_power_of_two();
    let mut table = vec![0u64; size];
    let mut start = 0;
    for (g, end) in next.into_iter().enumerate() {
        let end = end as usize;
        let keys = &mut spread[start..end];
        start = end;
        let mark = g as u64 + 1;
        let twice = keys.iter().any(|&k| {
            let hash = k >> 32;
            let mut slot = hash as usize & (size - 1);
            loop {
                let entry = table[slot];
                if entry & LOW != mark {
                    table[slot] = hash << 32 | mark;
                    return false;
                }
                if entry >> 32 == hash {
                    return true;
                }
                slot = (slot + 1) & (size - 1);
            }
        });
        if twice {
            keys.sort_by_key(|k| k >> 32);
            runs(keys, &mut out);
        }
    }
    out
}

fn radix_by_byte(keys: &mut Vec<u64>) {
    let mut counts = [[0u32; 256]; 4];
    for &k in keys.iter() {
        for (byte, count) in counts.iter_mut().enumerate() {
            count[((k >> (32 + 8 * byte)) & 0xff) as usize] += 1;
        }
    }
    let mut other = vec![0u64; keys.len()];
    for (byte, count) in counts.iter().enumerate() {
        if count.iter().any(|&c| c as usize == keys.len()) {
            continue; // every key has the same byte here
        }
        let mut next = [0u32; 256];
        let mut sum = 0;
        for (n, &c) in next.iter_mut().zip(count) {
            *n = sum;
            sum += c;
        }
        for &k in keys.iter() {
            let d = ((k >> (32 + 8 * byte)) & 0xff) as usize;
            other[next[d] as usize] = k;
            next[d] += 1;
        }
        std::mem::swap(keys, &mut other);
    }
}

fn spread_then_sort(keys: &mut Vec<u64>) {
    const GROUPS: usize = 1 << 11;
    let group = |k: u64| (k >> (64 - 11)) as usize;
    // Each group's size, then where it starts.
    let mut next = vec![0u32; GROUPS];
    for &k in keys.iter() {
        next[group(k)] += 1;
    }
    let mut sum = 0;
    for n in next.iter_mut() {
        (*n, sum) = (sum, sum + *n);
    }
    let mut other = vec![0u64; keys.len()];
    for &k in keys.iter() {
        let g = group(k);
        other[next[g] as usize] = k;
        next[g] += 1;
    }
    // `next[g]` is now where group `g` ends.
    let mut start = 0;
    for end in next {
        other[start..end as usize].sort_unstable();
        start = end as usize;
    }
    *keys = other;
}

/// The symbol an atom's input named `read` is looked up by: its rebinding,
/// if it has one.
fn symbol_for<'a>(atom: &'a Atom, read: &'a str) -> &'a str {
    atom.rebinds()
        .iter()
        .rev()
        .find(|(n, _)| n == read)
        .map_or(read, |(_, s)| &**s)
}

/// Calls `f` with every name `atom` reads, in the order
/// [`Compiler::visit_atom`] resolves them: `execute`'s inputs, then
/// `revert`'s, each collection's names in turn.
fn for_each_read<'a>(atom: &'a Atom, mut f: impl FnMut(&'a str)) {
    let sig = &atom.signature;
    for input in sig.inputs().iter().chain(sig.revert_inputs()) {
        match input.kind() {
            InputKind::Required | InputKind::Optional => f(input.name()),
            InputKind::Collect(names) | InputKind::CollectMap(names) => {
                names.iter().for_each(|n| f(n));
            }
        }
    }
}

enum Found {
    Export(Export),
    Store(u32, TypeInfo),
    Nothing,
}

struct Compiler<'a> {
    arena: &'a Arena<'a>,
    root: &'a str,
    errors: Vec<BuildError>,
    edges: Vec<(u32, u32)>,
    barriers: u32,
    store: FxHashMap<&'a str, (u32, TypeInfo)>,
    /// Every atom's sources, atom after atom.
    sources: Vec<Source>,
    /// Where each atom's sources start: `execute`'s, then `revert`'s.
    starts: Vec<u32>,
    gates: Vec<Gate>,
    /// For each atom, the gate it must pass before it starts, or `NONE`.
    gate_of: Vec<u32>,
    /// How many names the atom being visited has resolved so far.
    read: u32,
}

/// A flow being walked by [`Compiler::walk`].
struct Walk<'a> {
    f: u32,
    items: &'a [NodeRef],
    pattern: Pattern,
    /// The next of its items to visit.
    next: usize,
    /// Linear and unordered flows: the entry and exit atoms so far.
    entries: Ends,
    exits: Ends,
    /// Graph flows: each item's entry and exit atoms, unless `only_atoms`.
    ends: Vec<(Ends, Ends)>,
    /// A graph flow whose items are all atoms.
    only_atoms: bool,
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

impl<'a> Compiler<'a> {
    /// Looks up `name`, read `read` of atom `a` (counted as
    /// [`for_each_read`] does), in the frames around the atom.
    fn lookup(&self, stack: &mut [Frame<'a>], name: &str, a: u32, read: u32) -> Found {
        // The innermost graph frame whose providers are all linked after
        // the reader: read only if nothing further out provides the name.
        let mut after: Option<usize> = None;
        for (k, frame) in stack.iter_mut().enumerate().rev() {
            match frame {
                Frame::Linear {
                    items,
                    done,
                    visible,
                    indexed,
                } => {
                    if *done > *indexed {
                        if let Some(e) = self.arena.export_of(items[*done - 1], name) {
                            return Found::Export(e);
                        }
                        for &item in &items[*indexed..*done] {
                            self.arena.for_each_export(item, |name, export| {
                                visible.insert(name, export.clone());
                            });
                        }
                        *indexed = *done;
                    }
                    if let Some(e) = visible.get(name) {
                        return Found::Export(e.clone());
                    }
                }
                Frame::Unordered => {}
                Frame::Graph {
                    candidates,
                    heads,
                    first,
                    read_at,
                    found,
                    current,
                    inferred,
                    items,
                    linked,
                } => {
                    let slot = a
                        .checked_sub(*first)
                        .and_then(|i| read_at.get(i as usize))
                        .and_then(|&at| found.get((at - read_at[0] + read) as usize));
                    let head = match slot {
                        Some(&NONE) => NONE,
                        Some(&k) if k != SEVERAL && candidates[k as usize].name == name => k,
                        // The only name with this hash is another one.
                        Some(&k) if k != SEVERAL => NONE,
                        _ => find_head(heads, candidates, name),
                    };
                    debug_assert_eq!(head, find_head(heads, candidates, name));
                    if head != NONE {
                        let current = *current as u32;
                        let mut others = chain(candidates, head).filter(|c| c.item != current);
                        let Some(one) = others.next() else { continue };
                        let two = others.next();
                        let Some(linked) = linked else {
                            let Some(two) = two else {
                                inferred.push((one.item, current));
                                return Found::Export(one.export.clone());
                            };
                            let mut atoms = one.export.atoms();
                            atoms.extend(two.export.atoms());
                            for c in others {
                                atoms.extend(c.export.atoms());
                            }
                            atoms.sort_unstable();
                            atoms.dedup();
                            return Found::Export(Export::Many(atoms.into_boxed_slice()));
                        };
                        // Explicit links order the providers: see `link_order`.
                        let single = two.is_none().then_some(one.item);
                        let nearest =
                            self.nearest(linked, items, candidates, head, name, current, single);
                        match nearest {
                            Nearest::After(_) => after = after.or(Some(k)),
                            nearest => return self.pick(items, inferred, name, current, nearest),
                        }
                    }
                }
            }
        }
        match self.store.get(name) {
            Some(&(i, ty)) => Found::Store(i, ty),
            None => match after {
                Some(k) => self.read_after(&mut stack[k], name),
                None => Found::Nothing,
            },
        }
    }

    /// Which provider of `name` item `current` of a graph reads, as the
    /// graph's explicit links order them (see `Links::nearest`); the
    /// providers are chained from candidate `head`, `single` when only one
    /// is another item than the reader.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn nearest(
        &self,
        linked: &mut Linked,
        items: &[NodeRef],
        candidates: &[Candidate<'a>],
        head: u32,
        name: &str,
        current: u32,
        single: Option<u32>,
    ) -> Nearest {
        let Some(provider) = single else {
            let arena = self.arena;
            return linked.order.nearest(
                current,
                |i| arena.exports(items[i as usize], name),
                || {
                    (chain(candidates, head).map(|c| c.item))
                        .filter(|&i| i != current)
                        .collect()
                },
            );
        };
        if linked.order.after(current, provider) {
            Nearest::After(Box::new(Nearest::One(provider)))
        } else {
            Nearest::One(provider)
        }
    }

    /// What the current item of graph `frame` reads under `name` when every
    /// provider there is linked after it and nothing further out provides
    /// the name: the provider that [`Compiler::nearest`] finds after all, so
    /// that the build reports the cycle.
    #[cold]
    fn read_after(&self, frame: &mut Frame<'a>, name: &str) -> Found {
        let Frame::Graph {
            candidates,
            heads,
            current,
            inferred,
            items,
            linked: Some(linked),
            ..
        } = frame
        else {
            return Found::Nothing;
        };
        let current = *current as u32;
        let head = find_head(heads, candidates, name);
        let mut others = chain(candidates, head).filter(|c| c.item != current);
        let one = others.next().map(|c| c.item);
        let single = if others.next().is_some() { None } else { one };
        let nearest = self.nearest(linked, items, candidates, head, name, current, single);
        self.pick(items, inferred, name, current, nearest)
    }

    /// What item `current` of a graph reads under `name`, of the graph's
    /// `items`, as [`Links::nearest`](crate::link_order::Links::nearest) chose it: the export of the provider,
    /// then its predecessor, or the ambiguity between several.
    #[inline(never)]
    fn pick(
        &self,
        items: &[NodeRef],
        inferred: &mut Vec<(u32, u32)>,
        name: &str,
        current: u32,
        nearest: Nearest,
    ) -> Found {
        let export = |i: u32| self.arena.export_of(items[i as usize], name);
        match nearest {
            Nearest::One(p) => {
                inferred.push((p, current));
                export(p).map_or(Found::Nothing, Found::Export)
            }
            Nearest::Several(providers) => {
                let mut atoms: Vec<u32> = (providers.iter())
                    .filter_map(|&p| export(p))
                    .flat_map(|e| e.atoms())
                    .collect();
                atoms.sort_unstable();
                atoms.dedup();
                Found::Export(Export::Many(atoms.into_boxed_slice()))
            }
            Nearest::After(nearest) => self.pick(items, inferred, name, current, *nearest),
        }
    }

    fn atom_name(&self, a: u32) -> String {
        self.arena.atoms[a as usize].atom.name.to_string()
    }

    /// Resolves one symbol read by atom `a`.
    #[allow(clippy::too_many_arguments)]
    fn resolve_one(
        &mut self,
        stack: &mut [Frame<'a>],
        a: u32,
        read: &str,
        ty: TypeInfo,
        optional: bool,
        method: Method,
    ) -> Source {
        let atom = self.arena.atoms[a as usize].atom;
        let nth = self.read;
        self.read += 1;
        if let Some((_, v)) = atom.injects().iter().rev().find(|(n, _)| n == read) {
            if v.type_id() != ty.id() {
                self.errors.push(BuildError::TypeMismatch {
                    atom: self.atom_name(a),
                    symbol: read.to_string(),
                    expected: short_type(ty.name()),
                    provider: "an injected value".into(),
                    provided: short_type(v.type_name()),
                });
            }
            return Source::Injected(v.clone());
        }
        let symbol = symbol_for(atom, read);
        match self.lookup(stack, symbol, a, nth) {
            Found::Export(Export::One { atom: p, index }) => {
                let provided = self.arena.output_type(p, index);
                if provided != ty {
                    self.errors.push(BuildError::TypeMismatch {
                        atom: self.atom_name(a),
                        symbol: symbol.to_string(),
                        expected: short_type(ty.name()),
                        provider: self.atom_name(p),
                        provided: short_type(provided.name()),
                    });
                }
                Source::Output { atom: p, index }
            }
            Found::Export(Export::Many(providers)) => {
                self.errors.push(BuildError::AmbiguousProvider {
                    atom: self.atom_name(a),
                    symbol: symbol.to_string(),
                    providers: providers.iter().map(|&p| self.atom_name(p)).collect(),
                });
                Source::Absent
            }
            Found::Store(i, provided) => {
                if provided != ty {
                    self.errors.push(BuildError::TypeMismatch {
                        atom: self.atom_name(a),
                        symbol: symbol.to_string(),
                        expected: short_type(ty.name()),
                        provider: "the flow's inputs".into(),
                        provided: short_type(provided.name()),
                    });
                }
                Source::Store(i)
            }
            Found::Nothing if optional => Source::Absent,
            Found::Nothing => {
                let reason = self.why_missing(a, symbol);
                self.errors.push(BuildError::MissingRequirement {
                    atom: self.atom_name(a),
                    symbol: symbol.to_string(),
                    type_name: short_type(ty.name()),
                    method,
                    flow: self.root.to_string(),
                    reason,
                });
                Source::Absent
            }
        }
    }

    fn why_missing(&self, a: u32, symbol: &str) -> Missing {
        // The error path only: scan for any provider at all.
        let Some(provider) = self
            .arena
            .atoms
            .iter()
            .enumerate()
            .position(|(a, _)| self.arena.outputs(a as u32).contains(&symbol))
        else {
            return Missing::Nowhere;
        };
        let provider = provider as u32;
        let mine = self.arena.ancestors_of_atom(a);
        let theirs = self.arena.ancestors_of_atom(provider);
        let common = mine.iter().find(|f| theirs.contains(f));
        match common {
            Some(&f) if self.arena.flows[f as usize].flow.pattern == Pattern::Unordered => {
                Missing::Concurrent {
                    provider: self.atom_name(provider),
                    group: self.arena.flows[f as usize].flow.name.to_string(),
                }
            }
            _ => Missing::RunsAfter {
                provider: self.atom_name(provider),
            },
        }
    }

    fn resolve_input(
        &mut self,
        stack: &mut [Frame<'a>],
        a: u32,
        input: &'a InputSpec,
        method: Method,
    ) -> Source {
        match input.kind() {
            InputKind::Required => {
                self.resolve_one(stack, a, input.name(), input.ty(), false, method)
            }
            InputKind::Optional => {
                self.resolve_one(stack, a, input.name(), input.ty(), true, method)
            }
            InputKind::Collect(names) => Source::Many(
                names
                    .iter()
                    .map(|n| self.resolve_one(stack, a, n, input.ty(), false, method))
                    .collect(),
            ),
            InputKind::CollectMap(names) => Source::Named(
                names
                    .iter()
                    .map(|n| {
                        (
                            n.clone(),
                            self.resolve_one(stack, a, n, input.ty(), false, method),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn check_options(&mut self, a: u32) {
        let atom = self.arena.atoms[a as usize].atom;
        if atom.injects().is_empty() && atom.rebinds().is_empty() && atom.renames().is_empty() {
            return;
        }
        let sig = &atom.signature;
        let reads: Vec<&str> = sig
            .inputs()
            .iter()
            .chain(sig.revert_inputs())
            .flat_map(|i| match i.kind() {
                InputKind::Collect(n) | InputKind::CollectMap(n) => {
                    n.iter().map(|s| &**s).collect()
                }
                _ => vec![i.name()],
            })
            .collect();
        let hint_inputs = || {
            if reads.is_empty() {
                "it has no inputs".to_string()
            } else {
                format!(
                    "its inputs are {}",
                    reads
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        let mut errs = Vec::new();
        for (n, _) in atom.injects() {
            if !reads.contains(&&**n) {
                errs.push(("injects", n, "input", hint_inputs()));
            }
        }
        for (n, _) in atom.rebinds() {
            if !reads.contains(&&**n) {
                errs.push(("rebinds", n, "input", hint_inputs()));
            }
        }
        for (n, _) in atom.renames() {
            if !sig.outputs().iter().any(|o| o.name() == n) {
                let outs: Vec<String> = sig
                    .outputs()
                    .iter()
                    .map(|o| format!("`{}`", o.name()))
                    .collect();
                let hint = if outs.is_empty() {
                    "it has no outputs".to_string()
                } else {
                    format!("its outputs are {}", outs.join(", "))
                };
                errs.push(("renames", n, "output", hint));
            }
        }
        for (what, name, kind, hint) in errs {
            self.errors.push(BuildError::UnknownParameter {
                atom: atom.name.to_string(),
                what,
                name: name.to_string(),
                kind,
                hint,
            });
        }
    }

    fn visit_atom(&mut self, stack: &mut [Frame<'a>], a: u32) {
        self.check_options(a);
        self.read = 0;
        let sig = &self.arena.atoms[a as usize].atom.signature;
        self.starts[a as usize] = self.sources.len() as u32;
        for input in sig.inputs() {
            let s = self.resolve_input(stack, a, input, Method::Execute);
            self.sources.push(s);
        }
        for input in sig.revert_inputs() {
            let s = self.resolve_input(stack, a, input, Method::Revert);
            self.sources.push(s);
        }
    }

    fn connect(&mut self, from: &[u32], to: &[u32]) {
        if from.len() > 1 && to.len() > 1 && from.len() * to.len() > from.len() + to.len() {
            let b = self.arena.atoms.len() as u32 + self.barriers;
            self.barriers += 1;
            self.edges.extend(from.iter().map(|&f| (f, b)));
            self.edges.extend(to.iter().map(|&t| (b, t)));
        } else {
            for &f in from {
                self.edges.extend(to.iter().map(|&t| (f, t)));
            }
        }
    }

    /// Pass 2: resolves inputs and orders atoms, the flows of the tree one
    /// after the other (a deep tree takes no stack frame per level). Returns
    /// the entry and exit atoms of the root.
    fn walk(&mut self, stack: &mut Vec<Frame<'a>>) -> (Ends, Ends) {
        let mut walks = vec![self.enter(stack, 0)];
        loop {
            let walk = walks.last_mut().expect("the root is walked until the end");
            // The atoms in a row, as most items are, without leaving the flow.
            while let Some(&NodeRef::Atom(a)) = walk.items.get(walk.next) {
                if walk.pattern == Pattern::Graph
                    && let Some(Frame::Graph { current, .. }) = stack.last_mut()
                {
                    *current = walk.next;
                }
                walk.next += 1;
                self.visit_atom(stack, a);
                self.absorb_atom(stack, walk, a);
            }
            let Some(&NodeRef::Flow(sub)) = walk.items.get(walk.next) else {
                let done = walks.pop().expect("the walk just looked at");
                let ends = self.leave(stack, done);
                match walks.last_mut() {
                    Some(parent) => self.absorb(stack, parent, ends),
                    None => return ends,
                }
                continue;
            };
            if walk.pattern == Pattern::Graph
                && let Some(Frame::Graph { current, .. }) = stack.last_mut()
            {
                *current = walk.next;
            }
            walk.next += 1;
            let sub = self.enter(stack, sub);
            walks.push(sub);
        }
    }

    /// Starts walking flow `f`: its retry controller, then the frame its
    /// items are looked up in.
    fn enter(&mut self, stack: &mut Vec<Frame<'a>>, f: u32) -> Walk<'a> {
        let info = &self.arena.flows[f as usize];
        if let Some(r) = info.retry {
            // The controller runs first; its outputs are visible to the body.
            self.visit_atom(stack, r);
            let mut visible = FxHashMap::default();
            self.arena
                .for_each_export(NodeRef::Atom(r), |name, export| {
                    visible.insert(name, export.clone());
                });
            stack.push(Frame::Linear {
                items: &[],
                done: 0,
                visible,
                indexed: 0,
            });
        }
        // A graph of atoms only (the common case) needs no record of its
        // items' entry and exit atoms: each item is its own.
        let mut only_atoms = false;
        // Room for one entry and one exit per item of an unordered flow,
        // what an atom has: the lists grow once, not as they fill; and for
        // the entry and exit atoms of each item of a graph that needs them.
        let (mut room, mut ends) = (0, 0);
        match info.flow.pattern {
            Pattern::Linear => stack.push(Frame::Linear {
                items: &info.items,
                done: 0,
                visible: FxHashMap::default(),
                indexed: 0,
            }),
            Pattern::Unordered => {
                stack.push(Frame::Unordered);
                room = info.items.len();
            }
            Pattern::Graph => {
                stack.push(self.graph_frame(f));
                only_atoms = info.items.iter().all(|r| matches!(r, NodeRef::Atom(_)));
                ends = if only_atoms { 0 } else { info.items.len() };
            }
        }
        Walk {
            f,
            items: &info.items,
            pattern: info.flow.pattern,
            next: 0,
            entries: Ends::with_capacity(room),
            exits: Ends::with_capacity(room),
            ends: Vec::with_capacity(ends),
            only_atoms,
        }
    }

    /// Takes in atom `a`, the item of `walk` just visited: [`Compiler::absorb`]
    /// for an atom, its own entry and exit.
    fn absorb_atom(&mut self, stack: &mut [Frame<'a>], walk: &mut Walk<'a>, a: u32) {
        match walk.pattern {
            Pattern::Linear => {
                if walk.exits.is_empty() {
                    walk.entries.push(a);
                } else {
                    self.connect(&walk.exits, &[a]);
                    walk.exits.clear();
                }
                walk.exits.push(a);
                if let Some(Frame::Linear { done, .. }) = stack.last_mut() {
                    *done += 1;
                }
            }
            Pattern::Unordered => {
                walk.entries.push(a);
                walk.exits.push(a);
            }
            Pattern::Graph if walk.only_atoms => {}
            Pattern::Graph => walk
                .ends
                .push((smallvec::smallvec![a], smallvec::smallvec![a])),
        }
    }

    /// Takes in the entry and exit atoms of the item of `walk` just visited,
    /// arranged by the pattern of its flow.
    fn absorb(&mut self, stack: &mut [Frame<'a>], walk: &mut Walk<'a>, (en, ex): (Ends, Ends)) {
        match walk.pattern {
            Pattern::Linear => {
                if !en.is_empty() {
                    if walk.exits.is_empty() {
                        walk.entries = en;
                    } else {
                        self.connect(&walk.exits, &en);
                    }
                    walk.exits = ex;
                }
                if let Some(Frame::Linear { done, .. }) = stack.last_mut() {
                    *done += 1;
                }
            }
            Pattern::Unordered => {
                walk.entries.extend_from_slice(&en);
                walk.exits.extend_from_slice(&ex);
            }
            Pattern::Graph if walk.only_atoms => {}
            Pattern::Graph => walk.ends.push((en, ex)),
        }
    }

    /// Ends walking a flow whose items were all visited: its frames are
    /// dropped, and its entry and exit atoms returned.
    fn leave(&mut self, stack: &mut Vec<Frame<'a>>, walk: Walk<'a>) -> (Ends, Ends) {
        let info = &self.arena.flows[walk.f as usize];
        let (entries, exits) = match walk.pattern {
            Pattern::Linear | Pattern::Unordered => {
                stack.pop();
                (walk.entries, walk.exits)
            }
            Pattern::Graph => self.finish_graph(stack, walk.f, walk.ends, walk.only_atoms),
        };
        let Some(r) = info.retry else {
            return (entries, exits);
        };
        stack.pop(); // the controller's
        if entries.is_empty() {
            self.errors.push(BuildError::EmptyRetry {
                retry: self.atom_name(r),
                flow: info.flow.name.to_string(),
            });
            return (smallvec::smallvec![r], smallvec::smallvec![r]);
        }
        self.connect(&[r], &entries);
        (smallvec::smallvec![r], exits)
    }

    /// The frame of graph flow `f`: its items' exports, chained by name, and
    /// what every name its atoms read may resolve to among them. A read is
    /// first looked for among the recent exports, in a table that stays in
    /// the cache; the rest are found by sorting hashes rather than through a
    /// hash table of every export, whose probes would miss the cache at every
    /// name of a large graph. The names themselves are then compared in the
    /// atoms' order, near one another.
    fn graph_frame(&self, f: u32) -> Frame<'a> {
        let info = &self.arena.flows[f as usize];
        let mut candidates: Vec<Candidate<'a>> = Vec::with_capacity(info.items.len());
        for (i, &item) in info.items.iter().enumerate() {
            self.arena.for_each_export(item, |name, export| {
                candidates.push(Candidate {
                    name,
                    export: export.clone(),
                    item: i as u32,
                    next: NONE,
                });
            });
        }
        // Each candidate's hash, in item order, for the table of recent
        // exports below; the keys sorted from them chain the candidates.
        let hashes: Vec<u32> = candidates
            .iter()
            .map(|c| half_hash(c.name) as u32)
            .collect();
        let mut keys: Vec<u64> = (hashes.iter().enumerate())
            .map(|(k, &hash)| u64::from(hash) << 32 | k as u64)
            .collect();
        sort_by_high_half(&mut keys);
        // Chain the candidates of each name, in item order. `alone` marks the
        // first candidate of a name no other exported name shares a hash
        // with: what a read of that hash resolves to.
        let mut heads: Vec<u64> = Vec::with_capacity(keys.len());
        let mut alone = vec![false; candidates.len()];
        let mut split: Vec<u64> = Vec::new();
        let mut link = |candidates: &mut [Candidate<'a>], same: &[u64]| {
            for pair in same.windows(2) {
                candidates[(pair[0] & LOW) as usize].next = (pair[1] & LOW) as u32;
            }
            heads.push(same[0]);
        };
        for group in keys.chunk_by(|x, y| x >> 32 == y >> 32) {
            let name = |k: u64| candidates[(k & LOW) as usize].name;
            // (A name alone with its hash is not read: its text is far away.)
            if group.len() == 1 || group.iter().all(|&k| name(k) == name(group[0])) {
                link(&mut candidates, group);
                alone[(group[0] & LOW) as usize] = true;
            } else {
                // Different names with the same hash: rare.
                split.clear();
                split.extend_from_slice(group);
                split.sort_by(|&x, &y| name(x).cmp(name(y)).then(x.cmp(&y)));
                let mut runs = Vec::new();
                let mut start = 0;
                for same in split.chunk_by(|&x, &y| name(x) == name(y)) {
                    runs.push(start..start + same.len());
                    start += same.len();
                }
                for run in runs {
                    link(&mut candidates, &split[run]);
                }
            }
        }
        drop(keys);
        let (first, end) = info.range;
        let read_at = &self.arena.read_at[first as usize..end as usize];
        let base = self.arena.read_start(first);
        let read_hashes = &self.arena.read_hashes[base..self.arena.read_start(end)];
        let mut found = vec![NONE; read_hashes.len()];
        // Most names are read soon after the item that exports them: each
        // read is first looked for among the recent exports, in a table small
        // enough for the cache (the latest export of each slot, filled in item
        // order as the reads are walked). Only the reads it misses are sorted
        // and joined with `heads`, which gives the same answer for any read.
        let size = (2 * candidates.len()).next_power_of_two().min(RECENT);
        let mut recent = vec![LOW; size];
        let slot_of = |hash: u32| hash as usize & (size - 1);
        // A read's key for the join: its hash above its position.
        let key = |r: usize| u64::from(read_hashes[r]) << 32 | r as u64;
        let mut missed: Vec<u64> = Vec::new();
        let mut read = 0;
        let mut c = 0;
        // The reads since `block` began, and how many the table found: once
        // a block of reads finds fewer than half (a graph whose items read
        // far back, as a tree's do), the rest go to the join at once.
        let (mut block, mut hits) = (0, 0);
        for (i, &item) in info.items.iter().enumerate() {
            if read - block >= RECENT / 4 {
                if hits * 2 < read - block {
                    break;
                }
                (block, hits) = (read, 0);
            }
            let (a0, a1) = self.arena.item_range(item);
            let (from, to) = (
                self.arena.read_start(a0) - base,
                self.arena.read_start(a1) - base,
            );
            // (Reads before the item's, of the graph's own retry controller,
            // are never looked up in this frame; they are joined all the same.)
            missed.extend((read..from).map(key));
            for (r, &hash) in read_hashes.iter().enumerate().take(to).skip(from) {
                let e = recent[slot_of(hash)];
                if e >> 32 == u64::from(hash) && e & LOW != LOW {
                    found[r] = (e & LOW) as u32;
                    hits += 1;
                } else {
                    missed.push(key(r));
                }
            }
            read = to;
            while c < candidates.len() && candidates[c].item == i as u32 {
                if alone[c] {
                    recent[slot_of(hashes[c])] = u64::from(hashes[c]) << 32 | c as u64;
                }
                c += 1;
            }
        }
        missed.extend((read..read_hashes.len()).map(key));
        drop((recent, alone, hashes));
        sort_by_high_half(&mut missed);
        let mut h = 0;
        for run in missed.chunk_by(|x, y| x >> 32 == y >> 32) {
            let hash = run[0] >> 32;
            while h < heads.len() && heads[h] >> 32 < hash {
                h += 1;
            }
            let same = heads[h..].iter().take_while(|&&k| k >> 32 == hash).count();
            let head = match same {
                0 => continue,
                1 => (heads[h] & LOW) as u32,
                _ => SEVERAL,
            };
            for &r in run {
                found[(r & LOW) as usize] = head;
            }
        }
        Frame::Graph {
            candidates,
            heads,
            first,
            read_at,
            found,
            current: 0,
            inferred: Vec::with_capacity(info.inputs as usize),
            items: &info.items,
            linked: Linked::resolve(
                info.items.iter().map(|&r| self.arena.item_name(r)),
                &info.flow.links,
            ),
        }
    }

    /// Orders the items of graph flow `f`, all visited, their entry and exit
    /// atoms in `ends` (none kept when `only_atoms`), and drops its frame.
    fn finish_graph(
        &mut self,
        stack: &mut Vec<Frame<'a>>,
        f: u32,
        ends: Vec<(Ends, Ends)>,
        only_atoms: bool,
    ) -> (Ends, Ends) {
        let info = &self.arena.flows[f as usize];
        let Some(Frame::Graph {
            mut inferred,
            linked,
            ..
        }) = stack.pop()
        else {
            unreachable!("the graph frame is the one pushed by `enter`")
        };
        // Explicit links, resolved by `Linked::resolve`.
        let ends_of_links = linked.map(|l| l.ends).unwrap_or_default();
        let mut gated: Vec<(usize, u32, Decider)> = Vec::new();
        for (Link { from, to, decider }, resolved) in info.flow.links.iter().zip(ends_of_links) {
            match resolved {
                Ok((a, b)) => {
                    inferred.push((a, b));
                    if let Some(decider) = decider {
                        match info.items[a as usize] {
                            NodeRef::Atom(source) => {
                                gated.push((b as usize, source, decider.clone()))
                            }
                            NodeRef::Flow(_) => self.errors.push(BuildError::DeciderFromFlow {
                                flow: info.flow.name.to_string(),
                                from: from.to_string(),
                                to: to.to_string(),
                            }),
                        }
                    }
                }
                Err(source_unknown) => self.errors.push(BuildError::UnknownLink {
                    flow: info.flow.name.to_string(),
                    from: from.to_string(),
                    to: to.to_string(),
                    unknown: if source_unknown {
                        from.to_string()
                    } else {
                        to.to_string()
                    },
                }),
            }
        }
        // By reader, then provider: the order the look-ups push them in, so
        // that this sort finds them sorted unless there are links.
        inferred.sort_unstable_by_key(|&(a, b)| (b, a));
        inferred.dedup();
        let n = info.items.len();
        // A graph of atoms needs no order, only to know it has no cycle.
        let order = if only_atoms {
            acyclic(n, &inferred).map(|()| Vec::new())
        } else {
            topological_order(n, &inferred)
        };
        let order = match order {
            Ok(order) => order,
            Err(cycle) => {
                self.errors.push(BuildError::Cycle {
                    flow: info.flow.name.to_string(),
                    atoms: cycle
                        .iter()
                        .map(|&i| self.arena.item_name(info.items[i as usize]).to_string())
                        .collect(),
                });
                return (Ends::new(), Ends::new());
            }
        };
        gated.sort_by_key(|(target, _, _)| *target);
        let nested: Arc<[(u32, u32)]> = if gated.is_empty() {
            Arc::new([])
        } else {
            (info.items.iter())
                .filter(|r| matches!(r, NodeRef::Flow(_)))
                .map(|&r| self.arena.item_range(r))
                .collect()
        };
        for group in gated.chunk_by(|x, y| x.0 == y.0) {
            let target = group[0].0;
            let gate = Gate {
                deciders: group
                    .iter()
                    .map(|(_, source, d)| (*source, d.clone()))
                    .collect(),
                region: self.arena.item_range(info.items[target]),
                graph: info.range,
                nested: nested.clone(),
            };
            let k = self.gates.len() as u32;
            self.gates.push(gate);
            match info.items[target] {
                NodeRef::Atom(a) if only_atoms => self.gate_of[a as usize] = k,
                _ => {
                    for &entry in &ends[target].0 {
                        self.gate_of[entry as usize] = k;
                    }
                }
            }
        }
        let mut has_out = vec![false; n];
        for &(a, _) in &inferred {
            has_out[a as usize] = true;
        }
        if only_atoms {
            return self.connect_atoms(&info.items, &inferred, &has_out);
        }
        let (pred_off, pred, _) = csr(n, inferred.iter().map(|&(a, b)| (b, a)));
        self.edges.reserve(inferred.len());
        // The atoms each item hands on to its successors: its exits, or, for an
        // item with no atoms (an empty sub-flow), whatever its predecessors hand
        // on, so that `x -> empty -> y` still orders `x` before `y`.
        let mut handed: Vec<Ends> = vec![Ends::new(); n];
        let mut entries = Ends::new();
        let mut exits = Ends::new();
        for c in order {
            let c = c as usize;
            let mut incoming = Ends::new();
            for &p in &pred[pred_off[c] as usize..pred_off[c + 1] as usize] {
                incoming.extend(handed[p as usize].iter().copied());
            }
            incoming.sort_unstable();
            incoming.dedup();
            let (en, ex) = &ends[c];
            if en.is_empty() {
                handed[c] = incoming;
            } else {
                if incoming.is_empty() {
                    entries.extend(en.iter().copied());
                } else {
                    self.connect(&incoming, en);
                }
                handed[c] = ex.clone();
            }
            if !has_out[c] {
                exits.extend(handed[c].iter().copied());
            }
        }
        entries.sort_unstable();
        exits.sort_unstable();
        exits.dedup();
        (entries, exits)
    }

    /// Orders the atoms of a graph whose items are all atoms: one edge per
    /// inferred or linked pair. Returns the atoms nothing precedes and those
    /// nothing follows.
    fn connect_atoms(
        &mut self,
        items: &[NodeRef],
        inferred: &[(u32, u32)],
        has_out: &[bool],
    ) -> (Ends, Ends) {
        let atom = |i: u32| match items[i as usize] {
            NodeRef::Atom(a) => a,
            NodeRef::Flow(_) => unreachable!("only called for graphs of atoms"),
        };
        let mut has_in = vec![false; items.len()];
        self.edges.reserve(inferred.len());
        for &(a, b) in inferred {
            has_in[b as usize] = true;
            self.edges.push((atom(a), atom(b)));
        }
        let mut entries = Ends::new();
        let mut exits = Ends::new();
        for (i, r) in items.iter().enumerate() {
            let NodeRef::Atom(a) = *r else { continue };
            if !has_in[i] {
                entries.push(a);
            }
            if !has_out[i] {
                exits.push(a);
            }
        }
        (entries, exits)
    }
}

/// The nodes `0..n` in an order that respects `edges` (declaration order among
/// the ready ones), or a cycle, in order, when there is one.
fn topological_order(n: usize, edges: &[(u32, u32)]) -> Result<Vec<u32>, Vec<u32>> {
    if all_forward(edges) {
        return Ok((0..n as u32).collect());
    }
    let mut indeg = vec![0u32; n];
    for &(_, b) in edges {
        indeg[b as usize] += 1;
    }
    let (off, out, _) = csr(n, edges.iter().copied());
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<u32>> = (0..n as u32)
        .filter(|&i| indeg[i as usize] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        let i = i as usize;
        for &j in &out[off[i] as usize..off[i + 1] as usize] {
            indeg[j as usize] -= 1;
            if indeg[j as usize] == 0 {
                ready.push(std::cmp::Reverse(j));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(cycle_among(n, edges, &indeg))
}

/// `Ok` if `edges` order the nodes `0..n` without a cycle, or a cycle, in
/// order, as [`topological_order`] finds it: Kahn's algorithm without the
/// declaration order among the ready nodes, which only changes which nodes
/// go first, not which are left.
fn acyclic(n: usize, edges: &[(u32, u32)]) -> Result<(), Vec<u32>> {
    if all_forward(edges) {
        return Ok(());
    }
    let mut indeg = vec![0u32; n];
    for &(_, b) in edges {
        indeg[b as usize] += 1;
    }
    let (off, out, _) = csr(n, edges.iter().copied());
    let mut ready: Vec<u32> = (0..n as u32).filter(|&i| indeg[i as usize] == 0).collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        let i = i as usize;
        for &j in &out[off[i] as usize..off[i + 1] as usize] {
            indeg[j as usize] -= 1;
            if indeg[j as usize] == 0 {
                ready.push(j);
            }
        }
    }
    if done == n {
        return Ok(());
    }
    Err(cycle_among(n, edges, &indeg))
}

/// Whether every edge goes from a node to a later one. Then declaration order
/// is an order without a cycle, and the one [`topological_order`] would
/// find (the first node not yet placed always has all its predecessors
/// placed), so neither needs Kahn's algorithm, whose visits jump around a
/// large graph and miss the cache. Flows are usually declared in that order.
fn all_forward(edges: &[(u32, u32)]) -> bool {
    edges.iter().all(|&(a, b)| a < b)
}

/// A cycle among the nodes Kahn's algorithm could not order (`indeg > 0`).
fn cycle_among(n: usize, edges: &[(u32, u32)], indeg: &[u32]) -> Vec<u32> {
    walk_back(n, edges, indeg)
        .unwrap_or_else(|| (0..n as u32).filter(|&i| indeg[i as usize] > 0).collect())
}

fn walk_back(n: usize, edges: &[(u32, u32)], indeg: &[u32]) -> Option<Vec<u32>> {
    // Every node left has an incoming edge from another node left: walk backwards
    // from one of them until a node repeats; the repeat closes a cycle.
    let mut incoming: Vec<Option<u32>> = vec![None; n];
    for &(a, b) in edges {
        let (a, b) = (a as usize, b as usize);
        if indeg[a] > 0 && indeg[b] > 0 && incoming[b].is_none() {
            incoming[b] = Some(a as u32);
        }
    }
    let start = (0..n).find(|&i| indeg[i] > 0)?;
    let mut pos = vec![usize::MAX; n];
    let mut walk = Vec::new();
    let mut cur = start;
    while pos[cur] == usize::MAX {
        pos[cur] = walk.len();
        walk.push(cur as u32);
        cur = incoming[cur]? as usize;
    }
    let mut cycle = walk[pos[cur]..].to_vec();
    cycle.reverse();
    // Start the cycle at its first item in declaration order.
    let min = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, v)| **v)
        .map(|(i, _)| i)?;
    cycle.rotate_left(min);
    Some(cycle)
}

/// Takes a flow apart, handing its atoms over in declaration order (the order
/// of [`Arena::add_tree`]), each retry controller's atom with its controller;
/// nested flows one after the other, not one inside the other.
fn take_atoms(mut flow: Flow, f: &mut impl FnMut(Atom, Option<Retry>)) {
    fn controller(flow: &mut Flow) -> Option<(Atom, Retry)> {
        flow.retry.take().map(|controller| *controller)
    }
    if let Some((atom, retry)) = controller(&mut flow) {
        f(atom, Some(retry));
    }
    let mut open = vec![std::mem::take(&mut flow.items).into_iter()];
    while let Some(items) = open.last_mut() {
        match items.next() {
            Some(Item::Atom(atom)) => f(atom, None),
            Some(Item::Flow(mut sub)) => {
                if let Some((atom, retry)) = controller(&mut sub) {
                    f(atom, Some(retry));
                }
                open.push(std::mem::take(&mut sub.items).into_iter());
            }
            None => {
                open.pop();
            }
        }
    }
}

/// `alloc::string::String` -> `String`, `core::option::Option<u32>` -> `Option<u32>`.
pub(crate) fn short_type(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut ident = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            ident.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            ident.clear();
        } else {
            out.push_str(&ident);
            ident.clear();
            out.push(c);
        }
    }
    out.push_str(&ident);
    out
}

/// Compiles any flow: the plan of [`plan_chain`] or [`plan_graph`] where one
/// applies, else of [`plan_any`]; then the flow is taken apart into the graph's nodes.
pub(crate) fn compile(root: Flow) -> Result<CompiledFlow, BuildErrors> {
    let plan = match plan_chain(&root).or_else(|| plan_graph(&root)) {
        Some(plan) => {
            // Every flow the quick walk takes, the general one must take too,
            // with the same plan: checked wherever the tests run.
            #[cfg(debug_assertions)]
            match plan_any(&root) {
                Ok(general) => plan.assert_same(&general),
                Err(e) => panic!("a chain plan was made for a flow that does not build: {e}"),
            }
            plan
        }
        None => plan_any(&root)?,
    };
    Ok(assemble(root, plan))
}

/// What compiling a flow finds before the flow is taken apart: all that its
/// nodes and adjacency arrays are made from, owning nothing of the flow.
struct Plan {
    /// Item `a` before item `b`, barriers numbered after the atoms.
    edges: Vec<(u32, u32)>,
    barriers: u32,
    /// Every atom's sources, atom after atom.
    sources: Vec<Source>,
    /// Where each atom's sources start: one entry per atom.
    starts: Vec<u32>,
    gates: Vec<Gate>,
    /// For each atom, its gate or `NONE`; empty when no atom has a gate.
    gate_of: Vec<u32>,
    /// For each atom, the nearest retry controller whose sub-flow holds it,
    /// or `NONE`; empty when there is no controller.
    enclosing: Vec<u32>,
    /// The atoms that rename an output, in order, with their published names.
    renamed: Vec<(u32, Box<[Box<str>]>)>,
    /// Each controller's sub-flow, in controller order.
    scopes: Vec<(u32, u32)>,
    /// No retry controller and no nested flow: the root's items are atoms.
    flat: bool,
    /// The declared inputs, first declaration of each name.
    declared: Vec<SymbolSpec>,
}

impl Plan {
    /// The plan of a flat flow of plain atoms (no barrier, gate, controller,
    /// renamed output or nested flow), as the one-walk planners make it; the
    /// general compiler fills in the rest.
    fn flat(
        edges: Vec<(u32, u32)>,
        sources: Vec<Source>,
        starts: Vec<u32>,
        declared: Vec<SymbolSpec>,
    ) -> Plan {
        Plan {
            edges,
            barriers: 0,
            sources,
            starts,
            gates: Vec::new(),
            gate_of: Vec::new(),
            enclosing: Vec::new(),
            renamed: Vec::new(),
            scopes: Vec::new(),
            flat: true,
            declared,
        }
    }

    /// Panics unless `self` and `other` would make the same graph.
    #[cfg(any(debug_assertions, test))]
    fn assert_same(&self, other: &Plan) {
        let n = self.starts.len();
        let each = |v: &[u32]| {
            (0..n)
                .map(|a| v.get(a).copied().unwrap_or(NONE))
                .collect::<Vec<_>>()
        };
        assert_eq!(self.edges, other.edges, "edges");
        assert_eq!(self.barriers, other.barriers, "barriers");
        assert_eq!(self.starts, other.starts, "starts");
        assert_eq!(
            format!("{:?}", self.sources),
            format!("{:?}", other.sources),
            "sources"
        );
        assert_eq!(self.gates.len(), other.gates.len(), "gates");
        assert_eq!(each(&self.gate_of), each(&other.gate_of), "gate_of");
        assert_eq!(each(&self.enclosing), each(&other.enclosing), "enclosing");
        assert_eq!(self.renamed, other.renamed, "renamed");
        assert_eq!(self.scopes, other.scopes, "scopes");
        assert_eq!(self.flat, other.flat, "flat");
        assert_eq!(self.declared, other.declared, "declared");
    }
}

/// The plan of the commonest flow, made in one walk over its atoms: a linear
/// flow of atoms alone (no nested flow, no retry controller), none of which
/// rebinds, injects or renames, and whose inputs each read one symbol.
/// `None` for any other flow, and for one with anything to report: then
/// [`plan_any`] compiles it and explains. Where both apply they give the
/// same plan.
fn plan_chain(root: &Flow) -> Option<Plan> {
    if root.pattern != Pattern::Linear || root.retry.is_some() || !root.links.is_empty() {
        return None;
    }
    let n = root.items.len();
    let (declared, store) = declared_inputs(root)?;
    let mut name_keys = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut edges = Vec::with_capacity(n.saturating_sub(1));
    // The latest provider of each name among the items before `indexed`:
    // filled only when a read is not provided by the atom just before it,
    // which is looked at first.
    let mut visible: FxHashMap<&str, (u32, u32, TypeInfo)> = FxHashMap::default();
    let mut indexed = 0;
    let mut before: Option<&Atom> = None;
    for (a, item) in root.items.iter().enumerate() {
        let atom = plain_atom(item)?;
        let a32 = a as u32;
        name_keys.push(name_key(&atom.name, a32));
        starts.push(sources.len() as u32);
        let sig = &atom.signature;
        for input in sig.inputs().iter().chain(sig.revert_inputs()) {
            let optional = single_read(input)?;
            let name = input.name();
            let mut found = before.and_then(|b| {
                let outputs = b.signature.outputs();
                let k = outputs.iter().rposition(|o| o.name() == name)?;
                Some((a32 - 1, k as u32, outputs[k].ty()))
            });
            if found.is_none() {
                for (i, item) in root.items[indexed..a].iter().enumerate() {
                    if let Item::Atom(x) = item {
                        for (k, o) in x.signature.outputs().iter().enumerate() {
                            visible.insert(o.name(), ((indexed + i) as u32, k as u32, o.ty()));
                        }
                    }
                }
                indexed = a;
                found = visible.get(name).copied();
            }
            sources.push(match found {
                Some((p, index, ty)) if ty == input.ty() => Source::Output { atom: p, index },
                Some(_) => return None,
                None => match store.get(name) {
                    Some(&(i, ty)) if ty == input.ty() => Source::Store(i),
                    Some(_) => return None,
                    None if optional => Source::Absent,
                    None => return None,
                },
            });
        }
        if a > 0 {
            edges.push((a32 - 1, a32));
        }
        before = Some(atom);
    }
    if !duplicate_names(name_keys, |i| item_name(root, i)).is_empty() {
        return None;
    }
    Some(Plan::flat(edges, sources, starts, declared))
}

/// The plan of a graph flow of atoms alone, with no explicit link, whose
/// atoms each export names no other atom exports and otherwise are as
/// [`plan_chain`] takes them. `None` for any other flow and for one with
/// anything to report, as there. A read is first looked for among the
/// outputs of the atom just before the reader, then of the atoms that
/// provided the reader's predecessor's read at the same position and the one
/// after (a tree's and a grid's reads), then in a small table of recent
/// exports; the others are found by sorting the hashes of the names read and
/// of the names exported and joining the two, which stays in the cache where
/// a hash table of every export would miss it at every probe; the names
/// themselves are then compared in the atoms' order.
fn plan_graph(root: &Flow) -> Option<Plan> {
    if root.pattern != Pattern::Graph || root.retry.is_some() || !root.links.is_empty() {
        return None;
    }
    let n = root.items.len();
    let (declared, store) = declared_inputs(root)?;
    // The latest atom to export a name of each slot's hash, filled in item
    // order after each atom's reads: most names are read soon after they
    // are exported. Given up once a block of reads finds fewer than half of
    // those it is asked for there (a graph whose atoms read far back, as a
    // tree's do).
    let size = (2 * n).next_power_of_two().min(RECENT);
    let mut recent = vec![NONE; size];
    let slot_of = |hash: u64| hash as usize & (size - 1);
    let mut name_keys = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    // For each read, in order, the atom found in the first walk to provide
    // it, or `NONE`.
    let mut resolved: Vec<u32> = Vec::with_capacity(n);
    // Each exported name's hash above its atom; each read the first walk
    // does not resolve, its hash above its place in `resolved`.
    let mut exports: Vec<u64> = Vec::with_capacity(n);
    let mut missed: Vec<u64> = Vec::new();
    let (mut asked, mut hits, mut table) = (0, 0, true);
    // For each input position, the provider of the latest read at that
    // position: the next atom's read there is often provided by the same
    // atom or the one after it (a tree's reads, a grid's reads from the row
    // before). Given up as the table is.
    let mut cursors: SmallVec<[u32; 4]> = SmallVec::new();
    let (mut tried, mut struck, mut stride) = (0, 0, true);
    let mut before: Option<&Atom> = None;
    for (a, item) in root.items.iter().enumerate() {
        let atom = plain_atom(item)?;
        let a32 = a as u32;
        name_keys.push(name_key(&atom.name, a32));
        starts.push(resolved.len() as u32);
        let sig = &atom.signature;
        let first_export = exports.len();
        for output in sig.outputs() {
            exports.push(half_hash(output.name()) << 32 | u64::from(a32));
        }
        let inputs = sig.inputs().iter().chain(sig.revert_inputs());
        for (k, input) in inputs.enumerate() {
            single_read(input)?;
            let name = input.name();
            let provides = |p: &Atom| {
                let outputs = p.signature.outputs();
                let k = outputs.iter().rposition(|o| o.name() == name)?;
                Some(outputs[k].ty())
            };
            let mut found = before.and_then(provides).map(|ty| (a32 - 1, ty));
            let cursor = cursors.get(k).copied().unwrap_or(NONE);
            if found.is_none() && stride && cursor != NONE {
                tried += 1;
                // The atom after the cursor first: a grid's next read.
                for p in [cursor + 1, cursor] {
                    if p == a32 || p as usize >= n {
                        continue;
                    }
                    let Some(ty) = plain_atom(&root.items[p as usize]).and_then(provides) else {
                        continue;
                    };
                    found = Some((p, ty));
                    break;
                }
                struck += usize::from(found.is_some());
                if tried >= RECENT / 4 {
                    stride = 2 * struck >= tried;
                    (tried, struck) = (0, 0);
                }
            }
            let mut hash = None;
            if found.is_none() && table {
                let h = half_hash(name);
                hash = Some(h);
                asked += 1;
                let t = recent[slot_of(h)];
                if t != NONE {
                    found = provides(plain_atom(&root.items[t as usize])?).map(|ty| (t, ty));
                    hits += usize::from(found.is_some());
                }
            }
            match found {
                Some((p, ty)) if ty == input.ty() => {
                    resolved.push(p);
                    if k >= cursors.len() {
                        cursors.resize(k + 1, NONE);
                    }
                    cursors[k] = p;
                }
                Some(_) => return None,
                None => {
                    let h = hash.unwrap_or_else(|| half_hash(name));
                    missed.push(h << 32 | resolved.len() as u64);
                    resolved.push(NONE);
                }
            }
        }
        if table {
            for &key in &exports[first_export..] {
                recent[slot_of(key >> 32)] = a32;
            }
            if asked >= RECENT / 4 {
                table = 2 * hits >= asked;
                (asked, hits) = (0, 0);
            }
        }
        before = Some(atom);
    }
    drop(recent);
    let reads = resolved.len();
    // Where the exports of each missed read's hash start in `candidates`,
    // whose exports of one hash are side by side: the exports sorted, or,
    // for a few misses, the exports of each one's hash, found by a pass over
    // them each.
    let mut found = vec![NONE; reads];
    let candidates = if missed.len() <= FEW_MISSED {
        let mut candidates = Vec::new();
        for &r in &missed {
            let (hash, at) = (r >> 32, candidates.len());
            candidates.extend(exports.iter().filter(|&&e| e >> 32 == hash));
            if candidates.len() > at {
                found[(r & LOW) as usize] = at as u32;
            }
        }
        // Every name exported once (a name exported twice is the general
        // compiler's to resolve or report): only names sharing a hash are
        // read.
        for same in shared_hashes(exports).chunk_by(|x, y| x >> 32 == y >> 32) {
            if !names_differ(root, same) {
                return None;
            }
        }
        candidates
    } else {
        sort_by_high_half(&mut exports);
        for same in exports.chunk_by(|x, y| x >> 32 == y >> 32) {
            if same.len() > 1 && !names_differ(root, same) {
                return None;
            }
        }
        sort_by_high_half(&mut missed);
        let mut e = 0;
        for same in missed.chunk_by(|x, y| x >> 32 == y >> 32) {
            let hash = same[0] >> 32;
            while e < exports.len() && exports[e] >> 32 < hash {
                e += 1;
            }
            if e < exports.len() && exports[e] >> 32 == hash {
                for &r in same {
                    found[(r & LOW) as usize] = e as u32;
                }
            }
        }
        exports
    };
    drop(missed);
    let mut sources = Vec::with_capacity(reads);
    let mut edges = Vec::with_capacity(reads);
    let mut providers: SmallVec<[u32; 4]> = SmallVec::new();
    for (a, item) in root.items.iter().enumerate() {
        let atom = plain_atom(item)?;
        let sig = &atom.signature;
        let inputs = sig.inputs().iter().chain(sig.revert_inputs());
        providers.clear();
        for (r, input) in (starts[a] as usize..).zip(inputs) {
            let name = input.name();
            let p = resolved[r];
            if p != NONE {
                // Which of its outputs: the only one, as a rule.
                let outputs = plain_atom(&root.items[p as usize])?.signature.outputs();
                let index = match outputs.len() {
                    1 => 0,
                    _ => outputs.iter().rposition(|o| o.name() == name)?,
                };
                providers.push(p);
                sources.push(Source::Output {
                    atom: p,
                    index: index as u32,
                });
                continue;
            }
            let mut provider = None;
            if let Some(&at) = found.get(r).filter(|&&at| at != NONE) {
                let hash = candidates[at as usize] >> 32;
                let same = candidates[at as usize..]
                    .iter()
                    .take_while(|&&k| k >> 32 == hash);
                for &key in same {
                    let p = (key & LOW) as usize;
                    // What an atom exports is not what it reads.
                    if p == a {
                        continue;
                    }
                    let outputs = plain_atom(&root.items[p])?.signature.outputs();
                    if let Some(k) = outputs.iter().rposition(|o| o.name() == name) {
                        provider = Some((p as u32, k as u32, outputs[k].ty()));
                        break;
                    }
                }
            }
            sources.push(match provider {
                Some((p, index, ty)) if ty == input.ty() => {
                    providers.push(p);
                    Source::Output { atom: p, index }
                }
                Some(_) => return None,
                None => match store.get(name) {
                    Some(&(i, ty)) if ty == input.ty() => Source::Store(i),
                    Some(_) => return None,
                    None if single_read(input)? => Source::Absent,
                    None => return None,
                },
            });
        }
        providers.sort_unstable();
        providers.dedup();
        edges.extend(providers.iter().map(|&p| (p, a as u32)));
    }
    if acyclic(n, &edges).is_err() || !duplicate_names(name_keys, |i| item_name(root, i)).is_empty()
    {
        return None;
    }
    Some(Plan::flat(edges, sources, starts, declared))
}

/// Whether the exports of `same` (keys of one hash, see [`plan_graph`])
/// have different names: the names of that hash, of each atom once.
fn names_differ(root: &Flow, same: &[u64]) -> bool {
    let hash = same[0] >> 32;
    let mut atoms: Vec<u32> = same.iter().map(|&k| (k & LOW) as u32).collect();
    atoms.dedup();
    let mut names: Vec<&str> = Vec::new();
    for a in atoms {
        if let Item::Atom(atom) = &root.items[a as usize] {
            let outputs = atom.signature.outputs().iter().map(|o| o.name());
            names.extend(outputs.filter(|name| half_hash(name) == hash));
        }
    }
    names.sort_unstable();
    names.windows(2).all(|pair| pair[0] != pair[1])
}

/// The atom of `item`, when it is an atom the one-walk plans take: one that
/// neither rebinds, injects nor renames.
fn plain_atom(item: &Item) -> Option<&Atom> {
    match item {
        Item::Atom(atom)
            if atom.injects().is_empty()
                && atom.rebinds().is_empty()
                && atom.renames().is_empty() =>
        {
            Some(atom)
        }
        _ => None,
    }
}

/// Whether `input` is optional, when it reads one symbol; `None` for a
/// collection.
fn single_read(input: &InputSpec) -> Option<bool> {
    match input.kind() {
        InputKind::Required => Some(false),
        InputKind::Optional => Some(true),
        InputKind::Collect(_) | InputKind::CollectMap(_) => None,
    }
}

/// The name of item `i` of `root`.
fn item_name(root: &Flow, i: u32) -> &str {
    match &root.items[i as usize] {
        Item::Atom(atom) => &atom.name,
        Item::Flow(flow) => &flow.name,
    }
}

/// The inputs `root` declares, each name once, and where each is in the
/// store; `None` when a name is declared twice with different types.
#[allow(clippy::type_complexity)]
fn declared_inputs(root: &Flow) -> Option<(Vec<SymbolSpec>, FxHashMap<&str, (u32, TypeInfo)>)> {
    let mut declared: Vec<SymbolSpec> = Vec::with_capacity(root.inputs.len());
    let mut store: FxHashMap<&str, (u32, TypeInfo)> = FxHashMap::default();
    for input in &root.inputs {
        match store.get(input.name()) {
            Some(&(_, ty)) if ty != input.ty() => return None,
            Some(_) => {}
            None => {
                store.insert(input.name(), (declared.len() as u32, input.ty()));
                declared.push(input.clone());
            }
        }
    }
    Some((declared, store))
}

/// The plan of any flow, through the arena and the frames; every error the
/// flow has, when it has some.
fn plan_any(root: &Flow) -> Result<Plan, BuildErrors> {
    let mut arena = Arena {
        flows: Vec::new(),
        atoms: Vec::new(),
        output_names: Vec::new(),
        inputs: 0,
        enclosing: Vec::new(),
        renamed: Vec::new(),
        name_keys: Vec::new(),
        read_hashes: Vec::new(),
        read_at: Vec::new(),
        nesting: Vec::new(),
    };
    if !arena.add_tree(root) {
        let (flow, depth) = crate::tree::deepest(root);
        let error = BuildError::TooDeep {
            flow: flow.to_string(),
            depth,
            limit: Flow::MAX_DEPTH,
        };
        return Err(BuildErrors::new(root.name.to_string(), vec![error]));
    }
    let mut errors = Vec::new();

    let name_of = |i: u32| &*arena.atoms[i as usize].atom.name;
    let duplicates = duplicate_names(std::mem::take(&mut arena.name_keys), name_of);
    errors.extend(
        duplicates
            .into_iter()
            .map(|(first, second)| BuildError::DuplicateName {
                name: name_of(first).to_string(),
                first: arena.path_of_atom(first),
                second: arena.path_of_atom(second),
            }),
    );
    errors.extend(arena.sibling_duplicates());

    // Declared inputs, from any flow of the tree.
    let mut declared: Vec<SymbolSpec> = Vec::new();
    let mut store: FxHashMap<&str, (u32, TypeInfo)> = FxHashMap::default();
    for f in &arena.flows {
        for input in &f.flow.inputs {
            match store.get(input.name()) {
                Some(&(_, ty)) if ty != input.ty() => errors.push(BuildError::ConflictingInput {
                    symbol: input.name().to_string(),
                    first: short_type(ty.name()),
                    second: short_type(input.ty().name()),
                }),
                Some(_) => {}
                None => {
                    store.insert(input.name(), (declared.len() as u32, input.ty()));
                    declared.push(input.clone());
                }
            }
        }
    }

    arena.compute_exports();
    let n = arena.atoms.len();
    let mut compiler = Compiler {
        arena: &arena,
        root: &root.name,
        errors,
        edges: Vec::with_capacity(n),
        barriers: 0,
        store,
        sources: Vec::with_capacity(arena.inputs as usize),
        starts: vec![0; n],
        gates: Vec::new(),
        gate_of: vec![NONE; n],
        read: 0,
    };
    let mut stack = Vec::new();
    compiler.walk(&mut stack);
    if !compiler.errors.is_empty() {
        return Err(BuildErrors::new(root.name.to_string(), compiler.errors));
    }
    let Compiler {
        edges,
        barriers,
        sources,
        starts,
        gates,
        gate_of,
        ..
    } = compiler;

    // What the nodes take from the arena, which borrows the flow.
    let enclosing = std::mem::take(&mut arena.enclosing);
    let renamed: Vec<(u32, Box<[Box<str>]>)> = (arena.renamed.iter())
        .map(|&a| (a, arena.outputs(a).iter().map(|n| Box::from(*n)).collect()))
        .collect();
    // Each controller's sub-flow: the atoms after it, to the end of its flow
    // (flows are numbered in declaration order, so the controllers rise).
    let scopes: Vec<(u32, u32)> = (arena.flows.iter())
        .filter_map(|f| Some((f.retry?, f.range.1)))
        .collect();
    // A flow with no retry controller and no nested flow: its items are atoms.
    let flat = arena.flows.len() == 1 && root.retry.is_none();
    Ok(Plan {
        barriers,
        gates,
        gate_of,
        enclosing,
        renamed,
        scopes,
        flat,
        ..Plan::flat(edges, sources, starts, declared)
    })
}

/// The graph of `root` from its plan: the adjacency arrays, and the atoms
/// moved out of the flow into the nodes.
fn assemble(root: Flow, plan: Plan) -> CompiledFlow {
    let Plan {
        edges,
        barriers,
        sources,
        starts,
        gates,
        gate_of,
        enclosing,
        renamed,
        scopes,
        flat,
        declared,
    } = plan;
    let n = starts.len();
    let total = n + barriers as usize;
    let (succ_off, succ, _) = csr(total, edges.iter().map(|&(a, b)| (a, b)));
    let (pred_off, pred, roots) = csr(total, edges.iter().map(|&(a, b)| (b, a)));
    drop(edges);
    let root_name = Arc::from(&*root.name);
    let mut root = root;
    let plain = flat
        && renamed.is_empty()
        && scopes.is_empty()
        && gate_of.iter().all(|&g| g == NONE)
        && enclosing.iter().all(|&e| e == NONE);
    let mut renamed = renamed.into_iter().peekable();
    let mut scopes = scopes.into_iter();
    let mut prioritized = false;
    let mut node = |a: usize, atom: Atom, retry: Option<Retry>| {
        let (name, task, signature, timeout, priority) = atom.into_parts();
        prioritized |= priority != 0;
        let renamed = renamed.next_if(|(i, _)| *i as usize == a).map(|(_, r)| r);
        let retry = retry.and_then(|retry| {
            let (_, end) = scopes.next()?;
            Some((retry, (a as u32 + 1, end)))
        });
        let gate = gate_of.get(a).copied().unwrap_or(NONE);
        let rare = (retry.is_some()
            || gate != NONE
            || priority != 0
            || renamed.is_some()
            || timeout.is_some())
        .then(|| {
            Box::new(Rare {
                retry,
                gate,
                priority,
                renamed,
                timeout,
            })
        });
        Node {
            name,
            task: Some(task),
            signature,
            sources: starts[a],
            enclosing: enclosing.get(a).copied().unwrap_or(NONE),
            rare,
        }
    };
    let mut nodes: Vec<Node> = if plain {
        // The commonest flow, with nothing but priorities and time limits
        // to set apart: each item becomes its node in place, as below, with
        // no look-up in the lists the others need.
        std::mem::take(&mut root.items)
            .into_iter()
            .zip(&starts)
            .filter_map(|(item, &sources)| match item {
                Item::Atom(atom) => {
                    let (name, task, signature, timeout, priority) = atom.into_parts();
                    prioritized |= priority != 0;
                    let rare = (priority != 0 || timeout.is_some()).then(|| {
                        Box::new(Rare {
                            retry: None,
                            gate: NONE,
                            priority,
                            renamed: None,
                            timeout,
                        })
                    });
                    Some(Node {
                        name,
                        task: Some(task),
                        signature,
                        sources,
                        enclosing: NONE,
                        rare,
                    })
                }
                Item::Flow(_) => None, // none: the flow is flat
            })
            .collect()
    } else if flat {
        // Each item becomes its node in place: `Node` is no larger than
        // `Item`, so the items' allocation is reused rather than a second
        // one of the same size written while the first is still alive.
        std::mem::take(&mut root.items)
            .into_iter()
            .enumerate()
            .filter_map(|(a, item)| match item {
                Item::Atom(atom) => Some(node(a, atom, None)),
                Item::Flow(_) => None, // none: the flow is flat
            })
            .collect()
    } else {
        let mut nodes = Vec::with_capacity(total);
        take_atoms(root, &mut |atom, retry| {
            nodes.push(node(nodes.len(), atom, retry))
        });
        nodes
    };
    nodes.reserve_exact(barriers as usize);
    for b in 0..barriers {
        nodes.push(Node {
            name: Name::Owned(format!("<join {b}>")),
            task: None,
            signature: Signature::new(),
            sources: 0,
            enclosing: NONE,
            rare: None,
        });
    }
    CompiledFlow(Arc::new(Graph {
        name: root_name,
        nodes,
        atoms: n,
        succ_off,
        succ,
        pred_off,
        pred,
        roots,
        inputs: declared,
        by_name: OnceLock::new(),
        sources,
        gates,
        prioritized,
    }))
}

/// The key of the name of position `i` for [`duplicate_names`]: the upper
/// half of the name's hash above the position.
fn name_key(name: &str, i: u32) -> u64 {
    half_hash(name) << 32 | u64::from(i)
}

/// Pairs `(first, later)` of the positions whose names are equal, each later
/// duplicate paired with the first holder of its name, from every position's
/// [`name_key`] in order (made while the positions are numbered, so that the
/// names are not visited again). Only the keys whose hash another key shares
/// are compared (see [`shared_hashes`]), which keeps this cache-friendly on
/// large flows, unlike a map insert per name.
fn duplicate_names<'n>(keyed: Vec<u64>, name: impl Fn(u32) -> &'n str) -> Vec<(u32, u32)> {
    let keyed = shared_hashes(keyed);
    let mut out = Vec::new();
    let mut run = 0;
    while run < keyed.len() {
        let mut end = run + 1;
        while end < keyed.len() && keyed[end] & !LOW == keyed[run] & !LOW {
            end += 1;
        }
        if end - run > 1 {
            // Same half hash: compare the names themselves, in declaration
            // order (the positions rise within a run).
            let group = &keyed[run..end];
            for (k, &later) in group.iter().enumerate() {
                let later = (later & LOW) as u32;
                let first = group[..k]
                    .iter()
                    .map(|&i| (i & LOW) as u32)
                    .find(|&i| name(i) == name(later));
                if let Some(first) = first {
                    out.push((first, later));
                }
            }
        }
        run = end;
    }
    out.sort_unstable_by_key(|&(_, later)| later);
    out
}

/// A compressed adjacency array for `n` nodes: each node's offset into the
/// adjacency list (and the end, at `n`), the list, and how many nodes have no
/// entry in it.
fn csr(
    n: usize,
    edges: impl ExactSizeIterator<Item = (u32, u32)> + Clone,
) -> (Vec<u32>, Vec<u32>, usize) {
    let mut off = vec![0u32; n + 1];
    for (a, _) in edges.clone() {
        off[a as usize + 1] += 1;
    }
    let mut empty = 0;
    for i in 0..n {
        empty += usize::from(off[i + 1] == 0);
        off[i + 1] += off[i];
    }
    let mut fill = off.clone();
    let mut adj = vec![0u32; off[n] as usize];
    for (a, b) in edges {
        adj[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
    }
    (off, adj, empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_strips_paths() {
        assert_eq!(short_type("alloc::string::String"), "String");
        assert_eq!(
            short_type("core::option::Option<alloc::string::String>"),
            "Option<String>"
        );
        assert_eq!(short_type("(u32, my::Id)"), "(u32, Id)");
    }

    #[test]
    fn duplicate_names_pair_each_repeat_with_the_first_holder() {
        fn check<S: AsRef<str>>(names: &[S]) -> Vec<(u32, u32)> {
            let keys = (0..names.len() as u32).map(|i| name_key(names[i as usize].as_ref(), i));
            duplicate_names(keys.collect(), |i| names[i as usize].as_ref())
        }
        assert_eq!(
            check(&["a", "b", "a", "c", "a", "b"]),
            vec![(0, 2), (0, 4), (1, 5)]
        );
        assert!(check(&["x", "y"]).is_empty());
        // Many names, few repeats: found whatever the hash order.
        let many: Vec<String> = (0..10_000).map(|i| format!("t{}", i % 9_998)).collect();
        assert_eq!(check(&many), vec![(0, 9_998), (1, 9_999)]);
    }

    #[test]
    fn topological_order_or_the_cycle_in_order() {
        // Edges that all point forward: declaration order, found without a walk.
        assert_eq!(
            topological_order(4, &[(0, 3), (1, 2), (2, 3)]),
            Ok(vec![0, 1, 2, 3])
        );
        assert_eq!(acyclic(4, &[(0, 3), (1, 2), (2, 3)]), Ok(()));
        // One edge back is enough to need the walk.
        assert_eq!(
            topological_order(4, &[(0, 3), (3, 1), (1, 2)]),
            Ok(vec![0, 3, 1, 2])
        );
        assert_eq!(acyclic(2, &[(1, 1)]), Err(vec![1]));
        assert_eq!(topological_order(2, &[(0, 1), (1, 1)]), Err(vec![1]));
        assert_eq!(topological_order(3, &[(2, 0), (0, 1)]), Ok(vec![2, 0, 1]));
        assert_eq!(acyclic(3, &[(2, 0), (0, 1)]), Ok(()));
        assert_eq!(
            acyclic(4, &[(3, 0), (0, 1), (1, 3), (2, 3)]),
            Err(vec![0, 1, 3])
        );
        assert_eq!(
            topological_order(3, &[(0, 1), (1, 2), (2, 1)]),
            Err(vec![1, 2])
        );
        assert_eq!(
            topological_order(4, &[(3, 0), (0, 1), (1, 3), (2, 3)]),
            Err(vec![0, 1, 3])
        );
    }

    #[test]
    fn shared_hashes_are_the_runs_of_the_sorted_keys() {
        // What `shared_hashes` must give: the keys sorted stably by their
        // upper half, less those alone with theirs.
        fn expected(keys: &[u64]) -> Vec<u64> {
            let mut sorted = keys.to_vec();
            sorted.sort_by_key(|k| k >> 32);
            let mut out = Vec::new();
            for same in sorted.chunk_by(|x, y| x >> 32 == y >> 32) {
                if same.len() > 1 {
                    out.extend_from_slice(same);
                }
            }
            out
        }
        assert_eq!(
            shared_hashes(vec![5 << 32, 1 << 32 | 1, 5 << 32 | 2, 3]),
            [5 << 32, 5 << 32 | 2]
        );
        assert!(shared_hashes(Vec::new()).is_empty());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut check = |n: u64, upper: &dyn Fn(u64) -> u64| {
            let keys: Vec<u64> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    upper(x) << 32 | i
                })
                .collect();
            let want = expected(&keys);
            assert_eq!(shared_hashes(keys), want, "{n} keys");
            want.len()
        };
        for n in [500, 5000, 200_000] {
            // Spread over all 32 bits: a few pairs at most.
            check(n, &|x| x >> 32);
            // Few distinct values: nearly every key shares its hash.
            assert_eq!(check(n, &|x| x % 7), n as usize);
            // About four hashes per key, in the top bits: some groups hold
            // a repeat and some do not.
            let bits = (4 * n).ilog2();
            let shared = check(n, &|x| (x >> (64 - bits)) << (32 - bits));
            assert!(shared > 0 && shared < n as usize, "{shared} of {n}");
            // One hash for all.
            assert_eq!(check(n, &|_| 42), n as usize);
        }
    }

    #[test]
    fn sort_by_high_half_is_stable_on_the_upper_half() {
        let mut small = vec![5 << 32, 1 << 32 | 1, 5 << 32 | 2, 3];
        sort_by_high_half(&mut small);
        assert_eq!(small, [3, 1 << 32 | 1, 5 << 32, 5 << 32 | 2]);
        // `n` keys `upper(x) << 32 | i` from a running xorshift `x`, sorted
        // and compared with a stable sort on the upper halves.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut check = |n: u64, upper: fn(u64) -> u64| {
            let mut keys: Vec<u64> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    upper(x) << 32 | i
                })
                .collect();
            let mut expected = keys.clone();
            expected.sort_by_key(|k| k >> 32);
            sort_by_high_half(&mut keys);
            assert_eq!(keys, expected);
        };
        // Large enough for the radix sort; few distinct upper halves, so
        // that equal ones must keep their order.
        check(5000, |x| ((x % 97) << 24) | (x % 13));
        // Upper halves spread over all 32 bits: every digit takes a pass.
        check(5000, |x| x >> 32);
        // Upper halves spread over all 32 bits, on both sides of the size
        // where the sort changes method; few distinct values in the low 16
        // bits of the hash, so that equal upper halves occur.
        for n in [5000u64, 200_000] {
            check(n, |x| ((x >> 48) << 16) | (x % 7));
        }
    }

    /// A chain of `n` atoms, `v{i}` to `v{i+1}`, in `flow`.
    fn chain_of(mut flow: Flow, n: u64) -> Flow {
        use crate::task::{FnTask, Outputs};
        for i in 0..n {
            let sig = Signature::new()
                .requires::<u64>(format!("v{i}"))
                .provides::<u64>(format!("v{}", i + 1));
            let task = FnTask::sync(sig, |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)));
            flow.push(Atom::new(format!("t{i}"), task));
        }
        flow
    }

    #[test]
    fn a_flat_flow_becomes_its_nodes_in_place() {
        let flow = chain_of(Flow::linear("flat").input::<u64>("v0"), 5);
        let items = flow.items.as_ptr() as usize;
        let g = compile(flow).unwrap();
        assert_eq!(g.0.nodes.as_ptr() as usize, items);
        let names: Vec<&str> = g.atom_names().collect();
        assert_eq!(names, ["t0", "t1", "t2", "t3", "t4"]);
        assert_eq!(g.predecessors("t3"), Some(vec!["t2"]));
        assert!(matches!(
            g.0.exec_sources(3),
            [Source::Output { atom: 2, index: 0 }]
        ));
        assert!(!g.0.prioritized);
        // Priorities and time limits are set apart on the nodes that have them.
        use crate::task::{FnTask, Outputs};
        let limit = std::time::Duration::from_secs(7);
        let task = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
        let flow = Flow::graph("options")
            .add(Atom::new("plain", task()))
            .add(Atom::new("first", task()).priority(3))
            .add(Atom::new("slow", task()).timeout(limit));
        let items = flow.items.as_ptr() as usize;
        let g = compile(flow).unwrap();
        assert_eq!(g.0.nodes.as_ptr() as usize, items);
        assert!(g.0.prioritized);
        let nodes = &g.0.nodes;
        assert_eq!((nodes[0].priority(), nodes[0].timeout()), (0, None));
        assert_eq!((nodes[1].priority(), nodes[1].timeout()), (3, None));
        assert_eq!((nodes[2].priority(), nodes[2].timeout()), (0, Some(limit)));
        assert!(nodes[0].rare.is_none() && nodes[1].rare.is_some());
        // A nested flow is taken apart into a new vector.
        let outer = Flow::linear("outer")
            .input::<u64>("v0")
            .add(chain_of(Flow::linear("inner"), 2));
        let items = outer.items.as_ptr() as usize;
        let g = compile(outer).unwrap();
        assert_ne!(g.0.nodes.as_ptr() as usize, items);
        assert_eq!(g.atom_names().collect::<Vec<_>>(), ["t0", "t1"]);
        assert!(matches!(
            g.0.exec_sources(1),
            [Source::Output { atom: 0, index: 0 }]
        ));
    }

    /// Two different names whose hashes have the same upper half.
    fn colliding_names() -> (String, String) {
        let mut seen: FxHashMap<u64, String> = FxHashMap::default();
        for i in 0.. {
            let name = format!("n{i}");
            if let Some(other) = seen.insert(half_hash(&name), name.clone()) {
                return (other, name);
            }
        }
        unreachable!("the search only ends with a collision")
    }

    #[test]
    fn a_graph_tells_apart_names_whose_hashes_collide() {
        use crate::task::{FnTask, Outputs};
        let (x, y) = colliding_names();
        assert_ne!(x, y);
        assert_eq!(half_hash(&x), half_hash(&y));
        let task = |sig: Signature| FnTask::sync(sig, |_| Ok(Outputs::one(1u64)));
        // An atom that provides `symbol`, and one that reads it.
        let make = |name: &str, symbol: &str| {
            Atom::new(
                name.to_string(),
                task(Signature::new().provides::<u64>(symbol.to_string())),
            )
        };
        let read = |name: &str, symbol: &str, out: &str| {
            let sig = Signature::new()
                .requires::<u64>(symbol.to_string())
                .provides::<u64>(out.to_string());
            Atom::new(name.to_string(), task(sig))
        };
        let graph = Flow::graph("g")
            .add(read("read-y", &y, "a"))
            .add(make("make-x", &x))
            .add(read("read-x", &x, "b"))
            .add(make("make-y", &y));
        let compiled = graph.build().expect("both names have a provider");
        assert_eq!(compiled.predecessors("read-x").unwrap(), ["make-x"]);
        assert_eq!(compiled.predecessors("read-y").unwrap(), ["make-y"]);
        // Only one of them provided: the other is missing, not mistaken for it.
        let graph = Flow::graph("g")
            .add(make("make-x", &x))
            .add(read("read-y", &y, "a"));
        let errors = graph.build().unwrap_err().to_string();
        assert!(errors.contains(&format!("`{y}`")), "{errors}");
        assert!(!errors.contains(&format!("`{x}`")), "{errors}");
    }

    /// The names read inside graph flows are hashed while the atoms are
    /// numbered, for every graph holding them: graphs nested in graphs, an
    /// empty one among them, after atoms outside any graph, each find their
    /// atoms' names.
    #[test]
    fn nested_graphs_find_the_names_their_atoms_read() {
        use crate::task::{FnTask, Outputs};
        let atom = |name: &str, reads: &[&str], provides: &str| {
            let mut sig = Signature::new();
            for r in reads {
                sig = sig.requires::<u64>(r.to_string());
            }
            let sig = sig.provides::<u64>(provides.to_string());
            Atom::new(
                name.to_string(),
                FnTask::sync(sig, |_| Ok(Outputs::one(1u64))),
            )
        };
        let inner = Flow::graph("inner")
            // Declared before its provider: only the graph's order finds it.
            .add(atom("d", &["c"], "dv"))
            .add(atom("c", &["a"], "c"));
        let outer = Flow::graph("outer")
            .add(atom("e", &["dv", "b"], "e"))
            .add(Flow::graph("empty"))
            .add(inner)
            .add(atom("b", &["a"], "b"));
        let root = Flow::linear("root")
            .input::<u64>("start")
            .add(atom("a", &["start"], "a"))
            .add(outer)
            .add(atom("f", &["e"], "f"));
        let compiled = root.build().expect("every name has one provider");
        let preds = |name: &str| compiled.predecessors(name).unwrap();
        assert_eq!(preds("a"), Vec::<&str>::new());
        assert_eq!(preds("c"), ["a"]);
        assert_eq!(preds("d"), ["c"]);
        assert_eq!(preds("b"), ["a"]);
        assert_eq!(preds("e"), ["b", "d"]); // sorted by name
        assert_eq!(preds("f"), ["e"]);
    }

    #[test]
    fn a_chain_is_planned_in_one_walk_as_any_flow_is() {
        use crate::task::{FnTask, Outputs};
        let atom = |name: &'static str, sig: Signature| {
            Atom::new(name, FnTask::sync(sig, |_| Ok(Outputs::one(1u64))))
        };
        let u64s = |sig: Signature, reads: &[&'static str], provides: &[&'static str]| {
            let sig = reads.iter().fold(sig, |s, r| s.requires::<u64>(*r));
            provides.iter().fold(sig, |s, p| s.provides::<u64>(*p))
        };
        let sig = Signature::new;
        let chain = || {
            Flow::linear("c")
                .input::<u64>("x")
                .add(atom("a", u64s(sig(), &["x"], &["v"])))
                .add(atom("b", u64s(sig(), &["v"], &["w", "v"])))
                .add(atom(
                    "c",
                    u64s(sig(), &["w"], &["u"])
                        .optional::<u64>("gone")
                        .revert_requires::<u64>("v"),
                ))
                .add(atom(
                    "d",
                    u64s(sig(), &["x", "v"], &[]).optional::<u64>("w"),
                ))
        };
        let plan = plan_chain(&chain()).expect("a plain chain");
        // The store, the atom just before, the latest of two providers (two
        // back, through the map), an optional name nobody provides.
        assert_eq!(
            format!("{:?}", plan.sources),
            "[Store(0), Output { atom: 0, index: 0 }, Output { atom: 1, index: 0 }, Absent, \
             Output { atom: 1, index: 1 }, Store(0), Output { atom: 1, index: 1 }, \
             Output { atom: 1, index: 0 }]"
        );
        assert_eq!(plan.starts, [0, 1, 2, 5]);
        assert_eq!(plan.edges, [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(plan.declared.len(), 1);
        plan.assert_same(&plan_any(&chain()).expect("it builds"));
        let compiled = chain().build().expect("it builds");
        assert_eq!(compiled.predecessors("d"), Some(vec!["c"]));

        // Flows the walk leaves to the general compiler: they build all the same.
        let one = |name: &'static str, reads: &'static str, provides: &'static str| {
            atom(name, u64s(sig(), &[reads], &[provides]))
        };
        let others = [
            Flow::graph("g").input::<u64>("x").add(one("a", "x", "v")),
            Flow::linear("nested")
                .input::<u64>("x")
                .add(Flow::linear("inner").add(one("a", "x", "v"))),
            Flow::linear("collect").input::<u64>("x").add(atom(
                "a",
                sig().collect::<u64>("all", ["x"]).provides::<u64>("v"),
            )),
            Flow::linear("inject").add(one("a", "x", "v").inject("x", 1u64)),
            Flow::linear("rebind")
                .input::<u64>("y")
                .add(one("a", "x", "v").rebind("x", "y")),
        ];
        for flow in others {
            assert!(plan_chain(&flow).is_none(), "{}", flow.name);
            flow.build().expect("it builds");
        }
        // Flows with errors: the general compiler reports them.
        let wrong = [
            (
                Flow::linear("missing").add(one("a", "x", "v")),
                "flow `missing` is invalid: task `a` requires `x: u64`, but no earlier task in flow \
                 `missing` provides `x` and the flow does not declare it as an input",
            ),
            (
                Flow::linear("later")
                    .add(one("a", "v", "w"))
                    .add(one("b", "w", "v")),
                "flow `later` is invalid: task `a` requires `v: u64`, but `v` is provided only by \
                 `b`, which does not run before it: move `b` earlier",
            ),
            (
                Flow::linear("twice")
                    .input::<u64>("x")
                    .add(one("a", "x", "v"))
                    .add(one("a", "v", "w")),
                "flow `twice` is invalid: two atoms are named `a`, at `twice/a` and at `twice/a`: \
                 names must be unique in a flow tree, rename one",
            ),
            (
                Flow::linear("type")
                    .input::<u32>("x")
                    .add(one("a", "x", "v")),
                "flow `type` is invalid: task `a` requires `x: u64`, but its provider `the flow's \
                 inputs` provides `x` as `u32`: make the types agree, or rebind the input to \
                 another symbol",
            ),
        ];
        for (flow, says) in wrong {
            assert!(plan_chain(&flow).is_none(), "{}", flow.name);
            assert_eq!(flow.build().unwrap_err().to_string(), says);
        }
    }

    #[test]
    fn a_graph_is_planned_in_one_walk_as_any_flow_is() {
        use crate::task::{FnTask, Outputs};
        let task = |sig: Signature| FnTask::sync(sig, |_| Ok(Outputs::one(1u64)));
        let sig = Signature::new;
        let (x, y) = colliding_names();
        let graph = || {
            Flow::graph("g")
                .input::<u64>("s")
                // Reads what a later atom provides, and `s`, which it also
                // provides: the store's.
                .add(Atom::new(
                    "first",
                    task(
                        sig()
                            .requires::<u64>("v2")
                            .requires::<u64>("s")
                            .provides::<u64>("s")
                            .provides::<u64>("s2"),
                    ),
                ))
                .add(Atom::new(
                    "make",
                    task(sig().provides::<u64>(x.clone()).provides::<u64>("v1")),
                ))
                // The atom just before, then two names of one hash.
                .add(Atom::new(
                    "near",
                    task(
                        sig()
                            .requires::<u64>("v1")
                            .requires::<u64>(x.clone())
                            .optional::<u64>(y.clone())
                            .provides::<u64>("v2"),
                    ),
                ))
                .add(Atom::new("other", task(sig().provides::<u64>(y.clone()))))
                // Far back, an optional name nobody provides, a revert input.
                .add(Atom::new(
                    "far",
                    task(
                        sig()
                            .requires::<u64>(y.clone())
                            .requires::<u64>("s2")
                            .optional::<u64>("gone")
                            .revert_requires::<u64>("v1"),
                    ),
                ))
        };
        let plan = plan_graph(&graph()).expect("a plain graph");
        assert_eq!(
            format!("{:?}", plan.sources),
            "[Output { atom: 2, index: 0 }, Store(0), Output { atom: 1, index: 1 }, \
             Output { atom: 1, index: 0 }, Output { atom: 3, index: 0 }, \
             Output { atom: 3, index: 0 }, Output { atom: 0, index: 1 }, Absent, \
             Output { atom: 1, index: 1 }]"
        );
        assert_eq!(plan.starts, [0, 2, 2, 5, 5]);
        assert_eq!(plan.edges, [(2, 0), (1, 2), (3, 2), (0, 4), (1, 4), (3, 4)]);
        plan.assert_same(&plan_any(&graph()).expect("it builds"));
        assert_eq!(plan_chain(&graph()).map(|_| ()), None);

        let one = |name: &'static str, reads: &'static str, provides: &'static str| {
            Atom::new(
                name,
                task(sig().requires::<u64>(reads).provides::<u64>(provides)),
            )
        };
        let make = |name: &'static str, provides: &'static str| {
            Atom::new(name, task(sig().provides::<u64>(provides)))
        };
        // Left to the general compiler, and built all the same.
        let others = [
            Flow::graph("twice")
                .add(make("a", "v"))
                .add(one("b", "v", "v"))
                .add(one("c", "w", "x"))
                .add(make("d", "w")),
            Flow::graph("linked")
                .add(make("a", "v"))
                .add(make("b", "w"))
                .link("a", "b"),
            Flow::graph("nested").add(Flow::linear("inner").add(make("a", "v"))),
        ];
        for flow in others {
            assert!(plan_graph(&flow).is_none(), "{}", flow.name);
            flow.build().expect("it builds");
        }
        let wrong = [
            (
                Flow::graph("cycle")
                    .add(one("a", "w", "v"))
                    .add(one("b", "v", "w")),
                "flow `cycle` is invalid: graph flow `cycle` has a cycle: `a` -> `b` -> `a`; \
                 remove a link or an input that closes it",
            ),
            (
                Flow::graph("ambiguous")
                    .add(make("a", "v"))
                    .add(make("b", "v"))
                    .add(one("c", "v", "w")),
                "flow `ambiguous` is invalid: task `c` requires `v`, but several tasks with no \
                 order between them provide it: `a`, `b`; rename an output with `provides_as` \
                 or rebind the input",
            ),
            (
                Flow::graph("missing").add(one("a", "x", "v")),
                "flow `missing` is invalid: task `a` requires `x: u64`, but no earlier task in \
                 flow `missing` provides `x` and the flow does not declare it as an input",
            ),
            (
                Flow::graph("type").add(make("a", "v")).add(Atom::new(
                    "b",
                    task(sig().requires::<u32>("v").provides::<u64>("w")),
                )),
                "flow `type` is invalid: task `b` requires `v: u32`, but its provider `a` \
                 provides `v` as `u64`: make the types agree, or rebind the input to another \
                 symbol",
            ),
        ];
        for (flow, says) in wrong {
            assert!(plan_graph(&flow).is_none(), "{}", flow.name);
            assert_eq!(flow.build().unwrap_err().to_string(), says);
        }
    }

    /// Panics unless each atom `t{i}` of `compiled`, for `i` in `1..=n`,
    /// waits for the atoms `t{k}` for each `k` of `reads(i)`, and for no
    /// other (`v0`, which `t{i}` may read, comes from the store).
    fn assert_reads_resolved(
        compiled: &CompiledFlow,
        n: usize,
        reads: impl Fn(usize) -> Vec<usize>,
    ) {
        for i in 1..=n {
            let mut want: Vec<String> = reads(i).iter().map(|k| format!("t{k}")).collect();
            want.retain(|p| p != "t0");
            want.sort();
            want.dedup();
            let got = compiled.predecessors(&format!("t{i}")).unwrap();
            assert_eq!(got, want, "t{i}");
        }
    }

    /// An atom `name` reading the `u64` symbols `reads` and providing the
    /// `u64` symbols `provides`.
    fn u64_atom(name: String, reads: &[String], provides: &[String]) -> Atom {
        use crate::task::{FnTask, Outputs};
        let mut sig = Signature::new();
        for r in reads {
            sig = sig.requires::<u64>(r.clone());
        }
        for p in provides {
            sig = sig.provides::<u64>(p.clone());
        }
        Atom::new(name, FnTask::sync(sig, |_| Ok(Outputs::one(1u64))))
    }

    #[test]
    fn a_large_graph_is_planned_in_one_walk_near_in_step_recent_and_far() {
        let atom = u64_atom;
        // Next door and half-way back (the cursor finds the second), then
        // up to 89 back, irregularly (the cursor is given up, the table of
        // recent exports finds most), then anywhere in the first half,
        // irregularly (the table is given up too: the sort and join find
        // them).
        let n = 4 * RECENT;
        let reads = |i: usize| match i {
            _ if i <= RECENT => vec![i - 1, i / 2],
            _ if i <= 2 * RECENT => vec![i - 1 - i * 37 % 89],
            _ => vec![i * 7919 % (i / 2) + 1],
        };
        let (x, y) = colliding_names();
        let graph = || {
            let mut graph = Flow::graph("g").input::<u64>("v0");
            // Reads the last name, declared before the atom providing it.
            graph.push(atom("first".into(), &[format!("v{n}")], &["w".into()]));
            for i in 1..=n {
                let names: Vec<String> = reads(i).iter().map(|k| format!("v{k}")).collect();
                graph.push(atom(format!("t{i}"), &names, &[format!("v{i}")]));
            }
            graph.push(atom("make-x".into(), &[], std::slice::from_ref(&x)));
            graph.push(atom("make-y".into(), &[], std::slice::from_ref(&y)));
            graph.push(atom(
                "read-both".into(),
                &[x.clone(), y.clone()],
                &["z".into()],
            ));
            graph
        };
        assert!(plan_graph(&graph()).is_some());
        let compiled = graph().build().expect("every name has one provider");
        let preds = |name: &str| compiled.predecessors(name).unwrap();
        assert_reads_resolved(&compiled, n, reads);
        assert_eq!(preds("first"), [format!("t{n}")]);
        assert_eq!(preds("read-both"), ["make-x", "make-y"]);
    }

    /// A graph with more exports than its table of recent ones has slots:
    /// its first atoms read the name just before them, which the table
    /// finds, and one far back; the later ones only names so far back that
    /// the table has mostly overwritten them, so that it is given up for the
    /// rest. A reader declared before its provider, names whose hashes
    /// collide, a name exported twice and an atom reading a name it exports
    /// itself all resolve as the sorted join alone resolves them.
    #[test]
    fn a_large_graph_finds_near_and_far_providers_alike() {
        let atom = u64_atom;
        let n = 4 * RECENT;
        // What atom `i` reads: `v{k}` for each `k`.
        let reads = |i: usize| {
            if i <= RECENT {
                vec![i - 1, i / 2]
            } else {
                vec![i / 2]
            }
        };
        let (x, y) = colliding_names();
        let mut graph = Flow::graph("g").input::<u64>("v0");
        // Reads the last name, declared before the atom providing it.
        graph.push(atom("first".into(), &[format!("v{n}")], &["w".into()]));
        for i in 1..=n {
            let names: Vec<String> = reads(i).iter().map(|k| format!("v{k}")).collect();
            graph.push(atom(format!("t{i}"), &names, &[format!("v{i}")]));
        }
        graph.push(atom("make-x".into(), &[], &[x.clone(), "s".into()]));
        graph.push(atom("make-y".into(), &[], std::slice::from_ref(&y)));
        graph.push(atom("read-both".into(), &[x, y], &["z".into()]));
        // Reads `s` and provides it again: its provider is `make-x`.
        graph.push(atom("again".into(), &["s".into()], &["s".into()]));
        let compiled = graph.build().expect("every name has one provider");
        let preds = |name: &str| compiled.predecessors(name).unwrap();
        assert_reads_resolved(&compiled, n, reads);
        assert_eq!(preds("first"), [format!("t{n}")]);
        assert_eq!(preds("read-both"), ["make-x", "make-y"]);
        assert_eq!(preds("again"), ["make-x"]);

        // `s` now has two providers: a later reader is told so.
        let mut graph = Flow::graph("g");
        for i in 0..2 * RECENT {
            graph.push(atom(format!("t{i}"), &[], &[format!("v{i}")]));
        }
        graph.push(atom("make".into(), &[], &["s".into()]));
        graph.push(atom("again".into(), &["s".into()], &["s".into()]));
        graph.push(atom("reader".into(), &["s".into()], &["r".into()]));
        let errors = graph.build().unwrap_err().to_string();
        assert_eq!(
            errors,
            "flow `g` is invalid: task `reader` requires `s`, but several tasks with no order \
             between them provide it: `make`, `again`; rename an output with `provides_as` or \
             rebind the input"
        );
    }
}

#[cfg(test)]
mod size_tests {
    /// The per-atom state of a compiled flow and of a run stays small: the
    /// graph's node and the run's slot, with outputs, failure and revert
    /// result, are what a million-atom flow holds a million of.
    #[test]
    fn per_atom_state_stays_small() {
        use std::mem::size_of;
        // The node keeps the atom's own name (moved, not copied): 8 bytes more
        // than a shared string, one allocation less per atom. It holds an
        // `FnTask`'s closures in place (48 bytes), where they used to be an
        // allocation of their own (80 bytes with its counts) behind a shared
        // pointer. What few nodes have (a retry controller, a gate, a
        // priority, renamed outputs, a time limit) is boxed apart, and the
        // ends of its sources follow from its signature, so that a node is
        // no larger than the flow item it is made from in place.
        assert_eq!(size_of::<super::Node>(), 96);
        assert_eq!(size_of::<crate::flow::Item>(), 96);
        assert_eq!(std::mem::align_of::<super::Node>(), 8);
        assert_eq!(std::mem::align_of::<crate::flow::Item>(), 8);
        assert_eq!(size_of::<crate::engine::machine::Slot>(), 20);
        assert_eq!(size_of::<Option<crate::task::Outputs>>(), 40);
        assert_eq!(size_of::<Option<crate::failure::Failure>>(), 8);
        assert_eq!(size_of::<Option<crate::symbol::Value>>(), 24);
        assert_eq!(size_of::<super::Source>(), 24);
        assert_eq!(size_of::<crate::TypeInfo>(), 8);
        // Moved from the engine to each task.
        assert_eq!(size_of::<crate::task::Args>(), 56);
        assert_eq!(size_of::<crate::SymbolSpec>(), 32);
    }
}
