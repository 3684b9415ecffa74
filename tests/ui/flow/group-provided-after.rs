use flow::{flow, task, Flow};

#[task(provides = report)]
fn report(#[collect(healthy_*)] healthy: Vec<bool>) -> usize {
    healthy.len()
}

fn upgrades() -> Flow {
    Flow::linear("upgrades")
}

fn main() {
    let _ = flow! {
        rollout(version: String) {
            report,
            group upgrades(version: String) -> (healthy_*: bool) = upgrades(),
        }
    };
}
