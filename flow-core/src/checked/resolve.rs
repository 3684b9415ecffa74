//! The resolution of every input of a `flow!` flow, as constant evaluation.
//!
//! The rules are those of the run-time builder: an atom sees what earlier
//! items of its linear groups provide (the latest wins), nothing of its
//! unordered siblings, what the other items of its graph groups provide (one
//! of them, else it is ambiguous), what retry controllers around it provide,
//! and last the flow's declared inputs.

use super::message::{Msg, same};
use super::slots::{lower_bound, slot_count_of, slot_input, sort};
use super::{
    EMPTY_SLOT, FlowTable, MAX_CHECKED_SLOTS, NO_NODE, NodeEntry, NodeKind, Resolution, Slot,
    Status, UNRESOLVED,
};
use crate::define::{TaskInfo, symbol_hash};
use crate::pattern::{is_pattern, name_matches, pattern_within};

/// The smallest and largest provider node of hash `h` in `from..to`.
pub(super) const fn providers_in<const P: usize>(
    providers: &[(u64, u32); P],
    h: u64,
    from: u32,
    to: u32,
) -> Option<(u32, u32)> {
    if from >= to {
        return None;
    }
    let first = lower_bound(providers, (h, from));
    if first >= P || providers[first].0 != h || providers[first].1 >= to {
        return None;
    }
    let last = lower_bound(providers, (h, to)) - 1;
    Some((providers[first].1, providers[last].1))
}

/// The child of group `g` whose subtree holds node `n`.
pub(super) const fn child_of(t: &FlowTable, g: u32, n: u32) -> u32 {
    let mut c = n;
    while t.nodes[c as usize].parent != g {
        c = t.nodes[c as usize].parent;
    }
    c
}

pub(super) const fn retry_provides(t: &FlowTable, g: u32, h: u64) -> bool {
    let retry = t.nodes[g as usize].retry;
    let mut i = 0;
    while i < retry.len() {
        if retry[i].hash == h {
            return true;
        }
        i += 1;
    }
    false
}

/// What subtree `c`, known to provide `h`, makes visible under `h`: the
/// providing node, or an ambiguity.
pub(super) const fn export_node<const P: usize>(
    t: &FlowTable,
    providers: &[(u64, u32); P],
    mut c: u32,
    h: u64,
) -> (u32, Status) {
    loop {
        let node = &t.nodes[c as usize];
        if let NodeKind::Atom(_) = node.kind {
            return (c, Status::Found);
        }
        let Some((min, max)) = providers_in(providers, h, c + 1, node.end) else {
            return (c, Status::Found);
        };
        match node.kind {
            NodeKind::Linear => c = child_of(t, c, max),
            _ => {
                let first = child_of(t, c, min);
                if first != child_of(t, c, max) {
                    return (c, Status::Ambiguous(c));
                }
                c = first;
            }
        }
    }
}

/// Resolves slot `j` of atom `a`.
pub(super) const fn resolve_slot<const P: usize>(
    t: &FlowTable,
    providers: &[(u64, u32); P],
    a: u32,
    info: &TaskInfo,
    j: usize,
) -> Slot {
    let node = &t.nodes[a as usize];
    let (_, read, optional) = slot_input(info, j);
    let mut k = 0;
    while k < node.injects.len() {
        if same(node.injects[k], read) {
            return Slot {
                symbol: read,
                hash: symbol_hash(read),
                provider: UNRESOLVED,
                status: Status::Injected,
            };
        }
        k += 1;
    }
    let mut symbol = read;
    let mut k = node.rebinds.len();
    while k > 0 {
        k -= 1;
        if same(node.rebinds[k].0, read) {
            symbol = node.rebinds[k].1;
            break;
        }
    }
    let h = symbol_hash(symbol);
    if is_pattern(symbol) {
        return resolve_pattern(t, providers, a, symbol, h);
    }
    resolve_symbol(t, providers, a, symbol, h, optional)
}

