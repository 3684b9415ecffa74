//! What notifications cost: a linear chain of no-op tasks run with no listener,
//! with a listener that does nothing, and with the capture listener.
//!
//! `cargo bench --bench notify` prints the median ns per task of each case and
//! its ratio to the case with no listener.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use flow::{CaptureListener, Engine, Event, Listener};

struct Nothing;

impl Listener for Nothing {
    fn on_event(&self, _: &Event<'_>) {}
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = 20_000;
    let flow = common::chain(n).build().expect("the chain is valid");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    type Configure = fn(flow::EngineBuilder) -> flow::EngineBuilder;
    let cases: [(&str, Configure); 3] = [
        ("no listener", |b| b),
        ("no-op listener", |b| b.listener(Nothing)),
        ("capture listener", |b| b.listener(CaptureListener::new())),
    ];
    // Interleave the cases so that warm-up and machine noise hit them alike.
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..21 {
        for (k, (_, configure)) in cases.iter().enumerate() {
            let mut engine = configure(Engine::builder(flow.clone()).input("v0", 0u64)).build();
            let start = Instant::now();
            rt.block_on(engine.run()).expect("the chain succeeds");
            samples[k].push(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    for ((name, _), m) in cases.iter().zip(&medians) {
        println!("notify/{name}: {m:.0} ns per task (x{:.2})", m / medians[0]);
    }
}
