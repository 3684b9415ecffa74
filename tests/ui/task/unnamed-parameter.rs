use flow::task;

#[task]
fn notify(_: &String) {}

fn main() {}
