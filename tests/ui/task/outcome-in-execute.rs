use flow::{task, Outcome};

#[task]
fn stop(server: &String, outcome: &Outcome) {
    let _ = (server, outcome);
}

fn main() {}
