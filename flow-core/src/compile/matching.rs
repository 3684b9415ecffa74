//! Pass 0, for flows that have them: every input that gathers symbols by a
//! name pattern ([`InputKind::Matching`](crate::task::InputKind::Matching))
//! becomes the collection of the symbols that match it.
//!
//! The symbols are every one the flow provides, under its published name (an
//! atom's outputs after `provides_as`, a retry controller's, the inputs the
//! flows declare), other than those the gathering atom provides itself;
//! sorted by name, byte by byte, without repeats. The compilation then
//! resolves each like a symbol of `#[collect]`: it must be visible to the
//! atom.

use crate::flow::{Atom, Flow, Item};
use crate::pattern::name_matches;
use crate::symbol::Name;

/// Calls `f` with every atom of the tree, retry controllers included, in one
/// fixed order; and with every flow's declared inputs.
fn walk<'a>(root: &'a Flow, mut atom: impl FnMut(&'a Atom), mut input: impl FnMut(&'a str)) {
    let mut stack = vec![root];
    while let Some(flow) = stack.pop() {
        flow.inputs.iter().for_each(|s| input(s.name()));
        if let Some(retry) = &flow.retry {
            atom(&retry.0);
        }
        for item in &flow.items {
            match item {
                Item::Atom(a) => atom(a),
                Item::Flow(f) => stack.push(f),
            }
        }
    }
}

/// The same walk, with each atom changeable.
fn walk_mut(root: &mut Flow, mut atom: impl FnMut(&mut Atom)) {
    let mut stack = vec![root];
    while let Some(flow) = stack.pop() {
        if let Some(retry) = &mut flow.retry {
            atom(&mut retry.0);
        }
        for item in &mut flow.items {
            match item {
                Item::Atom(a) => atom(a),
                Item::Flow(f) => stack.push(f),
            }
        }
    }
}

/// The names atom `a` publishes its outputs under.
pub(crate) fn published(a: &Atom) -> impl Iterator<Item = &str> {
    let renames = a.renames();
    a.signature.outputs().iter().map(move |o| {
        renames
            .iter()
            .rev()
            .find(|(n, _)| n == o.name())
            .map_or(o.name(), |(_, s)| &**s)
    })
}

/// Expands the pattern inputs of `root`'s atoms; a flow with none is left
/// as it is, after one look at each atom's signature.
pub(super) fn expand(root: &mut Flow) {
    let mut any = false;
    walk(root, |a| any |= a.signature.has_matching(), |_| {});
    if !any {
        return;
    }
    // Every published name, with the atom (by walk order) publishing it.
    let mut provided: Vec<(String, usize)> = Vec::new();
    let mut inputs: Vec<(String, usize)> = Vec::new();
    let mut n = 0;
    walk(
        root,
        |a| {
            provided.extend(published(a).map(|s| (s.to_string(), n)));
            n += 1;
        },
        |s| inputs.push((s.to_string(), usize::MAX)),
    );
    provided.append(&mut inputs);
    provided.sort_unstable();
    let mut n = 0;
    walk_mut(root, |a| {
        if a.signature.has_matching() {
            let me = n;
            a.signature.expand_matching(|pattern| {
                let mut names: Vec<Name> = provided
                    .iter()
                    .filter(|(s, by)| *by != me && name_matches(pattern, s))
                    .map(|(s, _)| Name::from(s.clone()))
                    .collect();
                names.dedup();
                names.into_boxed_slice()
            });
        }
        n += 1;
    });
}
