//! `flow serve` used the way a person uses it, in a real headless Chromium
//! driven through chromedriver (Debian's `chromium` and `chromium-driver`):
//! the runs list, the form of `web-check` filled in, its graph turning
//! green without a reload, `deploy` made to fail with its failed step, its
//! output and the reverted steps, and re-run. Screenshots of the form and
//! of the runs list and the run pages go to `target/ci-artifacts/`.
//!
//! Without Chromium it says so and passes; with `FLOW_TEST_BROWSER=1` (as
//! `.ci/run` sets it) a missing Chromium is a failure.

mod common;
mod serving;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use serving::{Served, TOKEN};

const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn driver() -> Option<Driver> {
    let found = which("chromedriver").is_some() && std::path::Path::new(CHROMIUM).exists();
    if !found {
        assert!(
            std::env::var_os("FLOW_TEST_BROWSER").is_none(),
            "FLOW_TEST_BROWSER is set and Chromium is missing: apt-get install chromium chromium-driver"
        );
        // Past the test harness's capture (which only takes what the print
        // macros write), so that a plain `cargo test` shows it.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the browser test needs Chromium and its driver (Debian: apt-get install \
             chromium chromium-driver); .ci/run installs them"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(driver)
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.exists())
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ci-artifacts");
    std::fs::create_dir_all(&dir).expect("target/ci-artifacts");
    dir
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a Chromium session")
}

