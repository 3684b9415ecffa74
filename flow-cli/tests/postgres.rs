//! The flow command on a PostgreSQL store (`--store postgres://...`, here
//! through `FLOW_STORE`), each test in a schema of its own
//! (`?schema=NAME`): posting jobs, a conductor running them (woken by the
//! server's `NOTIFY` for a job posted while it waits), listing and showing
//! runs, their logs and graphs, and cancelling a job nobody took.
//! Skipped (the tests pass at once, saying so) without `FLOW_TEST_POSTGRES`.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, fixture, step_state};

/// A scratch directory (for the logs) and a schema of its own on the test
/// server, dropped at the end.
struct Pg {
    scratch: Scratch,
    server: String,
    schema: String,
}

impl Pg {
    fn new() -> Option<Pg> {
        let server = match std::env::var("FLOW_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!(
                    "skipped: FLOW_TEST_POSTGRES is not set, so the flow command is not tested \
                     on PostgreSQL; set it to postgres://user@127.0.0.1:5432/db to run it"
                );
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Some(Pg {
            scratch: Scratch::new(),
            server,
            schema: format!("cli_{}_{nanos}", std::process::id()),
        })
    }

    fn url(&self) -> String {
        let sep = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={}", self.server, self.schema)
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self
            .scratch
            .flow()
            .env("FLOW_STORE", self.url())
            .args(args)
            .output()
            .expect("flow runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "flow {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    fn spawn(&self, args: &[&str]) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin("flow"))
            .args(args)
            .current_dir(self.scratch.path())
            .env("FLOW_STORE", self.url())
            .env_remove("FLOW_LOGS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flow starts")
    }

    /// Waits until `flow show RUN --output json` satisfies `ok`.
    fn wait_for(
        &self,
        run: &str,
        within: Duration,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, out, _) = self.run(&["show", run, "--output", "json"]);
            if code == 0
                && let Ok(view) = serde_json::from_str::<serde_json::Value>(&out)
                && ok(&view)
            {
                return view;
            }
            assert!(Instant::now() < deadline, "run {run} never {what}: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Posts `file` with `params`; the id of its run.
    fn post(&self, file: &str, params: &[&str]) -> String {
        let mut args = vec!["post", file];
        for p in params {
            args.extend(["-p", p]);
        }
        let (code, out, err) = self.run(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("posted job "), "{out}");
        out.trim_end().rsplit(' ').next().unwrap().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let (server, sql) = (
            self.server.clone(),
            format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema),
        );
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&server, tokio_postgres::NoTls).await
                {
                    let driver = tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                    drop(client);
                    let _ = driver.await;
                }
            });
        })
        .join();
    }
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("a status") {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "the process did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn post_conductor_runs_show_logs_and_graph_on_postgres() {
    let Some(pg) = Pg::new() else { return };
    let chain = fixture("chain.yaml");
    let run = pg.post(&chain, &["version=7"]);
    let pending = pg.json(&["runs", "--output", "json"]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1));
    assert_eq!(pending[0]["state"], "pending");
    assert_eq!(pending[0]["id"], run.as_str());
    let failing = pg.post(&chain, &["fail_at=build"]);

    // It polls every 30 s: what it runs after its first look, it was told
    // of by the server's NOTIFY.
    let mut conductor = pg.spawn(&[
        "conductor",
        "--pipelines",
        &chain,
        "--poll",
        "30s",
        "--name",
        "pg1",
    ]);
    pg.wait_for(&run, Duration::from_secs(20), "succeeded", |v| {
        v["state"] == "succeeded"
    });
    let view = pg.wait_for(&failing, Duration::from_secs(20), "was reverted", |v| {
        v["state"] == "reverted"
    });
    assert_eq!(step_state(&view, "build"), "reverted");
    assert_eq!(step_state(&view, "prepare"), "reverted");
    // Posted while the conductor waits (its two jobs done): well before its
    // next poll, it runs.
    let posted_at = Instant::now();
    let late = pg.post(&chain, &["version=8"]);
    pg.wait_for(&late, Duration::from_secs(20), "succeeded", |v| {
        v["state"] == "succeeded"
    });
    assert!(
        posted_at.elapsed() < Duration::from_secs(20),
        "{:?}",
        posted_at.elapsed()
    );

    let (code, report, err) = pg.run(&["logs", &run, "report"]);
    assert_eq!((code, report.as_str()), (0, "chain 7 is ready\n"), "{err}");
    let (code, report, _) = pg.run(&["logs", &late, "report"]);
    assert_eq!((code, report.as_str()), (0, "chain 8 is ready\n"));

    let runs = pg.json(&["runs", "--output", "json"]);
    let mut states: Vec<(String, String)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    states.sort();
    let mut want = vec![
        (run.clone(), "succeeded".to_string()),
        (failing.clone(), "reverted".to_string()),
        (late.clone(), "succeeded".to_string()),
    ];
    want.sort();
    assert_eq!(states, want);
    let reverted = pg.json(&["runs", "--state", "reverted", "--output", "json"]);
    assert_eq!(reverted[0]["id"], failing.as_str());

    let (code, text, err) = pg.run(&["show", &run[..8]]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("succeeded"), "{text}");
    let (code, dot, err) = pg.run(&["graph", &run]);
    assert_eq!(code, 0, "{err}");
    assert!(dot.starts_with("digraph"), "{dot}");

    let killed = Command::new("kill")
        .args(["-TERM", &conductor.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(wait_exit(&mut conductor), 0);
    let mut out = String::new();
    conductor
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        out.ends_with(
            "conductor stopped: 3 job(s) completed, 0 handed back, 0 taken over by others\n"
        ),
        "{out}"
    );
}

#[test]
fn a_job_nobody_claimed_is_cancelled_on_postgres() {
    let Some(pg) = Pg::new() else { return };
    let run = pg.post(&fixture("chain.yaml"), &[]);
    let (code, out, err) = pg.run(&["cancel", &run]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("cancelled job "), "{out}");
    assert!(
        out.ends_with(&format!(
            "before any conductor took it: nothing ran (run {run})\n"
        )),
        "{out}"
    );
}
