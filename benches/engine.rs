//! The engine on the shapes of the performance plan (`benches/shapes/mod.rs`),
//! measured with criterion: the serial engine on a current-thread tokio
//! runtime and the parallel engine (`.parallel(2)`) on a 2-worker runtime.
//!
//! For every shape and size:
//! - `SHAPE/build/SIZE`: building the flow with the run-time builder and
//!   `Flow::build` (construction, validation, compilation); the same for both
//!   engines, so measured once;
//! - `SHAPE/ENGINE/run/SIZE`: making the engine from an already compiled flow,
//!   running it, checking the result and dropping the engine;
//! - `SHAPE/ENGINE/total/SIZE`: both, and dropping the flow: one use of a
//!   flow from nothing.
//!
//! Throughput is in tasks, so criterion reports tasks per second. Every run
//! is checked as the `bench` example checks it (a wrong result panics).
//!
//! ```text
//! cargo bench --bench engine                              # everything, a few minutes
//! cargo bench --bench engine -- linear_chain/serial       # one shape, one engine
//! cargo bench --bench engine -- 'wavefront/(build|serial)'
//! FLOW_BENCH_SIZES=1000,100000 cargo bench --bench engine -- embarrassing
//! ```
//!
//! The default sizes are 1,000 and 10,000 tasks (`binary_tree`: 2^10 and
//! 2^13 nodes; `wavefront`: 32^2 and 100^2 cells). `FLOW_BENCH_SIZES`, a
//! comma-separated list, replaces them for every shape; each size is passed
//! to `shapes::build` as is (`wavefront` takes the largest square grid that
//! fits). SIZE in the ids is that requested size, the throughput the exact
//! number of tasks.
//!
//! A failing task captures and formats a backtrace when `RUST_BACKTRACE` or
//! `RUST_LIB_BACKTRACE` asks for one, which makes `revert_chain` slower and
//! larger than by default: unset them (or set `RUST_LIB_BACKTRACE=0`) to
//! measure the default; the benchmark warns when they are on.
//!
//! For the large sizes of the plan, and for peak memory, use
//! `benches/run-shapes.sh`.

mod shapes;

/// The same allocator as the `bench` example.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use flow::{CompiledFlow, Engine, RunError};
use tokio::runtime::Runtime;

/// The sizes of `shape` to measure: `FLOW_BENCH_SIZES` or the defaults.
fn sizes(shape: &str) -> Vec<usize> {
    if let Ok(list) = std::env::var("FLOW_BENCH_SIZES") {
        let sizes: Vec<usize> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.replace('_', "")
                    .parse::<f64>()
                    .ok()
                    .filter(|n| *n >= 1.0)
                    .unwrap_or_else(|| panic!("FLOW_BENCH_SIZES: `{s}` is not a size"))
                    as usize
            })
            .collect();
        assert!(!sizes.is_empty(), "FLOW_BENCH_SIZES lists no size");
        return sizes;
    }
    match shape {
        "binary_tree" => vec![1 << 10, 1 << 13],
        "wavefront" => vec![32 * 32, 100 * 100],
        _ => vec![1_000, 10_000],
    }
}

/// The flow of `shape` at `size`, compiled, and its number of tasks.
fn compile(shape: &str, size: usize) -> (CompiledFlow, usize) {
    let (flow, tasks) = shapes::build(shape, size).expect("a known shape");
    let compiled = flow
        .build()
        .unwrap_or_else(|e| panic!("the {shape} flow does not build: {e}"));
    (compiled, tasks)
}

/// The number of tasks `shapes::build` makes for `shape` at `size`, known
/// before building it (checked against it when it is built).
fn tasks(shape: &str, size: usize) -> usize {
    match shape {
        "binary_tree" => size.max(1),
        "fan_out_in" => size + 2,
        "wavefront" => {
            let side = ((size as f64).sqrt() as usize).max(1);
            side * side
        }
        _ => size,
    }
}

