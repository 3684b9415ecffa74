//! Tasks from another crate, which reaches `flow` through a renamed dependency
//! (`#[task(crate = flowlib)]`), run in flows built here.

use flow::{Atom, Engine, Flow, InputShape, Mode, RunError, TaskDef};
use flow_test_tasks::{DbName, Deploy, backup_name, check, journal, label_parts, total_size};

#[test]
fn signatures_cross_the_crate_boundary() {
    assert_eq!(backup_name::INFO.name, "backup_name");
    assert_eq!(backup_name::INFO.inputs[0].ty, "DbName");
    assert_eq!(backup_name::INFO.inputs[1].shape, InputShape::Optional);
    assert_eq!(check::INFO.name, "check_host");
    assert_eq!(Deploy::INFO.name, "Deploy");
    let names: Vec<&str> = match total_size::INFO.inputs[0].shape {
        InputShape::Collect(refs) => refs.iter().map(|r| r.name).collect(),
        other => panic!("unexpected shape {other:?}"),
    };
    assert_eq!(names, ["part_a", "part_b", "part_c"]);
    let sig = flow::Task::signature(&check {});
    assert_eq!(sig.default_priority(), 2);
    assert_eq!(
        sig.default_timeout(),
        Some(std::time::Duration::from_secs(5))
    );
    assert!(flow::Task::signature(&journal {}).is_blocking());
}

fn release(deploy: &Deploy) -> Flow {
    Flow::linear("release")
        .input::<DbName>("db")
        .input::<u64>("part_a")
        .input::<u64>("part_b")
        .input::<u64>("part_c")
        .input::<String>("host")
        .input::<Vec<String>>("log")
        .input::<String>("app")
        .add(Atom::of(backup_name {}))
        .add(
            Flow::unordered("measure")
                .add(Atom::of(total_size {}))
                .add(Atom::of(label_parts {})),
        )
        .add(Atom::of(check {}))
        .add(Atom::of(journal {}))
        .add(Atom::of(deploy.clone()))
}

async fn run(mode: Mode, app: &str) -> (Engine, Result<(), RunError>) {
    let deploy = Deploy::default();
    let flow = release(&deploy).build().unwrap();
    let mut engine = Engine::builder(flow)
        .mode(mode)
        .input("db", DbName("main".into()))
        .input("part_a", 1u64)
        .input("part_b", 20u64)
        .input("part_c", 300u64)
        .input("host", "db1".to_string())
        .input("log", vec!["x".to_string()])
        .input("app", app.to_string())
        .build();
    let result = engine.run().await;
    (engine, result)
}

#[tokio::test]
async fn a_flow_of_foreign_tasks_runs_on_both_engines() {
    for mode in [Mode::Serial, Mode::Parallel(4)] {
        let (engine, result) = run(mode, "shop").await;
        result.unwrap();
        assert_eq!(engine.fetch::<String>("backup").unwrap(), "main.1.bak");
        assert_eq!(*engine.fetch::<u64>("total").unwrap(), 321);
        assert_eq!(
            *engine.fetch::<Vec<String>>("labels").unwrap(),
            ["part:part_a=1", "part:part_b=20"]
        );
        assert_eq!(*engine.fetch::<usize>("count").unwrap(), 2);
        assert_eq!(engine.fetch::<String>("checked").unwrap(), "db1");
        assert_eq!(*engine.fetch::<u32>("version").unwrap(), 4);
    }
}

#[tokio::test]
async fn a_foreign_failure_reverts_the_foreign_tasks() {
    let (engine, result) = run(Mode::Serial, "").await;
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "flow `release` was reverted: task `Deploy` failed: refused: "
    );
    let revert_of_journal = engine.revert_result("journal");
    assert_eq!(
        revert_of_journal.and_then(|v| v.downcast_ref::<u32>()),
        Some(&1)
    );
    assert!(engine.revert_result("backup_name").is_none());
}
