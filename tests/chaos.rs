//! Chaos: conductor processes share jobs of mixed flows on one store while a
//! killer sends SIGKILL to a random conductor every 100-300 ms and starts a
//! new one. Then:
//!
//! - every job completes exactly once, with the outcome a crash-free run
//!   gives (`ok` and `retry` flows succeed, `fails` flows are reverted);
//! - no step ran again after the execution whose result the journal holds
//!   (side-effect logs: exactly one execution of each step journaled SUCCESS
//!   carries its journaled attempt number, none a later one);
//! - every step of a reverted run that executed was reverted;
//! - no job is lost or left claimed once the dead conductors' leases ran out;
//! - the writes refused because a conductor had lost its job are counted
//!   and reported.
//!
//! A second test pauses a conductor with SIGSTOP past its lease: the
//! conductor that takes over finishes the job, and the paused one, continued,
//! writes nothing for it.
//!
//! The store is SQLite (several processes on one machine) by default, and
//! PostgreSQL with `FLOW_CHAOS_STORE=postgres` (the `postgres` feature, and
//! `FLOW_TEST_POSTGRES` naming the server: without it the tests say they
//! are skipped and pass); each run on PostgreSQL has a schema of its own.
//! Set `FLOW_CHAOS_JOBS` / `FLOW_CHAOS_CONDUCTORS` for a bigger run
//! (`.ci/run` runs 1,000 jobs on 8 conductors against PostgreSQL).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow::conductor::{Conductor, Registry};
use flow::storage::{Job, JobBoard, JobOutcome, JobQuery, JobState, NewJob};
use flow::{Atom, AtomState, Flow, FnTask, Outputs, Retry, Signature, SqliteBackend, TaskError};
use tempfile::TempDir;

mod common;

/// The PostgreSQL tests' helpers, shared with flow-postgres's own tests.
#[cfg(feature = "postgres")]
#[path = "../flow-postgres/tests/support/mod.rs"]
mod pg_support;

const LEASE: Duration = Duration::from_millis(300);

/// The store the conductors share.
#[derive(Clone, Debug)]
enum Store {
    Sqlite(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        schema: String,
    },
}

impl Store {
    /// The store a test asks for (`FLOW_CHAOS_STORE`), in `dir` for SQLite;
    /// `None` (having said why) when PostgreSQL is asked for and there is
    /// no server to test against.
    fn chosen(dir: &Path) -> Option<Store> {
        match var("FLOW_CHAOS_STORE").as_str() {
            "" | "sqlite" => Some(Store::Sqlite(dir.join("store.db"))),
            #[cfg(feature = "postgres")]
            "postgres" => {
                let url = var("FLOW_TEST_POSTGRES");
                if url.is_empty() {
                    eprintln!(
                        "skipped: FLOW_CHAOS_STORE=postgres, but FLOW_TEST_POSTGRES does not \
                         name a server; set it to postgres://user@host:5432/db to run it"
                    );
                    return None;
                }
                let schema = format!("chaos_{}", uuid::Uuid::new_v4().simple());
                Some(Store::Postgres { url, schema })
            }
            #[cfg(not(feature = "postgres"))]
            "postgres" => panic!(
                "FLOW_CHAOS_STORE=postgres needs flow's PostgreSQL backend: run with \
                 `--features postgres`"
            ),
            other => panic!("FLOW_CHAOS_STORE={other}: say `sqlite` or `postgres`"),
        }
    }

    /// The store, for the report (no URL: it may hold a password).
    fn describe(&self) -> String {
        match self {
            Store::Sqlite(path) => format!("SQLite {}", path.display()),
            #[cfg(feature = "postgres")]
            Store::Postgres { schema, .. } => format!("PostgreSQL (schema {schema})"),
        }
    }