/// One of the two engines, with the runtime it runs on.
struct Kind {
    name: &'static str,
    workers: Option<usize>,
    rt: Runtime,
}

impl Kind {
    fn serial() -> Self {
        Kind {
            name: "serial",
            workers: None,
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime"),
        }
    }

    fn parallel(workers: usize) -> Self {
        Kind {
            name: "parallel",
            workers: Some(workers),
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .build()
                .expect("a tokio runtime"),
        }
    }

    /// Makes an engine for `flow`, runs it and checks the outcome as the
    /// `bench` example does; panics on a wrong result.
    fn run(&self, shape: &str, size: usize, flow: CompiledFlow) {
        let (result, check) = self.rt.block_on(async {
            let builder = Engine::builder(flow).input("v0", 0u64);
            let mut engine = match self.workers {
                Some(workers) => builder.parallel(workers).build(),
                None => builder.build(),
            };
            let result = engine.run().await;
            let check = shapes::expected(shape, size)
                .map(|(symbol, value)| (engine.fetch::<u64>(&symbol).copied(), value));
            (result, check)
        });
        match (shape, result) {
            ("revert_chain", Err(RunError::Reverted { .. })) => {}
            ("revert_chain", other) => panic!("revert_chain did not revert: {other:?}"),
            (_, Ok(())) => {
                if let Some((got, want)) = check {
                    assert_eq!(
                        got,
                        Some(want),
                        "{shape} at {size}: wrong result on the {} engine",
                        self.name
                    );
                }
            }
            (_, Err(e)) => panic!("{shape} at {size}: the run failed: {e}"),
        }
    }
}

fn bench_shape(c: &mut Criterion, kinds: &[Kind], shape: &str) {
    let mut group = c.benchmark_group(shape);
    // Iterations take milliseconds to a second: few samples, one timing each.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in sizes(shape) {
        let tasks = tasks(shape, size);
        group.throughput(Throughput::Elements(tasks as u64));
        // Compiled on first use, so that benchmarks filtered out cost nothing.
        let compiled = OnceCell::new();
        let compiled = || {
            compiled
                .get_or_init(|| {
                    let (flow, n) = compile(shape, size);
                    assert_eq!(n, tasks, "{shape} at {size}: the number of tasks");
                    flow
                })
                .clone()
        };

        group.bench_function(BenchmarkId::new("build", size), |b| {
            // The flow is dropped outside the timing, one at a time.
            b.iter_batched(
                || (),
                |()| compile(black_box(shape), black_box(size)).0,
                BatchSize::PerIteration,
            )
        });
        for kind in kinds {
            group.bench_function(BenchmarkId::new(format!("{}/run", kind.name), size), |b| {
                b.iter_batched(
                    &compiled,
                    |flow| kind.run(shape, size, flow),
                    BatchSize::LargeInput,
                )
            });
            group.bench_function(
                BenchmarkId::new(format!("{}/total", kind.name), size),
                |b| b.iter(|| kind.run(shape, size, compile(black_box(shape), size).0)),
            );
        }
    }
    group.finish();
}

/// Whether `std::backtrace::Backtrace::capture` captures, as it decides.
fn backtraces_on() -> bool {
    let on = |v: String| v != "0";
    match std::env::var("RUST_LIB_BACKTRACE") {
        Ok(v) => on(v),
        Err(_) => std::env::var("RUST_BACKTRACE").is_ok_and(on),
    }
}

fn main() {
    if backtraces_on() {
        eprintln!(
            "engine: backtraces are on (RUST_BACKTRACE or RUST_LIB_BACKTRACE): \
             revert_chain captures one per run; set RUST_LIB_BACKTRACE=0 to measure the default"
        );
    }
    let kinds = [Kind::serial(), Kind::parallel(2)];
    let mut c = Criterion::default().configure_from_args();
    for shape in shapes::SHAPES {
        bench_shape(&mut c, &kinds, shape);
    }
    c.final_summary();
}
