//! Pass 0: the flow tree numbered into an arena of flows and atoms, with the
//! names each exports.

use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use smallvec::SmallVec;

use super::name_key;
use crate::error::BuildError;
use crate::flow::{Atom, Flow, Item, Pattern};
use crate::symbol::TypeInfo;
use crate::task::InputKind;

/// An output visible under a name: one provider, or several with no order
/// between them.
#[derive(Clone, Debug)]
pub(super) enum Export {
    One { atom: u32, index: u32 },
    Many(Box<[u32]>),
}

impl Export {
    pub(super) fn atoms(&self) -> Vec<u32> {
        match self {
            Export::One { atom, .. } => vec![*atom],
            Export::Many(v) => v.to_vec(),
        }
    }

    pub(super) fn merge_unordered(&mut self, other: &Export) {
        let mut all = self.atoms();
        all.extend(other.atoms());
        all.sort_unstable();
        all.dedup();
        *self = Export::Many(all.into_boxed_slice());
    }
}

/// The entry and exit atoms of a subtree.
pub(super) type Ends = SmallVec<[u32; 2]>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeRef {
    Atom(u32),
    Flow(u32),
}

pub(super) struct FlowInfo<'a> {
    pub(super) flow: &'a Flow,
    pub(super) items: Vec<NodeRef>,
    pub(super) parent: Option<u32>,
    pub(super) exports: FxHashMap<&'a str, Export>,
    /// The atom of the flow's retry controller.
    pub(super) retry: Option<u32>,
    /// The flow's atoms, `range.0..range.1` in declaration order.
    pub(super) range: (u32, u32),
    /// How many inputs its atoms read, to size what is built from them.
    pub(super) inputs: u32,
}

pub(super) struct AtomInfo<'a> {
    pub(super) atom: &'a Atom,
    pub(super) parent: u32,
    /// Where the published output names start in `Arena::outputs`.
    pub(super) first_output: u32,
}

/// A flow being numbered by [`Arena::add_tree`].
pub(super) struct Open<'a> {
    pub(super) id: u32,
    pub(super) flow: &'a Flow,
    /// The next of its items to number.
    pub(super) next: usize,
    /// The nearest retry controller of its items.
    pub(super) inner: u32,
    pub(super) in_graph: bool,
    /// How many inputs the atoms numbered before it read.
    pub(super) inputs_before: u32,
}

/// No retry controller.
pub(crate) const NONE: u32 = u32::MAX;

/// Pass 0: numbers atoms and flows in declaration order.
pub(super) struct Arena<'a> {
    pub(super) flows: Vec<FlowInfo<'a>>,
    pub(super) atoms: Vec<AtomInfo<'a>>,
    /// Every atom's published output names (after renaming), atom after atom.
    pub(super) output_names: Vec<&'a str>,
    /// How many inputs (of `execute` and `revert`) all atoms read.
    pub(super) inputs: u32,
    /// For each atom, the nearest retry controller whose sub-flow holds it.
    pub(super) enclosing: Vec<u32>,
    /// The atoms that rename an output, in order: noted while the atoms are
    /// numbered, so that no later pass reads every atom again for the few.
    pub(super) renamed: Vec<u32>,
    /// Each atom's [`name_key`], for [`duplicate_names`].
    pub(super) name_keys: Vec<u64>,
    /// The upper half of the hash of every name read by an atom inside a
    /// graph flow, in the order [`for_each_read`] gives them, atom after
    /// atom: taken while the atom's signature is read to number it, so that
    /// [`Compiler::graph_frame`] does not read every signature again.
    pub(super) read_hashes: Vec<u32>,
    /// For each atom, where its names start in `read_hashes` (atoms outside
    /// graph flows record none).
    pub(super) read_at: Vec<u32>,
    /// The flows that hold a nested flow, for [`Arena::sibling_duplicates`]
    /// (possibly repeated).
    pub(super) nesting: Vec<u32>,
}

