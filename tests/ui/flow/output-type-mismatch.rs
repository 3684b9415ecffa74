use flow::{flow, task};

#[task(provides = backup)]
fn back_up(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {
    let _ = flow! {
        nightly(db: String) -> (backup: u64) {
            back_up,
        }
    };
}
