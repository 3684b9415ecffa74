//! `flow serve` under load (a benchmark, not a test): many runs of a large
//! pipeline at once, started through the API and run by the server, while
//! simulated browsers keep their pages' event streams open and load pages.
//! Reports the pages' response times (p50, p99, max) and the server's
//! memory (peak and at the end).
//!
//! `cargo bench -p flow-cli --bench serve [-- --runs 100 --steps 50 --browsers 20 --sleep-ms 200]`
//!
//! Each browser keeps open the events of the runs list and of 5 runs (120
//! streams for 20 browsers), and loads in turn the runs list, a run's page
//! and a run's JSON, one after another, until every run has ended.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

const TOKEN: &str = "bench-token";

struct Args {
    runs: usize,
    steps: usize,
    browsers: usize,
    sleep_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        runs: 100,
        steps: 50,
        browsers: 20,
        sleep_ms: 200,
    };
    let list: Vec<String> = std::env::args().skip(1).collect();
    let mut it = list.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok());
        match flag.as_str() {
            "--runs" => a.runs = value().unwrap_or(100) as usize,
            "--steps" => a.steps = value().unwrap_or(50) as usize,
            "--browsers" => a.browsers = value().unwrap_or(20) as usize,
            "--sleep-ms" => a.sleep_ms = value().unwrap_or(200),
            // What cargo bench passes (`--bench`), and filters.
            _ => {}
        }
    }
    a
}

/// A pipeline of `steps` steps in layers of 5, each step after two of the
/// layer before; each sleeps a little and prints a line.
fn pipeline(steps: usize, sleep_ms: u64) -> String {
    let mut out =
        String::from("name: load\nparameters:\n  n:\n    type: int\n    default: 0\nsteps:\n");
    for i in 0..steps {
        out.push_str(&format!(
            "  - name: s{i:03}\n    command: [sh, -c, 'sleep {}; echo step {i} of run {{n}}']\n",
            sleep_ms as f64 / 1000.0
        ));
        if i >= 5 {
            let layer = i / 5 * 5 - 5;
            out.push_str(&format!(
                "    depends-on: [s{:03}, s{:03}]\n",
                layer + i % 5,
                layer + (i + 1) % 5
            ));
        }
    }
    out
}

fn memory_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("a scratch directory");
    let file = dir.path().join("load.yaml");
    std::fs::write(&file, pipeline(a.steps, a.sleep_ms)).expect("the pipeline");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--token",
            TOKEN,
            "-j",
            "4",
            "--pipelines",
        ])
        .arg(&file)
        .current_dir(dir.path())
        .env("FLOW_STORE", dir.path().join("flow.db"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("flow serve starts");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().expect("piped")),
        &mut line,
    )
    .expect("its address");
    let addr = line
        .trim()
        .strip_prefix("flow serve: listening on http://")
        .and_then(|r| r.split('/').next())
        .expect("the address line")
        .to_string();
    let pid = server.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = rt.block_on(load(&a, &addr, pid));
    let _ = server.kill();
    let _ = server.wait();
    println!("{report}");
}

