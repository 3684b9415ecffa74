use flow::task;

#[task]
fn append(log: &mut Vec<String>) {
    log.push("ran".to_string());
}

fn main() {}