/// Resolves symbol `symbol` (of hash `h`), read by atom `a`.
pub(super) const fn resolve_symbol<const P: usize>(
    t: &FlowTable,
    providers: &[(u64, u32); P],
    a: u32,
    symbol: &'static str,
    h: u64,
    optional: bool,
) -> Slot {
    let mut cur = a;
    loop {
        let g = t.nodes[cur as usize].parent;
        if g == NO_NODE {
            break;
        }
        let group = &t.nodes[g as usize];
        match group.kind {
            NodeKind::Linear => {
                if let Some((_, max)) = providers_in(providers, h, g + 1, cur) {
                    let (p, status) = export_node(t, providers, child_of(t, g, max), h);
                    return found(symbol, h, p, status);
                }
            }
            NodeKind::Graph => {
                let before = providers_in(providers, h, g + 1, cur);
                let after = providers_in(providers, h, t.nodes[cur as usize].end, group.end);
                let (min, max) = match (before, after) {
                    (Some((a1, _)), Some((_, b2))) => (a1, b2),
                    (Some(r), None) | (None, Some(r)) => r,
                    (None, None) => (NO_NODE, NO_NODE),
                };
                if min != NO_NODE {
                    let first = child_of(t, g, min);
                    if first != child_of(t, g, max) {
                        return found(symbol, h, 0, Status::Ambiguous(g));
                    }
                    let (p, status) = export_node(t, providers, first, h);
                    return found(symbol, h, p, status);
                }
            }
            NodeKind::Unordered | NodeKind::Atom(_) => {}
        }
        if retry_provides(t, g, h) {
            return found(symbol, h, g, Status::Found);
        }
        cur = g;
    }
    let mut i = 0;
    while i < t.inputs.len() {
        if t.inputs[i].hash == h {
            return found(symbol, h, t.nodes.len() as u32, Status::Found);
        }
        i += 1;
    }
    if optional {
        return found(symbol, h, 0, Status::Absent);
    }
    let first = lower_bound(providers, (h, 0));
    if first < P && providers[first].0 == h {
        let p = providers[first].1;
        let mut g = t.nodes[p as usize].parent;
        while g != NO_NODE && !(g <= a && a < t.nodes[g as usize].end) {
            g = t.nodes[g as usize].parent;
        }
        let status = match t.nodes[g as usize].kind {
            NodeKind::Unordered => Status::Concurrent(p, g),
            _ => Status::RunsAfter(p),
        };
        return found(symbol, h, 0, status);
    }
    found(symbol, h, 0, Status::Nowhere)
}

pub(super) const fn found(symbol: &'static str, hash: u64, provider: u32, status: Status) -> Slot {
    Slot {
        symbol,
        hash,
        provider: match status {
            Status::Found => provider as usize,
            _ => UNRESOLVED,
        },
        status,
    }
}

/// Resolves every input of every atom of `t`. `S` is [`slot_count`](super::slot_count), `N` the
/// number of nodes and `P` [`output_count`](super::output_count).
pub const fn resolve<const S: usize, const N: usize, const P: usize>(
    t: &FlowTable,
) -> Resolution<S, N, P> {
    let mut providers = [(0u64, 0u32); P];
    let mut names = [(u64::MAX, 0u32); N];
    let mut k = 0;
    let mut n = 0;
    while n < N {
        let node = &t.nodes[n];
        if let Some(info) = node.info() {
            let mut o = 0;
            while o < info.outputs.len() {
                providers[k] = (published(node, info.outputs[o].name), n as u32);
                k += 1;
                o += 1;
            }
            names[n] = (symbol_hash(node.name), n as u32);
        } else {
            names[n] = (u64::MAX, n as u32);
        }
        let mut r = 0;
        while r < node.retry.len() {
            providers[k] = (node.retry[r].hash, n as u32);
            k += 1;
            r += 1;
        }
        n += 1;
    }
    sort(&mut providers);
    sort(&mut names);
    let mut slots = [EMPTY_SLOT; S];
    let mut base = [0u32; N];
    let mut s = 0;
    let mut n = 0;
    while n < N {
        base[n] = s as u32;
        if let Some(info) = t.nodes[n].info() {
            let count = slot_count_of(info);
            let mut j = 0;
            while j < count {
                slots[s] = resolve_slot(t, &providers, n as u32, info, j);
                s += 1;
                j += 1;
            }
        }
        n += 1;
    }
    Resolution {
        slots,
        base,
        providers,
        names,
    }
}

/// The provider index of slot `j` of node `a`: a node, the node count for
/// the flow's inputs, one more for no provider to check (also past the
/// atom's slots). `flow!` maps each index to a type with `AtHi` and `AtLo`.
pub const fn provider_at<const S: usize, const N: usize, const P: usize>(
    t: &FlowTable,
    r: &Resolution<S, N, P>,
    a: usize,
    j: usize,
) -> usize {
    let p = match t.nodes[a].info() {
        Some(info) if j < slot_count_of(info) => r.slots[r.base[a] as usize + j].provider,
        _ => UNRESOLVED,
    };
    if p == UNRESOLVED {
        t.nodes.len() + 1
    } else {
        p
    }
}

/// The hash of the symbol slot `j` of node `a` reads (0 past its slots).
pub const fn slot_hash<const S: usize, const N: usize, const P: usize>(
    t: &FlowTable,
    r: &Resolution<S, N, P>,
    a: usize,
    j: usize,
) -> u64 {
    match t.nodes[a].info() {
        Some(info) if j < slot_count_of(info) => r.slots[r.base[a] as usize + j].hash,
        _ => 0,
    }
}

