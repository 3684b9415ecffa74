use flow::{flow, task};

#[task(provides = ready)]
fn check_db() -> bool {
    true
}

#[task(provides = report)]
fn report(#[collect(healthy_*)] healthy: Vec<bool>) -> usize {
    healthy.len()
}

fn main() {
    let _ = flow! {
        checks() {
            check_db,
            report,
        }
    };
}
