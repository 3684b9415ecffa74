//! The resolution of every input of a `flow!` flow, as constant evaluation.
//!
//! The rules are those of the run-time builder: an atom sees what earlier
//! items of its linear groups provide (the latest wins), nothing of its
//! unordered siblings, what the other items of its graph groups provide (one
//! of them, else it is ambiguous), what retry controllers around it provide,
//! and last the flow's declared inputs.

use super::message::{Msg, same};
use super::{
    EMPTY_SLOT, FlowTable, MAX_CHECKED_SLOTS, NO_NODE, NodeKind, Resolution, Slot, Status,
    UNRESOLVED,
};
use crate::define::{InputShape, TaskInfo, symbol_hash};

/// How many input slots a task has: one per input, one per symbol of a
/// collection.
pub const fn slot_count_of(info: &TaskInfo) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < info.inputs.len() {
        n += match info.inputs[i].shape {
            InputShape::Collect(list) | InputShape::CollectMap(list) => list.len(),
            InputShape::Required | InputShape::Optional => 1,
        };
        i += 1;
    }
    n
}

/// The number of input slots of all atoms of `t`.
pub const fn slot_count(t: &FlowTable) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < t.nodes.len() {
        if let Some(info) = t.nodes[i].info() {
            n += slot_count_of(info);
        }
        i += 1;
    }
    n
}

/// The number of outputs in `t`: every atom's, and what retry controllers
/// provide.
pub const fn output_count(t: &FlowTable) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < t.nodes.len() {
        if let Some(info) = t.nodes[i].info() {
            n += info.outputs.len();
        }
        n += t.nodes[i].retry.len();
        i += 1;
    }
    n
}

/// The input behind slot `j` of `info`: its index, the name read, whether it
/// is optional.
const fn slot_input(info: &TaskInfo, j: usize) -> (usize, &'static str, bool) {
    let mut seen = 0;
    let mut i = 0;
    while i < info.inputs.len() {
        let input = &info.inputs[i];
        match input.shape {
            InputShape::Collect(list) | InputShape::CollectMap(list) => {
                if j < seen + list.len() {
                    return (i, list[j - seen].name, false);
                }
                seen += list.len();
            }
            InputShape::Required => {
                if j == seen {
                    return (i, input.name, false);
                }
                seen += 1;
            }
            InputShape::Optional => {
                if j == seen {
                    return (i, input.name, true);
                }
                seen += 1;
            }
        }
        i += 1;
    }
    (usize::MAX, "", true)
}

