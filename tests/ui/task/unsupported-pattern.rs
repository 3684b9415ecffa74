use flow::task;

#[task(provides = sum)]
fn add((a, b): (u32, u32)) -> u32 {
    a + b
}

fn main() {}
