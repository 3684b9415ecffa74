use super::arena::half_hash;
use super::fast::plan_flat;
use super::lookup::{RECENT, shared_hashes, sort_by_high_half};
use super::order::{acyclic, topological_order};
use super::*;

#[test]
fn short_type_strips_paths() {
    assert_eq!(short_type("alloc::string::String"), "String");
    assert_eq!(
        short_type("core::option::Option<alloc::string::String>"),
        "Option<String>"
    );
    assert_eq!(short_type("(u32, my::Id)"), "(u32, Id)");
}

#[test]
fn duplicate_names_pair_each_repeat_with_the_first_holder() {
    fn check<S: AsRef<str>>(names: &[S]) -> Vec<(u32, u32)> {
        let keys = (0..names.len() as u32).map(|i| name_key(names[i as usize].as_ref(), i));
        duplicate_names(keys.collect(), |i| names[i as usize].as_ref())
    }
    assert_eq!(
        check(&["a", "b", "a", "c", "a", "b"]),
        vec![(0, 2), (0, 4), (1, 5)]
    );
    assert!(check(&["x", "y"]).is_empty());
    // Many names, few repeats: found whatever the hash order.
    let many: Vec<String> = (0..10_000).map(|i| format!("t{}", i % 9_998)).collect();
    assert_eq!(check(&many), vec![(0, 9_998), (1, 9_999)]);
}

#[test]
fn topological_order_or_the_cycle_in_order() {
    // Edges that all point forward: declaration order, found without a walk.
    assert_eq!(
        topological_order(4, &[(0, 3), (1, 2), (2, 3)]),
        Ok(vec![0, 1, 2, 3])
    );
    assert_eq!(acyclic(4, &[(0, 3), (1, 2), (2, 3)]), Ok(()));
    // One edge back is enough to need the walk.
    assert_eq!(
        topological_order(4, &[(0, 3), (3, 1), (1, 2)]),
        Ok(vec![0, 3, 1, 2])
    );
    assert_eq!(acyclic(2, &[(1, 1)]), Err(vec![1]));
    assert_eq!(topological_order(2, &[(0, 1), (1, 1)]), Err(vec![1]));
    assert_eq!(topological_order(3, &[(2, 0), (0, 1)]), Ok(vec![2, 0, 1]));
    assert_eq!(acyclic(3, &[(2, 0), (0, 1)]), Ok(()));
    assert_eq!(
        acyclic(4, &[(3, 0), (0, 1), (1, 3), (2, 3)]),
        Err(vec![0, 1, 3])
    );
    assert_eq!(
        topological_order(3, &[(0, 1), (1, 2), (2, 1)]),
        Err(vec![1, 2])
    );
    assert_eq!(
        topological_order(4, &[(3, 0), (0, 1), (1, 3), (2, 3)]),
        Err(vec![0, 1, 3])
    );
}

#[test]
fn shared_hashes_are_the_runs_of_the_sorted_keys() {
    // What `shared_hashes` must give: the keys sorted stably by their
    // upper half, less those alone with theirs.
    fn expected(keys: &[u64]) -> Vec<u64> {
        let mut sorted = keys.to_vec();
        sorted.sort_by_key(|k| k >> 32);
        let mut out = Vec::new();
        for same in sorted.chunk_by(|x, y| x >> 32 == y >> 32) {
            if same.len() > 1 {
                out.extend_from_slice(same);
            }
        }
        out
    }
    assert_eq!(
        shared_hashes(vec![5 << 32, 1 << 32 | 1, 5 << 32 | 2, 3]),
        [5 << 32, 5 << 32 | 2]
    );
    assert!(shared_hashes(Vec::new()).is_empty());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut check = |n: u64, upper: &dyn Fn(u64) -> u64| {
        let keys: Vec<u64> = (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                upper(x) << 32 | i
            })
            .collect();
        let want = expected(&keys);
        assert_eq!(shared_hashes(keys), want, "{n} keys");
        want.len()
    };
    for n in [500, 5000, 200_000] {
        // Spread over all 32 bits: a few pairs at most.
        check(n, &|x| x >> 32);
        // Few distinct values: nearly every key shares its hash.
        assert_eq!(check(n, &|x| x % 7), n as usize);
        // About four hashes per key, in the top bits: some groups hold
        // a repeat and some do not.
        let bits = (4 * n).ilog2();
        let shared = check(n, &|x| (x >> (64 - bits)) << (32 - bits));
        assert!(shared > 0 && shared < n as usize, "{shared} of {n}");
        // One hash for all.
        assert_eq!(check(n, &|_| 42), n as usize);
    }
}

