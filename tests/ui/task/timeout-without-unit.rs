use flow::task;

#[task(provides = backup, timeout = 30)]
fn backup(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {}
