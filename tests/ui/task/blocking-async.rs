use flow::task;

#[task(provides = backup, blocking)]
async fn backup(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {}
