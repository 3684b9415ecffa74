use flow::task;

#[task(provides = backup, priority = 1, priority = 2)]
fn backup(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {}
