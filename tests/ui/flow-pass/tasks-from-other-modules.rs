//! Tasks named by path: from a module of this crate, and from another crate
//! that reaches `flow` through a renamed dependency.

use std::sync::{Arc, Mutex};

use flow::flow;
use flow_test_tasks::DbName;

mod ops {
    use flow::task;

    pub type Label = String;

    #[task(provides = label)]
    pub fn label(backup: &Label) -> Label {
        format!("[{backup}]")
    }

    pub mod deep {
        use flow::task;

        #[task(provides = shouted)]
        pub fn shout(label: String) -> String {
            label.to_uppercase()
        }
    }
}

fn main() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let nightly = flow! {
        nightly(db: DbName, host: String, app: String) -> (shouted: String, checked: String, version: u32) {
            flow_test_tasks::backup_name,
            ops::label,
            ops::deep::shout,
            flow_test_tasks::check,
            flow_test_tasks::Deploy { log: log.clone() },
        }
    };
    let names: Vec<&str> = nightly.compiled().unwrap().atom_names().collect();
    assert_eq!(
        names,
        ["backup_name", "label", "shout", "check_host", "Deploy"]
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outputs = runtime
        .block_on(nightly.run((
            DbName("main".to_string()),
            "db1".to_string(),
            "shop".to_string(),
        )))
        .unwrap();
    assert_eq!(outputs, ("[MAIN.1.BAK]".to_string(), "db1".to_string(), 4));
    assert_eq!(*log.lock().unwrap(), ["deploy shop #1"]);
}
