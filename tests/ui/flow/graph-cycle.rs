use flow::{flow, task};

#[task(provides = a)]
fn first(c: u32) -> u32 {
    c
}

#[task(provides = b)]
fn second(a: u32) -> u32 {
    a
}

#[task(provides = c)]
fn third(b: u32) -> u32 {
    b
}

fn main() {
    let _ = flow! {
        circle() {
            graph wiring {
                first,
                second,
                third,
            },
        }
    };
}
