use flow::{flow, Flow};

fn upgrades() -> Flow {
    Flow::linear("upgrades")
}

fn main() {
    let _ = flow! {
        rollout(release: u32) {
            group upgrades(version: String) -> (healthy_*: bool) = upgrades(),
        }
    };
}
