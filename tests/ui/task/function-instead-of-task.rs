use flow::{task, Atom};

#[task(provides = backup)]
fn back_up(db: &String) -> String {
    format!("{db}.bak")
}

fn main() {
    let _ = Atom::of(back_up);
}
