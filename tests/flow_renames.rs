//! `flow!`'s use-site renaming of outputs, `task(-> output = symbol)`: two
//! tasks that provide one symbol sit side by side in an `unordered` group
//! once one of them publishes it under another name, and each reader gets
//! the value it names.

use flow::{flow, task};

#[task(provides = size)]
fn measure_disk() -> u64 {
    40
}

#[task(provides = size)]
fn measure_memory() -> u64 {
    2
}

#[task(provides = total)]
fn add(size: u64, disk_size: u64) -> u64 {
    size * 1000 + disk_size
}

#[tokio::test]
async fn a_renamed_output_is_read_under_its_new_name() {
    let audit = flow! {
        audit() -> (total: u64, disk_size: u64) {
            unordered measure {
                measure_disk(-> size = disk_size),
                measure_memory,
            },
            add,
        }
    };
    // `add` reads `size` from `measure_memory` alone, `disk_size` from
    // `measure_disk`, and so does the flow's output.
    assert_eq!(audit.run(()).await.unwrap(), (2040, 40));
}

#[tokio::test]
async fn a_rename_goes_with_rebinding_and_a_label() {
    let audit = flow! {
        audit() -> (total: u64) {
            measure_memory(-> size = memory) as memory_probe,
            measure_disk,
            add(size = memory, disk_size = size),
        }
    };
    assert_eq!(audit.run(()).await.unwrap(), (2040,));
}
