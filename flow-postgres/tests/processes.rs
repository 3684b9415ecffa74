//! Ownership across machines: two processes, each with its own connection
//! pool, resume one run at the same instant, ten times over: exactly one
//! executes it, the other is refused with `ResumeError::Owned` naming the
//! first; every step ran once (side-effect logs).
//!
//! The test runs this binary again as the two processes (the `child` test,
//! which does nothing unless `FLOW_PG_CHILD` is set). Skipped (it passes at
//! once, saying so) without `FLOW_TEST_POSTGRES`.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use flow::postgres::PostgresBackend;
use flow::{
    Atom, CompiledFlow, Engine, Exec, Flow, FlowId, FlowState, FnTask, Outputs, ResumeError,
    RunError, RunHandle, Signature,
};
use support::Schema;

const STEPS: usize = 5;

/// A gate, then `STEPS` steps that each append `step k` to `log` and take
/// 40 ms. The gate suspends the run when `suspend` holds a handle.
fn definition(log: PathBuf, suspend: Arc<OnceLock<RunHandle>>) -> CompiledFlow {
    let gate = FnTask::sync(Signature::new().provides::<u32>("s0"), move |_| {
        if let Some(handle) = suspend.get() {
            handle.suspend();
        }
        Ok(Outputs::one(0u32))
    });
    let mut flow = Flow::linear("owned").add(Atom::new("gate", gate));
    for k in 0..STEPS {
        let log = log.clone();
        let step = FnTask::new(
            Signature::new()
                .requires::<u32>(format!("s{k}"))
                .provides::<u32>(format!("s{}", k + 1)),
            move |a, _| {
                let log = log.clone();
                let v = a.get::<u32>(0).copied();
                Exec::future(async move {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)?;
                    writeln!(f, "{} step {k}", std::process::id())?;
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    Ok(Outputs::one(v? + 1))
                })
            },
        );
        flow.push(Atom::new(format!("step-{k}"), step));
    }
    flow.build().expect("the flow builds")
}

/// Waits for `path` to exist, up to 30 s.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One of the two processes: connects, says it is ready, waits for the
/// word, resumes the run, and prints what happened.
#[test]
fn child() {
    let Ok(dir) = std::env::var("FLOW_PG_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (url, schema, me) = (var("FLOW_PG_URL"), var("FLOW_PG_SCHEMA"), var("FLOW_PG_ME"));
    let run: FlowId = var("FLOW_PG_RUN").parse().expect("a run id");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let said = rt.block_on(async move {
        let options = flow::postgres::PostgresOptions::new().schema(&schema);
        let store = Arc::new(PostgresBackend::connect_with(&url, options).await.unwrap());
        std::fs::write(dir.join(format!("ready-{me}")), "").unwrap();
        wait_for(&dir.join("go"));
        let resumed = Engine::builder(definition(dir.join("log"), Arc::default()))
            .storage(store)
            .owner(format!("process-{me}"))
            .resume(run)
            .await;
        match resumed {
            Ok(mut engine) if engine.state() == FlowState::Suspended => match engine.run().await {
                Ok(()) => "EXECUTED".to_string(),
                Err(e) => format!("RUN-FAILED {e}"),
            },
            Ok(engine) => format!("FOUND {:?}", engine.state()),
            Err(ResumeError::Owned { owner, .. }) => format!("OWNED {owner}"),
            Err(e) => format!("RESUME-FAILED {e}"),
        }
    });
    // On a line of its own: the test harness writes `test child ... ` first.
    println!("\nOUTCOME {said}");
}

#[test]
fn two_processes_resume_one_run_exactly_one_executes() {
    let Some(url) = support::url() else { return };
    let schema = Schema::new(&url);
    let work = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(
        rt.block_on(PostgresBackend::connect_with(
            &url,
            support::options(&schema),
        ))
        .unwrap(),
    );
    let exe = std::env::current_exe().unwrap();
    for round in 0..10 {
        let dir = work.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        // A run suspended after its gate, released: anyone may take it up.
        let handle = Arc::new(OnceLock::new());
        let mut engine = Engine::builder(definition(dir.join("log"), handle.clone()))
            .storage(store.clone())
            .build();
        let _ = handle.set(engine.handle());
        let run = engine.run_id();
        let outcome = rt.block_on(engine.run());
        assert!(
            matches!(outcome, Err(RunError::Suspended { .. })),
            "{outcome:?}"
        );
        drop(engine);

        let children: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|me| {
                Command::new(&exe)
                    .args(["child", "--exact", "--nocapture", "--test-threads=1"])
                    .env("FLOW_PG_CHILD", &dir)
                    .env("FLOW_PG_URL", &url)
                    .env("FLOW_PG_SCHEMA", &schema.name)
                    .env("FLOW_PG_ME", me)
                    .env("FLOW_PG_RUN", run.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap()
            })
            .collect();
        wait_for(&dir.join("ready-a"));
        wait_for(&dir.join("ready-b"));
        std::fs::write(dir.join("go"), "").unwrap();
        let mut said: Vec<String> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                assert!(out.status.success(), "a child failed: {out:?}");
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("OUTCOME ").map(str::to_string))
                    .unwrap_or_else(|| panic!("the child did not say what happened: {out:?}"))
            })
            .collect();
        said.sort();
        let executed = said.iter().filter(|s| *s == "EXECUTED").count();
        let owned: Vec<&String> = said.iter().filter(|s| s.starts_with("OWNED")).collect();
        assert_eq!((executed, owned.len()), (1, 1), "round {round}: {said:?}");
        assert!(
            owned[0].starts_with("OWNED process-"),
            "round {round}: {said:?}"
        );
        // Every step ran once, all in the process that executed.
        let log = std::fs::read_to_string(dir.join("log")).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), STEPS, "round {round}: {log}");
        let pid = lines[0].split(' ').next().unwrap();
        for (k, line) in lines.iter().enumerate() {
            assert_eq!(*line, format!("{pid} step {k}"), "round {round}: {log}");
        }
        let (flow, _) = rt.block_on(flow::Backend::load_flow(&*store, run)).unwrap();
        assert_eq!(flow.state, FlowState::Success, "round {round}");
        assert_eq!(flow.ownership.fence, 2, "round {round}: claimed once since");
    }
}
