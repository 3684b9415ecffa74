use flow::task;

#[task(provides = copy)]
fn duplicate<T: Clone>(value: &T) -> T {
    value.clone()
}

fn main() {}
