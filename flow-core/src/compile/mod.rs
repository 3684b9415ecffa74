//! Compilation of a flow tree into its flat execution graph.
//!
//! Done once per [`Flow::build`](crate::Flow::build), in time linear in the size
//! of the tree (times its nesting depth): atoms are numbered in declaration order,
//! every input is resolved to a *source* (an output slot of an earlier atom, a
//! store slot, or a constant), and the order between atoms becomes a compact
//! adjacency array. The engines never look a name up while running.

mod arena;
mod fast;
mod graph;
mod lookup;
mod matching;
mod order;
mod resolve;
#[cfg(test)]
mod tests;
mod walk;

use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use crate::error::{BuildError, BuildErrors};
use crate::flow::{Atom, Flow, Item};
use crate::retry::Retry;
use crate::symbol::{Name, SymbolSpec, TypeInfo};
use crate::task::Signature;
use arena::Arena;
pub(crate) use arena::NONE;
use arena::half_hash;
use fast::plan_flat;
pub use graph::CompiledFlow;
pub(crate) use graph::Gate;
use graph::Rare;
pub(crate) use graph::{Graph, Node, Source};
use lookup::{LOW, shared_hashes};
pub(crate) use matching::published;
pub(crate) use order::short_type;
use order::take_atoms;
use resolve::Compiler;

impl Flow {
    /// Validates the flow and compiles it into its execution graph.
    ///
    /// # Errors
    /// Every problem found, all together: see [`BuildError`](crate::BuildError).
    pub fn build(self) -> Result<CompiledFlow, BuildErrors> {
        compile(self)
    }
}

/// Compiles any flow: the plan of [`plan_flat`] where it applies, else of
/// [`plan_any`]; then the flow is taken apart into the graph's nodes.
pub(crate) fn compile(mut root: Flow) -> Result<CompiledFlow, BuildErrors> {
    matching::expand(&mut root);
    let plan = match plan_flat(&root) {
        Some(plan) => {
            // Every flow the quick walk takes, the general one must take too,
            // with the same plan: checked wherever the tests run.
            #[cfg(debug_assertions)]
            match plan_any(&root) {
                Ok(general) => plan.assert_same(&general),
                Err(e) => panic!("a fast plan was made for a flow that does not build: {e}"),
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
    /// renamed output or nested flow), as the fast path makes it; the
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
