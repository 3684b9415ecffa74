//! Groups nested in groups: linear, unordered and graph, named or not.

use flow::{flow, task};

#[task(provides = l1)]
fn left_a(seed: u32) -> u32 {
    seed + 1
}

#[task(provides = left)]
fn left_b(l1: u32) -> u32 {
    l1 * 2
}

#[task(provides = right)]
fn right_b(r1: u32) -> u32 {
    r1 * 10
}

#[task(provides = r1)]
fn right_a(seed: u32) -> u32 {
    seed + 2
}

#[task(provides = middle)]
fn middle(seed: u32) -> u32 {
    seed * 100
}

#[task(provides = total)]
fn combine(left: u32, right: u32, middle: u32) -> u32 {
    left + right + middle
}

fn main() {
    let nested = flow! {
        nested(seed: u32) -> (total: u32) {
            unordered fan {
                linear left { left_a, left_b },
                graph { right_b, right_a },
                linear { unordered { middle } },
            },
            combine,
        }
    };
    let names: Vec<&str> = nested.compiled().unwrap().atom_names().collect();
    assert_eq!(
        names,
        [
            "left_a", "left_b", "right_b", "right_a", "middle", "combine"
        ]
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (total,) = runtime.block_on(nested.run((1,))).unwrap();
    assert_eq!(total, 4 + 30 + 100);
}