    /// What a conductor process is told of the store.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Store::Sqlite(path) => vec![("FLOW_CHAOS_DB", path.display().to_string())],
            #[cfg(feature = "postgres")]
            Store::Postgres { url, schema } => vec![
                ("FLOW_CHAOS_DB", url.clone()),
                ("FLOW_CHAOS_SCHEMA", schema.clone()),
            ],
        }
    }

    /// The store a conductor process was told of.
    fn from_env() -> Store {
        #[cfg(feature = "postgres")]
        if !var("FLOW_CHAOS_SCHEMA").is_empty() {
            return Store::Postgres {
                url: var("FLOW_CHAOS_DB"),
                schema: var("FLOW_CHAOS_SCHEMA"),
            };
        }
        Store::Sqlite(var("FLOW_CHAOS_DB").into())
    }

    /// Opens the board; `who` names the connections to PostgreSQL
    /// (`application_name`), so that [`Store::pause_between_writes`] finds
    /// them.
    async fn open(&self, who: &str) -> Arc<dyn JobBoard> {
        match self {
            Store::Sqlite(path) => {
                let _ = who;
                Arc::new(SqliteBackend::open(path).expect("the store opens"))
            }
            #[cfg(feature = "postgres")]
            Store::Postgres { url, schema } => {
                let url = with_application_name(url, &app_name(schema, who));
                let options = flow::postgres::PostgresOptions::new().schema(schema);
                Arc::new(
                    flow::postgres::PostgresBackend::connect_with(&url, options)
                        .await
                        .expect("the store opens"),
                )
            }
        }
    }

    /// Stops conductor `owner` (process `pid`) with SIGSTOP at an instant
    /// when it has no write under way: a process stopped in the middle of
    /// a transaction holds its locks (SQLite's write lock; the rows of its
    /// runs in PostgreSQL, until the server's
    /// `idle_in_transaction_session_timeout`, if set).
    fn pause_between_writes(&self, pid: u32, owner: &str) {
        match self {
            Store::Sqlite(path) => {
                let _ = owner;
                common::pause_between_writes(pid, path)
            }
            #[cfg(feature = "postgres")]
            Store::Postgres { url, schema } => {
                let app = app_name(schema, owner);
                for _ in 0..1000 {
                    signal_pid(pid, "-STOP");
                    let open = pg_support::query(
                        url,
                        &format!(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = \
                             '{app}' AND xact_start IS NOT NULL"
                        ),
                    );
                    if open == ["0"] {
                        return;
                    }
                    signal_pid(pid, "-CONT");
                    std::thread::sleep(Duration::from_millis(3));
                }
                panic!("process {pid} was always in a transaction");
            }
        }
    }
}

#[cfg(feature = "postgres")]
impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Postgres { url, schema } = self {
            if var("FLOW_CHAOS_CHILD").is_empty() {
                pg_support::query(url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    }
}

#[cfg(feature = "postgres")]
fn app_name(schema: &str, who: &str) -> String {
    let mut name = format!("{who}-{schema}");
    name.truncate(63);
    name
}

#[cfg(feature = "postgres")]
fn with_application_name(url: &str, name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the log opens");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("the log is written");
}

/// The flows every conductor knows. Each step logs `<n> <step> exec
/// <attempt> <pid>` (and `revert`) to this process's log in `logs`.
fn registry(logs: &Path) -> Registry {
    let log = logs.join(format!("{}.log", std::process::id()));
    let step = |name: &'static str, fail_first_tries: u32| {
        let (exec_log, revert_log) = (log.clone(), log.clone());
        let task = FnTask::asynchronous(
            Signature::new().requires::<u64>("n").optional::<u32>("try"),
            move |a, ctx| {
                let log = exec_log.clone();
                async move {
                    let n = *a.get::<u64>(0)?;
                    let try_ = a.optional::<u32>(1)?.copied().unwrap_or(1);
                    let pause = var("FLOW_CHAOS_STEP_MS").parse().unwrap_or(1 + n % 4);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    append(
                        &log,
                        &format!("{n} {name} exec {} {}", ctx.attempt(), std::process::id()),
                    );
                    if try_ <= fail_first_tries {
                        return Err(TaskError::msg(format!("{name} fails on try {try_}")));
                    }
                    Ok(Outputs::new())
                }
            },
        )
        .on_revert(move |input, ctx| {
            let n = input.args.get::<u64>(0).copied().unwrap_or(0);
            append(
                &revert_log,
                &format!("{n} {name} revert {} {}", ctx.attempt(), std::process::id()),
            );
            flow::Exec::Ready(Ok(None))
        });
        Atom::new(name, task)
    };
    let ok = ["a", "b", "c", "d"]
        .into_iter()
        .fold(Flow::linear("ok").input::<u64>("n"), |f, s| {
            f.add(step(s, 0))
        });
    let fails = ["a", "b", "c"]
        .into_iter()
        .fold(Flow::linear("fails").input::<u64>("n"), |f, s| {
            f.add(step(s, 0))
        })
        .add(step("boom", u32::MAX));
    let retry = Flow::linear("retry")
        .input::<u64>("n")
        .add(step("a", 0))
        .add(
            Flow::linear("group")
                .retry(Retry::times(3).named("r").provides("try"))
                .add(step("b", 0))
                .add(step("flaky", 1)),
        )
        .add(step("c", 0));
    // Kills the process that runs it: a poison job.
    let abort = FnTask::sync(Signature::new(), |_| std::process::abort());
    let poison = Flow::linear("poison").add(Atom::new("abort", abort));
    let mut registry = Registry::new();
    for flow in [ok, fails, retry, poison] {
        registry.register("1", flow.build().expect("a valid flow"));
    }
    registry
}

