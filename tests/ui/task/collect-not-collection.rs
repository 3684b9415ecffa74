use flow::task;

#[task(provides = total)]
fn total(#[collect(a, b)] sizes: Option<u64>) -> u64 {
    sizes.unwrap_or(0)
}

fn main() {}
