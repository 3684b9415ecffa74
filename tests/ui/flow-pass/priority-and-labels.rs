//! `#[priority(n)]` orders ready atoms on the serial engine; `as label`
//! renames an atom, so one task can be placed twice.

use flow::{CaptureListener, flow, task};

#[task]
fn warm_cache() {}

#[task]
fn notify() {}

#[task(provides = count)]
fn count_up(count: u32) -> u32 {
    count + 1
}

fn main() {
    let start = flow! {
        start(count: u32) -> (count: u32) {
            unordered {
                warm_cache,
                #[priority(10)] notify,
                #[priority(5)] notify as notify_again,
            },
            count_up as once,
            count_up as twice,
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let capture = CaptureListener::atoms_only();
        let mut engine = start
            .engine((1,))
            .unwrap()
            .serial()
            .listener(capture.clone())
            .build();
        engine.run().await.unwrap();
        assert_eq!(start.outputs(&engine), Some((3,)));
        let started: Vec<String> = capture
            .events()
            .iter()
            .filter_map(|e| e.strip_suffix(".t RUNNING").map(String::from))
            .collect();
        assert_eq!(
            started,
            ["notify", "notify_again", "warm_cache", "once", "twice"]
        );
    });
}
