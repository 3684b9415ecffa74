//! Impl-block tasks placed as struct literals and as `Type = expr`.

use std::sync::{Arc, Mutex};

use flow::{flow, task};

#[derive(Clone, Debug, Default)]
struct Step {
    log: Arc<Mutex<Vec<String>>>,
    tag: &'static str,
}

#[task(provides = last)]
impl Step {
    fn execute(&self, item: &str) -> String {
        let line = format!("{} {item}", self.tag);
        self.log.lock().unwrap().push(line.clone());
        line
    }
}

fn main() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Step {
        log: log.clone(),
        tag: "shared",
    };
    let steps = flow! {
        steps(item: String) -> (last: String) {
            Step { log: log.clone(), tag: "literal" } as literal,
            Step = shared.clone(),
            Step as assigned = Step { log: log.clone(), tag: "assigned" },
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (last,) = runtime.block_on(steps.run(("box".to_string(),))).unwrap();
    assert_eq!(last, "assigned box");
    assert_eq!(
        *log.lock().unwrap(),
        ["literal box", "shared box", "assigned box"]
    );
}
