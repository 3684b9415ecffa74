use flow::task;

#[task]
struct Backup {
    db: String,
}

fn main() {}