/// What this binary does as a conductor process: runs until SIGTERM, then
/// prints what it did.
#[test]
fn conductor_process() {
    if var("FLOW_CHAOS_CHILD").is_empty() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let owner = var("FLOW_CHAOS_OWNER");
        let board = Store::from_env().open(&owner).await;
        let conductor = Conductor::new(board, registry(Path::new(&var("FLOW_CHAOS_LOGS"))))
            .owner(owner)
            .concurrency(4)
            .lease(LEASE)
            .renew_every(LEASE / 4)
            .poll(Duration::from_millis(20))
            .max_crashes(var("FLOW_CHAOS_MAX_CRASHES").parse().unwrap_or(3))
            // Listened to: debug builds check every announced change of the
            // runs it takes over against the state table.
            .listener(Arc::new(flow::CaptureListener::atoms_only()));
        let stop = conductor.handle();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::spawn(async move {
            term.recv().await;
            stop.shutdown();
        });
        println!("READY");
        let _ = std::io::stdout().flush();
        let s = conductor.run().await.expect("the conductor ran");
        println!("SUMMARY {} {} {}", s.completed, s.handed_back, s.lost);
        let _ = std::io::stdout().flush();
    });
}

struct Proc {
    child: Child,
    owner: String,
}

fn spawn(dir: &Path, store: &Store, owner: &str, extra: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "--exact",
        "conductor_process",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env("FLOW_CHAOS_CHILD", "1")
    .env_remove("FLOW_CHAOS_SCHEMA")
    .env("FLOW_CHAOS_LOGS", dir.join("logs"))
    .env("FLOW_CHAOS_OWNER", owner)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in store.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().expect("a conductor starts"),
        owner: owner.to_string(),
    }
}

/// Stops a conductor with SIGTERM and reads its summary: (completed,
/// handed back, lost).
fn stop(mut p: Proc) -> (u64, u64, u64) {
    signal(&p.child, "-TERM");
    let out = BufReader::new(p.child.stdout.take().expect("stdout"));
    let mut summary = None;
    for line in out.lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("SUMMARY ") {
            let n: Vec<u64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
            summary = Some((n[0], n[1], n[2]));
        }
    }
    let status = p.child.wait().expect("the conductor ends");
    assert!(status.success(), "conductor {} failed: {status}", p.owner);
    summary.unwrap_or_else(|| panic!("conductor {} printed no summary", p.owner))
}

fn signal(child: &Child, sig: &str) {
    signal_pid(child.id(), sig);
}

