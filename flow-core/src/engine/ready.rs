//! The ready queue and the per-atom tables of the scheduling core.

use std::collections::{BinaryHeap, VecDeque};

/// One optional value per atom, for what most runs never set (failures,
/// revert results): nothing is allocated or written until the first value,
/// so a run that neither fails nor reverts with a result touches none of it.
pub(crate) struct Sparse<T> {
    pub(crate) len: usize,
    /// Empty, or `len` long.
    pub(crate) items: Vec<Option<T>>,
}

impl<T> Sparse<T> {
    pub(crate) fn new(len: usize) -> Self {
        Sparse {
            len,
            items: Vec::new(),
        }
    }

    /// Atom `i`'s value, if it has one.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)?.as_ref()
    }

    /// Sets (or, with `None`, clears) atom `i`'s value.
    pub(crate) fn set(&mut self, i: usize, value: Option<T>) {
        if self.items.is_empty() {
            if value.is_none() {
                return;
            }
            self.items.resize_with(self.len, || None);
        }
        self.items[i] = value;
    }

    /// Clears every value.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }
}

#[derive(Default)]
pub(crate) struct Dirty {
    pub(crate) atoms: Vec<u32>,
    pub(crate) marked: Vec<bool>,
    pub(crate) flow: bool,
}

/// A max-queue for ready atoms that costs O(1) for keys pushed in falling
/// order, the common case (atoms become ready in declaration order going
/// forward, in reverse order going back); other keys go to a heap.
pub(crate) struct Ready<T> {
    /// Falling from front to back.
    pub(crate) run: VecDeque<T>,
    pub(crate) heap: BinaryHeap<T>,
}

impl<T> Default for Ready<T> {
    fn default() -> Self {
        Ready {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord + Copy> Ready<T> {
    pub(crate) fn push(&mut self, key: T) {
        match self.run.back() {
            Some(&last) if key > last => self.heap.push(key),
            _ => self.run.push_back(key),
        }
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        match (self.run.front(), self.heap.peek()) {
            (Some(a), Some(b)) if b > a => self.heap.pop(),
            (Some(_), _) => self.run.pop_front(),
            (None, _) => self.heap.pop(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.run.is_empty() && self.heap.is_empty()
    }

    /// Room for `n` more keys pushed in falling order, the common case.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.run.reserve_exact(n);
    }

    pub(crate) fn clear(&mut self) {
        self.run.clear();
        self.heap.clear();
    }
}