async fn load(a: &Args, addr: &str, pid: u32) -> String {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a client");
    let url = |p: &str| format!("http://{addr}{p}");
    let idle_kib = memory_kib(pid, "VmRSS:");

    // Every run at once.
    let t0 = Instant::now();
    let starts = (0..a.runs).map(|n| {
        let client = client.clone();
        let url = url("/api/pipelines/load/runs");
        async move {
            let r = client
                .post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"params": {"n": n}}))
                .send()
                .await
                .expect("a start");
            assert_eq!(r.status(), 201, "start {n}");
            let body: Value = r.json().await.expect("JSON");
            body["run"].as_str().expect("an id").to_string()
        }
    });
    let runs: Vec<String> = futures::future::join_all(starts).await;
    let started_in = t0.elapsed();

    // The browsers' event streams: the list, and 5 runs each.
    let events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut streams = Vec::new();
    for b in 0..a.browsers {
        let mut paths = vec!["/api/runs/events?limit=50".to_string()];
        for k in 0..5 {
            paths.push(format!(
                "/api/runs/{}/events",
                runs[(b * 5 + k) % runs.len()]
            ));
        }
        for p in paths {
            let client = client.clone();
            let events = events.clone();
            let u = url(&p);
            streams.push(tokio::spawn(async move {
                let Ok(r) = client
                    .get(u)
                    .timeout(Duration::from_secs(3600))
                    .send()
                    .await
                else {
                    return;
                };
                let mut body = r.bytes_stream();
                while let Some(Ok(chunk)) = body.next().await {
                    let n = chunk.windows(2).filter(|w| w == b"\n\n").count();
                    events.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
    }

    // The browsers' page loads, until every run has ended.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loaders = Vec::new();
    for b in 0..a.browsers {
        let client = client.clone();
        let runs = runs.clone();
        let done = done.clone();
        let base = url("");
        loaders.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut k = b;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let run = &runs[k % runs.len()];
                for p in [
                    "/".to_string(),
                    format!("/runs/{run}"),
                    format!("/api/runs/{run}"),
                ] {
                    let t = Instant::now();
                    let r = client
                        .get(format!("{base}{p}"))
                        .send()
                        .await
                        .expect("a page");
                    assert_eq!(r.status(), 200, "{p}");
                    r.bytes().await.expect("its body");
                    times.push(t.elapsed());
                }
                k += 7;
            }
            times
        }));
    }
    let mut peak_rss = 0;
    let ended_in = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(memory_kib(pid, "VmRSS:"));
        let r = client
            .get(url(&format!(
                "/api/runs?state=running,pending&limit={}",
                a.runs
            )))
            .send()
            .await
            .expect("the list");
        let open: Vec<Value> = r.json().await.expect("JSON");
        if open.is_empty() {
            break t0.elapsed();
        }
    };
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut times = Vec::new();
    for l in loaders {
        times.extend(l.await.expect("a loader"));
    }
    let sse_events = events.load(std::sync::atomic::Ordering::Relaxed);
    for s in &streams {
        s.abort();
    }
    let r = client
        .get(url(&format!("/api/runs?limit={}", a.runs)))
        .send()
        .await
        .expect("list");
    let all: Vec<Value> = r.json().await.expect("JSON");
    let succeeded = all.iter().filter(|r| r["state"] == "succeeded").count();
    times.sort();
    let hwm = memory_kib(pid, "VmHWM:");
    let end_rss = memory_kib(pid, "VmRSS:");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "| {runs} × {steps} steps | {browsers} ({streams} streams) | {pages} | {p50:.1} | {p99:.1} | {max:.1} | {hwm} | {idle} | {started:.1} | {ended:.1} | {sse} | {succeeded}/{runs} |\n\
         {{\"runs\":{runs},\"steps\":{steps},\"browsers\":{browsers},\"streams\":{streams},\"pages\":{pages},\
         \"p50_ms\":{p50:.2},\"p99_ms\":{p99:.2},\"max_ms\":{max:.2},\"peak_rss_mib\":{hwm},\"idle_rss_mib\":{idle},\
         \"polled_peak_rss_mib\":{polled},\"end_rss_mib\":{end},\"started_s\":{started:.2},\"ended_s\":{ended:.2},\
         \"sse_events\":{sse},\"succeeded\":{succeeded}}}",
        runs = a.runs,
        steps = a.steps,
        browsers = a.browsers,
        streams = streams.len(),
        pages = times.len(),
        p50 = ms(percentile(&times, 0.50)),
        p99 = ms(percentile(&times, 0.99)),
        max = ms(times.last().copied().unwrap_or_default()),
        hwm = hwm / 1024,
        idle = idle_kib / 1024,
        polled = peak_rss / 1024,
        end = end_rss / 1024,
        started = started_in.as_secs_f64(),
        ended = ended_in.as_secs_f64(),
        sse = sse_events,
        succeeded = succeeded,
    )
}