#[test]
fn sort_by_high_half_is_stable_on_the_upper_half() {
    let mut small = vec![5 << 32, 1 << 32 | 1, 5 << 32 | 2, 3];
    sort_by_high_half(&mut small);
    assert_eq!(small, [3, 1 << 32 | 1, 5 << 32, 5 << 32 | 2]);
    // `n` keys `upper(x) << 32 | i` from a running xorshift `x`, sorted
    // and compared with a stable sort on the upper halves.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut check = |n: u64, upper: fn(u64) -> u64| {
        let mut keys: Vec<u64> = (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                upper(x) << 32 | i
            })
            .collect();
        let mut expected = keys.clone();
        expected.sort_by_key(|k| k >> 32);
        sort_by_high_half(&mut keys);
        assert_eq!(keys, expected);
    };
    // Large enough for the radix sort; few distinct upper halves, so
    // that equal ones must keep their order.
    check(5000, |x| ((x % 97) << 24) | (x % 13));
    // Upper halves spread over all 32 bits: every digit takes a pass.
    check(5000, |x| x >> 32);
    // Upper halves spread over all 32 bits, on both sides of the size
    // where the sort changes method; few distinct values in the low 16
    // bits of the hash, so that equal upper halves occur.
    for n in [5000u64, 200_000] {
        check(n, |x| ((x >> 48) << 16) | (x % 7));
    }
}

/// A chain of `n` atoms, `v{i}` to `v{i+1}`, in `flow`.
fn chain_of(mut flow: Flow, n: u64) -> Flow {
    use crate::task::{FnTask, Outputs};
    for i in 0..n {
        let sig = Signature::new()
            .requires::<u64>(format!("v{i}"))
            .provides::<u64>(format!("v{}", i + 1));
        let task = FnTask::sync(sig, |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)));
        flow.push(Atom::new(format!("t{i}"), task));
    }
    flow
}

#[test]
fn a_flat_flow_becomes_its_nodes_in_place() {
    let flow = chain_of(Flow::linear("flat").input::<u64>("v0"), 5);
    let items = flow.items.as_ptr() as usize;
    let g = compile(flow).unwrap();
    assert_eq!(g.0.nodes.as_ptr() as usize, items);
    let names: Vec<&str> = g.atom_names().collect();
    assert_eq!(names, ["t0", "t1", "t2", "t3", "t4"]);
    assert_eq!(g.predecessors("t3"), Some(vec!["t2"]));
    assert!(matches!(
        g.0.exec_sources(3),
        [Source::Output { atom: 2, index: 0 }]
    ));
    assert!(!g.0.prioritized);
    // Priorities and time limits are set apart on the nodes that have them.
    use crate::task::{FnTask, Outputs};
    let limit = std::time::Duration::from_secs(7);
    let task = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
    let flow = Flow::graph("options")
        .add(Atom::new("plain", task()))
        .add(Atom::new("first", task()).priority(3))
        .add(Atom::new("slow", task()).timeout(limit));
    let items = flow.items.as_ptr() as usize;
    let g = compile(flow).unwrap();
    assert_eq!(g.0.nodes.as_ptr() as usize, items);
    assert!(g.0.prioritized);
    let nodes = &g.0.nodes;
    assert_eq!((nodes[0].priority(), nodes[0].timeout()), (0, None));
    assert_eq!((nodes[1].priority(), nodes[1].timeout()), (3, None));
    assert_eq!((nodes[2].priority(), nodes[2].timeout()), (0, Some(limit)));
    assert!(nodes[0].rare.is_none() && nodes[1].rare.is_some());
    // A nested flow is taken apart into a new vector.
    let outer = Flow::linear("outer")
        .input::<u64>("v0")
        .add(chain_of(Flow::linear("inner"), 2));
    let items = outer.items.as_ptr() as usize;
    let g = compile(outer).unwrap();
    assert_ne!(g.0.nodes.as_ptr() as usize, items);
    assert_eq!(g.atom_names().collect::<Vec<_>>(), ["t0", "t1"]);
    assert!(matches!(
        g.0.exec_sources(1),
        [Source::Output { atom: 0, index: 0 }]
    ));
}

