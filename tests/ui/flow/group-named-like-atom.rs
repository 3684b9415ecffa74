use flow::{flow, task};

#[task]
fn ping() {}

#[task]
fn pong() {}

fn main() {
    let _ = flow! {
        checks() {
            ping,
            linear ping {
                pong,
            },
        }
    };
}