fn signal_pid(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

/// A small xorshift generator: the chaos differs from run to run, and the
/// seed is printed to replay it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every side-effect line of every process: `(n, step, kind) -> [(attempt,
/// pid)]`.
type Effects = BTreeMap<(u64, String, String), Vec<(u32, u32)>>;

fn effects(logs: &Path) -> Effects {
    let mut all = Effects::new();
    for entry in std::fs::read_dir(logs).expect("the logs") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a log");
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (n, attempt, pid) = (
                f[0].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            );
            all.entry((n, f[1].to_string(), f[2].to_string()))
                .or_default()
                .push((attempt, pid));
        }
    }
    all
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn conductors_killed_at_random_lose_no_job_and_repeat_no_journaled_step() {
    let jobs: u64 = var("FLOW_CHAOS_JOBS").parse().unwrap_or(120);
    let conductors: usize = var("FLOW_CHAOS_CONDUCTORS").parse().unwrap_or(3);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let tmp = TempDir::new().expect("a directory");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let rt = rt();
    let Some(store) = Store::chosen(dir) else {
        return;
    };
    eprintln!(
        "chaos seed {seed}: {jobs} jobs, {conductors} conductors, on {}",
        store.describe()
    );
    let board = rt.block_on(store.open("test"));
    let mut expected = BTreeMap::new();
    rt.block_on(async {
        for n in 0..jobs {
            let flow = match n % 8 {
                0 | 1 => "fails",
                2 => "retry",
                _ => "ok",
            };
            let job = board
                .post(NewJob::new(flow, "1").input("n", n))
                .await
                .unwrap();
            expected.insert(job.id, (n, flow));
        }
    });

    // The killer is random: a job may see several of its conductors die by
    // chance, which is not what makes a job poison.
    let spawn = |dir: &Path, owner: &str, _: &[(&str, &str)]| {
        spawn(dir, &store, owner, &[("FLOW_CHAOS_MAX_CRASHES", "1000")])
    };
    let mut live: Vec<Proc> = (0..conductors)
        .map(|i| spawn(dir, &format!("c{i}"), &[]))
        .collect();
    let mut started = conductors;
    let mut killed: BTreeSet<u32> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let all_done = |board: &Arc<dyn JobBoard>| {
        rt.block_on(board.list_jobs(JobQuery::new().state(JobState::Complete)))
            .unwrap()
            .len() as u64
            == jobs
    };
    while !all_done(&board) {
        assert!(Instant::now() < deadline, "the jobs never all completed");
        std::thread::sleep(Duration::from_millis(100 + rng.next() % 200));
        let k = (rng.next() % live.len() as u64) as usize;
        let mut victim = live.swap_remove(k);
        signal(&victim.child, "-KILL");
        let _ = victim.child.wait();
        killed.insert(victim.child.id());
        live.push(spawn(dir, &format!("c{started}"), &[]));
        started += 1;
    }
    let mut lost = 0;
    for p in live {
        lost += stop(p).2;
    }
    eprintln!(
        "{} kills; {} conductors in all; {lost} jobs refused to conductors that had lost them",
        killed.len(),
        started
    );
    assert!(
        killed.len() >= 3,
        "the killer killed {} conductors",
        killed.len()
    );

    let done: Vec<Job> = rt.block_on(board.list_jobs(JobQuery::new())).unwrap();
    assert_eq!(done.len() as u64, jobs);
    let effects = effects(&dir.join("logs"));
    let mut crashes = 0;
    for job in &done {
        let (n, flow) = expected[&job.id];
        crashes += job.crashes;
        let want = if flow == "fails" {
            JobOutcome::Reverted
        } else {
            JobOutcome::Succeeded
        };
        assert_eq!(job.state, JobState::Complete, "job {n}");
        assert_eq!(job.outcome, Some(want), "job {n} ({flow}): {:?}", job.error);
        let (run, atoms) = rt.block_on(board.load_flow(job.run)).unwrap();
        assert_eq!(run.ownership.owner, None, "job {n}: its run was given back");
        for a in atoms.iter().filter(|a| a.kind == flow::AtomKind::Task) {
            let execs = effects
                .get(&(n, a.name.clone(), "exec".into()))
                .cloned()
                .unwrap_or_default();
            match a.state {
                AtomState::Success => {
                    let last = execs.iter().filter(|(t, _)| *t == a.attempts).count();
                    assert_eq!(
                        last, 1,
                        "job {n} step {}: {execs:?} for attempts {}",
                        a.name, a.attempts
                    );
                    assert!(
                        execs.iter().all(|(t, _)| *t <= a.attempts),
                        "job {n} step {} ran after its journaled execution: {execs:?}",
                        a.name
                    );
                }
                AtomState::Reverted => {
                    let reverts = effects.get(&(n, a.name.clone(), "revert".into()));
                    assert!(
                        reverts.is_some_and(|r| !r.is_empty()),
                        "job {n} step {} never reverted",
                        a.name
                    );
                }
                AtomState::Pending => {
                    assert!(execs.is_empty(), "job {n} step {} ran: {execs:?}", a.name)
                }
                other => panic!("job {n} step {} ended {other}", a.name),
            }
        }
    }
    eprintln!("{crashes} takeovers of jobs whose conductor died");
}

