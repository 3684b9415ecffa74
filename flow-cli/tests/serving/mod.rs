//! A `flow serve` process on a scratch store, and what its tests ask of it
//! over HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Scratch, fixture};

pub(crate) const TOKEN: &str = "test-token-0123456789";

/// A server, killed when dropped.
pub(crate) struct Served {
    pub(crate) scratch: Scratch,
    child: Child,
    pub(crate) addr: String,
    pub(crate) client: reqwest::Client,
}

impl Served {
    /// `flow serve --bind 127.0.0.1:0 --token TOKEN --pipelines FIXTURES...`.
    pub(crate) fn start(fixtures: &[&str]) -> Served {
        Served::start_in(Scratch::new(), fixtures)
    }

    /// The same on an existing scratch directory (a store made before).
    pub(crate) fn start_in(scratch: Scratch, fixtures: &[&str]) -> Served {
        let mut args: Vec<String> = ["serve", "--bind", "127.0.0.1:0", "--token", TOKEN]
            .map(String::from)
            .to_vec();
        if !fixtures.is_empty() {
            args.push("--pipelines".into());
            args.extend(fixtures.iter().map(|f| fixture_or_example(f)));
        }
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("flow"))
            .args(&args)
            .current_dir(scratch.path())
            .env("FLOW_STORE", scratch.store())
            .env_remove("FLOW_LOGS")
            .env_remove("FLOW_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("flow serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .expect("flow serve prints where it listens");
        let addr = line
            .trim()
            .strip_prefix("flow serve: listening on http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a client");
        Served {
            scratch,
            child,
            addr,
            client,
        }
    }

    /// Sends SIGTERM and waits for the server to exit (30 s at most);
    /// returns its exit code and the scratch directory, for another server.
    pub(crate) fn terminate(mut self) -> (Option<i32>, Scratch) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("the server's status") {
                break status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "flow serve did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let scratch = std::mem::replace(&mut self.scratch, Scratch::new());
        (code, scratch)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET `path`: its status and its body as JSON (`null` if it is not).
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GET `path` as text.
    pub(crate) async fn text(&self, path: &str) -> (StatusCode, String) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        (r.status(), r.text().await.expect("a body"))
    }

    /// POST `body` to `path` with the token.
    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Starts pipeline `name` with `params`; returns the run's id.
    pub(crate) async fn start_run(&self, name: &str, params: Value) -> String {
        let (status, body) = self
            .post(
                &format!("/api/pipelines/{name}/runs"),
                serde_json::json!({ "params": params }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["run"].as_str().expect("the run's id").to_string()
    }

    /// Follows the run's events until one satisfies `until` (60 s at most);
    /// returns that one.
    pub(crate) async fn wait_run(&self, run: &str, until: impl Fn(&Value) -> bool) -> Value {
        let follow = async {
            let r = self
                .client
                .get(self.url(&format!("/api/runs/{run}/events")))
                .send()
                .await
                .expect("the events");
            assert_eq!(r.status(), StatusCode::OK);
            let mut body = r.bytes_stream();
            let mut buf = String::new();
            let mut last = Value::Null;
            while let Some(chunk) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk.expect("a chunk")));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    let data: String = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                        .collect();
                    if data.is_empty() {
                        continue;
                    }
                    last = serde_json::from_str(&data).expect("JSON data");
                    if until(&last) {
                        return last;
                    }
                }
            }
            panic!("the events ended before the run got there; last: {last}");
        };
        tokio::time::timeout(Duration::from_secs(60), follow)
            .await
            .expect("the run got there within 60 s")
    }

    /// Waits until the run has ended; returns its last state.
    pub(crate) async fn wait_end(&self, run: &str) -> Value {
        self.wait_run(run, |v| {
            matches!(
                v["state"].as_str(),
                Some("succeeded" | "reverted" | "failed")
            )
        })
        .await
    }

    /// The server's peak resident memory, in KiB (VmHWM).
    pub(crate) fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixture's path, or an example pipeline's (`examples/web-check.yaml`).
pub(crate) fn fixture_or_example(name: &str) -> String {
    match name.strip_prefix("examples/") {
        Some(example) => format!(
            "{}/../examples/pipelines/{example}",
            env!("CARGO_MANIFEST_DIR")
        ),
        None => fixture(name),
    }
}

/// The step named `name` of a run's JSON.
pub(crate) fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

pub(crate) const SCRIPT_STEP: &str = "<script>alert(1)</script>";

/// A run of a flow written in Rust whose step is named like a script.
pub(crate) async fn run_of_a_script_named_step(s: &Scratch) -> String {
    use flow::{Atom, Engine, Flow, FnTask, Outputs, Signature, SqliteBackend};
    {
        let store = std::sync::Arc::new(SqliteBackend::open(s.store()).unwrap());
        let ok = || FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
        let flow = Flow::graph("<i>sly</i>")
            .add(Atom::new("fetch", ok()))
            .add(Atom::new(SCRIPT_STEP, ok()))
            .link("fetch", SCRIPT_STEP)
            .build()
            .unwrap();
        let mut engine = Engine::builder(flow).storage(store).build();
        engine.run().await.unwrap();
        engine.run_id().to_string()
    }
}
