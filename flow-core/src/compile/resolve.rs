//! Pass 2, resolution: every input of an atom resolved to its source.

use rustc_hash::FxHashMap;

use super::arena::symbol_for;
use super::arena::{Arena, Ends, Export, NONE, NodeRef};
use super::graph::{Gate, Source};
use super::lookup::{Candidate, Frame, SEVERAL, chain, find_head};
use super::order::short_type;
use crate::error::{BuildError, Method, Missing};
use crate::flow::Pattern;
use crate::link_order::{Linked, Nearest};
use crate::symbol::TypeInfo;
use crate::task::{InputKind, InputSpec};

pub(super) enum Found {
    Export(Export),
    Store(u32, TypeInfo),
    Nothing,
}

pub(super) struct Compiler<'a> {
    pub(super) arena: &'a Arena<'a>,
    pub(super) root: &'a str,
    pub(super) errors: Vec<BuildError>,
    pub(super) edges: Vec<(u32, u32)>,
    pub(super) barriers: u32,
    pub(super) store: FxHashMap<&'a str, (u32, TypeInfo)>,
    /// Every atom's sources, atom after atom.
    pub(super) sources: Vec<Source>,
    /// Where each atom's sources start: `execute`'s, then `revert`'s.
    pub(super) starts: Vec<u32>,
    pub(super) gates: Vec<Gate>,
    /// For each atom, the gate it must pass before it starts, or `NONE`.
    pub(super) gate_of: Vec<u32>,
    /// How many names the atom being visited has resolved so far.
    pub(super) read: u32,
}

/// A flow being walked by [`Compiler::walk`].
pub(super) struct Walk<'a> {
    pub(super) f: u32,
    pub(super) items: &'a [NodeRef],
    pub(super) pattern: Pattern,
    /// The next of its items to visit.
    pub(super) next: usize,
    /// Linear and unordered flows: the entry and exit atoms so far.
    pub(super) entries: Ends,
    pub(super) exits: Ends,
    /// Graph flows: each item's entry and exit atoms, unless `only_atoms`.
    pub(super) ends: Vec<(Ends, Ends)>,
    /// A graph flow whose items are all atoms.
    pub(super) only_atoms: bool,
}

impl<'a> Compiler<'a> {
    /// Looks up `name`, read `read` of atom `a` (counted as
    /// [`for_each_read`] does), in the frames around the atom.
    pub(super) fn lookup(&self, stack: &mut [Frame<'a>], name: &str, a: u32, read: u32) -> Found {
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
    pub(super) fn nearest(
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
    pub(super) fn read_after(&self, frame: &mut Frame<'a>, name: &str) -> Found {
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
    pub(super) fn pick(
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

    pub(super) fn atom_name(&self, a: u32) -> String {
        self.arena.atoms[a as usize].atom.name.to_string()
    }

    /// Resolves one symbol read by atom `a`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resolve_one(
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

    pub(super) fn why_missing(&self, a: u32, symbol: &str) -> Missing {
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

    pub(super) fn resolve_input(
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
            // Expanded into collections before the compilation starts.
            InputKind::Matching(_) => Source::Many(Vec::new().into()),
            InputKind::MatchingMap(_) => Source::Named(Vec::new().into()),
        }
    }

    pub(super) fn check_options(&mut self, a: u32) {
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

    pub(super) fn visit_atom(&mut self, stack: &mut [Frame<'a>], a: u32) {
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
}
