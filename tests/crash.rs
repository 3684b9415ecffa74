//! Crash test: a child process runs a 200-task flow against a store and is
//! killed with SIGKILL at 50 seeded points (while tasks execute, while they
//! are reverted, inside a retry), then at random instants (anywhere in the
//! run, after its end was journaled, and, for some, again while another
//! process resumes it); each time the run is then resumed to the end from
//! the store, and checked against a run that never crashed:
//!
//! - the final flow state, every atom's final state, and the outputs are equal;
//! - a task recorded `Success` at the kill never runs again (unless a retry
//!   after the kill resets it, as it would without a crash);
//! - only tasks recorded `Running` at the kill run one time more than without
//!   a crash, and only tasks recorded `Reverting` are reverted one time more;
//! - every result acknowledged in the store at the kill is the one the resumed
//!   run uses;
//! - a run found ended in the store at a kill never runs a step again (the
//!   side-effect logs do not change after it).
//!
//! With several kills (the resuming process killed too), a task may run once
//! more for each kill that found it `Running` (or be reverted once more for
//! each that found it `Reverting`), never more.
//!
//! The store is SQLite unless `FLOW_CRASH_STORE=postgres` (with
//! `FLOW_TEST_POSTGRES` naming the server, and the `postgres` feature):
//! then each case has a schema of its own in that database.
//!
//! The flow: a chain of 50, an unordered fan of 40 and its join, a retry group
//! of 30 in which one task fails on the controller's first two attempts, a
//! second fan of 40 and its join, and a chain of 38; in the revert scenario its
//! last task fails, so everything is reverted.
//!
//! This file is its own test harness: with `FLOW_CRASH_CHILD` set it is the
//! child; without, it runs the test.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use flow::{
    Atom, AtomState, Backend, CompiledFlow, Engine, Event, Flow, FlowId, FlowState, FnTask,
    Listener, Outputs, Retry, RunError, Signature, SqliteBackend, StorageError, TaskError,
};
use std::time::{Duration, Instant};

const CHAIN_1: usize = 50;
const FAN: usize = 40;
const GROUP: usize = 30;
/// The task of the retry group that fails while the controller's attempt is below 3.
const FLAKY: usize = 10;
const CHAIN_2: usize = 38;
const TASKS: usize = CHAIN_1 + FAN + 1 + GROUP + FAN + 1 + CHAIN_2;
const POINTS: usize = 50;
/// Cases killed at random instants; half of them are killed again while
/// another process resumes the run.
const RANDOM: usize = 12;
const SEED: u64 = 0x5EED_F10E;
/// How long a child's claim on its run lasts: short, so that the next
/// process takes the run over soon after a kill, and long enough for a busy
/// 2-core machine. A renewal waits in the store's write queue behind the
/// run's journal writes, and a commit can stall on a disk that builds share:
/// a renewal that comes late loses the run, and the child stops (rightly)
/// before its crash point. CI saw that at 200 and at 500 ms, in parallel
/// runs, whose writes are many.
fn child_lease() -> Duration {
    Duration::from_millis(1500)
}

/// Where a child stops and waits to be killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// In `execute`, before the side effect.
    ExecBefore,
    /// In `execute`, after the side effect.
    ExecAfter,
    /// In `revert`, before the side effect.
    RevertBefore,
    /// In `revert`, after the side effect.
    RevertAfter,
    /// When the engine records a task's success, before the journal has it.
    Succeeded,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::ExecBefore,
        Kind::ExecAfter,
        Kind::RevertBefore,
        Kind::RevertAfter,
        Kind::Succeeded,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::ExecBefore => "exec-before",
            Kind::ExecAfter => "exec-after",
            Kind::RevertBefore => "revert-before",
            Kind::RevertAfter => "revert-after",
            Kind::Succeeded => "succeeded",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The process's crash point, and how many events of each kind it saw.
struct Hooks {
    point: Option<(Kind, usize)>,
    /// At the point, suspend the run instead of waiting to be killed.
    suspend: bool,
    seen: [AtomicUsize; 5],
}

/// The child's run, for a suspension at the point.
static HANDLE: OnceLock<flow::RunHandle> = OnceLock::new();

