// A run-time group declares `version: String`, but the flow gives `version`
// as `u32`: the group's input check names the group and both types.
use flow::{flow, Flow};

fn upgrades() -> Flow {
    Flow::linear("upgrades")
}

fn main() {
    let _ = flow! {
        rollout(version: u32) {
            group upgrades(version: String) -> (healthy_*: bool) = upgrades(),
        }
    };
}
