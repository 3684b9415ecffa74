//! The checks of a `flow!` flow after its inputs are resolved: each atom's
//! inputs, injects and rebinds, and each graph's order, as sentences for
//! the compile error.

use super::message::{Msg, same};
use super::resolve::{child_of, path};
use super::slots::{lower_bound, slot_count_of, slot_input};
use super::{FlowTable, MAX_CHECKED_SLOTS, NO_NODE, Resolution, Status};
use crate::define::{TaskInfo, symbol_hash};

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
    if let Some(m) = super::rename_check::check_renames(node.name, info, node.renames) {
        return Some(m);
    }
    // The name: taken by an earlier atom?
    let h = symbol_hash(node.name);
    let mut i = lower_bound(&r.names, (h, 0));
    while i < N && r.names[i].0 == h && (r.names[i].1 as usize) < a {
        let other = r.names[i].1;
        if same(t.nodes[other as usize].name, node.name) {
            // Sibling groups have distinct names (flow! checks it), so the
            // two paths differ.
            let m = Msg::new()
                .push("two atoms are named ")
                .code(node.name)
                .push(", at `");
            let m = path(m, t, other).push("` and at `");
            return Some(
                path(m, t, a as u32)
                    .push("`: names must be unique in a flow tree; rename one with `as`: `")
                    .push(node.name)
                    .push(" as ")
                    .push(node.name)
                    .push("_2`"),
            );
        }
        i += 1;
    }
    let mut j = 0;
    while j < count {
        let slot = &r.slots[r.base[a] as usize + j];
        let (input, _, _) = slot_input(info, j);
        let ty = info.inputs[input].ty;
        // Checked before the call: a message is 2 KiB, which constant
        // evaluation would copy back for every slot.
        if super::group::has_own_message(info, slot) {
            if let Some(m) = super::group::slot_error(t, node.name, info, slot, ty) {
                return Some(m);
            }
        }
        let error = match slot.status {
            Status::Found | Status::Injected | Status::Absent => None,
            Status::Nowhere => {
                let m = head(node.name, slot.symbol, ty)
                    .push(", but no earlier task in flow ")
                    .code(t.name)
                    .push(" provides ")
                    .code(slot.symbol)
                    .push(" and the flow does not declare it as an input");
                Some(match super::suggest::nearest(t, slot.symbol) {
                    Some(near) => m.push("; did you mean ").code(near).push("?"),
                    None => m,
                })
            }
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
                let mut m = head(node.name, slot.symbol, ty)
                    .push(", but several tasks with no order between them provide it: ");
                let mut one = "";
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
                        if first {
                            one = t.nodes[p as usize].name;
                        }
                        first = false;
                    }
                    q += 1;
                }
                Some(super::rename_check::ambiguity_fix(
                    m,
                    one,
                    node.name,
                    slot.symbol,
                ))
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
pub(super) const fn reads(info: &TaskInfo, name: &str) -> bool {
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

pub(super) const fn check_injects(atom: &str, info: &TaskInfo, injects: &[&str]) -> Option<Msg> {
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
pub(super) const fn unknown(atom: &str, what: &str, name: &str, info: &TaskInfo) -> Msg {
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

pub(super) const fn head(atom: &str, symbol: &str, ty: &str) -> Msg {
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
