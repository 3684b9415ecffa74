//! The slots of a `flow!` flow's table counted, and the sort the
//! resolution searches with, as constant functions.

use super::FlowTable;
use crate::define::{InputShape, TaskInfo};

/// How many input slots a task has: one per input, one per symbol of a
/// collection.
pub const fn slot_count_of(info: &TaskInfo) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < info.inputs.len() {
        n += match info.inputs[i].shape {
            InputShape::Collect(list) | InputShape::CollectMap(list) => list.len(),
            InputShape::Required
            | InputShape::Optional
            | InputShape::Matching(_)
            | InputShape::MatchingMap(_) => 1,
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
pub(super) const fn slot_input(info: &TaskInfo, j: usize) -> (usize, &'static str, bool) {
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
            // One slot, read under the pattern: a group declaring the
            // pattern provides it (see `resolve_slot` for fixed names).
            InputShape::Matching(pattern) | InputShape::MatchingMap(pattern) => {
                if j == seen {
                    return (i, pattern, false);
                }
                seen += 1;
            }
        }
        i += 1;
    }
    (usize::MAX, "", true)
}

pub(super) const fn less(a: (u64, u32), b: (u64, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// Heapsort: `O(n log n)` steps, no allocation.
pub(super) const fn sort<const M: usize>(v: &mut [(u64, u32); M]) {
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

pub(super) const fn sift<const M: usize>(v: &mut [(u64, u32); M], mut root: usize, end: usize) {
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
pub(super) const fn lower_bound<const M: usize>(v: &[(u64, u32); M], key: (u64, u32)) -> usize {
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
