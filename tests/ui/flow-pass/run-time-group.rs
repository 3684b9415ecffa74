//! A group built at run time, with a declared interface, and a fan-in of what
//! its members provide by name pattern, into a `Vec` and a map.

use std::collections::BTreeMap;

use flow::{flow, task, Atom, Flow};

#[task(provides = healthy)]
fn upgrade_host(version: &str) -> bool {
    !version.is_empty()
}

#[task(provides = count)]
fn count(#[collect(healthy_*)] healthy: Vec<bool>) -> usize {
    healthy.len()
}

#[task(provides = hosts)]
fn by_host(#[collect(healthy_*)] healthy: BTreeMap<String, bool>) -> Vec<String> {
    healthy.into_keys().collect()
}

fn upgrades(hosts: &[&str]) -> Flow {
    let mut group = Flow::unordered("upgrades");
    for host in hosts {
        group.push(
            Atom::new(format!("upgrade-{host}"), upgrade_host {})
                .provides_as("healthy", format!("healthy_{host}")),
        );
    }
    group
}

fn main() {
    let hosts = ["b", "a"];
    let rollout = flow! {
        rollout(version: String) -> (count: usize, hosts: Vec<String>) {
            group upgrades(version: String) -> (healthy_*: bool) = upgrades(&hosts),
            count,
            by_host,
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (count, hosts) = runtime.block_on(rollout.run(("2.0".into(),))).unwrap();
    assert_eq!(count, 2);
    assert_eq!(hosts, ["healthy_a", "healthy_b"]);
}
