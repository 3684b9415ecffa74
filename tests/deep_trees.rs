//! Deeply nested flows (issue 36, section 6): no walk of a flow tree may
//! overflow the stack, since the abort that follows cannot be caught.
//!
//! Trees far deeper than [`Flow::MAX_DEPTH`] are made, cloned, printed,
//! refused by `build` with the exact error, and dropped, on a thread with a
//! 2 MiB stack and on a tokio worker with the same; a tree at the limit
//! builds, runs on both engines, is suspended half way and resumed from
//! its journal by a new engine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flow::{
    Atom, BuildError, CompiledFlow, Engine, Flow, FlowState, FnTask, MemoryBackend, Mode, Outputs,
    RunError, RunHandle, Signature,
};

/// The stack of a tokio worker thread, and of the threads the tests below
/// run on.
const STACK: usize = 2 << 20;

/// Runs `f` on a new thread with a 2 MiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("a thread")
        .join()
        .expect("no panic")
}

/// Runs `f` as a task on a tokio worker thread with a 2 MiB stack.
fn on_tokio_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_stack_size(STACK)
        .build()
        .expect("a runtime");
    rt.block_on(async move { rt_spawn(f).await })
}

async fn rt_spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::spawn(async move { f() }).await.expect("no panic")
}

/// A tree `depth` flows deep: flow `f{d}` holds atom `a{d}`, then (but for the
/// deepest) flow `f{d+1}`. The patterns go linear, graph, unordered, linear,
/// ...; each atom counts its runs and reads and provides nothing.
fn mixed(depth: usize, runs: &Arc<AtomicUsize>) -> Flow {
    let atom = |d: usize| {
        let runs = runs.clone();
        Atom::new(
            format!("a{d}"),
            FnTask::sync(Signature::new(), move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(Outputs::new())
            }),
        )
    };
    let level = |d: usize| match d % 3 {
        0 => Flow::linear(format!("f{d}")),
        1 => Flow::graph(format!("f{d}")),
        _ => Flow::unordered(format!("f{d}")),
    };
    let mut flow = level(depth - 1).add(atom(depth - 1));
    for d in (0..depth - 1).rev() {
        flow = level(d).add(atom(d)).add(flow);
    }
    flow
}

/// What `build` says of a tree `depth` flows deep, past the limit.
fn too_deep(depth: usize) -> (BuildError, String) {
    let error = BuildError::TooDeep {
        flow: format!("f{}", depth - 1),
        depth,
        limit: 1_000,
    };
    let text = format!(
        "flow `f{}` is nested {depth} flows deep, deeper than the limit of 1000: flatten the \
         tree, for example by adding the items of a nested linear flow to the linear flow \
         holding it",
        depth - 1
    );
    (error, text)
}

/// Makes, clones, prints, builds and drops a tree `depth` flows deep, past
/// the limit: the whole story of such a tree.
fn refuse(depth: usize) {
    let runs = Arc::new(AtomicUsize::new(0));
    let flow = mixed(depth, &runs);
    let copy = flow.clone();
    let text = format!("{flow:?}");
    assert_eq!(text.matches("Flow { name: ").count(), depth);
    assert!(
        text.starts_with("Flow { name: \"f0\", pattern: Linear, items: [Atom(Atom { name: \"a0\""),
        "{}",
        &text[..200]
    );
    assert!(text.ends_with("retry: None })], links: [], inputs: [], retry: None }"));
    assert_eq!(format!("{copy:?}"), text, "the copy is the same tree");
    drop(text);
    let err = flow.build().expect_err("too deep");
    let (error, message) = too_deep(depth);
    assert_eq!(err.errors(), [error]);
    assert_eq!(err.errors()[0].to_string(), message);
    assert_eq!(err.to_string(), format!("flow `f0` is invalid: {message}"));
    drop(copy);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn three_thousand_nested_flows_are_refused_on_a_small_stack() {
    on_small_stack(|| refuse(3_000));
}

#[test]
fn a_hundred_thousand_nested_flows_are_refused_on_a_small_stack() {
    on_small_stack(|| refuse(100_000));
}

#[test]
fn deep_trees_are_refused_on_a_tokio_worker() {
    on_tokio_worker(|| {
        refuse(3_000);
        refuse(100_000);
    });
}

#[test]
fn a_tree_just_past_the_limit_is_refused_and_one_at_it_prints_pretty() {
    on_small_stack(|| {
        let runs = Arc::new(AtomicUsize::new(0));
        let err = mixed(1_001, &runs).build().expect_err("too deep");
        assert_eq!(err.errors(), [too_deep(1_001).0]);
        // `{:#?}` indents each level one step further: the last line of the
        // deepest flow is its closing brace, 3 steps of 4 spaces a level in.
        let flow = mixed(Flow::MAX_DEPTH, &runs);
        let pretty = format!("{flow:#?}");
        let deepest = format!("\n{}}}", " ".repeat(4 * 3 * (Flow::MAX_DEPTH - 1)));
        assert!(pretty.contains(&deepest));
        assert!(!pretty.contains(&format!(" {deepest}")));
        assert!(pretty.ends_with("\n    retry: None,\n}"));
    });
}

/// Runs the tree at the limit on `mode`, inside the current runtime.
async fn run_at_the_limit(mode: Mode) {
    let runs = Arc::new(AtomicUsize::new(0));
    let flow = mixed(Flow::MAX_DEPTH, &runs)
        .build()
        .expect("a tree at the limit builds");
    assert_eq!(flow.len(), 1_000);
    let mut engine = Engine::builder(flow).mode(mode).build();
    engine.run().await.expect("it runs");
    assert_eq!(engine.state(), FlowState::Success);
    assert_eq!(runs.load(Ordering::SeqCst), 1_000);
    drop(engine);
}

#[test]
fn a_tree_at_the_limit_runs_on_the_serial_engine_on_a_small_stack() {
    on_small_stack(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(run_at_the_limit(Mode::Serial));
    });
}