const fn less(a: (u64, u32), b: (u64, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// Heapsort: `O(n log n)` steps, no allocation.
const fn sort<const M: usize>(v: &mut [(u64, u32); M]) {
    let n = M;
    let mut start = n / 2;
    while start > 0 {
        start -= 1;
        sift(v, start, n);
    }
    let mut end = n;
    while end > 1 {
        end -= 1;
        let t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift(v, 0, end);
    }
}

const fn sift<const M: usize>(v: &mut [(u64, u32); M], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && less(v[child], v[child + 1]) {
            child += 1;
        }
        if less(v[root], v[child]) {
            let t = v[root];
            v[root] = v[child];
            v[child] = t;
            root = child;
        } else {
            return;
        }
    }
}

/// The first position in `v` not less than `key`.
const fn lower_bound<const M: usize>(v: &[(u64, u32); M], key: (u64, u32)) -> usize {
    let (mut lo, mut hi) = (0, M);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if less(v[mid], key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The smallest and largest provider node of hash `h` in `from..to`.
const fn providers_in<const P: usize>(
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
const fn child_of(t: &FlowTable, g: u32, n: u32) -> u32 {
    let mut c = n;
    while t.nodes[c as usize].parent != g {
        c = t.nodes[c as usize].parent;
    }
    c
}

const fn retry_provides(t: &FlowTable, g: u32, h: u64) -> bool {
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
const fn export_node<const P: usize>(
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
const fn resolve_slot<const P: usize>(
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

const fn found(symbol: &'static str, hash: u64, provider: u32, status: Status) -> Slot {
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

/// Resolves every input of every atom of `t`. `S` is [`slot_count`], `N` the
/// number of nodes and `P` [`output_count`].
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
                providers[k] = (info.outputs[o].hash, n as u32);
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
}

/// The [`Row`] of atom `a`: where each input slot's provider is. A slot in
/// error ([`check_atom`] says why) has no provider, so that its type is not
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
    };
    let mut j = 0;
    while j < MAX_CHECKED_SLOTS {
        let p = provider_at(t, r, a, j);
        out.hi[j] = p / super::AT_FANOUT;
        out.lo[j] = p % super::AT_FANOUT;
        out.hash[j] = slot_hash(t, r, a, j);
        j += 1;
    }
    out
}

/// Appends the path of node `n`: the names of its groups and its own, with `/`.
const fn path(mut m: Msg, t: &FlowTable, n: u32) -> Msg {
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

/// The sentence of the run-time builder when atom `a` of `t` has an input
/// no earlier item provides, an ambiguous provider, or a name already taken;
/// `None` when it has none of these. `flow!` panics with it in a constant
/// spanned on the atom: a panic in here would make the compiler print every
/// frame of the evaluation after the sentence.
pub const fn check_atom<const S: usize, const N: usize, const P: usize>(
    t: &FlowTable,
    r: &Resolution<S, N, P>,
    a: usize,
) -> Option<Msg> {
    let node = &t.nodes[a];
    let Some(info) = node.info() else {
        return None;
    };
    let count = slot_count_of(info);
    if count > MAX_CHECKED_SLOTS {
        return Some(Msg::new()
            .push("task ")
            .code(node.name)
            .push(" has more inputs than `flow!` checks (24 input symbols per task): gather some into a struct, or build this flow with the run-time builder, which has no limit"));
    }
    // Use-site options name inputs the task has?
    if let Some(m) = check_injects(node.name, info, node.injects) {
        return Some(m);
    }
    let mut k = 0;
    while k < node.rebinds.len() {
        if !reads(info, node.rebinds[k].0) {
            return Some(unknown(node.name, "rebinds", node.rebinds[k].0, info));
        }
        k += 1;
    }
    // The name: taken by an earlier atom?
    let h = symbol_hash(node.name);
    let mut i = lower_bound(&r.names, (h, 0));
    while i < N && r.names[i].0 == h && (r.names[i].1 as usize) < a {
        let other = r.names[i].1;
        if same(t.nodes[other as usize].name, node.name) {
            let m = Msg::new()
                .push("two atoms are named ")
                .code(node.name)
                .push(", at `");
            let m = path(m, t, other).push("` and at `");
            return Some(
                path(m, t, a as u32).push("`: names must be unique in a flow tree, rename one"),
            );
        }
        i += 1;
    }
    let mut j = 0;
    while j < count {
        let slot = &r.slots[r.base[a] as usize + j];
        let (input, _, _) = slot_input(info, j);
        let ty = info.inputs[input].ty;
        let error = match slot.status {
            Status::Found | Status::Injected | Status::Absent => None,
            Status::Nowhere => Some(
                head(node.name, slot.symbol, ty)
                    .push(", but no earlier task in flow ")
                    .code(t.name)
                    .push(" provides ")
                    .code(slot.symbol)
                    .push(" and the flow does not declare it as an input"),
            ),
            Status::RunsAfter(p) => Some(
                head(node.name, slot.symbol, ty)
                    .push(", but ")
                    .code(slot.symbol)
                    .push(" is provided only by ")
                    .code(t.nodes[p as usize].name)
                    .push(", which does not run before it: move ")
                    .code(t.nodes[p as usize].name)
                    .push(" earlier"),
            ),
            Status::Concurrent(p, g) => Some(
                head(node.name, slot.symbol, ty)
                    .push(", but ")
                    .code(slot.symbol)
                    .push(" is provided only by ")
                    .code(t.nodes[p as usize].name)
                    .push(", which runs concurrently with it (same unordered group ")
                    .code(t.nodes[g as usize].name)
                    .push(")"),
            ),
            Status::Ambiguous(x) => {
                let mut m = Msg::new()
                    .push("task ")
                    .code(node.name)
                    .push(" requires ")
                    .code(slot.symbol)
                    .push(", but several tasks with no order between them provide it: ");
                let skip = if x as usize <= a && a < t.nodes[x as usize].end as usize {
                    child_of(t, x, a as u32)
                } else {
                    NO_NODE
                };
                let mut q = lower_bound(&r.providers, (slot.hash, x + 1));
                let mut first = true;
                while q < P
                    && r.providers[q].0 == slot.hash
                    && r.providers[q].1 < t.nodes[x as usize].end
                {
                    let p = r.providers[q].1;
                    let inside_skip =
                        skip != NO_NODE && skip <= p && p < t.nodes[skip as usize].end;
                    if !inside_skip {
                        if !first {
                            m = m.push(", ");
                        }
                        m = m.code(t.nodes[p as usize].name);
                        first = false;
                    }
                    q += 1;
                }
                Some(m.push("; rename an output with `provides_as` or rebind the input"))
            }
        };
        if error.is_some() {
            return error;
        }
        j += 1;
    }
    None
}

/// Whether `info` reads `name`: an input, or a symbol a collection lists.
const fn reads(info: &TaskInfo, name: &str) -> bool {
    let count = slot_count_of(info);
    let mut j = 0;
    while j < count {
        if same(slot_input(info, j).1, name) {
            return true;
        }
        j += 1;
    }
    false
}

const fn check_injects(atom: &str, info: &TaskInfo, injects: &[&str]) -> Option<Msg> {
    let mut k = 0;
    while k < injects.len() {
        if !reads(info, injects[k]) {
            return Some(unknown(atom, "injects", injects[k], info));
        }
        k += 1;
    }
    None
}

/// The sentence of `BuildError::UnknownParameter` for an input.
const fn unknown(atom: &str, what: &str, name: &str, info: &TaskInfo) -> Msg {
    let mut m = Msg::new()
        .push("atom ")
        .code(atom)
        .push(" ")
        .push(what)
        .push(" ")
        .code(name)
        .push(", but its task has no such input: ");
    let count = slot_count_of(info);
    if count == 0 {
        m = m.push("it has no inputs");
    } else {
        m = m.push("its inputs are ");
        let mut j = 0;
        while j < count {
            if j > 0 {
                m = m.push(", ");
            }
            m = m.code(slot_input(info, j).1);
            j += 1;
        }
    }
    m
}

const fn head(atom: &str, symbol: &str, ty: &str) -> Msg {
    Msg::new()
        .push("task ")
        .code(atom)
        .push(" requires `")
        .push(symbol)
        .push(": ")
        .push(ty)
        .push("`")
}

/// The sentence saying that the items of graph group `g` of `t`, ordered by
/// its links and by the data they exchange, form a cycle; `None` when they do
/// not. `E` is at least the number of slots plus the number of links.
pub const fn check_graph<const S: usize, const N: usize, const P: usize, const E: usize>(
    t: &FlowTable,
    r: &Resolution<S, N, P>,
    g: usize,
) -> Option<Msg> {
    let end = t.nodes[g].end as usize;
    // Number the children.
    let mut ord = [u32::MAX; N];
    let mut kids = [0u32; N];
    let mut k = 0;
    let mut c = g + 1;
    while c < end {
        kids[k] = c as u32;
        let mut n = c;
        while n < t.nodes[c].end as usize {
            ord[n] = k as u32;
            n += 1;
        }
        k += 1;
        c = t.nodes[c].end as usize;
    }
    // Edges between children: explicit links first, then data.
    let mut edges = [(0u32, 0u32); E];
    let mut e = 0;
    let mut l = 0;
    while l < t.links.len() {
        let (from, to) = t.links[l];
        if t.nodes[from as usize].parent == g as u32
            && t.nodes[to as usize].parent == g as u32
            && e < E
        {
            edges[e] = (ord[from as usize], ord[to as usize]);
            e += 1;
        }
        l += 1;
    }
    let mut n = g + 1;
    while n < end {
        if let Some(info) = t.nodes[n].info() {
            let count = slot_count_of(info);
            let mut j = 0;
            while j < count {
                let slot = &r.slots[r.base[n] as usize + j];
                let p = slot.provider;
                if let Status::Found = slot.status
                    && p > g
                    && p < end
                    && ord[p] != ord[n]
                    && e < E
                {
                    edges[e] = (ord[p], ord[n]);
                    e += 1;
                }
                j += 1;
            }
        }
        n += 1;
    }
    // Kahn's algorithm over the children.
    let mut indeg = [0u32; N];
    let mut i = 0;
    while i < e {
        indeg[edges[i].1 as usize] += 1;
        i += 1;
    }
    let mut done = [false; N];
    let mut progress = true;
    let mut left = k;
    // Repeated sweeps: each removes every child whose predecessors are done.
    // A sweep is O(E); the number of sweeps is the depth of the order.
    while progress && left > 0 {
        progress = false;
        let mut free = [false; N];
        let mut x = 0;
        while x < k {
            if !done[x] && indeg[x] == 0 {
                free[x] = true;
            }
            x += 1;
        }
        let mut x = 0;
        while x < k {
            if free[x] {
                done[x] = true;
                left -= 1;
                progress = true;
            }
            x += 1;
        }
        let mut i = 0;
        while i < e {
            if free[edges[i].0 as usize] {
                indeg[edges[i].1 as usize] -= 1;
            }
            i += 1;
        }
    }
    if left == 0 {
        return None;
    }
    // Walk back along first incoming edges among what is left.
    let mut incoming = [u32::MAX; N];
    let mut i = 0;
    while i < e {
        let (a, b) = edges[i];
        if !done[a as usize] && !done[b as usize] && incoming[b as usize] == u32::MAX {
            incoming[b as usize] = a;
        }
        i += 1;
    }
    let mut start = 0;
    while done[start] {
        start += 1;
    }
    let mut pos = [u32::MAX; N];
    let mut walk = [0u32; N];
    let mut len = 0;
    let mut cur = start as u32;
    while pos[cur as usize] == u32::MAX {
        pos[cur as usize] = len as u32;
        walk[len] = cur;
        len += 1;
        cur = incoming[cur as usize];
    }
    let from = pos[cur as usize] as usize;
    // The cycle is walk[from..len] reversed; start it at its smallest child.
    let mut min_at = len - 1;
    let mut q = from;
    while q < len {
        if walk[q] < walk[min_at] {
            min_at = q;
        }
        q += 1;
    }
    let mut m = Msg::new()
        .push("graph flow ")
        .code(t.nodes[g].name)
        .push(" has a cycle: ");
    let size = len - from;
    let mut step = 0;
    let mut q = min_at;
    while step < size {
        m = m
            .code(t.nodes[kids[walk[q] as usize] as usize].name)
            .push(" -> ");
        q = if q == from { len - 1 } else { q - 1 };
        step += 1;
    }
    Some(
        m.code(t.nodes[kids[walk[min_at] as usize] as usize].name)
            .push("; remove a link or an input that closes it"),
    )
}
