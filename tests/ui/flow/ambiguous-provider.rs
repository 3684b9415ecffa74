use flow::{flow, task};

#[task(provides = size)]
fn measure_disk() -> u64 {
    1
}

#[task(provides = size)]
fn measure_memory() -> u64 {
    2
}

#[task]
fn report(size: u64) {
    let _ = size;
}

fn main() {
    let _ = flow! {
        audit() {
            unordered measure {
                measure_disk,
                measure_memory,
            },
            report,
        }
    };
}
