//! Pass 2, ordering: the walk over the tree that visits each atom and turns
//! flows and links into edges.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::arena::half_hash;
use super::arena::{Ends, NONE, NodeRef};
use super::csr;
use super::graph::Gate;
use super::lookup::{Candidate, Frame, LOW, RECENT, SEVERAL, sort_by_high_half};
use super::order::{acyclic, topological_order};
use super::resolve::{Compiler, Walk};
use crate::decider::Decider;
use crate::error::BuildError;
use crate::flow::{Link, Pattern};
use crate::link_order::Linked;

impl<'a> Compiler<'a> {
    pub(super) fn connect(&mut self, from: &[u32], to: &[u32]) {
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
    pub(super) fn walk(&mut self, stack: &mut Vec<Frame<'a>>) -> (Ends, Ends) {
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
    pub(super) fn enter(&mut self, stack: &mut Vec<Frame<'a>>, f: u32) -> Walk<'a> {
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
    pub(super) fn absorb_atom(&mut self, stack: &mut [Frame<'a>], walk: &mut Walk<'a>, a: u32) {
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
    pub(super) fn absorb(
        &mut self,
        stack: &mut [Frame<'a>],
        walk: &mut Walk<'a>,
        (en, ex): (Ends, Ends),
    ) {
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
    pub(super) fn leave(&mut self, stack: &mut Vec<Frame<'a>>, walk: Walk<'a>) -> (Ends, Ends) {
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
    pub(super) fn graph_frame(&self, f: u32) -> Frame<'a> {
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
    pub(super) fn finish_graph(
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
    pub(super) fn connect_atoms(
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