/// Two different names whose hashes have the same upper half.
fn colliding_names() -> (String, String) {
    let mut seen: FxHashMap<u64, String> = FxHashMap::default();
    for i in 0.. {
        let name = format!("n{i}");
        if let Some(other) = seen.insert(half_hash(&name), name.clone()) {
            return (other, name);
        }
    }
    unreachable!("the search only ends with a collision")
}

#[test]
fn a_graph_tells_apart_names_whose_hashes_collide() {
    use crate::task::{FnTask, Outputs};
    let (x, y) = colliding_names();
    assert_ne!(x, y);
    assert_eq!(half_hash(&x), half_hash(&y));
    let task = |sig: Signature| FnTask::sync(sig, |_| Ok(Outputs::one(1u64)));
    // An atom that provides `symbol`, and one that reads it.
    let make = |name: &str, symbol: &str| {
        Atom::new(
            name.to_string(),
            task(Signature::new().provides::<u64>(symbol.to_string())),
        )
    };
    let read = |name: &str, symbol: &str, out: &str| {
        let sig = Signature::new()
            .requires::<u64>(symbol.to_string())
            .provides::<u64>(out.to_string());
        Atom::new(name.to_string(), task(sig))
    };
    let graph = Flow::graph("g")
        .add(read("read-y", &y, "a"))
        .add(make("make-x", &x))
        .add(read("read-x", &x, "b"))
        .add(make("make-y", &y));
    let compiled = graph.build().expect("both names have a provider");
    assert_eq!(compiled.predecessors("read-x").unwrap(), ["make-x"]);
    assert_eq!(compiled.predecessors("read-y").unwrap(), ["make-y"]);
    // Only one of them provided: the other is missing, not mistaken for it.
    let graph = Flow::graph("g")
        .add(make("make-x", &x))
        .add(read("read-y", &y, "a"));
    let errors = graph.build().unwrap_err().to_string();
    assert!(errors.contains(&format!("`{y}`")), "{errors}");
    assert!(!errors.contains(&format!("`{x}`")), "{errors}");
}

/// The names read inside graph flows are hashed while the atoms are
/// numbered, for every graph holding them: graphs nested in graphs, an
/// empty one among them, after atoms outside any graph, each find their
/// atoms' names.
#[test]
fn nested_graphs_find_the_names_their_atoms_read() {
    use crate::task::{FnTask, Outputs};
    let atom = |name: &str, reads: &[&str], provides: &str| {
        let mut sig = Signature::new();
        for r in reads {
            sig = sig.requires::<u64>(r.to_string());
        }
        let sig = sig.provides::<u64>(provides.to_string());
        Atom::new(
            name.to_string(),
            FnTask::sync(sig, |_| Ok(Outputs::one(1u64))),
        )
    };
    let inner = Flow::graph("inner")
        // Declared before its provider: only the graph's order finds it.
        .add(atom("d", &["c"], "dv"))
        .add(atom("c", &["a"], "c"));
    let outer = Flow::graph("outer")
        .add(atom("e", &["dv", "b"], "e"))
        .add(Flow::graph("empty"))
        .add(inner)
        .add(atom("b", &["a"], "b"));
    let root = Flow::linear("root")
        .input::<u64>("start")
        .add(atom("a", &["start"], "a"))
        .add(outer)
        .add(atom("f", &["e"], "f"));
    let compiled = root.build().expect("every name has one provider");
    let preds = |name: &str| compiled.predecessors(name).unwrap();
    assert_eq!(preds("a"), Vec::<&str>::new());
    assert_eq!(preds("c"), ["a"]);
    assert_eq!(preds("d"), ["c"]);
    assert_eq!(preds("b"), ["a"]);
    assert_eq!(preds("e"), ["b", "d"]); // sorted by name
    assert_eq!(preds("f"), ["e"]);
}

