use super::{AtomState, Control, Machine, Notifier, Ready, Sparse};
use crate::{Atom, Flow, FnTask, Outputs, Signature};

/// An atom reading `reads` and providing `provides`, all `u64`.
fn atom(name: &'static str, reads: &[&'static str], provides: &'static str) -> Atom {
    let sig = reads
        .iter()
        .fold(Signature::new(), |sig, &r| sig.requires::<u64>(r))
        .provides::<u64>(provides);
    Atom::new(name, FnTask::sync(sig, |_| Ok(Outputs::one(1u64))))
}

/// The atoms in the forward queue, in the order they would start.
fn drain_forward(m: &mut Machine) -> Vec<u32> {
    std::iter::from_fn(|| m.forward.pop())
        .map(|(_, key)| u32::MAX - key)
        .collect()
}

/// A run from the start queues the atoms with no predecessor in
/// declaration order, each atom waiting for all its predecessors, and
/// the compiled graph knows how many there are; a run that is not from
/// the start is counted from the atoms' states instead.
#[test]
fn a_run_from_the_start_queues_the_roots_in_order() {
    for prioritized in [false, true] {
        // `a`, `b` and `c` read nothing; `d` reads `a` and `b`; `e` reads `d`.
        let c = atom("c", &[], "vc");
        // With a priority, `c` goes first.
        let c = if prioritized { c.priority(5) } else { c };
        let flow = Flow::graph("g")
            .add(atom("a", &[], "va"))
            .add(atom("b", &[], "vb"))
            .add(c)
            .add(atom("d", &["va", "vb"], "vd"))
            .add(atom("e", &["vd"], "ve"));
        let g = flow.build().expect("a valid flow").0;
        assert_eq!(g.roots, 3);
        assert_eq!(g.prioritized, prioritized);
        let (first, then) = if prioritized {
            ([2, 0, 1], [2, 0])
        } else {
            ([0, 1, 2], [0, 2])
        };
        let notifier = Notifier::new(Vec::new(), None);
        let mut m = Machine::new(g, notifier, false, Control::new());
        m.schedule();
        let waiting: Vec<u32> = m.slots.iter().map(|s| s.waiting).collect();
        assert_eq!(waiting, [0, 0, 0, 2, 1], "prioritized: {prioritized}");
        assert_eq!(drain_forward(&mut m), first);

        // `b` done: the pass from the start queues `a` before it finds
        // `b`, and must take it back.
        m.slots[1].state = AtomState::Success;
        m.schedule();
        let waiting: Vec<u32> = m.slots.iter().map(|s| s.waiting).collect();
        assert_eq!(waiting, [0, 0, 0, 1, 1], "prioritized: {prioritized}");
        assert_eq!(drain_forward(&mut m), then);
    }
}

/// Debug builds check every announced state change against the table:
/// a state written past `set_state` and then announced is caught.
#[cfg(debug_assertions)]
#[test]
#[should_panic(
    expected = "atom `a` was announced PENDING then SUCCESS: not a move of the state table"
)]
fn an_announced_change_outside_the_table_is_caught_in_debug_builds() {
    let flow = Flow::linear("f")
        .add(atom("a", &[], "va"))
        .build()
        .expect("a valid flow");
    let notifier = Notifier::new(
        vec![std::sync::Arc::new(crate::CaptureListener::new())],
        None,
    );
    let mut m = Machine::new(flow.0, notifier, false, Control::new());
    m.slots[0].state = AtomState::Success;
    m.announce(0);
}

/// Nothing is allocated until a value is set; clearing a value or all of
/// them leaves the others as they were, or none.
#[test]
fn sparse_allocates_on_the_first_value() {
    let mut s: Sparse<u32> = Sparse::new(4);
    s.set(2, None);
    assert_eq!(s.items.capacity(), 0);
    assert_eq!(s.get(2), None);
    assert_eq!(s.get(9), None);
    s.set(1, Some(10));
    s.set(3, Some(30));
    assert_eq!(s.items.len(), 4);
    assert_eq!(
        (0..4).map(|i| s.get(i).copied()).collect::<Vec<_>>(),
        [None, Some(10), None, Some(30)]
    );
    s.set(1, None);
    assert_eq!(
        (0..4).map(|i| s.get(i).copied()).collect::<Vec<_>>(),
        [None, None, None, Some(30)]
    );
    s.clear();
    assert_eq!(s.items.len(), 0);
    assert_eq!(s.get(3), None);
    s.set(0, Some(1));
    assert_eq!(
        (0..4).map(|i| s.get(i).copied()).collect::<Vec<_>>(),
        [Some(1), None, None, None]
    );
}

/// Pops in the order a binary heap would, whatever the order of pushes.
#[test]
fn ready_pops_the_largest_first() {
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        let mut ready = Ready::default();
        let mut heap = std::collections::BinaryHeap::new();
        let mut popped = (Vec::new(), Vec::new());
        for step in 0..300u64 {
            // Mostly falling keys, as the engine pushes them, with some
            // out of order and some repeated.
            let key = match next() % 4 {
                0 => next() % 500,
                _ => 1000 - step - round % 3,
            };
            ready.push(key);
            heap.push(key);
            if next() % 3 == 0 {
                popped.0.push(ready.pop());
                popped.1.push(heap.pop());
            }
        }
        while let Some(k) = heap.pop() {
            popped.1.push(Some(k));
            popped.0.push(ready.pop());
        }
        assert!(ready.is_empty());
        assert_eq!(ready.pop(), None);
        assert_eq!(popped.0, popped.1, "round {round}");
    }
}
