//! Orders of a finished graph: topological order, cycles, and taking a
//! flow apart into its atoms.

use super::csr;
use crate::flow::{Atom, Flow, Item};
use crate::retry::Retry;

/// The nodes `0..n` in an order that respects `edges` (declaration order among
/// the ready ones), or a cycle, in order, when there is one.
pub(super) fn topological_order(n: usize, edges: &[(u32, u32)]) -> Result<Vec<u32>, Vec<u32>> {
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
pub(super) fn acyclic(n: usize, edges: &[(u32, u32)]) -> Result<(), Vec<u32>> {
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
pub(super) fn all_forward(edges: &[(u32, u32)]) -> bool {
    edges.iter().all(|&(a, b)| a < b)
}

/// A cycle among the nodes Kahn's algorithm could not order (`indeg > 0`).
pub(super) fn cycle_among(n: usize, edges: &[(u32, u32)], indeg: &[u32]) -> Vec<u32> {
    walk_back(n, edges, indeg)
        .unwrap_or_else(|| (0..n as u32).filter(|&i| indeg[i as usize] > 0).collect())
}

pub(super) fn walk_back(n: usize, edges: &[(u32, u32)], indeg: &[u32]) -> Option<Vec<u32>> {
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
pub(super) fn take_atoms(mut flow: Flow, f: &mut impl FnMut(Atom, Option<Retry>)) {
    pub(super) fn controller(flow: &mut Flow) -> Option<(Atom, Retry)> {
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
