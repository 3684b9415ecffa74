//! The benchmark shapes of the performance plan, built with the run-time
//! builder: no-op or near-no-op tasks passing `u64` values.
//!
//! Shared by the `bench` example (one machine-readable line per case) and the
//! benchmarks under `benches/`.
#![allow(dead_code, unreachable_pub)]

use std::sync::Mutex;
use std::time::Instant;

use flow::{Atom, Flow, FnTask, Outputs, Signature, TaskError};

/// When the last task of the latest `revert_chain` failed: the end of its
/// forward run and the start of its revert.
pub static FAILED_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// The shapes, by name.
pub const SHAPES: [&str; 6] = [
    "linear_chain",
    "binary_tree",
    "fan_out_in",
    "wavefront",
    "embarrassing",
    "revert_chain",
];

/// The flow of `shape` with about `size` tasks, and the exact number of tasks.
///
/// `binary_tree` has nodes `1..=size` (a complete binary tree);
/// `wavefront` is the largest square grid of at most `size` cells; `fan_out_in`
/// is `size` workers plus a source and a sink.
pub fn build(shape: &str, size: usize) -> Option<(Flow, usize)> {
    Some(match shape {
        "linear_chain" => (linear_chain(size, false), size),
        "revert_chain" => (linear_chain(size, true), size),
        "binary_tree" => (binary_tree(size.max(1)), size.max(1)),
        "fan_out_in" => (fan_out_in(size), size + 2),
        "wavefront" => {
            let side = (size as f64).sqrt() as usize;
            (wavefront(side.max(1)), side.max(1) * side.max(1))
        }
        "embarrassing" => (embarrassing(size), size),
        _ => return None,
    })
}

/// What the run must leave: the symbol to check and its value.
pub fn expected(shape: &str, size: usize) -> Option<(String, u64)> {
    match shape {
        "linear_chain" => Some((format!("v{size}"), size as u64)),
        "fan_out_in" => Some(("sum".into(), size as u64)),
        _ => None,
    }
}

/// `prefix` followed by `i` in decimal: the names of the shapes' tasks and
/// symbols, written straight into a string of the right size (`format!` costs
/// as much per task as the engine's own work, and is not what is measured).
pub fn name(prefix: &str, i: usize) -> String {
    let mut digits = itoa::Buffer::new();
    let i = digits.format(i);
    let mut s = String::with_capacity(prefix.len() + i.len());
    s.push_str(prefix);
    s.push_str(i);
    s
}

/// `{prefix}{i}_{j}`, the name of a wavefront cell's task or symbol.
fn cell_name(prefix: &str, i: usize, j: usize) -> String {
    let (mut di, mut dj) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (i, j) = (di.format(i), dj.format(j));
    let mut s = String::with_capacity(prefix.len() + i.len() + 1 + j.len());
    s.push_str(prefix);
    s.push_str(i);
    s.push('_');
    s.push_str(j);
    s
}

fn inc(input: String, output: String) -> FnTask {
    FnTask::sync(
        Signature::new()
            .requires::<u64>(input)
            .provides::<u64>(output),
        |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)),
    )
}

/// `v0 -> t0 -> v1 -> ... -> v{n}`; with `fail_last`, the last task fails
/// and everything is reverted (each task has a no-op revert).
pub fn linear_chain(n: usize, fail_last: bool) -> Flow {
    let mut flow = Flow::linear("linear_chain").input::<u64>("v0");
    flow.reserve(n);
    for i in 0..n {
        let sig = Signature::new()
            .requires::<u64>(name("v", i))
            .provides::<u64>(name("v", i + 1));
        let task = if fail_last && i + 1 == n {
            FnTask::sync(sig, |_| {
                *FAILED_AT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                Err(TaskError::msg("the last task fails"))
            })
        } else {
            FnTask::sync(sig, |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)))
        };
        let task = if fail_last {
            task.on_revert_sync(|_| Ok(None))
        } else {
            task
        };
        flow.push(Atom::new(name("t", i), task));
    }
    flow
}

/// Node `i` (1-based) feeds nodes `2i` and `2i + 1`; `n` nodes.
pub fn binary_tree(n: usize) -> Flow {
    let mut flow = Flow::graph("binary_tree").input::<u64>("v0");
    flow.reserve(n);
    for i in 1..=n {
        let input = if i == 1 {
            "v0".to_string()
        } else {
            name("v", i / 2)
        };
        flow.push(Atom::new(name("t", i), inc(input, name("v", i))));
    }
    flow
}

/// One source, `n` workers reading it, one sink collecting all of them.
pub fn fan_out_in(n: usize) -> Flow {
    let source = FnTask::sync(Signature::new().provides::<u64>("s"), |_| {
        Ok(Outputs::one(0u64))
    });
    let names: Vec<String> = (0..n).map(|i| name("w", i)).collect();
    let sink = FnTask::sync(
        Signature::new()
            .collect::<u64>("parts", names.clone())
            .provides::<u64>("sum"),
        |a| Ok(Outputs::one(a.list::<u64>(0)?.into_iter().sum::<u64>())),
    );
    let mut workers = Flow::unordered("workers");
    workers.reserve(n);
    for name in &names {
        workers.push(Atom::new(name.clone(), inc("s".into(), name.clone())));
    }
    Flow::linear("fan_out_in")
        .add(Atom::new("source", source))
        .add(workers)
        .add(Atom::new("sink", sink))
}

/// A `side` x `side` grid: `(i, j)` feeds `(i + 1, j)` and `(i, j + 1)`.
pub fn wavefront(side: usize) -> Flow {
    let mut flow = Flow::graph("wavefront");
    flow.reserve(side * side);
    let cell = |i: usize, j: usize| cell_name("c", i, j);
    for i in 0..side {
        for j in 0..side {
            let mut sig = Signature::new();
            if i > 0 {
                sig = sig.requires::<u64>(cell(i - 1, j));
            }
            if j > 0 {
                sig = sig.requires::<u64>(cell(i, j - 1));
            }
            let inputs = usize::from(i > 0) + usize::from(j > 0);
            let task = FnTask::sync(sig.provides::<u64>(cell(i, j)), move |a| {
                let mut v = 1u64;
                for k in 0..inputs {
                    v = v.wrapping_add(*a.get::<u64>(k)?);
                }
                Ok(Outputs::one(v))
            });
            flow.push(Atom::new(cell_name("t", i, j), task));
        }
    }
    flow
}

/// About a microsecond of arithmetic.
pub fn spin(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

/// `n` independent tasks, each about a microsecond of arithmetic.
pub fn embarrassing(n: usize) -> Flow {
    let mut flow = Flow::unordered("embarrassing");
    flow.reserve(n);
    for i in 0..n {
        let task = FnTask::sync(Signature::new().provides::<u64>(name("e", i)), move |_| {
            Ok(Outputs::one(spin(i as u64)))
        });
        flow.push(Atom::new(name("t", i), task));
    }
    flow
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_the_decimal_forms() {
        assert_eq!(super::name("v", 0), "v0");
        assert_eq!(super::name("t", 1_234_567), "t1234567");
        assert_eq!(super::cell_name("c", 10, 3), "c10_3");
        assert_eq!(super::name("w", usize::MAX), format!("w{}", usize::MAX));
    }
}
