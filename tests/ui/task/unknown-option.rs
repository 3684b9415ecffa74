use flow::task;

#[task(provides = backup, retries = 3)]
fn backup(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {}