#[test]
fn a_chain_is_planned_in_one_walk_as_any_flow_is() {
    use crate::task::{FnTask, Outputs};
    let atom = |name: &'static str, sig: Signature| {
        Atom::new(name, FnTask::sync(sig, |_| Ok(Outputs::one(1u64))))
    };
    let u64s = |sig: Signature, reads: &[&'static str], provides: &[&'static str]| {
        let sig = reads.iter().fold(sig, |s, r| s.requires::<u64>(*r));
        provides.iter().fold(sig, |s, p| s.provides::<u64>(*p))
    };
    let sig = Signature::new;
    let chain = || {
        Flow::linear("c")
            .input::<u64>("x")
            .add(atom("a", u64s(sig(), &["x"], &["v"])))
            .add(atom("b", u64s(sig(), &["v"], &["w", "v"])))
            .add(atom(
                "c",
                u64s(sig(), &["w"], &["u"])
                    .optional::<u64>("gone")
                    .revert_requires::<u64>("v"),
            ))
            .add(atom(
                "d",
                u64s(sig(), &["x", "v"], &[]).optional::<u64>("w"),
            ))
    };
    let plan = plan_flat(&chain()).expect("a plain chain");
    // The store, the atom just before, the latest of two providers (two
    // back, through the join), an optional name nobody provides.
    assert_eq!(
        format!("{:?}", plan.sources),
        "[Store(0), Output { atom: 0, index: 0 }, Output { atom: 1, index: 0 }, Absent, \
         Output { atom: 1, index: 1 }, Store(0), Output { atom: 1, index: 1 }, \
         Output { atom: 1, index: 0 }]"
    );
    assert_eq!(plan.starts, [0, 1, 2, 5]);
    assert_eq!(plan.edges, [(0, 1), (1, 2), (2, 3)]);
    assert_eq!(plan.declared.len(), 1);
    plan.assert_same(&plan_any(&chain()).expect("it builds"));
    let compiled = chain().build().expect("it builds");
    assert_eq!(compiled.predecessors("d"), Some(vec!["c"]));

    // Flows the walk leaves to the general compiler: they build all the same.
    let one = |name: &'static str, reads: &'static str, provides: &'static str| {
        atom(name, u64s(sig(), &[reads], &[provides]))
    };
    let others = [
        Flow::unordered("u")
            .input::<u64>("x")
            .add(one("a", "x", "v")),
        Flow::linear("nested")
            .input::<u64>("x")
            .add(Flow::linear("inner").add(one("a", "x", "v"))),
        Flow::linear("collect").input::<u64>("x").add(atom(
            "a",
            sig().collect::<u64>("all", ["x"]).provides::<u64>("v"),
        )),
        Flow::linear("inject").add(one("a", "x", "v").inject("x", 1u64)),
        Flow::linear("rebind")
            .input::<u64>("y")
            .add(one("a", "x", "v").rebind("x", "y")),
    ];
    for flow in others {
        assert!(plan_flat(&flow).is_none(), "{}", flow.name);
        flow.build().expect("it builds");
    }
    // Flows with errors: the general compiler reports them.
    let wrong = [
        (
            Flow::linear("missing").add(one("a", "x", "v")),
            "flow `missing` is invalid: task `a` requires `x: u64`, but no earlier task in flow \
             `missing` provides `x` and the flow does not declare it as an input",
        ),
        (
            Flow::linear("later")
                .add(one("a", "v", "w"))
                .add(one("b", "w", "v")),
            "flow `later` is invalid: task `a` requires `v: u64`, but `v` is provided only by \
             `b`, which does not run before it: move `b` earlier",
        ),
        (
            Flow::linear("twice")
                .input::<u64>("x")
                .add(one("a", "x", "v"))
                .add(one("a", "v", "w")),
            "flow `twice` is invalid: two atoms are named `a` at `twice/a`: names must be \
             unique in a flow tree, rename one",
        ),
        (
            Flow::linear("type")
                .input::<u32>("x")
                .add(one("a", "x", "v")),
            "flow `type` is invalid: task `a` requires `x: u64`, but its provider `the flow's \
             inputs` provides `x` as `u32`: make the types agree, or rebind the input to \
             another symbol",
        ),
    ];
    for (flow, says) in wrong {
        assert!(plan_flat(&flow).is_none(), "{}", flow.name);
        assert_eq!(flow.build().unwrap_err().to_string(), says);
    }
}

