//! The frames a look-up searches, and the hash tables and sorts that find a
//! graph's providers without a hash map of every export.

use rustc_hash::FxHashMap;

use super::arena::half_hash;
use super::arena::{Export, NONE, NodeRef};
use crate::link_order::Linked;

pub(super) enum Frame<'a> {
    /// What the items of a linear flow see: the outputs of the items before
    /// them.
    Linear {
        /// The items; `items[..done]` have been visited.
        items: &'a [NodeRef],
        done: usize,
        /// The exports of `items[..indexed]`, the latest provider of each
        /// name. Filled only when a look-up needs it: an item usually reads
        /// what the item just before it provides, which is checked first.
        visible: FxHashMap<&'a str, Export>,
        indexed: usize,
    },
    Unordered,
    Graph {
        /// Every item's exports, in item order, chained by name.
        candidates: Vec<Candidate<'a>>,
        /// The first candidate of each name the items export, as
        /// `hash << 32 | candidate` with the upper half of the name's hash,
        /// sorted by hash.
        heads: Vec<u64>,
        /// The graph's first atom: the reads of atom `a` start at
        /// `read_at[a - first] - read_at[0]` in `found` (`read_at` is the
        /// arena's, for the graph's atoms).
        first: u32,
        read_at: &'a [u32],
        /// For every read of every atom of the graph, in the order the atom
        /// reads them: the first candidate of the only exported name with the
        /// same hash (still to be compared with the name read), `NONE` when
        /// no exported name has that hash, `SEVERAL` when several do.
        found: Vec<u32>,
        current: usize,
        /// Item `a` before item `b`, from the names `b` reads.
        inferred: Vec<(u32, u32)>,
        /// The graph's items.
        items: &'a [NodeRef],
        /// The explicit links, when there are some.
        linked: Option<Box<Linked>>,
    },
}

/// An item of a graph flow that exports a name, and the next candidate for
/// the same name (`NONE` at the end).
pub(super) struct Candidate<'a> {
    pub(super) name: &'a str,
    pub(super) export: Export,
    pub(super) item: u32,
    pub(super) next: u32,
}

/// The candidates for one name in a graph frame.
pub(super) fn chain<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    first: u32,
) -> impl Iterator<Item = &'c Candidate<'a>> {
    std::iter::successors(candidates.get(first as usize), move |c| {
        candidates.get(c.next as usize)
    })
}

/// The most reads [`plan_flat`](super::fast::plan_flat) leaves to the join that it looks up with a
/// pass over the exports each rather than by sorting them.
pub(super) const FEW_MISSED: usize = 4;

/// In a graph frame's `found`: several exported names share the read
/// name's hash.
pub(super) const SEVERAL: u32 = u32::MAX - 1;

/// The lower half of a `hash << 32 | index` key.
pub(super) const LOW: u64 = u32::MAX as u64;

/// The most slots a graph frame's table of recent exports has (a small
/// graph's has two per export): 128 KiB, within the cache, and enough that
/// an export is seldom overwritten before a read a thousand items later (a
/// 1,024-wide grid's) finds it.
pub(super) const RECENT: usize = 1 << 14;

