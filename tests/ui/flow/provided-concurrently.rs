use flow::{flow, task};

#[task(provides = backup)]
fn back_up(db: &String) -> String {
    format!("{db}.bak")
}

#[task]
fn migrate(backup: &String) {
    let _ = backup;
}

fn main() {
    let _ = flow! {
        upgrade(db: String) {
            unordered both {
                back_up,
                migrate,
            },
        }
    };
}
