//! Which provider of a symbol an item of a graph flow reads, when the
//! graph's explicit links order its providers.
//!
//! In a graph flow a required symbol is linked from its provider. The
//! explicit links choose among providers (semantics, section 2.2):
//!
//! 1. a provider linked after the reader (a path of links from the reader
//!    to it) runs after it and is not read; the symbol is looked for further
//!    out, in the enclosing flows and the run's inputs. Only when nothing
//!    there provides it either is that provider read, and the build reports
//!    the cycle the read makes;
//! 2. of several providers linked before the reader, the nearest wins: the
//!    one every other of them is linked before;
//! 3. when several provide it and none is linked before the reader, the
//!    latest of those not linked after it wins, and becomes the reader's
//!    predecessor, as a single provider would;
//! 4. providers with no order between them are ambiguous: the build reports
//!    them (the latest ones of the set looked at).
//!
//! So in a graph where `a`, `b` and `c` each map `value -> value + 1`, the
//! links `a -> b -> c` make `a` read the run's `value`, `b` read `a`'s and
//! `c` read `b`'s, as a linear flow would. Only explicit links order
//! providers here: the links inferred from data are what this decides.
//!
//! A look-up walks the links backwards from the reader and stops at the
//! first provider on each path, so a chain of providers costs a step per
//! read; whether a provider is linked after the reader is mostly settled by
//! the links' topological order, without a walk.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::flow::Link;

/// The explicit links of a graph flow, resolved to its items.
pub(crate) struct Linked {
    /// Each link's items, in the order given; `Err(true)` when its source is
    /// not an item of the graph, `Err(false)` when only its target is not.
    pub(crate) ends: Vec<Result<(u32, u32), bool>>,
    /// The order they make, which picks among several providers of a name.
    pub(crate) order: Links,
}

impl Linked {
    /// `links` between the items named `names`, in item order; `None` when
    /// there are no links.
    pub(crate) fn resolve<'n>(
        names: impl ExactSizeIterator<Item = &'n str>,
        links: &[Link],
    ) -> Option<Box<Linked>> {
        if links.is_empty() {
            return None;
        }
        let n = names.len();
        let by_name: FxHashMap<&str, u32> = names.zip(0..).collect();
        let ends: Vec<Result<(u32, u32), bool>> = (links.iter())
            .map(
                |link| match (by_name.get(&*link.from), by_name.get(&*link.to)) {
                    (Some(&a), Some(&b)) => Ok((a, b)),
                    (a, _) => Err(a.is_none()),
                },
            )
            .collect();
        let pairs: Vec<(u32, u32)> = ends.iter().filter_map(|e| e.ok()).collect();
        let order = Links::new(n, &pairs);
        Some(Box::new(Linked { ends, order }))
    }
}

/// The explicit links of one graph flow, by item position, with room for
/// the walks over them.
pub(crate) struct Links {
    succ_off: Vec<u32>,
    succ: Vec<u32>,
    pred_off: Vec<u32>,
    pred: Vec<u32>,
    /// Each item's place in a topological order of the links, `None` when
    /// they make a cycle: an item is never linked after one placed later.
    topo: Option<Vec<u32>>,
    /// For each item, the walk that last reached it: marks need no clearing
    /// between walks. Made on the first walk.
    mark: Vec<u32>,
    walk: u32,
    queue: VecDeque<u32>,
}

/// What [`Links::nearest`] finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Nearest {
    /// The provider the reader reads.
    One(u32),
    /// Several providers with no order between them, in item order.
    Several(Vec<u32>),
    /// Every provider is linked after the reader: what it reads only when
    /// nothing further out provides the symbol.
    After(Box<Nearest>),
}

