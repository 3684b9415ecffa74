//! Retry controllers: scenarios S5 and S6 and the strategies, on both engines.

mod common;

use common::{MODES, conditional, progressing};
use flow::{Flow, FlowState, Retry};

fn s5_flow(times: usize) -> flow::CompiledFlow {
    Flow::linear("flow-1")
        .input::<u32>("y")
        .retry(Retry::times(times).named("r1").provides("x"))
        .add(progressing("task1"))
        .add(conditional("task2"))
        .build()
        .expect("valid flow")
}

const S5: [&str; 21] = [
    "flow-1.f RUNNING",
    "r1.r RUNNING",
    "r1.r SUCCESS(1)",
    "task1.t RUNNING",
    "task1.t SUCCESS(5)",
    "task2.t RUNNING",
    "task2.t FAILURE(Failure: Woot!)",
    "task2.t REVERTING",
    "task2.t REVERTED(())",
    "task1.t REVERTING",
    "task1.t REVERTED(())",
    "r1.r RETRYING",
    "task1.t PENDING",
    "task2.t PENDING",
    "r1.r RUNNING",
    "r1.r SUCCESS(2)",
    "task1.t RUNNING",
    "task1.t SUCCESS(5)",
    "task2.t RUNNING",
    "task2.t SUCCESS(())",
    "flow-1.f SUCCESS",
];

#[tokio::test]
async fn s5_times_succeeds_on_the_second_attempt() {
    for mode in MODES {
        let capture = flow::CaptureListener::new();
        let mut engine = flow::Engine::builder(s5_flow(4))
            .mode(mode)
            .input("y", 2u32)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("succeeds on the second attempt");
        assert_eq!(capture.events(), S5, "{mode:?}");
        assert_eq!(
            engine.fetch_all().debug_map(),
            [
                ("x".to_string(), "2".to_string()),
                ("y".to_string(), "2".to_string()),
                ("task1".to_string(), "5".to_string())
            ]
            .into()
        );
        assert_eq!(engine.state(), FlowState::Success);
    }
}

#[tokio::test]
async fn s6_retries_exhausted() {
    for mode in MODES {
        let capture = flow::CaptureListener::new();
        let mut engine = flow::Engine::builder(s5_flow(2))
            .mode(mode)
            .input("y", 4u32)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.expect_err("exhausted");
        assert_eq!(
            err.to_string(),
            "flow `flow-1` was reverted: task `task2` failed: Woot!"
        );
        let mut expected: Vec<&str> = S5[..16].to_vec();
        expected.extend([
            "task1.t RUNNING",
            "task1.t SUCCESS(5)",
            "task2.t RUNNING",
            "task2.t FAILURE(Failure: Woot!)",
            "task2.t REVERTING",
            "task2.t REVERTED(())",
            "task1.t REVERTING",
            "task1.t REVERTED(())",
            "r1.r REVERTING",
            "r1.r REVERTED(())",
            "flow-1.f REVERTED",
        ]);
        assert_eq!(capture.events(), expected, "{mode:?}");
        assert_eq!(
            engine.fetch_all().debug_map(),
            [("y".to_string(), "4".to_string())].into()
        );
    }
}