/// Waits until `check` holds (60 s at most), looking every 100 ms.
async fn until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn class_of(c: &Client, step: &str) -> String {
    let script = "const g = [...document.querySelectorAll('#graph g.node')]\
                  .find(g => g.dataset.step === arguments[0]); return g ? g.getAttribute('class') : '';";
    c.execute(script, vec![json!(step)])
        .await
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(artifacts().join(name), png).expect("the screenshot is saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_starts_watches_and_reruns_pipelines() {
    let Some(driver) = driver() else { return };
    let scratch = common::Scratch::new();
    let sly = serving::run_of_a_script_named_step(&scratch).await;
    let s = Served::start_in(
        scratch,
        &["examples/web-check.yaml", "examples/deploy.yaml"],
    );
    let c = browser(&driver).await;

    // The runs list, signed in by the address `flow serve` prints.
    c.goto(&s.url(&format!("/#token={TOKEN}"))).await.unwrap();
    assert_eq!(text(&c, "h1").await, "Runs");
    assert_eq!(text(&c, "#auth").await, "signed in");
    assert_eq!(
        c.current_url().await.unwrap().fragment(),
        None,
        "the token left the address"
    );

    // The form of web-check: a value of the wrong type is caught in the
    // page; then a good one starts the run.
    c.find(Locator::LinkText("web-check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the form", || async {
        text(&c, "h1").await == "Start web-check"
    })
    .await;
    let port = c.find(Locator::Id("param-port")).await.unwrap();
    assert_eq!(port.prop("value").await.unwrap().as_deref(), Some("80"));
    port.clear().await.unwrap();
    port.send_keys("eighty").await.unwrap();
    c.find(Locator::Id("start-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the field's error", || async {
        text(&c, "[data-param=port] .field-error").await == "must be an integer"
    })
    .await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/pipelines/")
    );
    shot(&c, "serve-form.png").await;
    port.clear().await.unwrap();
    port.send_keys("9").await.unwrap();
    c.find(Locator::Id("start-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the run page", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path().starts_with("/runs/"))
    })
    .await;
    let web_check = c.current_url().await.unwrap().path().to_string();

    // Its steps turn green as they succeed, with no reload (a mark set on
    // the page now is still there at the end).
    c.execute("window.flowMark = 'same page'; return null;", vec![])
        .await
        .unwrap();
    until("every step of web-check to succeed", || async {
        let mut all = true;
        for step in ["ping", "fetch", "report", "timestamp"] {
            all &= class_of(&c, step).await == "node st-succeeded";
        }
        all
    })
    .await;
    let mark = c
        .execute("return window.flowMark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!("same page"), "the page was reloaded");
    // The run's own end comes in an event of its own, after its last step's.
    until("the run to be shown succeeded", || async {
        text(&c, "#run-state").await == "succeeded"
    })
    .await;
    let mark = c
        .execute("return window.flowMark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!("same page"), "the page was reloaded");
    assert_eq!(
        text(&c, "tr[data-tail=report] pre[data-field=stdout]").await,
        "127.0.0.1 answers ping; no web server answers on port 9"
    );
    shot(&c, "serve-run-web-check.png").await;

    // deploy, made to fail at `switch`.
    c.goto(&s.url("/")).await.unwrap();
    until("web-check in the list", || async {
        text(&c, "#runs tr:first-child td:nth-child(3)").await == "succeeded"
    })
    .await;
    shot(&c, "serve-runs.png").await;
    c.find(Locator::LinkText("deploy"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the form of deploy", || async {
        text(&c, "h1").await == "Start deploy"
    })
    .await;
    let root = s.scratch.path().join("deploy");
    let field = c.find(Locator::Id("param-root")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(&root.display().to_string()).await.unwrap();
    c.find(Locator::Id("param-fail_at"))
        .await
        .unwrap()
        .select_by_value("switch")
        .await
        .unwrap();
    c.find(Locator::Id("start-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("deploy's run page", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path().starts_with("/runs/") && u.path() != web_check)
    })
    .await;
    let deploy = c.current_url().await.unwrap().path().to_string();
    until("deploy to be reverted", || async {
        text(&c, "#run-state").await == "reverted"
    })
    .await;
    assert_eq!(class_of(&c, "switch").await, "node st-failed");
    assert_eq!(class_of(&c, "prepare").await, "node st-reverted");
    assert_eq!(class_of(&c, "unpack").await, "node st-reverted");
    assert_eq!(class_of(&c, "check").await, "node st-skipped");
    assert_eq!(
        text(&c, "tr[data-tail=switch] pre[data-field=stderr]").await,
        "cannot switch the link"
    );
    assert_eq!(
        text(&c, "tr[data-step=switch] td[data-field=exit]").await,
        "4"
    );
    assert_eq!(
        text(&c, "tr[data-step=switch] td[data-field=error]").await,
        "step `switch` failed: exit status 4"
    );
    shot(&c, "serve-run-deploy.png").await;
    // Its full log, from the API, shown as text.
    c.find(Locator::Css("button.log-open[data-log=switch]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("log-stream"))
        .await
        .unwrap()
        .select_by_value("stderr")
        .await
        .unwrap();
    until("the log of switch", || async {
        text(&c, "#log-text").await == "cannot switch the link"
    })
    .await;
    shot(&c, "serve-run-deploy-log.png").await;

    // Re-run: a new run of the same definition, with the same values.
    c.find(Locator::Id("rerun"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the re-run's page", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path().starts_with("/runs/") && u.path() != deploy)
    })
    .await;
    until("the re-run to be reverted too", || async {
        text(&c, "#run-state").await == "reverted"
    })
    .await;
    assert_eq!(class_of(&c, "switch").await, "node st-failed");
    let (_, runs) = s.get("/api/runs?flow=deploy").await;
    assert_eq!(runs.as_array().map(Vec::len), Some(2));

    // A step named like a script is shown as its name, and runs nothing.
    c.goto(&s.url(&format!("/runs/{sly}"))).await.unwrap();
    until("the run's events", || async {
        text(&c, "#run-state").await == "succeeded"
    })
    .await;
    let shown = c
        .execute(
            "return [...document.querySelectorAll('#steps tr.step td:first-child')].map(td => td.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!(["fetch", serving::SCRIPT_STEP]));
    assert_eq!(
        class_of(&c, serving::SCRIPT_STEP).await,
        "node st-succeeded"
    );
    let scripts = c
        .execute("return document.scripts.length;", vec![])
        .await
        .unwrap();
    assert_eq!(scripts, json!(1), "only the page's own script");
    assert!(c.get_alert_text().await.is_err(), "an alert was opened");
    c.close().await.unwrap();
}
