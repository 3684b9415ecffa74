use flow::{flow, task};

#[task]
fn first() {}

#[task]
fn second() {}

fn main() {
    let _ = flow! {
        linked() {
            graph wiring {
                first,
                second;
                first -> third,
            },
        }
    };
}