#[test]
fn a_graph_is_planned_in_one_walk_as_any_flow_is() {
    use crate::task::{FnTask, Outputs};
    let task = |sig: Signature| FnTask::sync(sig, |_| Ok(Outputs::one(1u64)));
    let sig = Signature::new;
    let (x, y) = colliding_names();
    let graph = || {
        Flow::graph("g")
            .input::<u64>("s")
            // Reads what a later atom provides, and `s`, which it also
            // provides: the store's.
            .add(Atom::new(
                "first",
                task(
                    sig()
                        .requires::<u64>("v2")
                        .requires::<u64>("s")
                        .provides::<u64>("s")
                        .provides::<u64>("s2"),
                ),
            ))
            .add(Atom::new(
                "make",
                task(sig().provides::<u64>(x.clone()).provides::<u64>("v1")),
            ))
            // The atom just before, then two names of one hash.
            .add(Atom::new(
                "near",
                task(
                    sig()
                        .requires::<u64>("v1")
                        .requires::<u64>(x.clone())
                        .optional::<u64>(y.clone())
                        .provides::<u64>("v2"),
                ),
            ))
            .add(Atom::new("other", task(sig().provides::<u64>(y.clone()))))
            // Far back, an optional name nobody provides, a revert input.
            .add(Atom::new(
                "far",
                task(
                    sig()
                        .requires::<u64>(y.clone())
                        .requires::<u64>("s2")
                        .optional::<u64>("gone")
                        .revert_requires::<u64>("v1"),
                ),
            ))
    };
    let plan = plan_flat(&graph()).expect("a plain graph");
    assert_eq!(
        format!("{:?}", plan.sources),
        "[Output { atom: 2, index: 0 }, Store(0), Output { atom: 1, index: 1 }, \
         Output { atom: 1, index: 0 }, Output { atom: 3, index: 0 }, \
         Output { atom: 3, index: 0 }, Output { atom: 0, index: 1 }, Absent, \
         Output { atom: 1, index: 1 }]"
    );
    assert_eq!(plan.starts, [0, 2, 2, 5, 5]);
    assert_eq!(plan.edges, [(2, 0), (1, 2), (3, 2), (0, 4), (1, 4), (3, 4)]);
    plan.assert_same(&plan_any(&graph()).expect("it builds"));

    let one = |name: &'static str, reads: &'static str, provides: &'static str| {
        Atom::new(
            name,
            task(sig().requires::<u64>(reads).provides::<u64>(provides)),
        )
    };
    let make = |name: &'static str, provides: &'static str| {
        Atom::new(name, task(sig().provides::<u64>(provides)))
    };
    // Left to the general compiler, and built all the same.
    let others = [
        Flow::graph("twice")
            .add(make("a", "v"))
            .add(one("b", "v", "v"))
            .add(one("c", "w", "x"))
            .add(make("d", "w")),
        Flow::graph("linked")
            .add(make("a", "v"))
            .add(make("b", "w"))
            .link("a", "b"),
        Flow::graph("nested").add(Flow::linear("inner").add(make("a", "v"))),
    ];
    for flow in others {
        assert!(plan_flat(&flow).is_none(), "{}", flow.name);
        flow.build().expect("it builds");
    }
    let wrong = [
        (
            Flow::graph("cycle")
                .add(one("a", "w", "v"))
                .add(one("b", "v", "w")),
            "flow `cycle` is invalid: graph flow `cycle` has a cycle: `a` -> `b` -> `a`; \
             remove a link or an input that closes it",
        ),
        (
            Flow::graph("ambiguous")
                .add(make("a", "v"))
                .add(make("b", "v"))
                .add(one("c", "v", "w")),
            "flow `ambiguous` is invalid: task `c` requires `v`, but several tasks with no \
             order between them provide it: `a`, `b`; rename an output with `provides_as` \
             or rebind the input",
        ),
        (
            Flow::graph("missing").add(one("a", "x", "v")),
            "flow `missing` is invalid: task `a` requires `x: u64`, but no earlier task in \
             flow `missing` provides `x` and the flow does not declare it as an input",
        ),
        (
            Flow::graph("type").add(make("a", "v")).add(Atom::new(
                "b",
                task(sig().requires::<u32>("v").provides::<u64>("w")),
            )),
            "flow `type` is invalid: task `b` requires `v: u32`, but its provider `a` \
             provides `v` as `u64`: make the types agree, or rebind the input to another \
             symbol",
        ),
    ];
    for (flow, says) in wrong {
        assert!(plan_flat(&flow).is_none(), "{}", flow.name);
        assert_eq!(flow.build().unwrap_err().to_string(), says);
    }
}

