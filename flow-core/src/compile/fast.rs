//! The fast path: the plan of a flat flow of plain atoms, made in one walk.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::arena::NONE;
use super::arena::half_hash;
use super::graph::Source;
use super::lookup::{FEW_MISSED, LOW, RECENT, shared_hashes, sort_by_high_half};
use super::order::acyclic;
use super::{Plan, duplicate_names, name_key};
use crate::flow::{Atom, Flow, Item, Pattern};
use crate::symbol::{SymbolSpec, TypeInfo};
use crate::task::{InputKind, InputSpec};

/// The plan of the commonest flows, made without the arena: a linear or
/// graph flow of atoms alone (no nested flow, no retry controller, no
/// explicit link), none of which rebinds, injects or renames, whose inputs
/// each read one symbol, and whose atoms each export names no other atom
/// exports. `None` for any other flow, and for one with anything to report:
/// then [`plan_any`](super::plan_any) compiles it and explains. Where both
/// apply they give the same plan.
///
/// A read is first looked for among the outputs of the atom just before the
/// reader, then of the atoms that provided the reader's predecessor's read at
/// the same position and the one after (a tree's and a grid's reads), then
/// in a small table of recent exports; the others are found by sorting the
/// hashes of the names read and of the names exported and joining the two,
/// which stays in the cache where a hash table of every export would miss it
/// at every probe; the names themselves are then compared in the atoms'
/// order. A linear flow's atoms follow one another, and read only what the
/// atoms before them provide.
pub(super) fn plan_flat(root: &Flow) -> Option<Plan> {
    let linear = match root.pattern {
        Pattern::Linear => true,
        Pattern::Graph => false,
        Pattern::Unordered => return None,
    };
    if root.retry.is_some() || !root.links.is_empty() {
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
    // it and which of its outputs, or `NONE`.
    let mut resolved: Vec<(u32, u32)> = Vec::with_capacity(n);
    // Each exported name's hash above its atom; each read the first walk
    // does not resolve, its hash above its place in `resolved`.
    let mut exports: Vec<u64> = Vec::with_capacity(n);
    let mut missed: Vec<u64> = Vec::new();
    // A linear flow's reads are nearly all of the atom just before: it keeps
    // no table, and hashes its exports only if a read looks further back.
    let (mut asked, mut hits, mut table) = (0, 0, !linear);
    // For each input position, the provider of the latest read at that
    // position: the next atom's read there is often provided by the same
    // atom or the one after it (a tree's reads, a grid's reads from the row
    // before). Given up as the table is.
    let mut cursors: SmallVec<[u32; 4]> = SmallVec::new();
    let (mut tried, mut struck, mut stride) = (0, 0, !linear);
    let mut before: Option<&Atom> = None;
    for (a, item) in root.items.iter().enumerate() {
        let atom = plain_atom(item)?;
        let a32 = a as u32;
        name_keys.push(name_key(&atom.name, a32));
        starts.push(resolved.len() as u32);
        let sig = &atom.signature;
        let first_export = exports.len();
        if !linear {
            for output in sig.outputs() {
                exports.push(half_hash(output.name()) << 32 | u64::from(a32));
            }
        }
        let inputs = sig.inputs().iter().chain(sig.revert_inputs());
        for (k, input) in inputs.enumerate() {
            single_read(input)?;
            let name = input.name();
            let provides = |p: &Atom| {
                let outputs = p.signature.outputs();
                let k = outputs.iter().rposition(|o| o.name() == name)?;
                Some((k as u32, outputs[k].ty()))
            };
            let mut found = before.and_then(provides).map(|(i, ty)| (a32 - 1, i, ty));
            let cursor = cursors.get(k).copied().unwrap_or(NONE);
            if found.is_none() && stride && cursor != NONE {
                tried += 1;
                // The atom after the cursor first: a grid's next read.
                for p in [cursor + 1, cursor] {
                    if p == a32 || p as usize >= n {
                        continue;
                    }
                    let Some((i, ty)) = plain_atom(&root.items[p as usize]).and_then(provides)
                    else {
                        continue;
                    };
                    found = Some((p, i, ty));
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
                    found =
                        provides(plain_atom(&root.items[t as usize])?).map(|(i, ty)| (t, i, ty));
                    hits += usize::from(found.is_some());
                }
            }
            match found {
                Some((p, i, ty)) if ty == input.ty() => {
                    resolved.push((p, i));
                    if stride {
                        if k >= cursors.len() {
                            cursors.resize(k + 1, NONE);
                        }
                        cursors[k] = p;
                    }
                }
                Some(_) => return None,
                None => {
                    let h = hash.unwrap_or_else(|| half_hash(name));
                    missed.push(h << 32 | resolved.len() as u64);
                    resolved.push((NONE, 0));
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
    if linear && !missed.is_empty() {
        for (a, item) in root.items.iter().enumerate() {
            for output in plain_atom(item)?.signature.outputs() {
                exports.push(half_hash(output.name()) << 32 | a as u64);
            }
        }
    }
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
        // A linear flow reads the latest provider before the reader, which
        // the candidates give whether or not a name is exported twice.
        if !linear {
            for same in shared_hashes(exports).chunk_by(|x, y| x >> 32 == y >> 32) {
                if !names_differ(root, same) {
                    return None;
                }
            }
        }
        candidates
    } else {
        sort_by_high_half(&mut exports);
        for same in exports.chunk_by(|x, y| x >> 32 == y >> 32) {
            if !linear && same.len() > 1 && !names_differ(root, same) {
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
            let (p, index) = resolved[r];
            if p != NONE {
                providers.push(p);
                sources.push(Source::Output { atom: p, index });
                continue;
            }
            let mut provider = None;
            if let Some(&at) = found.get(r).filter(|&&at| at != NONE) {
                let hash = candidates[at as usize] >> 32;
                let same = candidates[at as usize..]
                    .iter()
                    .take_while(|&&k| k >> 32 == hash);
                // A linear flow's reader sees the latest provider before
                // it; a name that many atoms export is left to the general
                // compiler.
                let mut later = false;
                for (seen, &key) in same.enumerate() {
                    if linear && seen == 64 {
                        return None;
                    }
                    let p = (key & LOW) as usize;
                    // What an atom exports is not what it reads.
                    if p == a {
                        continue;
                    }
                    let outputs = plain_atom(&root.items[p])?.signature.outputs();
                    if let Some(k) = outputs.iter().rposition(|o| o.name() == name) {
                        if !linear {
                            provider = Some((p as u32, k as u32, outputs[k].ty()));
                            break;
                        }
                        if p > a {
                            later = true;
                        } else if provider.is_none_or(|(q, ..)| q < p as u32) {
                            provider = Some((p as u32, k as u32, outputs[k].ty()));
                        }
                    }
                }
                // Provided only later in a linear flow: the general
                // compiler's to take from the store or to report.
                if later && provider.is_none() {
                    return None;
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
        if linear {
            if a > 0 {
                edges.push((a as u32 - 1, a as u32));
            }
            continue;
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

/// Whether the exports of `same` (keys of one hash, see [`plan_flat`])
/// have different names: the names of that hash, of each atom once.
pub(super) fn names_differ(root: &Flow, same: &[u64]) -> bool {
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

/// The atom of `item`, when it is an atom the fast path takes: one that
/// neither rebinds, injects nor renames.
pub(super) fn plain_atom(item: &Item) -> Option<&Atom> {
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
pub(super) fn single_read(input: &InputSpec) -> Option<bool> {
    match input.kind() {
        InputKind::Required => Some(false),
        InputKind::Optional => Some(true),
        InputKind::Collect(_)
        | InputKind::CollectMap(_)
        | InputKind::Matching(_)
        | InputKind::MatchingMap(_) => None,
    }
}

/// The name of item `i` of `root`.
pub(super) fn item_name(root: &Flow, i: u32) -> &str {
    match &root.items[i as usize] {
        Item::Atom(atom) => &atom.name,
        Item::Flow(flow) => &flow.name,
    }
}

/// The inputs `root` declares, each name once, and where each is in the
/// store; `None` when a name is declared twice with different types.
#[allow(clippy::type_complexity)]
pub(super) fn declared_inputs(
    root: &Flow,
) -> Option<(Vec<SymbolSpec>, FxHashMap<&str, (u32, TypeInfo)>)> {
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
