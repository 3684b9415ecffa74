use flow::task;

#[task]
fn backup(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {}