#[test]
fn a_tree_at_the_limit_runs_on_the_parallel_engine_on_tokio_workers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(STACK)
        .build()
        .expect("a runtime");
    rt.block_on(async {
        tokio::spawn(run_at_the_limit(Mode::Parallel(4)))
            .await
            .expect("no panic")
    });
}

/// A linear tree `depth` flows deep: flow `f{d}` holds atom `a{d}`, which
/// adds one to `value`, then flow `f{d+1}`. Atom `a{suspend_at}` suspends
/// the run through `handle` (when one is there) after it adds.
fn counting(
    depth: usize,
    suspend_at: usize,
    handle: &Arc<Mutex<Option<RunHandle>>>,
    runs: &Arc<AtomicUsize>,
) -> CompiledFlow {
    let atom = |d: usize| {
        let (runs, handle) = (runs.clone(), handle.clone());
        let sig = Signature::new()
            .requires::<u64>("value")
            .provides::<u64>("value");
        Atom::new(
            format!("a{d}"),
            FnTask::sync(sig, move |args| {
                runs.fetch_add(1, Ordering::SeqCst);
                if d == suspend_at
                    && let Some(handle) = handle.lock().unwrap().as_ref()
                {
                    handle.suspend();
                }
                Ok(Outputs::one(args.get::<u64>(0)? + 1))
            }),
        )
    };
    let mut flow = Flow::linear(format!("f{}", depth - 1)).add(atom(depth - 1));
    for d in (0..depth - 1).rev() {
        flow = Flow::linear(format!("f{d}")).add(atom(d)).add(flow);
    }
    flow.input::<u64>("value").build().expect("valid")
}

#[test]
fn a_tree_at_the_limit_is_suspended_and_resumed_on_a_small_stack() {
    on_small_stack(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let store = Arc::new(MemoryBackend::new());
            let handle: Arc<Mutex<Option<RunHandle>>> = Arc::default();
            let runs = Arc::new(AtomicUsize::new(0));
            let flow = counting(Flow::MAX_DEPTH, 499, &handle, &runs);
            let mut first = Engine::builder(flow)
                .input("value", 0u64)
                .storage(store.clone())
                .build();
            *handle.lock().unwrap() = Some(first.handle());
            let run = first.run_id();
            let err = first.run().await.expect_err("suspended");
            assert!(matches!(err, RunError::Suspended { .. }), "{err:?}");
            assert_eq!(runs.load(Ordering::SeqCst), 500);
            assert_eq!(first.fetch::<u64>("value"), Some(&500));
            *handle.lock().unwrap() = None;
            drop(first);

            let flow = counting(Flow::MAX_DEPTH, 499, &handle, &runs);
            let mut resumed = Engine::builder(flow)
                .storage(store.clone())
                .resume(run)
                .await
                .expect("the run resumes");
            resumed.run().await.expect("it finishes");
            assert_eq!(resumed.state(), FlowState::Success);
            assert_eq!(resumed.fetch::<u64>("value"), Some(&1_000));
            assert_eq!(runs.load(Ordering::SeqCst), 1_000, "each atom ran once");
        });
    });
}