/// The provider and symbol of every checked slot of one atom, split for the
/// type checks: `hi[j] * AT_FANOUT + lo[j]` is slot `j`'s provider index and
/// `hash[j]` the hash of the symbol it reads.
///
/// `flow!` computes one per atom, from the flow's statics, and its type checks
/// read only this small constant.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// `provider / AT_FANOUT` per slot.
    pub hi: [usize; MAX_CHECKED_SLOTS],
    /// `provider % AT_FANOUT` per slot.
    pub lo: [usize; MAX_CHECKED_SLOTS],
    /// The symbol's hash per slot.
    pub hash: [u64; MAX_CHECKED_SLOTS],
    /// The hash of the input's own name per slot (before rebinding), which
    /// selects the task's [`Requires`](super::Requires) impl: 0 for a slot
    /// with no provider to check.
    pub name: [u64; MAX_CHECKED_SLOTS],
}

/// The [`Row`] of atom `a`: where each input slot's provider is. A slot in
/// error ([`check_atom`](super::check_atom) says why) has no provider, so that its type is not
/// compared as well.
pub const fn row<const S: usize, const N: usize, const P: usize>(
    t: &FlowTable,
    r: &Resolution<S, N, P>,
    a: usize,
) -> Row {
    let mut out = Row {
        hi: [0; MAX_CHECKED_SLOTS],
        lo: [0; MAX_CHECKED_SLOTS],
        hash: [0; MAX_CHECKED_SLOTS],
        name: [0; MAX_CHECKED_SLOTS],
    };
    let Some(info) = t.nodes[a].info() else {
        return out;
    };
    let mut j = 0;
    while j < MAX_CHECKED_SLOTS {
        let p = provider_at(t, r, a, j);
        out.hi[j] = p / super::AT_FANOUT;
        out.lo[j] = p % super::AT_FANOUT;
        out.hash[j] = own_output(t, p, slot_hash(t, r, a, j));
        if p != t.nodes.len() + 1 {
            out.name[j] = symbol_hash(slot_input(info, j).1);
        }
        j += 1;
    }
    out
}

/// The hash of the symbol `node` publishes its task's output `output` as:
/// the output's own name, or what the atom renames it to.
pub(super) const fn published(node: &NodeEntry, output: &str) -> u64 {
    let mut k = node.renames.len();
    while k > 0 {
        k -= 1;
        if same(node.renames[k].0, output) {
            return symbol_hash(node.renames[k].1);
        }
    }
    symbol_hash(output)
}

/// The hash of the output's own name that provider `p` publishes under the
/// symbol hashed `h` (what its `Provides` impl is keyed by).
const fn own_output(t: &FlowTable, p: usize, h: u64) -> u64 {
    if p >= t.nodes.len() {
        return h;
    }
    let node = &t.nodes[p];
    let mut k = node.renames.len();
    while k > 0 {
        k -= 1;
        if symbol_hash(node.renames[k].1) == h {
            return symbol_hash(node.renames[k].0);
        }
    }
    h
}

/// Appends the path of node `n`: the names of its groups and its own, with `/`.
pub(super) const fn path(mut m: Msg, t: &FlowTable, n: u32) -> Msg {
    let mut chain = [0u32; 64];
    let mut depth = 0;
    let mut cur = n;
    while cur != NO_NODE && depth < chain.len() {
        chain[depth] = cur;
        depth += 1;
        cur = t.nodes[cur as usize].parent;
    }
    while depth > 0 {
        depth -= 1;
        m = m.push(t.nodes[chain[depth] as usize].name);
        if depth > 0 {
            m = m.push("/");
        }
    }
    m
}

/// Resolves pattern `pattern` (of hash `h`), read by atom `a`: a provider
/// visible under the pattern itself (a run-time group declaring it), else the
/// first output of the table, in table order, whose name matches it (or, for
/// a declared pattern, whose every name would) and that `a` sees. When none is seen, why the first match is not.
pub(super) const fn resolve_pattern<const P: usize>(
    t: &FlowTable,
    providers: &[(u64, u32); P],
    a: u32,
    pattern: &'static str,
    h: u64,
) -> Slot {
    let slot = resolve_symbol(t, providers, a, pattern, h, false);
    if !matches!(slot.status, Status::Nowhere) {
        return slot;
    }
    let mut first: Option<Slot> = None;
    let mut n = 0;
    while n < t.nodes.len() {
        if let NodeKind::Atom(info) = t.nodes[n].kind {
            let mut o = 0;
            while o < info.outputs.len() {
                let name = info.outputs[o].name;
                let matches = if is_pattern(name) {
                    pattern_within(name, pattern)
                } else {
                    name_matches(pattern, name)
                };
                if n as u32 != a && matches {
                    let s = resolve_symbol(t, providers, a, name, info.outputs[o].hash, false);
                    if let Status::Found = s.status {
                        return s;
                    }
                    if first.is_none() {
                        first = Some(s);
                    }
                }
                o += 1;
            }
        }
        n += 1;
    }
    match first {
        Some(s) => s,
        None => slot,
    }
}