#[test]
fn a_conductor_paused_past_its_lease_writes_nothing_for_the_job_it_lost() {
    let tmp = TempDir::new().expect("a directory");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let rt = rt();
    let Some(store) = Store::chosen(dir) else {
        return;
    };
    let board = rt.block_on(store.open("test"));
    // A job of many steps: the pause lands in the middle of it.
    let job = rt
        .block_on(board.post(NewJob::new("ok", "1").input("n", 1_000_000u64)))
        .unwrap();
    let slow = [("FLOW_CHAOS_STEP_MS", "150")];
    let a = spawn(dir, &store, "paused", &slow);
    let until = |what: &str, done: &dyn Fn(&Job) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let j = rt.block_on(board.load_job(job.id)).unwrap().unwrap();
            if done(&j) {
                return j;
            }
            assert!(Instant::now() < deadline, "never {what}: {j:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    until("claimed", &|j| j.state == JobState::Claimed);
    store.pause_between_writes(a.child.id(), "paused");
    std::thread::sleep(LEASE * 3);
    let b = spawn(dir, &store, "taker", &slow);
    let done = until("completed by the taker", &|j| j.state == JobState::Complete);
    assert_eq!(done.owner.as_deref(), Some("taker"));
    assert_eq!(done.outcome, Some(JobOutcome::Succeeded));
    assert_eq!((done.claims, done.crashes), (2, 1));
    let (run_before, atoms_before) = rt.block_on(board.load_flow(job.run)).unwrap();
    signal(&a.child, "-CONT");
    let (_, _, lost) = stop(a);
    stop(b);
    // What the paused conductor did after it was continued reached nothing.
    let (run_after, atoms_after) = rt.block_on(board.load_flow(job.run)).unwrap();
    assert_eq!(run_after, run_before);
    assert_eq!(
        serde_json::to_value(&atoms_after).unwrap(),
        serde_json::to_value(&atoms_before).unwrap()
    );
    assert!(lost <= 1, "{lost}");
    assert_eq!(lost, 1, "the paused conductor lost its job");
}

#[test]
fn a_job_that_kills_its_conductor_is_failed_as_poison() {
    let tmp = TempDir::new().expect("a directory");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let rt = rt();
    let Some(store) = Store::chosen(dir) else {
        return;
    };
    let board = rt.block_on(store.open("test"));
    let job = rt.block_on(board.post(NewJob::new("poison", "1"))).unwrap();
    let ok = rt
        .block_on(board.post(NewJob::new("ok", "1").input("n", 5u64)))
        .unwrap();
    // Conductors are restarted as they die, as a supervisor would.
    let max = [("FLOW_CHAOS_MAX_CRASHES", "2")];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut deaths = 0;
    let mut current = spawn(dir, &store, "s0", &max);
    loop {
        let j = rt.block_on(board.load_job(job.id)).unwrap().unwrap();
        let o = rt.block_on(board.load_job(ok.id)).unwrap().unwrap();
        if j.state == JobState::Complete && o.state == JobState::Complete {
            break;
        }
        assert!(Instant::now() < deadline, "never settled: {j:?}");
        if let Ok(Some(_)) = current.child.try_wait() {
            deaths += 1;
            current = spawn(dir, &store, &format!("s{deaths}"), &max);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(current);
    let j = rt.block_on(board.load_job(job.id)).unwrap().unwrap();
    assert_eq!(j.outcome, Some(JobOutcome::Failed));
    assert_eq!((j.claims, j.crashes), (2, 2));
    assert!(
        j.error
            .as_deref()
            .is_some_and(|e| e.starts_with("poison job: 2 conductors died while running it")),
        "{:?}",
        j.error
    );
    assert_eq!(
        deaths, 2,
        "each claim of the poison job killed its conductor"
    );
    let o = rt.block_on(board.load_job(ok.id)).unwrap().unwrap();
    assert_eq!(o.outcome, Some(JobOutcome::Succeeded), "the other job ran");
}