impl<'a> Arena<'a> {
    /// Numbers `atom`, of flow `parent`; `in_graph` when a graph flow holds
    /// it, at any depth.
    pub(super) fn add_atom(
        &mut self,
        atom: &'a Atom,
        parent: u32,
        enclosing: u32,
        in_graph: bool,
    ) -> u32 {
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
    pub(super) fn add_tree(&mut self, root: &'a Flow) -> bool {
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
    pub(super) fn open_flow(
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
    pub(super) fn item_range(&self, r: NodeRef) -> (u32, u32) {
        match r {
            NodeRef::Atom(a) => (a, a + 1),
            NodeRef::Flow(f) => self.flows[f as usize].range,
        }
    }

    pub(super) fn item_name(&self, r: NodeRef) -> &'a str {
        match r {
            NodeRef::Atom(a) => &self.atoms[a as usize].atom.name,
            NodeRef::Flow(f) => &self.flows[f as usize].flow.name,
        }
    }

    pub(super) fn path_of_atom(&self, a: u32) -> String {
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
    pub(super) fn path_of_flow(&self, f: u32) -> String {
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
    pub(super) fn sibling_duplicates(&self) -> Vec<BuildError> {
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

    pub(super) fn ancestors_of_atom(&self, a: u32) -> Vec<u32> {
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
    pub(super) fn compute_exports(&mut self) {
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
    pub(super) fn for_each_export(&self, item: NodeRef, mut f: impl FnMut(&'a str, &Export)) {
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
    pub(super) fn exports(&self, item: NodeRef, name: &str) -> bool {
        match item {
            NodeRef::Atom(a) => self.outputs(a).contains(&name),
            NodeRef::Flow(sub) => self.flows[sub as usize].exports.contains_key(name),
        }
    }

    /// What `item` exports under `name`, if anything. (Inlined into the
    /// look-ups, whose commonest case is an atom just before the reader.)
    #[inline(always)]
    pub(super) fn export_of(&self, item: NodeRef, name: &str) -> Option<Export> {
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
    pub(super) fn outputs(&self, a: u32) -> &[&'a str] {
        &self.output_names[self.output_start(a)..self.output_start(a + 1)]
    }

    /// Where the published output names of atom `a` start in
    /// `output_names`; their end for `a` past the last atom.
    pub(super) fn output_start(&self, a: u32) -> usize {
        (self.atoms.get(a as usize)).map_or(self.output_names.len(), |x| x.first_output as usize)
    }

    /// Where the hashes of the names atom `a` reads start in `read_hashes`;
    /// their end for `a` past the last atom.
    pub(super) fn read_start(&self, a: u32) -> usize {
        (self.read_at.get(a as usize)).map_or(self.read_hashes.len(), |&at| at as usize)
    }

    pub(super) fn output_type(&self, atom: u32, index: u32) -> TypeInfo {
        self.atoms[atom as usize].atom.signature.outputs()[index as usize].ty()
    }
}

/// The upper half of the hash of `name`, as `sort_by_high_half` orders it.
pub(super) fn half_hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name) >> 32
}

/// The symbol an atom's input named `read` is looked up by: its rebinding,
/// if it has one.
pub(super) fn symbol_for<'a>(atom: &'a Atom, read: &'a str) -> &'a str {
    atom.rebinds()
        .iter()
        .rev()
        .find(|(n, _)| n == read)
        .map_or(read, |(_, s)| &**s)
}

/// Calls `f` with every name `atom` reads, in the order
/// [`Compiler::visit_atom`] resolves them: `execute`'s inputs, then
/// `revert`'s, each collection's names in turn.
pub(super) fn for_each_read<'a>(atom: &'a Atom, mut f: impl FnMut(&'a str)) {
    let sig = &atom.signature;
    for input in sig.inputs().iter().chain(sig.revert_inputs()) {
        match input.kind() {
            InputKind::Required | InputKind::Optional => f(input.name()),
            InputKind::Collect(names) | InputKind::CollectMap(names) => {
                names.iter().for_each(|n| f(n));
            }
            // Expanded into collections before the compilation starts.
            InputKind::Matching(_) | InputKind::MatchingMap(_) => {}
        }
    }
}
