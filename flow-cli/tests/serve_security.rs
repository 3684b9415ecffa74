//! `flow serve` is safe by default: what a run holds is shown as text,
//! actions need the token and come from its own pages, logs stay in their
//! run's directory, and it listens on loopback only.

mod common;
mod serving;

use std::net::TcpStream;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::Scratch;
use serving::{SCRIPT_STEP, Served, TOKEN, run_of_a_script_named_step, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_run_holds_is_shown_as_text() {
    let scratch = Scratch::new();
    let sly = run_of_a_script_named_step(&scratch).await;
    let s = Served::start_in(scratch, &["typed.yaml"]);
    let run = s
        .start_run("typed", json!({"who": "<script>alert(2)</script>"}))
        .await;
    let end = s.wait_end(&run).await;
    assert_eq!(
        step(&end, "html")["stdout_tail"],
        "<b>bold</b><img src=x onerror=alert(1)>"
    );

    let r = s
        .client
        .get(s.url(&format!("/runs/{sly}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    );
    let page = r.text().await.unwrap();
    // In the graph (title and label), the steps table, and its data.
    assert!(
        page.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"),
        "{page}"
    );
    assert!(
        page.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{page}"
    );
    assert!(
        page.contains("data-step=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{page}"
    );
    assert!(
        page.contains("<span id=\"run-flow\">&lt;i&gt;sly&lt;/i&gt;</span>"),
        "{page}"
    );
    assert!(
        !page.contains(SCRIPT_STEP) && !page.contains("<i>sly"),
        "{page}"
    );
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the page's own script: {page}"
    );

    let (_, page) = s.text(&format!("/runs/{run}")).await;
    assert!(
        page.contains("&lt;b&gt;bold&lt;/b&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(
        page.contains("<code>&lt;script&gt;alert(2)&lt;/script&gt;</code>"),
        "{page}"
    );
    assert!(
        !page.contains("<img src=x") && !page.contains("<b>bold"),
        "{page}"
    );
    assert_eq!(page.matches("<script").count(), 1, "{page}");

    let (_, list) = s.text("/").await;
    assert!(list.contains("<td>&lt;i&gt;sly&lt;/i&gt;</td>"), "{list}");
    assert!(!list.contains("<i>sly"), "{list}");

    // A log is text, which a browser may not take for anything else.
    let r = s
        .client
        .get(s.url(&format!("/api/runs/{run}/steps/html/log")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        r.text().await.unwrap(),
        "<b>bold</b><img src=x onerror=alert(1)>\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_token_and_the_same_origin() {
    let s = Served::start(&["typed.yaml"]);
    let start = s.url("/api/pipelines/typed/runs");
    let body = json!({"params": {"who": "Ada"}});
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_string();

    let r = s.client.post(&start).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&r.json().await.unwrap()), "token_required");

    let r = s
        .client
        .post(&start)
        .bearer_auth("guess")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&r.json().await.unwrap()), "wrong_token");

    // A page of another site that somehow has the token is refused too.
    let r = s
        .client
        .post(&start)
        .bearer_auth(TOKEN)
        .header("Origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(code(&refused), "cross_origin");
    assert_eq!(
        refused["error"]["message"],
        format!(
            "a request from `http://evil.example` may not change anything here: actions are \
             taken from this server's own pages (http://{}) or by programs that send the token",
            s.addr
        )
    );
    let r = s
        .client
        .post(&start)
        .bearer_auth(TOKEN)
        .header("Sec-Fetch-Site", "cross-site")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A form posted from another site carries no token either way.
    let r = s
        .client
        .post(s.url("/api/runs/abcd/cancel"))
        .header("Origin", "null")
        .form(&[("x", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A name other than loopback's (DNS rebinding) reads nothing.
    let r = s
        .client
        .get(s.url("/api/runs"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(&r.json().await.unwrap()), "wrong_host");

    let (_, runs) = s.get("/api/runs").await;
    assert_eq!(runs, json!([]), "a refused request started a run");

    // From its own origin, with the token: started.
    let r = s
        .client
        .post(&start)
        .bearer_auth(TOKEN)
        .header("Origin", format!("http://{}", s.addr))
        .header("Sec-Fetch-Site", "same-origin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_request_never_leaves_the_run_directory() {
    let s = Served::start(&["typed.yaml"]);
    let run = s.start_run("typed", json!({"who": "Ada"})).await;
    s.wait_end(&run).await;
    for step in [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
    ] {
        let (status, body) = s.get(&format!("/api/runs/{run}/steps/{step}/log")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{step}");
        assert_eq!(body["error"]["code"], "unknown_step", "{step}");
    }
    let (status, body) = s
        .get(&format!(
            "/api/runs/{run}/steps/greet/log?stream=../../etc/passwd"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_stream");
    // The router itself never serves a path with `..` in it.
    let (status, _) = s
        .text(&format!(
            "/api/runs/{run}/steps/greet/../../../../etc/passwd"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A log file made a link to elsewhere is not followed.
    let (_, view) = s.get(&format!("/api/runs/{run}")).await;
    let dir = std::path::PathBuf::from(view["log_dir"].as_str().unwrap());
    let log = dir.join("greet.stdout");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &log).unwrap();
    let (status, text) = s.text(&format!("/api/runs/{run}/steps/greet/log")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!text.contains("root:"), "{text}");
    assert!(text.contains("\"outside_logs\""), "{text}");
}

#[test]
fn it_listens_on_loopback_only_unless_told() {
    let s = Scratch::new();
    let (code, _, err) = s.run(&["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "flow serve: `0.0.0.0:0` is not a loopback address: the page would be open to the \
         network; give --public to mean it (and keep the token secret), or bind 127.0.0.1\n"
    );
    // Bound to 127.0.0.1, another address of the loopback range (which
    // reaches this machine too) finds nobody listening.
    let served = Served::start(&[]);
    let port: u16 = served.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    TcpStream::connect(("127.0.0.1", port)).expect("127.0.0.1 answers");
    let other = TcpStream::connect(("127.0.0.2", port)).unwrap_err();
    assert_eq!(other.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// A step that prints as fast as it can (128 MiB): its log is streamed
/// whole to a page that follows it, the events go on, and the server's
/// memory stays far below the size of the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loud_step_is_streamed_not_held() {
    use futures::StreamExt;
    const BYTES: u64 = 128 * 1024 * 1024;
    let s = Served::start(&["loud.yaml"]);
    let run = s.start_run("loud", json!({"bytes": BYTES})).await;
    let r = s
        .client
        .get(s.url(&format!("/api/runs/{run}/steps/shout/log?follow=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.bytes_stream();
    let (mut got, mut lines) = (0u64, 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        got += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    assert_eq!(got, BYTES);
    assert_eq!(lines, BYTES / 64);
    let end = s.wait_end(&run).await;
    assert_eq!(end["state"], "succeeded");
    assert_eq!(
        step(&end, "shout")["stdout_tail"].as_str().map(str::len),
        Some(63 * 10 + 9)
    );
    let peak = s.peak_kib();
    assert!(
        peak < 64 * 1024,
        "the server grew to {peak} KiB for a 128 MiB log"
    );
}

/// Without `--token` or FLOW_TOKEN, a new token is made and printed, with
/// the address that signs a browser in; actions take it, and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_is_printed_when_none_is_given() {
    use std::io::{BufRead, BufReader};
    let s = Scratch::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flow"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(s.path())
        .env("FLOW_STORE", s.store())
        .env_remove("FLOW_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_string());
    }
    let addr = lines[0]
        .strip_prefix("flow serve: listening on http://")
        .and_then(|r| r.strip_suffix(&format!("/ (store {})", s.store().display())))
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    assert_eq!(
        lines[1],
        "pipelines: none (give --pipelines DIR|FILE to start runs from the page)"
    );
    let token = lines[2].strip_prefix("token: ").unwrap().to_string();
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_eq!(lines[3], format!("sign in: http://{addr}/#token={token}"));
    let client = reqwest::Client::new();
    let session = |t: String| {
        client
            .post(format!("http://{addr}/api/session"))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(
        session(token.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        session(TOKEN.to_string()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
