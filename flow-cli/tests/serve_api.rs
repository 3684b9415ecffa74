//! The JSON API of `flow serve`, over HTTP against the real binary on a
//! real store, with real child processes: runs started, followed through
//! their events, shown, logged, cancelled, re-run; and bad input refused
//! with a body that says why.

mod common;
mod serving;

use reqwest::StatusCode;
use serde_json::{Value, json};

use serving::{Served, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_through_the_api_runs_and_is_shown() {
    let s = Served::start(&["typed.yaml"]);
    let (status, list) = s.get("/api/pipelines").await;
    assert_eq!(status, StatusCode::OK);
    let typed = &list[0];
    assert_eq!(typed["name"], "typed");
    assert_eq!(typed["steps"], json!(["greet", "html"]));
    assert_eq!(
        typed["parameters"],
        json!([
            {"name": "who", "type": "string", "required": true, "default": null, "description": "Whom to greet."},
            {"name": "count", "type": "int", "required": false, "default": 2, "description": "How many times."},
            {"name": "ratio", "type": "float", "required": false, "default": 0.5, "description": null},
            {"name": "loud", "type": "bool", "required": false, "default": false, "description": null},
            {"name": "mode", "type": "one-of", "choices": ["fast", "slow"], "required": false, "default": "fast", "description": null},
        ])
    );

    // Strings are read as their parameter's type (as a form sends them);
    // numbers and booleans are taken as they are.
    let run = s
        .start_run(
            "typed",
            json!({"who": "Ada", "count": "3", "ratio": 1.5, "loud": true, "mode": "slow"}),
        )
        .await;
    let end = s.wait_end(&run).await;
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(
        end["params"],
        json!({"who": "Ada", "count": 3, "ratio": 1.5, "loud": true, "mode": "slow"})
    );
    let greet = step(&end, "greet");
    assert_eq!(greet["state"], "succeeded");
    assert_eq!(greet["attempts"], 1);
    assert_eq!(greet["exit_code"], 0);
    assert_eq!(greet["stdout_tail"], "hello Ada x3 1.5 true slow");
    assert_eq!(step(&end, "html")["depends_on"], json!(["greet"]));

    let (status, shown) = s.get(&format!("/api/runs/{}", &run[..8])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["id"], run);
    assert_eq!(shown["flow"], "typed");

    let (status, runs) = s.get("/api/runs?state=succeeded&flow=typed").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(runs[0]["id"], run);
    let (_, none) = s.get("/api/runs?state=failed").await;
    assert_eq!(none, json!([]));

    // The log, whole, then a piece of it, then its end.
    let (status, log) = s.text(&format!("/api/runs/{run}/steps/greet/log")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log, "hello Ada x3 1.5 true slow\n");
    let r = s
        .client
        .get(s.url(&format!("/api/runs/{run}/steps/greet/log?offset=6&limit=3")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-log-size"], "27");
    assert_eq!(r.headers()["x-log-start"], "6");
    assert_eq!(r.headers()["x-log-end"], "9");
    assert_eq!(r.text().await.unwrap(), "Ada");
    let (_, tail) = s
        .text(&format!("/api/runs/{run}/steps/greet/log?tail=5"))
        .await;
    assert_eq!(tail, "slow\n");
    let (_, empty) = s
        .text(&format!("/api/runs/{run}/steps/greet/log?stream=stderr"))
        .await;
    assert_eq!(empty, "");

    // The graph, as the page lays it out and as DOT.
    let (status, graph) = s.get(&format!("/api/runs/{run}/graph")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(graph["edges"], json!([[0, 1]]));
    assert_eq!(graph["nodes"][0]["name"], "greet");
    let (_, dot) = s.text(&format!("/api/runs/{run}/graph?format=dot")).await;
    assert!(dot.contains("\"greet\" -> \"html\";"), "{dot}");

    // Ended: nothing to cancel or resume; a re-run is a new run with the
    // same values.
    let (status, body) = s.post(&format!("/api/runs/{run}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "ended");
    assert_eq!(
        body["error"]["message"],
        format!(
            "run {run} has already ended (succeeded): re-run starts a new run with the same values"
        )
    );
    let (status, body) = s.post(&format!("/api/runs/{run}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "ended");
    let (status, body) = s.post(&format!("/api/runs/{run}/rerun"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let again = body["run"].as_str().unwrap().to_string();
    assert_ne!(again, run);
    assert_eq!(body["url"], format!("/runs/{again}"));
    let end = s.wait_end(&again).await;
    assert_eq!(end["state"], "succeeded");
    assert_eq!(end["params"]["who"], "Ada");
    assert_eq!(
        step(&end, "greet")["stdout_tail"],
        "hello Ada x3 1.5 true slow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error() {
    let s = Served::start(&["typed.yaml"]);
    let error = |body: &Value| {
        (
            body["error"]["code"].clone(),
            body["error"]["message"].clone(),
        )
    };

    let unknown = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let (status, body) = s.get(&format!("/api/runs/{unknown}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error(&body),
        (
            json!("unknown_run"),
            json!(format!(
                "there is no run `{unknown}` in this store: GET /api/runs lists the runs"
            ))
        )
    );
    let (status, body) = s
        .post(&format!("/api/runs/{unknown}/rerun"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "unknown_run");
    let (status, body) = s.get("/api/runs/not-a-run").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_run_id");

    let (status, body) = s
        .post(
            "/api/pipelines/typed/runs",
            json!({"params": {"who": "Ada", "count": "three"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "bad_parameters");
    assert_eq!(
        body["error"]["problems"],
        json!([{"code": "parameter_type", "param": "count",
                "message": "parameter `count` must be an integer, and \"three\" is not"}])
    );
    let (status, body) = s
        .post(
            "/api/pipelines/typed/runs",
            json!({"params": {"who": "Ada", "count": 2.5, "loud": "yes", "mode": "medium"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let params: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["param"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["count", "loud", "mode"], "{body}");
    assert_eq!(
        body["error"]["problems"][0]["message"],
        "parameter `count` must be an integer, and the number 2.5 is not"
    );

    let (status, body) = s
        .post("/api/pipelines/typed/runs", json!({"params": {"count": 1}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["problems"],
        json!([{"code": "missing_parameter", "param": "who",
                "message": "parameter `who` is required and was given no value"}])
    );
    let (status, body) = s
        .post(
            "/api/pipelines/typed/runs",
            json!({"params": {"who": "Ada", "colour": "red"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["problems"][0]["code"], "unknown_parameter");
    assert_eq!(body["error"]["problems"][0]["param"], "colour");

    let r = s
        .client
        .post(s.url("/api/pipelines/typed/runs"))
        .bearer_auth(serving::TOKEN)
        .body("{\"params\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_json");

    let (status, body) = s.post("/api/pipelines/nope/runs", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error(&body),
        (
            json!("unknown_pipeline"),
            json!("there is no pipeline `nope` here: the pipelines are typed")
        )
    );
    let (status, body) = s.get("/api/runs?state=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_state");
    let (status, body) = s.get("/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    // None of these made a run.
    let (_, runs) = s.get("/api/runs").await;
    assert_eq!(runs, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_made_to_fail_reverts_and_shows_why() {
    let s = Served::start(&["examples/deploy.yaml"]);
    let root = s.scratch.path().join("deploy");
    let run = s
        .start_run(
            "deploy",
            json!({"fail_at": "switch", "root": root.display().to_string()}),
        )
        .await;
    let end = s.wait_end(&run).await;
    assert_eq!(end["state"], "reverted", "{end}");
    let switch = step(&end, "switch");
    // It failed, and what it may have done was undone with the rest.
    assert_eq!(switch["state"], "reverted");
    assert_eq!(switch["exit_code"], 4);
    assert_eq!(switch["stderr_tail"], "cannot switch the link");
    assert_eq!(switch["error"], "step `switch` failed: exit status 4");
    for name in ["prepare", "unpack"] {
        assert_eq!(step(&end, name)["state"], "reverted", "{name}");
        assert_eq!(step(&end, name)["undo"]["exit_code"], 0, "{name}");
    }
    assert_eq!(step(&end, "check")["state"], "skipped");
    assert!(!root.exists(), "the undo commands left {root:?}");
    let (status, log) = s
        .text(&format!("/api/runs/{run}/steps/switch/log?stream=stderr"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log, "cannot switch the link\n");
    let (_, undo) = s
        .text(&format!("/api/runs/{run}/steps/prepare/log?undo=true"))
        .await;
    assert_eq!(undo, format!("removed {} if empty\n", root.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_is_cancelled_and_reverted() {
    let s = Served::start(&["gated.yaml"]);
    let gate = s.scratch.path().join("gate");
    let run = s
        .start_run("gated", json!({"gate": gate.display().to_string()}))
        .await;
    let running = s
        .wait_run(&run, |v| step(v, "wait")["state"] == "running")
        .await;
    assert_eq!(running["state"], "running");
    assert_eq!(running["held"], true);
    let (status, body) = s.post(&format!("/api/runs/{run}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["cancel"], "requested");
    let end = s.wait_end(&run).await;
    assert_eq!(end["state"], "reverted");
    assert_eq!(step(&end, "first")["state"], "reverted");
    assert_eq!(step(&end, "last")["state"], "skipped");
}

/// Stopped while a page follows a run it runs, the server exits at once and
/// leaves the run to be taken up: the next server resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_left_by_a_stopped_server_is_resumed_by_the_next() {
    use futures::StreamExt;
    let s = Served::start(&["gated.yaml"]);
    let gate = s.scratch.path().join("gate");
    let run = s
        .start_run("gated", json!({"gate": gate.display().to_string()}))
        .await;
    s.wait_run(&run, |v| step(v, "wait")["state"] == "running")
        .await;
    // A page that follows the run, open while the server stops.
    let open = s
        .client
        .get(s.url(&format!("/api/runs/{run}/events")))
        .send()
        .await
        .unwrap();
    let mut events = open.bytes_stream();
    assert!(events.next().await.is_some());
    let (code, scratch) = s.terminate();
    assert_eq!(code, Some(0));

    let s = Served::start_in(scratch, &["gated.yaml"]);
    let (_, left) = s.get(&format!("/api/runs/{run}")).await;
    assert_eq!(left["state"], "running");
    assert_eq!(left["held"], false);
    let (status, body) = s.post(&format!("/api/runs/{run}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["run"], run);
    std::fs::write(&gate, "").unwrap();
    let end = s.wait_end(&run).await;
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(step(&end, "first")["attempts"], 1);
    assert_eq!(
        step(&end, "wait")["stdout_tail"],
        "waiting for the gate\nreleased"
    );
    assert_eq!(step(&end, "last")["state"], "succeeded");
}
