//! Scaling tests (specification, section 4): building and running a flow must
//! take time linear in its size, with no rescans of the graph.
//!
//! A 100,000-task linear chain and a 100,000-task unordered flow are built and
//! run in memory on the serial engine, and their time per task is compared with
//! that of 1,000-task versions. They are slow in debug builds and sensitive to
//! load, so they are ignored by default:
//!
//! ```text
//! cargo test --release --test scaling -- --ignored --nocapture
//! ```

mod common;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use flow::{Atom, Engine, Flow, FlowState, FnTask, Outputs, Signature};

const SMALL: usize = 1_000;
const LARGE: usize = 100_000;
/// Repetitions of the small case; its median is kept.
const SMALL_RUNS: usize = 21;
/// Repetitions of the large case; the best is kept.
const LARGE_RUNS: usize = 3;
/// Each large case must build and run within this.
const LARGE_LIMIT: Duration = Duration::from_secs(5);
/// Time per task at `LARGE` may exceed that at `SMALL` by at most this factor.
const MAX_RATIO: f64 = 1.5;

/// Timing runs one at a time, so that the tests do not disturb each other.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// How long one build (making the flow tree, then compiling it with
/// `Flow::build`) and one run took.
#[derive(Clone, Copy, Debug)]
struct Timing {
    make: Duration,
    compile: Duration,
    run: Duration,
}

impl Timing {
    fn build(self) -> Duration {
        self.make + self.compile
    }

    fn total(self) -> Duration {
        self.build() + self.run
    }
}

fn ns_per_task(d: Duration, tasks: usize) -> f64 {
    d.as_nanos() as f64 / tasks as f64
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// Makes the flow with `make`, builds it, and runs it on the serial engine with
/// `v0 = 0`; `check` inspects the engine afterwards. Dropping is not timed.
fn measure(
    rt: &tokio::runtime::Runtime,
    make: impl FnOnce() -> Flow,
    check: impl FnOnce(&Engine),
) -> Timing {
    let start = Instant::now();
    let flow = make();
    let made = Instant::now();
    let flow = flow.build().expect("the flow builds");
    let compiled = Instant::now();
    let mut engine = Engine::builder(flow).input("v0", 0u64).build();
    rt.block_on(engine.run()).expect("the flow succeeds");
    let ran = Instant::now();
    assert_eq!(engine.state(), FlowState::Success);
    check(&engine);
    drop(engine);
    Timing {
        make: made - start,
        compile: compiled - made,
        run: ran - compiled,
    }
}

/// Task `i` requires `v0: u64` and provides `u{i}` = input + i.
fn unordered(n: usize) -> Flow {
    let mut flow = Flow::unordered("wide").input::<u64>("v0");
    for i in 0..n {
        let step = i as u64;
        let task = FnTask::sync(
            Signature::new()
                .requires::<u64>("v0")
                .provides::<u64>(format!("u{i}")),
            move |a| Ok(Outputs::one(a.get::<u64>(0)? + step)),
        );
        flow.push(Atom::new(format!("t{i}"), task));
    }
    flow
}

fn check_chain(n: usize) -> impl FnOnce(&Engine) {
    move |engine| {
        assert_eq!(engine.flow().len(), n);
        assert_eq!(
            engine.flow().predecessors(&format!("t{}", n - 1)).unwrap(),
            [format!("t{}", n - 2)]
        );
        assert_eq!(engine.fetch::<u64>(&format!("v{n}")), Some(&(n as u64)));
    }
}

fn check_unordered(n: usize) -> impl FnOnce(&Engine) {
    move |engine| {
        assert_eq!(engine.flow().len(), n);
        assert!(
            engine
                .flow()
                .predecessors(&format!("t{}", n - 1))
                .unwrap()
                .is_empty()
        );
        let last = n as u64 - 1;
        assert_eq!(engine.fetch::<u64>(&format!("u{last}")), Some(&last));
    }
}

/// Times the small case (median of `SMALL_RUNS`) and the large one (best of
/// `LARGE_RUNS`), prints both, and checks the bounds.
fn scaling<C: FnOnce(&Engine)>(name: &str, make: fn(usize) -> Flow, check: fn(usize) -> C) {
    let _guard = EXCLUSIVE.lock().unwrap_or_else(PoisonError::into_inner);
    let rt = runtime();

    let mut small: Vec<Timing> = (0..SMALL_RUNS)
        .map(|_| measure(&rt, || make(SMALL), check(SMALL)))
        .collect();
    small.sort_by_key(|t| t.total());
    let small = small[SMALL_RUNS / 2];

    let mut large: Vec<Timing> = (0..LARGE_RUNS)
        .map(|_| measure(&rt, || make(LARGE), check(LARGE)))
        .collect();
    for t in &large {
        assert!(
            t.total() < LARGE_LIMIT,
            "{name}: {LARGE} tasks took {:?} (build {:?}, run {:?})",
            t.total(),
            t.build(),
            t.run
        );
    }
    large.sort_by_key(|t| t.total());
    let large = large[0];

    let report = |t: Timing, n: usize, how: &str| {
        let ns = |d| ns_per_task(d, n);
        println!(
            "{name}: {n:>7} tasks ({how}): build {:7.1} ns/task (make {:7.1} + compile {:7.1}), \
             run {:7.1} ns/task, total {:7.1} ns/task; {:?} + {:?}",
            ns(t.build()),
            ns(t.make),
            ns(t.compile),
            ns(t.run),
            ns(t.total()),
            t.build(),
            t.run,
        );
        ns(t.total())
    };
    let st = report(small, SMALL, &format!("median of {SMALL_RUNS}"));
    let lt = report(large, LARGE, &format!("best of {LARGE_RUNS}"));
    let ratio = lt / st;
    println!("{name}: per-task ratio {LARGE}/{SMALL} = {ratio:.2} (limit {MAX_RATIO})");
    assert!(
        ratio <= MAX_RATIO,
        "{name}: {lt:.1} ns/task at {LARGE} tasks vs {st:.1} ns/task at {SMALL}: ratio {ratio:.2} > {MAX_RATIO}"
    );
}

#[test]
#[ignore = "scaling: run in release with --ignored"]
fn linear_chain_scales_linearly() {
    scaling("chain", common::chain, check_chain);
}

#[test]
#[ignore = "scaling: run in release with --ignored"]
fn unordered_flow_scales_linearly() {
    scaling("unordered", unordered, check_unordered);
}
