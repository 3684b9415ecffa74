//! A retry controller on a group, providing the attempt number to its tasks.

use flow::{Retry, TaskError, flow, task};

#[task(provides = deployed)]
fn deploy(app: &str, attempt: u32) -> Result<String, TaskError> {
    if attempt < 3 {
        Err(TaskError::msg(format!("attempt {attempt} failed")))
    } else {
        Ok(format!("{app} on attempt {attempt}"))
    }
}

fn main() {
    let rollout = flow! {
        rollout(app: String) -> (deployed: String, attempt: u32) {
            #[retry(Retry::times(3).named("redeploy"), provides(attempt: u32))]
            linear verify {
                deploy,
            },
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut engine = rollout.engine(("shop".to_string(),)).unwrap().build();
        engine.run().await.unwrap();
        assert_eq!(engine.attempts("deploy"), Some(3));
        assert_eq!(
            rollout.outputs(&engine),
            Some(("shop on attempt 3".to_string(), 3))
        );
    });
}
