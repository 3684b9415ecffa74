//! Use-site options: `input = symbol` reads another symbol, `input = expr`
//! gives the task a constant, typed as the input, that wins over providers.

use flow::{flow, task};

#[task(provides = backup)]
fn back_up(db: &str, retention: u32) -> String {
    format!("{db}.bak ({retention} days)")
}

#[task(provides = greeting)]
fn greet(name: &str, punctuation: &str) -> String {
    format!("hello {name}{punctuation}")
}

fn main() {
    let loud = 3;
    let nightly = flow! {
        nightly(main_db: String, retention: u32, owner: String) -> (backup: String, greeting: String) {
            back_up(db = main_db, retention = 30),
            greet(name = owner, punctuation = "!".repeat(loud)),
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outputs = runtime
        .block_on(nightly.run(("orders".to_string(), 7, "ann".to_string())))
        .unwrap();
    assert_eq!(
        outputs,
        (
            "orders.bak (30 days)".to_string(),
            "hello ann!!!".to_string()
        )
    );
}