/// Where the side effects go (the parent changes it per case).
static LOGS: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

fn set_logs(dir: &Path) {
    *LOGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(dir.to_path_buf());
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

fn hooks() -> &'static Hooks {
    HOOKS.get().expect("hooks are set before any flow runs")
}

/// Counts an event; at the crash point, tells the parent and waits to be killed.
fn event(kind: Kind) {
    let h = hooks();
    let n = h.seen[kind as usize].fetch_add(1, Ordering::SeqCst) + 1;
    if h.point == Some((kind, n)) {
        if h.suspend {
            if let Some(handle) = HANDLE.get() {
                handle.suspend();
            }
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "CRASH-POINT");
        let _ = out.flush();
        drop(out);
        loop {
            std::thread::park();
        }
    }
}

/// The task's side effect: one line in its own log.
fn side_effect(task: &str, line: &str) {
    let dir = LOGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .expect("the log directory is set before any flow runs");
    let path = dir.join(task);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    f.write_all(format!("{line}\n").as_bytes())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn mix(name: &str, sum: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ sum.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A task named `name` requiring `inputs` (all `u64`) and providing `name`.
fn step(name: String, inputs: Vec<String>) -> Atom {
    step_with(name, inputs, Extra::None)
}

enum Extra {
    None,
    /// Fails while the retry controller's `try` is below 3.
    Flaky,
    /// Fails when the run's `fail_at_end` is true.
    FailAtEnd,
}

fn step_with(name: String, inputs: Vec<String>, extra: Extra) -> Atom {
    let mut sig = Signature::new();
    for i in &inputs {
        sig = sig.requires::<u64>(i.clone());
    }
    let n = inputs.len();
    sig = match extra {
        Extra::None => sig,
        Extra::Flaky => sig.requires::<u32>("try"),
        Extra::FailAtEnd => sig.requires::<bool>("fail_at_end"),
    };
    let sig = sig.provides::<u64>(name.clone());
    let exec_name = name.clone();
    let revert_name = name.clone();
    let flaky = matches!(extra, Extra::Flaky);
    let at_end = matches!(extra, Extra::FailAtEnd);
    let task = FnTask::new(sig, move |args, ctx| {
        let name = &exec_name;
        let result = (|| {
            event(Kind::ExecBefore);
            side_effect(name, &format!("execute {}", ctx.attempt()));
            event(Kind::ExecAfter);
            let mut sum = 0u64;
            for k in 0..n {
                sum = sum.wrapping_add(*args.get::<u64>(k)?);
            }
            if flaky && *args.get::<u32>(n)? < 3 {
                return Err(TaskError::msg(format!("{name}: not yet")));
            }
            if at_end && *args.get::<bool>(n)? {
                return Err(TaskError::msg(format!("{name}: the last step failed")));
            }
            Ok(Outputs::one(mix(name, sum)))
        })();
        flow::Exec::Ready(result)
    })
    .on_revert_sync(move |_| {
        event(Kind::RevertBefore);
        side_effect(&revert_name, "revert");
        event(Kind::RevertAfter);
        Ok(None)
    });
    Atom::new(name, task)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// The 200-task flow.
fn definition() -> CompiledFlow {
    let mut top = Flow::linear("crash")
        .input::<u64>("seed")
        .input::<bool>("fail_at_end");
    let mut prev = "seed".to_string();
    for name in names("a", CHAIN_1) {
        top.push(step(name.clone(), vec![prev]));
        prev = name;
    }
    let mut fan = Flow::unordered("fan-1");
    for name in names("p", FAN) {
        fan.push(step(name, vec![prev.clone()]));
    }
    top.push(fan);
    top.push(step("join-1".into(), names("p", FAN)));
    prev = "join-1".into();
    let mut group = Flow::linear("group").retry(Retry::times(3).named("r").provides("try"));
    for (i, name) in names("g", GROUP).into_iter().enumerate() {
        let extra = if i == FLAKY {
            Extra::Flaky
        } else {
            Extra::None
        };
        group.push(step_with(name.clone(), vec![prev], extra));
        prev = name;
    }
    top.push(group);
    let mut fan = Flow::unordered("fan-2");
    for name in names("q", FAN) {
        fan.push(step(name, vec![prev.clone()]));
    }
    top.push(fan);
    top.push(step("join-2".into(), names("q", FAN)));
    prev = "join-2".into();
    let tail = names("z", CHAIN_2);
    let last = tail.len() - 1;
    for (i, name) in tail.into_iter().enumerate() {
        let extra = if i == last {
            Extra::FailAtEnd
        } else {
            Extra::None
        };
        top.push(step_with(name.clone(), vec![prev], extra));
        prev = name;
    }
    top.build().expect("the crash flow builds")
}

/// Stops at the crash point when the engine records a success.
struct OnSuccess;

impl Listener for OnSuccess {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Atom {
            state: AtomState::Success,
            ..
        } = event
        {
            self::event(Kind::Succeeded);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------- the store

/// Where a case's run is stored: `sqlite:PATH` or `postgres:SCHEMA`.
async fn open_store(place: &str) -> Arc<dyn Backend> {
    if let Some(path) = place.strip_prefix("sqlite:") {
        return Arc::new(SqliteBackend::open(path).expect("the store opens"));
    }
    let schema = place
        .strip_prefix("postgres:")
        .expect("sqlite: or postgres:");
    postgres(schema).await
}

#[cfg(feature = "postgres")]
async fn postgres(schema: &str) -> Arc<dyn Backend> {
    let url = std::env::var("FLOW_TEST_POSTGRES").expect("FLOW_TEST_POSTGRES names the server");
    let options = flow::PostgresOptions::new().schema(schema);
    Arc::new(
        flow::PostgresBackend::connect_with(&url, options)
            .await
            .expect("the store opens"),
    )
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_schema: &str) -> Arc<dyn Backend> {
    panic!(
        "FLOW_CRASH_STORE=postgres needs the `postgres` feature: cargo test --features postgres --test crash"
    )
}

/// The store of case `name` under `dir`.
fn place(dir: &Path, name: &str) -> String {
    match std::env::var("FLOW_CRASH_STORE").as_deref() {
        Ok("postgres") => format!("postgres:crash_{}_{name}", std::process::id()),
        _ => format!("sqlite:{}", dir.join("store.db").display()),
    }
}

// ---------------------------------------------------------------- the child

fn child() -> ExitCode {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    // `never`: no crash point; the parent kills at an instant of its choosing.
    let at = var("FLOW_CRASH_AT");
    let point = (at != "never").then(|| {
        at.split_once(':')
            .map(|(k, n)| (Kind::parse(k).expect("a kind"), n.parse().expect("a count")))
            .expect("FLOW_CRASH_AT is kind:n")
    });
    let parallel = var("FLOW_CRASH_PARALLEL") == "1";
    let fail_at_end = var("FLOW_CRASH_FAIL") == "1";
    let resume: Option<FlowId> = std::env::var("FLOW_CRASH_RESUME")
        .ok()
        .map(|id| id.parse().expect("a run id"));
    let _ = HOOKS.set(Hooks {
        point,
        suspend: var("FLOW_CRASH_SUSPEND") == "1",
        seen: Default::default(),
    });
    set_logs(Path::new(&var("FLOW_CRASH_LOGS")));
    let place = var("FLOW_CRASH_DB");
    runtime().block_on(async move {
        let store = open_store(&place).await;
        if let Some(id) = resume {
            // Another process's turn at the run: the killed one's lease
            // runs out first.
            println!("RESUMING");
            let _ = std::io::stdout().flush();
            let mut engine = Engine::builder(definition())
                .storage(store)
                .parallel(4)
                .lease(child_lease())
                .renew_every(child_lease() / 4)
                .wait_for_lease(child_lease() * 20)
                .listener(OnSuccess)
                .resume(id)
                .await
                .expect("the run resumes");
            match engine.run().await {
                Ok(()) | Err(RunError::Reverted { .. }) => {}
                Err(e) => eprintln!("the resuming child's run ended: {e}"),
            }
            println!("FINISHED");
            let _ = std::io::stdout().flush();
            // A kill may come after the end was journaled, before the exit.
            std::thread::sleep(LINGER);
            std::process::exit(0);
        }
        // A short lease: the parent takes the run over once it ran out.
        let builder = Engine::builder(definition())
            .input("seed", 7u64)
            .input("fail_at_end", fail_at_end)
            .storage(store)
            .lease(child_lease())
            .renew_every(child_lease() / 4)
            .listener(OnSuccess);
        let mut engine = if parallel {
            builder.parallel(4).build()
        } else {
            builder.build()
        };
        let _ = HANDLE.set(engine.handle());
        println!("RUN {}", engine.run_id());
        let _ = std::io::stdout().flush();
        match engine.run().await {
            Err(RunError::Suspended { .. }) => {
                println!("SUSPENDED");
                let _ = std::io::stdout().flush();
                std::process::exit(0);
            }
            Err(RunError::Reverted { .. }) => {}
            // Said, for a case that fails because of it.
            Err(e) => eprintln!("the child's run ended: {e}"),
            Ok(()) => {}
        }
    });
    // Reaching the end means the crash point was never met (or there was
    // none: the parent kills at random).
    println!("FINISHED");
    let _ = std::io::stdout().flush();
    std::thread::sleep(LINGER);
    ExitCode::SUCCESS
}

/// How long a child that finished waits before it exits.
const LINGER: Duration = Duration::from_millis(150);

// --------------------------------------------------------------- the parent

/// What one run did: executions and reverts per task (from the side-effect
/// logs), and its end (from the store).
#[derive(Debug, Default)]
struct Record {
    executed: BTreeMap<String, usize>,
    reverted: BTreeMap<String, usize>,
}

fn read_logs(dir: &Path) -> Record {
    let mut r = Record::default();
    for entry in std::fs::read_dir(dir).expect("the log directory") {
        let entry = entry.expect("a log entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).expect("a log");
        for line in text.lines() {
            let map = if line.starts_with("execute") {
                &mut r.executed
            } else {
                &mut r.reverted
            };
            *map.entry(name.clone()).or_default() += 1;
        }
    }
    r
}

struct End {
    state: FlowState,
    atoms: BTreeMap<String, AtomState>,
    results: BTreeMap<String, serde_json::Value>,
    history: usize,
    error: Option<String>,
}

async fn end_of(store: &dyn Backend, id: FlowId, outcome: Result<(), RunError>) -> End {
    let (run, atoms) = store.load_flow(id).await.expect("the run is stored");
    let history = atoms
        .iter()
        .find(|a| a.name == "r")
        .and_then(|a| a.meta.get("history"))
        .and_then(|h| h.as_array())
        .map_or(0, Vec::len);
    End {
        state: run.state,
        atoms: atoms.iter().map(|a| (a.name.clone(), a.state)).collect(),
        results: atoms
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.result.clone()?)))
            .collect(),
        history,
        error: outcome.err().map(|e| e.to_string()),
    }
}

/// What a run that never crashed did, and how long it took.
struct Expected {
    record: Record,
    end: End,
    counts: [usize; 5],
    took: Duration,
}

/// A run that never crashed.
fn reference(rt: &tokio::runtime::Runtime, work: &Path, fail_at_end: bool) -> Expected {
    let dir = work.join(format!("reference-{fail_at_end}"));
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("a directory");
    set_logs(&logs);
    let before = seen();
    let (end, took) = rt.block_on(async {
        let store = open_store(&place(&dir, &format!("reference_{fail_at_end}"))).await;
        let mut engine = Engine::builder(definition())
            .input("seed", 7u64)
            .input("fail_at_end", fail_at_end)
            .storage(store.clone())
            .listener(OnSuccess)
            .parallel(4)
            .build();
        let started = Instant::now();
        let outcome = engine.run().await;
        let took = started.elapsed();
        (end_of(&*store, engine.run_id(), outcome).await, took)
    });
    let after = seen();
    let mut counts = [0; 5];
    for k in 0..5 {
        counts[k] = after[k] - before[k];
    }
    Expected {
        record: read_logs(&logs),
        end,
        counts,
        took,
    }
}

fn seen() -> [usize; 5] {
    let h = hooks();
    std::array::from_fn(|k| h.seen[k].load(Ordering::SeqCst))
}

/// A small seeded generator (xorshift*), so the points are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

/// Where a case stops its child.
enum Stop {
    /// At the `n`th event of `kind`, with SIGKILL (or a suspension).
    Point { kind: Kind, n: usize, suspend: bool },
    /// SIGKILL `after` the run started; with `again`, a second process
    /// resuming the run is killed that long after it started resuming.
    Instant {
        after: Duration,
        again: Option<Duration>,
    },
}

struct Case {
    fail_at_end: bool,
    parallel: bool,
    stop: Stop,
}

impl Case {
    fn label(&self, i: usize) -> String {
        let what = match &self.stop {
            Stop::Point {
                kind,
                n,
                suspend: false,
            } => format!("{} #{n}", kind.name()),
            Stop::Point { kind, n, .. } => format!("suspend at {} #{n}", kind.name()),
            Stop::Instant { after, again: None } => {
                format!("kill at {} ms", after.as_millis())
            }
            Stop::Instant {
                after,
                again: Some(again),
            } => format!(
                "kill at {} ms, the resumer at {} ms",
                after.as_millis(),
                again.as_millis()
            ),
        };
        format!(
            "case {i:02}: {what} ({}, {})",
            if self.fail_at_end {
                "revert"
            } else {
                "forward"
            },
            if self.parallel { "parallel" } else { "serial" }
        )
    }
}

fn cases(forward: &Expected, backward: &Expected) -> Vec<Case> {
    let mut rng = Rng(SEED);
    let plan: [(bool, Kind, usize); 9] = [
        (false, Kind::ExecBefore, 8),
        (false, Kind::ExecAfter, 8),
        (false, Kind::Succeeded, 6),
        (false, Kind::RevertBefore, 4),
        (false, Kind::RevertAfter, 4),
        (true, Kind::ExecAfter, 4),
        (true, Kind::Succeeded, 2),
        (true, Kind::RevertBefore, 7),
        (true, Kind::RevertAfter, 7),
    ];
    let mut out = Vec::new();
    for (fail_at_end, kind, count) in plan {
        let total = if fail_at_end { backward } else { forward }.counts[kind as usize];
        assert!(total > 0, "no {} events to crash at", kind.name());
        for _ in 0..count {
            out.push(Case {
                fail_at_end,
                parallel: out.len() % 2 == 1,
                stop: Stop::Point {
                    kind,
                    n: 1 + rng.below(total),
                    suspend: false,
                },
            });
        }
    }
    assert_eq!(out.len(), POINTS);
    // Suspended during revert, then resumed by another process (this one).
    for parallel in [false, true] {
        out.push(Case {
            fail_at_end: true,
            parallel,
            stop: Stop::Point {
                kind: Kind::RevertAfter,
                n: 1 + rng.below(backward.counts[Kind::RevertAfter as usize]),
                suspend: true,
            },
        });
    }
    // Killed at random instants, from the start of the run to a while after
    // its end (while the child lingers, its end journaled: a child, a process
    // of its own, runs slower than the reference); half of them kill the
    // process resuming the run too.
    for k in 0..RANDOM {
        let fail_at_end = k % 3 == 2;
        let took = if fail_at_end { backward } else { forward }.took;
        let span = (took.as_micros() as usize * 3 / 2 + LINGER.as_micros() as usize) + 1;
        let after = Duration::from_micros(rng.below(span) as u64);
        let again = (k % 2 == 1).then(|| {
            let span = (child_lease() + took).as_micros() as usize * 13 / 10 + 1;
            Duration::from_micros(rng.below(span) as u64)
        });
        out.push(Case {
            fail_at_end,
            parallel: k % 4 < 2,
            stop: Stop::Instant { after, again },
        });
    }
    out
}

/// What a case found, for the totals at the end.
#[derive(Default)]
struct Found {
    running_at_kill: usize,
    reverting_at_kill: usize,
    ran_twice: usize,
    reverted_twice: usize,
    ended_at_kill: usize,
    never_stored: usize,
    kills: usize,
}

/// The store and the logs at one kill.
struct Snapshot {
    flow: FlowState,
    states: BTreeMap<String, AtomState>,
    acknowledged: BTreeMap<String, serde_json::Value>,
    logs: Record,
}

fn snapshot(
    rt: &tokio::runtime::Runtime,
    store: &dyn Backend,
    id: FlowId,
    logs: &Path,
) -> Result<Snapshot, String> {
    let (stored_run, stored) = rt
        .block_on(store.load_flow(id))
        .map_err(|e| format!("the store after the kill: {e}"))?;
    Ok(Snapshot {
        flow: stored_run.state,
        states: stored.iter().map(|a| (a.name.clone(), a.state)).collect(),
        acknowledged: stored
            .iter()
            .filter(|a| a.state == AtomState::Success)
            .filter_map(|a| Some((a.name.clone(), a.result.clone()?)))
            .collect(),
        logs: read_logs(logs),
    })
}

/// Starts a child for `case` (or, with `resume`, one that resumes run
/// `resume`), and waits for it to print `ready`.
fn spawn_child(
    case: &Case,
    place: &str,
    logs: &Path,
    resume: Option<FlowId>,
) -> Result<(std::process::Child, BufReader<std::process::ChildStdout>), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (at, suspend) = match &case.stop {
        Stop::Point { kind, n, suspend } if resume.is_none() => {
            (format!("{}:{n}", kind.name()), *suspend)
        }
        _ => ("never".to_string(), false),
    };
    let mut command = Command::new(exe);
    command
        .env("FLOW_CRASH_CHILD", "1")
        .env("FLOW_CRASH_AT", at)
        .env("FLOW_CRASH_PARALLEL", if case.parallel { "1" } else { "0" })
        .env("FLOW_CRASH_FAIL", if case.fail_at_end { "1" } else { "0" })
        .env("FLOW_CRASH_SUSPEND", if suspend { "1" } else { "0" })
        .env("FLOW_CRASH_DB", place)
        .env("FLOW_CRASH_LOGS", logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(id) = resume {
        command.env("FLOW_CRASH_RESUME", id.to_string());
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    Ok((child, BufReader::new(stdout)))
}

/// Reads the child's lines until one starting with `prefix`: its rest.
fn until(out: &mut BufReader<std::process::ChildStdout>, prefix: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {
                if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                    return Some(rest.to_string());
                }
            }
        }
    }
}

fn kill(child: &mut std::process::Child) -> Result<(), String> {
    // SIGKILL; a child that exited already is reaped all the same.
    let _ = child.kill();
    child.wait().map(drop).map_err(|e| e.to_string())
}

fn run_case(
    rt: &tokio::runtime::Runtime,
    work: &Path,
    index: usize,
    case: &Case,
    expected: &Expected,
    found: &mut Found,
) -> Result<(), String> {
    let dir = work.join(format!("case-{index:02}"));
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let place = place(&dir, &format!("case_{index:02}"));
    let (mut child, mut out) = spawn_child(case, &place, &logs, None)?;
    let id = until(&mut out, "RUN ")
        .ok_or("the child did not say its run id")?
        .parse::<FlowId>()
        .map_err(|e| e.to_string())?;
    let store = rt.block_on(open_store(&place));
    let mut snapshots = Vec::new();
    match &case.stop {
        Stop::Point {
            suspend: true,
            kind,
            ..
        } => {
            if until(&mut out, "SUSPENDED").is_none() {
                let status = child.wait().map_err(|e| e.to_string())?;
                return Err(format!(
                    "the child ended ({status}) without suspending its run at {}",
                    kind.name()
                ));
            }
            let status = child.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("the child that suspended its run ended {status}"));
            }
            let s = snapshot(rt, &*store, id, &logs)?;
            if s.flow != FlowState::Suspended {
                return Err(format!(
                    "the suspended run is stored {:?}, not Suspended",
                    s.flow
                ));
            }
            snapshots.push(s);
        }
        Stop::Point { .. } => {
            let reached = until(&mut out, "CRASH-POINT").is_some();
            kill(&mut child)?;
            if !reached {
                return Err("the child ended without reaching its crash point".into());
            }
            snapshots.push(snapshot(rt, &*store, id, &logs)?);
        }
        Stop::Instant { after, again } => {
            std::thread::sleep(*after);
            kill(&mut child)?;
            if let Err(StorageError::NotFound(_)) = rt.block_on(store.load_flow(id)) {
                // Killed before its run was journaled (a kill in the first
                // milliseconds, on a busy machine): the engine stores the run
                // before it starts a step, so nothing ran, and there is
                // nothing to resume.
                let ran = read_logs(&logs);
                if !ran.executed.is_empty() || !ran.reverted.is_empty() {
                    return Err(format!("the run was never stored, yet steps ran: {ran:?}"));
                }
                found.kills += 1;
                found.never_stored += 1;
                return Ok(());
            }
            snapshots.push(snapshot(rt, &*store, id, &logs)?);
            if let Some(again) = again {
                let (mut resumer, mut out) = spawn_child(case, &place, &logs, Some(id))?;
                until(&mut out, "RESUMING").ok_or("the resumer did not start")?;
                std::thread::sleep(*again);
                kill(&mut resumer)?;
                snapshots.push(snapshot(rt, &*store, id, &logs)?);
            }
        }
    }
    found.kills += snapshots.len();

    // Resume to the end, in this process.
    set_logs(&logs);
    let end = rt.block_on(async {
        // The killed children's leases run out first.
        let mut engine = Engine::builder(definition())
            .storage(store.clone())
            .parallel(4)
            .wait_for_lease(child_lease() * 20)
            .resume(id)
            .await
            .map_err(|e| format!("resume: {e}"))?;
        let outcome = engine.run().await;
        Ok::<_, String>(end_of(&*store, id, outcome).await)
    })?;
    let after = read_logs(&logs);
    check(case, expected, &snapshots, &end, &after, found)
}

