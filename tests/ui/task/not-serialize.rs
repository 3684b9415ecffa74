use flow::task;

#[derive(Debug, Clone)]
struct Report {
    lines: u32,
}

#[task(provides = report)]
fn summarize(lines: u32) -> Report {
    Report { lines }
}

fn main() {}