/// The first candidate named `name` among `heads` (see [`Frame::Graph`]), or
/// `NONE`.
pub(super) fn find_head(heads: &[u64], candidates: &[Candidate<'_>], name: &str) -> u32 {
    let hash = half_hash(name);
    let from = heads.partition_point(|&k| k >> 32 < hash);
    heads[from..]
        .iter()
        .take_while(|&&k| k >> 32 == hash)
        .map(|&k| (k & LOW) as u32)
        .find(|&k| candidates[k as usize].name == name)
        .unwrap_or(NONE)
}

/// Sorts `keys` by their upper halves, keeping the input order among equal
/// ones, reading and writing memory in order as far as it can (a large
/// graph's names would miss the cache at every probe of a hash table). The
/// lower halves must rise in input order, which makes a plain sort of the
/// whole keys give the same result.
///
/// Up to 2^17 keys (1 MiB, within the cache), a least-significant-digit radix
/// sort, a byte at a time. Beyond, its scattered writes miss the cache: one
/// pass spreads the keys by their top 11 bits, and each of the 2,048 groups,
/// small enough for the cache, is then sorted on its own.
pub(super) fn sort_by_high_half(keys: &mut Vec<u64>) {
    if keys.len() < 1024 {
        keys.sort_unstable();
    } else if keys.len() <= 1 << 17 {
        radix_by_byte(keys);
    } else {
        spread_then_sort(keys);
    }
}

/// The keys of `keys` (`hash << 32 | index`) whose upper half at least one
/// other key shares, sorted by upper half and in their first order within
/// each: what is left of `keys` sorted by [`sort_by_high_half`] once the
/// keys alone with their hash are taken out. Nearly all are, in a flow's
/// names: the keys are spread by the top bits of the hash into groups that
/// fit the cache, and a group is sorted only when a small table of its
/// hashes finds one twice.
pub(super) fn shared_hashes(mut keys: Vec<u64>) -> Vec<u64> {
    let runs = |sorted: &[u64], out: &mut Vec<u64>| {
        for same in sorted.chunk_by(|x, y| x >> 32 == y >> 32) {
            if same.len() > 1 {
                out.extend_from_slice(same);
            }
        }
    };
    let mut out = Vec::new();
    if keys.len() < 1024 {
        keys.sort_by_key(|k| k >> 32);
        runs(&keys, &mut out);
        return out;
    }
    pub(super) const BITS: u32 = 11;
    let group = |k: u64| (k >> (64 - BITS)) as usize;
    let mut next = vec![0u32; 1 << BITS];
    for &k in &keys {
        next[group(k)] += 1;
    }
    let largest = next.iter().copied().max().unwrap_or(0) as usize;
    let mut sum = 0;
    for n in next.iter_mut() {
        (*n, sum) = (sum, sum + *n);
    }
    let mut spread = vec![0u64; keys.len()];
    for &k in &keys {
        let g = group(k);
        spread[next[g] as usize] = k;
        next[g] += 1;
    }
    drop(keys);
    // Each slot: a hash, above the number of the group that wrote it (plus
    // one), so that the table is never cleared.
    let size = (2 * largest).next_power_of_two();
    let mut table = vec![0u64; size];
    let mut start = 0;
    for (g, end) in next.into_iter().enumerate() {
        let end = end as usize;
        let keys = &mut spread[start..end];
        start = end;
        let mark = g as u64 + 1;
        let twice = keys.iter().any(|&k| {
            let hash = k >> 32;
            let mut slot = hash as usize & (size - 1);
            loop {
                let entry = table[slot];
                if entry & LOW != mark {
                    table[slot] = hash << 32 | mark;
                    return false;
                }
                if entry >> 32 == hash {
                    return true;
                }
                slot = (slot + 1) & (size - 1);
            }
        });
        if twice {
            keys.sort_by_key(|k| k >> 32);
            runs(keys, &mut out);
        }
    }
    out
}

pub(super) fn radix_by_byte(keys: &mut Vec<u64>) {
    let mut counts = [[0u32; 256]; 4];
    for &k in keys.iter() {
        for (byte, count) in counts.iter_mut().enumerate() {
            count[((k >> (32 + 8 * byte)) & 0xff) as usize] += 1;
        }
    }
    let mut other = vec![0u64; keys.len()];
    for (byte, count) in counts.iter().enumerate() {
        if count.iter().any(|&c| c as usize == keys.len()) {
            continue; // every key has the same byte here
        }
        let mut next = [0u32; 256];
        let mut sum = 0;
        for (n, &c) in next.iter_mut().zip(count) {
            *n = sum;
            sum += c;
        }
        for &k in keys.iter() {
            let d = ((k >> (32 + 8 * byte)) & 0xff) as usize;
            other[next[d] as usize] = k;
            next[d] += 1;
        }
        std::mem::swap(keys, &mut other);
    }
}

pub(super) fn spread_then_sort(keys: &mut Vec<u64>) {
    pub(super) const GROUPS: usize = 1 << 11;
    let group = |k: u64| (k >> (64 - 11)) as usize;
    // Each group's size, then where it starts.
    let mut next = vec![0u32; GROUPS];
    for &k in keys.iter() {
        next[group(k)] += 1;
    }
    let mut sum = 0;
    for n in next.iter_mut() {
        (*n, sum) = (sum, sum + *n);
    }
    let mut other = vec![0u64; keys.len()];
    for &k in keys.iter() {
        let g = group(k);
        other[next[g] as usize] = k;
        next[g] += 1;
    }
    // `next[g]` is now where group `g` ends.
    let mut start = 0;
    for end in next {
        other[start..end as usize].sort_unstable();
        start = end as usize;
    }
    *keys = other;
}
