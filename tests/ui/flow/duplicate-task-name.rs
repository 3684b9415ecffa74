use flow::{flow, task};

#[task]
fn ping() {}

fn main() {
    let _ = flow! {
        twice() {
            ping,
            unordered again {
                ping,
            },
        }
    };
}