/// Panics unless each atom `t{i}` of `compiled`, for `i` in `1..=n`,
/// waits for the atoms `t{k}` for each `k` of `reads(i)`, and for no
/// other (`v0`, which `t{i}` may read, comes from the store).
fn assert_reads_resolved(compiled: &CompiledFlow, n: usize, reads: impl Fn(usize) -> Vec<usize>) {
    for i in 1..=n {
        let mut want: Vec<String> = reads(i).iter().map(|k| format!("t{k}")).collect();
        want.retain(|p| p != "t0");
        want.sort();
        want.dedup();
        let got = compiled.predecessors(&format!("t{i}")).unwrap();
        assert_eq!(got, want, "t{i}");
    }
}

/// An atom `name` reading the `u64` symbols `reads` and providing the
/// `u64` symbols `provides`.
fn u64_atom(name: String, reads: &[String], provides: &[String]) -> Atom {
    use crate::task::{FnTask, Outputs};
    let mut sig = Signature::new();
    for r in reads {
        sig = sig.requires::<u64>(r.clone());
    }
    for p in provides {
        sig = sig.provides::<u64>(p.clone());
    }
    Atom::new(name, FnTask::sync(sig, |_| Ok(Outputs::one(1u64))))
}

#[test]
fn a_large_graph_is_planned_in_one_walk_near_in_step_recent_and_far() {
    let atom = u64_atom;
    // Next door and half-way back (the cursor finds the second), then
    // up to 89 back, irregularly (the cursor is given up, the table of
    // recent exports finds most), then anywhere in the first half,
    // irregularly (the table is given up too: the sort and join find
    // them).
    let n = 4 * RECENT;
    let reads = |i: usize| match i {
        _ if i <= RECENT => vec![i - 1, i / 2],
        _ if i <= 2 * RECENT => vec![i - 1 - i * 37 % 89],
        _ => vec![i * 7919 % (i / 2) + 1],
    };
    let (x, y) = colliding_names();
    let graph = || {
        let mut graph = Flow::graph("g").input::<u64>("v0");
        // Reads the last name, declared before the atom providing it.
        graph.push(atom("first".into(), &[format!("v{n}")], &["w".into()]));
        for i in 1..=n {
            let names: Vec<String> = reads(i).iter().map(|k| format!("v{k}")).collect();
            graph.push(atom(format!("t{i}"), &names, &[format!("v{i}")]));
        }
        graph.push(atom("make-x".into(), &[], std::slice::from_ref(&x)));
        graph.push(atom("make-y".into(), &[], std::slice::from_ref(&y)));
        graph.push(atom(
            "read-both".into(),
            &[x.clone(), y.clone()],
            &["z".into()],
        ));
        graph
    };
    assert!(plan_flat(&graph()).is_some());
    let compiled = graph().build().expect("every name has one provider");
    let preds = |name: &str| compiled.predecessors(name).unwrap();
    assert_reads_resolved(&compiled, n, reads);
    assert_eq!(preds("first"), [format!("t{n}")]);
    assert_eq!(preds("read-both"), ["make-x", "make-y"]);
}

