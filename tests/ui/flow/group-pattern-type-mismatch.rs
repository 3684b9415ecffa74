use std::collections::BTreeMap;

use flow::{flow, task, Flow};

#[task(provides = report)]
fn report(#[collect(healthy_*)] healthy: BTreeMap<String, bool>) -> usize {
    healthy.len()
}

fn upgrades() -> Flow {
    Flow::linear("upgrades")
}

fn main() {
    let _ = flow! {
        rollout(version: String) {
            group upgrades(version: String) -> (healthy_*: String) = upgrades(),
            report,
        }
    };
}