fn check(
    case: &Case,
    expected: &Expected,
    snapshots: &[Snapshot],
    end: &End,
    after: &Record,
    found: &mut Found,
) -> Result<(), String> {
    let (reference, expected_end) = (&expected.record, &expected.end);
    let mut problems = Vec::new();
    if end.state != expected_end.state {
        problems.push(format!(
            "flow ended {:?}, expected {:?}",
            end.state, expected_end.state
        ));
    }
    if end.error != expected_end.error {
        problems.push(format!(
            "run returned {:?}, expected {:?}",
            end.error, expected_end.error
        ));
    }
    if end.atoms != expected_end.atoms {
        for (name, state) in &expected_end.atoms {
            if end.atoms.get(name) != Some(state) {
                problems.push(format!(
                    "atom {name} ended {:?}, expected {state:?}",
                    end.atoms.get(name)
                ));
            }
        }
    }
    if end.results != expected_end.results {
        problems.push("the final results differ from the run without a crash".into());
    }
    if end.history != expected_end.history {
        problems.push(format!(
            "the controller made {} attempts, expected {}",
            end.history, expected_end.history
        ));
    }
    // A run found ended at a kill ran nothing after it.
    if let Some(ended) = snapshots.iter().position(|s| {
        matches!(
            s.flow,
            FlowState::Success | FlowState::Reverted | FlowState::Failure
        )
    }) {
        found.ended_at_kill += 1;
        let at = &snapshots[ended].logs;
        if at.executed != after.executed || at.reverted != after.reverted {
            problems.push(format!(
                "the run was stored {:?} at kill {}, yet steps ran after it",
                snapshots[ended].flow,
                ended + 1
            ));
        }
    }
    let in_group = |name: &str| name.starts_with('g');
    for name in names_all() {
        let at = |s: &Snapshot| s.states.get(&name).copied().unwrap_or(AtomState::Pending);
        for (what, map, reference_map, extra_state) in [
            (
                "executed",
                &after.executed,
                &reference.executed,
                AtomState::Running,
            ),
            (
                "reverted",
                &after.reverted,
                &reference.reverted,
                AtomState::Reverting,
            ),
        ] {
            let got = map.get(&name).copied().unwrap_or(0);
            let want = reference_map.get(&name).copied().unwrap_or(0);
            let allowed = snapshots.iter().filter(|s| at(s) == extra_state).count();
            if got > want && got - want <= allowed {
                if extra_state == AtomState::Running {
                    found.ran_twice += 1;
                } else {
                    found.reverted_twice += 1;
                }
            } else if got != want {
                let states: Vec<AtomState> = snapshots.iter().map(at).collect();
                problems.push(format!(
                    "task {name} {what} {got} times, {want} without a crash; at the kills it \
                     was {states:?}"
                ));
            }
        }
        for s in snapshots {
            match at(s) {
                AtomState::Running => found.running_at_kill += 1,
                AtomState::Reverting => found.reverting_at_kill += 1,
                _ => {}
            }
        }
        let first = &snapshots[0];
        if at(first) == AtomState::Success && !in_group(&name) {
            let times = after.executed.get(&name).copied().unwrap_or(0);
            if times != 1 {
                problems.push(format!(
                    "task {name} was Success at the kill but executed {times} times"
                ));
            }
            let before = first.logs.executed.get(&name).copied().unwrap_or(0);
            if before != 1 {
                problems.push(format!(
                    "task {name} was Success at the kill after {before} executions"
                ));
            }
            if !case.fail_at_end {
                let result = end.results.get(&name);
                if result != first.acknowledged.get(&name) {
                    problems.push(format!(
                        "the acknowledged result of {name} ({:?}) became {result:?}",
                        first.acknowledged.get(&name)
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n  "))
    }
}

fn names_all() -> Vec<String> {
    let mut all = Vec::with_capacity(TASKS);
    all.extend(names("a", CHAIN_1));
    all.extend(names("p", FAN));
    all.push("join-1".into());
    all.extend(names("g", GROUP));
    all.extend(names("q", FAN));
    all.push("join-2".into());
    all.extend(names("z", CHAIN_2));
    all
}

fn parent() -> ExitCode {
    let work = tempfile::tempdir().expect("a temporary directory");
    let _ = HOOKS.set(Hooks {
        point: None,
        suspend: false,
        seen: Default::default(),
    });
    let rt = runtime();
    let started = Instant::now();
    let store = std::env::var("FLOW_CRASH_STORE").unwrap_or_else(|_| "sqlite".into());
    println!("store: {store}");
    assert_eq!(names_all().len(), TASKS);
    assert_eq!(TASKS, 200);
    let forward = reference(&rt, work.path(), false);
    let backward = reference(&rt, work.path(), true);
    assert_eq!(
        forward.end.state,
        FlowState::Success,
        "the reference run succeeds"
    );
    assert_eq!(forward.end.history, 3, "the reference run retries twice");
    assert_eq!(
        backward.end.state,
        FlowState::Reverted,
        "the failing reference run reverts"
    );
    let cases = cases(&forward, &backward);
    let mut found = Found::default();
    let mut failed = 0;
    // FLOW_CRASH_ONLY=3,17 runs those cases alone (to look at one).
    let only: Option<Vec<usize>> = std::env::var("FLOW_CRASH_ONLY")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    for (i, case) in cases.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !o.contains(&i)) {
            continue;
        }
        let expected = if case.fail_at_end {
            &backward
        } else {
            &forward
        };
        let label = case.label(i);
        match run_case(&rt, work.path(), i, case, expected, &mut found) {
            Ok(()) => println!("{label} ... ok"),
            Err(e) => {
                failed += 1;
                println!("{label} ... FAILED\n  {e}");
            }
        }
    }
    println!(
        "\n{} cases ({} kills) in {:.1}s on {store}: {} tasks caught Running ({} of them ran again), \
         {} caught Reverting ({} reverted again), {} runs found ended at a kill (none ran a step after), \
         {} killed before their run was stored (none ran a step)",
        cases.len(),
        found.kills,
        started.elapsed().as_secs_f64(),
        found.running_at_kill,
        found.ran_twice,
        found.reverting_at_kill,
        found.reverted_twice,
        found.ended_at_kill,
        found.never_stored,
    );
    if only.is_none()
        && (found.ran_twice == 0 || found.reverted_twice == 0 || found.reverting_at_kill == 0)
    {
        println!("FAILED: the kill points never caught a task mid-way; the test proves nothing");
        return ExitCode::FAILURE;
    }
    if failed > 0 {
        println!("FAILED: {failed} of {} cases", cases.len());
        return ExitCode::FAILURE;
    }
    println!(
        "test result: ok. {POINTS} seeded kill points, 2 suspensions, {RANDOM} kills at random \
         instants ({} of them killing the resumer too)",
        RANDOM / 2
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    if std::env::var_os("FLOW_CRASH_CHILD").is_some() {
        child()
    } else {
        parent()
    }
}
