use flow::flow;

fn main() {
    let _ = flow! {
        rollout(version: String) {
            group upgrades(version: String) -> (healthy_*: bool),
        }
    };
}
