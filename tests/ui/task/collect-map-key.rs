use std::collections::BTreeMap;

use flow::task;

#[task(provides = total)]
fn total(#[collect(a, b)] sizes: BTreeMap<u32, u64>) -> u64 {
    sizes.values().sum()
}

fn main() {}