/// A compressed adjacency array of `n` nodes from `(from, to)` pairs.
fn adjacency(n: usize, pairs: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let mut off = vec![0u32; n + 1];
    for &(a, _) in pairs {
        off[a as usize + 1] += 1;
    }
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut fill = off.clone();
    let mut adj = vec![0u32; pairs.len()];
    for &(a, b) in pairs {
        adj[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
    }
    (off, adj)
}

impl Links {
    /// The links `(from, to)` between the `n` items of a graph.
    pub(crate) fn new(n: usize, links: &[(u32, u32)]) -> Links {
        let (succ_off, succ) = adjacency(n, links);
        let back: Vec<(u32, u32)> = links.iter().map(|&(a, b)| (b, a)).collect();
        let (pred_off, pred) = adjacency(n, &back);
        // Kahn's algorithm; the order among ready items does not matter.
        let mut waiting: Vec<u32> = (0..n).map(|i| pred_off[i + 1] - pred_off[i]).collect();
        let mut ready: Vec<u32> = (0..n as u32)
            .filter(|&i| waiting[i as usize] == 0)
            .collect();
        let mut topo = vec![0u32; n];
        let mut placed = 0;
        while let Some(i) = ready.pop() {
            topo[i as usize] = placed;
            placed += 1;
            for &s in &succ[succ_off[i as usize] as usize..succ_off[i as usize + 1] as usize] {
                waiting[s as usize] -= 1;
                if waiting[s as usize] == 0 {
                    ready.push(s);
                }
            }
        }
        Links {
            topo: (placed as usize == n).then_some(topo),
            succ_off,
            succ,
            pred_off,
            pred,
            mark: Vec::new(),
            walk: 0,
            queue: VecDeque::new(),
        }
    }

    /// Starts a walk: no item is marked by it yet.
    fn start(&mut self) -> u32 {
        if self.mark.is_empty() {
            self.mark = vec![0; self.pred_off.len() - 1];
        }
        if self.walk == u32::MAX {
            self.mark.fill(0);
            self.walk = 0;
        }
        self.walk += 1;
        self.queue.clear();
        self.walk
    }

    /// Marks `i` as reached by walk `w`; `false` if it already was.
    fn reach(&mut self, i: u32, w: u32) -> bool {
        let seen = self.mark[i as usize] == w;
        self.mark[i as usize] = w;
        !seen
    }

    /// Whether `provider` is linked after `reader`.
    pub(crate) fn after(&mut self, reader: u32, provider: u32) -> bool {
        !self.linked_after(reader, &[provider]).is_empty()
    }

    /// Those of `providers` linked after `reader`, in the order given.
    fn linked_after(&mut self, reader: u32, providers: &[u32]) -> Vec<u32> {
        let (r, off) = (reader as usize, &self.pred_off);
        // Settled without a walk: nothing follows the reader, nothing
        // precedes the provider, or the provider comes first in the order.
        let surely_not = |p: u32| {
            let p = p as usize;
            off[p] == off[p + 1] || self.topo.as_ref().is_some_and(|t| t[p] < t[r])
        };
        let follows = self.succ_off[r] != self.succ_off[r + 1];
        let walk = follows && providers.iter().any(|&p| !surely_not(p));
        if !walk {
            return Vec::new();
        }
        let w = self.start();
        self.queue.push_back(reader);
        while let Some(i) = self.queue.pop_front() {
            for k in self.succ_off[i as usize]..self.succ_off[i as usize + 1] {
                let s = self.succ[k as usize];
                if self.reach(s, w) {
                    self.queue.push_back(s);
                }
            }
        }
        (providers.iter().copied())
            .filter(|&p| self.mark[p as usize] == w)
            .collect()
    }

    /// The provider item `reader` reads, among several: `provides` says
    /// whether an item (never the reader) provides the symbol, and
    /// `providers` lists all that do (called only when no provider is
    /// linked before the reader). See the module's docs for the rule.
    pub(crate) fn nearest(
        &mut self,
        reader: u32,
        provides: impl Fn(u32) -> bool,
        providers: impl FnOnce() -> Vec<u32>,
    ) -> Nearest {
        // Back from the reader, up to the first provider on each path.
        let w = self.start();
        self.reach(reader, w);
        self.queue.push_back(reader);
        let mut before = Vec::new();
        while let Some(i) = self.queue.pop_front() {
            for k in self.pred_off[i as usize]..self.pred_off[i as usize + 1] {
                let p = self.pred[k as usize];
                if !self.reach(p, w) {
                    continue;
                }
                if provides(p) {
                    before.push(p);
                } else {
                    self.queue.push_back(p);
                }
            }
        }
        if !before.is_empty() {
            return self.latest(before);
        }
        // None linked before: the latest of those not linked after it.
        let mut all = providers();
        all.sort_unstable();
        all.dedup();
        let after = self.linked_after(reader, &all);
        if after.len() == all.len() {
            return Nearest::After(Box::new(self.latest(all)));
        }
        // Both in item order.
        let mut after = after.into_iter().peekable();
        all.retain(|&p| after.next_if_eq(&p).is_none());
        self.latest(all)
    }

    /// The one of `set` that every other is linked before, or, when there
    /// is none, those that no other is linked after.
    fn latest(&mut self, mut set: Vec<u32>) -> Nearest {
        set.sort_unstable();
        set.dedup();
        if let [one] = set[..] {
            return Nearest::One(one);
        }
        // Back from every member: a member reached is linked before another.
        let w = self.start();
        for &m in &set {
            for k in self.pred_off[m as usize]..self.pred_off[m as usize + 1] {
                let p = self.pred[k as usize];
                if self.reach(p, w) {
                    self.queue.push_back(p);
                }
            }
        }
        while let Some(i) = self.queue.pop_front() {
            for k in self.pred_off[i as usize]..self.pred_off[i as usize + 1] {
                let p = self.pred[k as usize];
                if self.reach(p, w) {
                    self.queue.push_back(p);
                }
            }
        }
        let last: Vec<u32> = set
            .iter()
            .copied()
            .filter(|&m| self.mark[m as usize] != w)
            .collect();
        match last[..] {
            [one] => Nearest::One(one),
            // Every member linked before another: a cycle, reported as one.
            [] => Nearest::Several(set),
            _ => Nearest::Several(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nearest(n: usize, links: &[(u32, u32)], reader: u32, providers: &[u32]) -> Nearest {
        let mut order = Links::new(n, links);
        order.nearest(reader, |i| providers.contains(&i), || providers.to_vec())
    }

    #[test]
    fn the_nearest_provider_linked_before_the_reader_wins() {
        // a -> b -> c -> d, all but d provide.
        let chain = [(0, 1), (1, 2), (2, 3)];
        assert_eq!(nearest(4, &chain, 3, &[0, 1, 2]), Nearest::One(2));
        assert_eq!(nearest(4, &chain, 2, &[0, 1]), Nearest::One(1));
        // Through items that do not provide: a -> x -> r, b unlinked.
        assert_eq!(nearest(4, &[(0, 1), (1, 3)], 3, &[0, 2]), Nearest::One(0));
        // A diamond: a -> b -> r and a -> r; b is the nearer.
        assert_eq!(
            nearest(3, &[(0, 1), (1, 2), (0, 2)], 2, &[0, 1]),
            Nearest::One(1)
        );
    }

    #[test]
    fn with_none_linked_before_the_latest_not_linked_after_wins() {
        // a -> b, r unlinked: b.
        assert_eq!(nearest(3, &[(0, 1)], 2, &[0, 1]), Nearest::One(1));
        // a -> r -> b: a is before r (step 1).
        assert_eq!(nearest(3, &[(0, 2), (2, 1)], 2, &[0, 1]), Nearest::One(0));
        // r -> b, a unlinked: b is after r, a wins.
        assert_eq!(nearest(3, &[(2, 1)], 2, &[0, 1]), Nearest::One(0));
        // Both after r: read only if nothing further out provides it, then
        // the latest of them (the build reports the cycle that makes).
        assert_eq!(
            nearest(3, &[(2, 0), (0, 1)], 2, &[0, 1]),
            Nearest::After(Box::new(Nearest::One(1)))
        );
        assert_eq!(
            nearest(3, &[(2, 0), (2, 1)], 2, &[0, 1]),
            Nearest::After(Box::new(Nearest::Several(vec![0, 1])))
        );
    }

    #[test]
    fn a_single_provider_is_after_the_reader_only_by_a_path_of_links() {
        // r -> x -> p: after.
        let mut order = Links::new(3, &[(0, 1), (1, 2)]);
        assert!(order.after(0, 2));
        assert!(!order.after(2, 0));
        // Settled by the order: p first, or p with nothing before it, or r
        // with nothing after it.
        let mut order = Links::new(4, &[(0, 1), (2, 3)]);
        assert!(!order.after(1, 0));
        assert!(!order.after(0, 2));
        assert!(!order.after(3, 0));
        assert!(!order.after(0, 3));
        // A cycle leaves no order: the links are walked.
        let mut order = Links::new(3, &[(0, 1), (1, 0), (1, 2)]);
        assert!(order.topo.is_none());
        assert!(order.after(0, 2));
        assert!(order.after(1, 0));
        assert!(!order.after(2, 0));
    }

    #[test]
    fn providers_with_no_order_between_them_are_ambiguous() {
        assert_eq!(nearest(3, &[], 2, &[0, 1]), Nearest::Several(vec![0, 1]));
        // a -> b and x: b and x are the latest.
        assert_eq!(
            nearest(4, &[(0, 1)], 3, &[0, 1, 2]),
            Nearest::Several(vec![1, 2])
        );
        // Both linked before the reader, not to each other.
        assert_eq!(
            nearest(3, &[(0, 2), (1, 2)], 2, &[0, 1]),
            Nearest::Several(vec![0, 1])
        );
    }

    #[test]
    fn links_in_a_cycle_end_the_walks() {
        // a -> b -> c -> a, each providing: each reads the one before it.
        let cycle = [(0, 1), (1, 2), (2, 0)];
        assert_eq!(nearest(3, &cycle, 1, &[0, 2]), Nearest::One(0));
        assert_eq!(nearest(3, &cycle, 0, &[1, 2]), Nearest::One(2));
        // Two providers on a cycle that reaches neither reader: ambiguous.
        assert_eq!(
            nearest(3, &[(0, 1), (1, 0)], 2, &[0, 1]),
            Nearest::Several(vec![0, 1])
        );
    }

    #[test]
    fn many_walks_need_no_clearing() {
        let mut order = Links::new(3, &[(0, 2), (1, 2)]);
        order.walk = u32::MAX - 1;
        for _ in 0..4 {
            assert_eq!(
                order.nearest(2, |i| i < 2, || vec![0, 1]),
                Nearest::Several(vec![0, 1])
            );
        }
    }
}
