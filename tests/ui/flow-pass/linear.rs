//! A linear flow: each task sees what the earlier ones provide.

use flow::{flow, task};

#[task(provides = stopped)]
fn stop_server(server: &str) -> String {
    format!("{server} stopped")
}

#[task(provides = backup)]
fn back_up(db: &str, stopped: &str) -> String {
    format!("{db}.bak after {stopped}")
}

#[task(provides = report)]
fn upgrade(backup: &str, version: u32) -> String {
    format!("v{version} from {backup}")
}

fn main() {
    let upgrade = flow! {
        upgrade(server: String, db: String, version: u32) -> (report: String) {
            stop_server,
            back_up,
            upgrade,
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (report,) = runtime
        .block_on(upgrade.run(("web".to_string(), "main".to_string(), 3)))
        .unwrap();
    assert_eq!(report, "v3 from main.bak after web stopped");
}