/// A graph with more exports than its table of recent ones has slots:
/// its first atoms read the name just before them, which the table
/// finds, and one far back; the later ones only names so far back that
/// the table has mostly overwritten them, so that it is given up for the
/// rest. A reader declared before its provider, names whose hashes
/// collide, a name exported twice and an atom reading a name it exports
/// itself all resolve as the sorted join alone resolves them.
#[test]
fn a_large_graph_finds_near_and_far_providers_alike() {
    let atom = u64_atom;
    let n = 4 * RECENT;
    // What atom `i` reads: `v{k}` for each `k`.
    let reads = |i: usize| {
        if i <= RECENT {
            vec![i - 1, i / 2]
        } else {
            vec![i / 2]
        }
    };
    let (x, y) = colliding_names();
    let mut graph = Flow::graph("g").input::<u64>("v0");
    // Reads the last name, declared before the atom providing it.
    graph.push(atom("first".into(), &[format!("v{n}")], &["w".into()]));
    for i in 1..=n {
        let names: Vec<String> = reads(i).iter().map(|k| format!("v{k}")).collect();
        graph.push(atom(format!("t{i}"), &names, &[format!("v{i}")]));
    }
    graph.push(atom("make-x".into(), &[], &[x.clone(), "s".into()]));
    graph.push(atom("make-y".into(), &[], std::slice::from_ref(&y)));
    graph.push(atom("read-both".into(), &[x, y], &["z".into()]));
    // Reads `s` and provides it again: its provider is `make-x`.
    graph.push(atom("again".into(), &["s".into()], &["s".into()]));
    let compiled = graph.build().expect("every name has one provider");
    let preds = |name: &str| compiled.predecessors(name).unwrap();
    assert_reads_resolved(&compiled, n, reads);
    assert_eq!(preds("first"), [format!("t{n}")]);
    assert_eq!(preds("read-both"), ["make-x", "make-y"]);
    assert_eq!(preds("again"), ["make-x"]);

    // `s` now has two providers: a later reader is told so.
    let mut graph = Flow::graph("g");
    for i in 0..2 * RECENT {
        graph.push(atom(format!("t{i}"), &[], &[format!("v{i}")]));
    }
    graph.push(atom("make".into(), &[], &["s".into()]));
    graph.push(atom("again".into(), &["s".into()], &["s".into()]));
    graph.push(atom("reader".into(), &["s".into()], &["r".into()]));
    let errors = graph.build().unwrap_err().to_string();
    assert_eq!(
        errors,
        "flow `g` is invalid: task `reader` requires `s`, but several tasks with no order \
         between them provide it: `make`, `again`; rename an output with `provides_as` or \
         rebind the input"
    );
}

mod size_tests {
    /// The per-atom state of a compiled flow and of a run stays small: the
    /// graph's node and the run's slot, with outputs, failure and revert
    /// result, are what a million-atom flow holds a million of.
    #[test]
    fn per_atom_state_stays_small() {
        use std::mem::size_of;
        // The node keeps the atom's own name (moved, not copied): 8 bytes more
        // than a shared string, one allocation less per atom. It holds an
        // `FnTask`'s closures in place (48 bytes), where they used to be an
        // allocation of their own (80 bytes with its counts) behind a shared
        // pointer. What few nodes have (a retry controller, a gate, a
        // priority, renamed outputs, a time limit) is boxed apart, and the
        // ends of its sources follow from its signature, so that a node is
        // no larger than the flow item it is made from in place.
        assert_eq!(size_of::<super::Node>(), 96);
        assert_eq!(size_of::<crate::flow::Item>(), 96);
        assert_eq!(std::mem::align_of::<super::Node>(), 8);
        assert_eq!(std::mem::align_of::<crate::flow::Item>(), 8);
        assert_eq!(size_of::<crate::engine::machine::Slot>(), 20);
        assert_eq!(size_of::<Option<crate::task::Outputs>>(), 40);
        assert_eq!(size_of::<Option<crate::failure::Failure>>(), 8);
        assert_eq!(size_of::<Option<crate::symbol::Value>>(), 24);
        assert_eq!(size_of::<super::Source>(), 24);
        assert_eq!(size_of::<crate::TypeInfo>(), 8);
        // Moved from the engine to each task.
        assert_eq!(size_of::<crate::task::Args>(), 56);
        assert_eq!(size_of::<crate::SymbolSpec>(), 32);
    }
}
