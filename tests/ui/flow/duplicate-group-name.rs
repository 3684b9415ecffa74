use flow::{flow, task};

#[task]
fn ping() {}

#[task]
fn pong() {}

fn main() {
    let _ = flow! {
        checks() {
            linear probe {
                ping,
            },
            unordered probe {
                pong,
            },
        }
    };
}
