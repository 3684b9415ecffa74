use flow::{flow, task};

#[task(provides = size)]
fn measure_disk() -> u64 {
    40
}

fn main() {
    let _ = flow! {
        audit() {
            measure_disk(-> bytes = disk_size),
        }
    };
}
