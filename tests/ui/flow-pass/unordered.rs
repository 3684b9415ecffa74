//! An unordered group: its items run in any order, even at once; what they
//! provide is visible after the group.

use flow::{flow, task};

#[task(provides = disk)]
fn measure_disk(host: &str) -> u64 {
    host.len() as u64 * 10
}

#[task(provides = memory)]
fn measure_memory(host: &str) -> u64 {
    host.len() as u64
}

#[task(provides = usage)]
fn add_up(disk: u64, memory: u64) -> u64 {
    disk + memory
}

fn main() {
    let audit = flow! {
        audit(host: String) -> (usage: u64, disk: u64) {
            unordered measure {
                measure_disk,
                measure_memory,
            },
            add_up,
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outputs = runtime.block_on(async {
        let mut engine = audit
            .engine(("db1".to_string(),))
            .unwrap()
            .parallel(2)
            .build();
        engine.run().await.unwrap();
        audit.outputs(&engine)
    });
    assert_eq!(outputs, Some((33, 30)));
}
