//! `#[task]`: tasks written as functions and `impl` blocks. Their constant
//! signatures (`TaskDef::INFO`, `Provides`) and run-time `Signature`s; values
//! flowing through required, optional, defaulted and collected inputs and tuple
//! outputs on both engines; compensations receiving their inputs, outcome and
//! the run's failures; the task context (progress, attempt, atom name,
//! cancellation); the attribute's options (name, priority, timeout, blocking,
//! crate); a task with many inputs; errors and panics; and the functions
//! staying callable as written.

mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::{MODES, engine};
use flow::{
    Atom, CaptureListener, Context, Engine, FailureKind, Failures, Flow, FlowState, InputKind,
    InputShape, Name, Outcome, Provides, Retry, RunError, SymbolRef, Task, TaskDef, TaskError,
    task,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Compiles only when both markers name the same type.
fn same<T>(_: PhantomData<T>, _: PhantomData<T>) {}

/// Locks a mutex, ignoring poisoning (a failed assertion elsewhere).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the lines recorded so far.
fn take(log: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *lock(log))
}

/// The failures of a run as `atom: message` lines.
fn failure_lines(failures: &Failures) -> Vec<String> {
    failures
        .iter()
        .map(|(atom, f)| format!("{atom}: {}", f.message()))
        .collect()
}

/// Names, as the run-time signature lists them.
fn names(list: &[&'static str]) -> Box<[Name]> {
    list.iter().map(|n| Name::from(*n)).collect()
}

/// A value a task may carry: a database handle, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Db {
    name: String,
}

fn db(name: &str) -> Db {
    Db {
        name: name.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Tasks whose signatures are checked
// ---------------------------------------------------------------------------

/// Required by reference and by value; `_retention` requires `retention`.
#[task(provides = backup)]
fn backup_db(db: &Db, _retention: u32) -> String {
    format!("{}.bak.{_retention}", db.name)
}

/// `&str` requires a `String`, `&[T]` a `Vec<T>`.
#[task(provides = greeting)]
fn greet(name: &str, scores: &[u32]) -> String {
    format!("{name}: {scores:?}")
}

/// Every shape of optional input.
#[task(provides = label)]
fn describe(
    prefix: Option<&str>,
    count: Option<u32>,
    db: Option<&Db>,
    tags: Option<&[u32]>,
) -> String {
    format!(
        "{}|{count:?}|{:?}|{tags:?}",
        prefix.unwrap_or("-"),
        db.map(|d| d.name.as_str())
    )
}

/// Inputs with a fallback.
#[task(provides = settings)]
fn configure(
    #[default(8080)] port: u16,
    #[default] verbose: bool,
    #[default("localhost")] host: &str,
    #[default(db("main"))] db: &Db,
) -> String {
    format!("{host}:{port} verbose={verbose} db={}", db.name)
}

/// Gathers `a`, `b` and `c`, in that order.
#[task(provides = total)]
fn sum_parts(#[collect(a, b, c)] parts: Vec<u32>) -> u32 {
    parts.iter().sum()
}

/// Gathers `c` then `a`, borrowed.
#[task(provides = order)]
fn list_refs(#[collect(c, a)] parts: Vec<&u32>) -> String {
    format!("{parts:?}")
}

/// Gathers `b` and `a` into a map keyed by symbol name.
#[task(provides = table)]
fn tabulate(#[collect(b, a)] by_name: BTreeMap<String, u32>) -> Vec<(String, u32)> {
    by_name.into_iter().collect()
}

/// Gathers `c` and `b` into a borrowed map.
#[task(provides = keyed)]
fn key_refs(#[collect(c, b)] by_name: BTreeMap<&str, &u32>) -> String {
    format!("{by_name:?}")
}

/// The context is not a symbol.
#[task(provides = scaled)]
fn scale(ctx: &Context, value: u32, factor: u32) -> u32 {
    ctx.progress(0.5);
    value * factor
}

/// A tuple, destructured into two outputs.
#[task(provides = (host, port))]
fn split_addr(addr: &str) -> Result<(String, u16), TaskError> {
    let (host, port) = addr
        .split_once(':')
        .ok_or_else(|| TaskError::msg(format!("`{addr}` has no port")))?;
    let port = port.parse::<u16>().map_err(TaskError::from)?;
    Ok((host.to_string(), port))
}

static TOUCHED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Provides nothing.
#[task]
fn touch(_path: &str) {
    lock(&TOUCHED).push(_path.to_string());
}

#[test]
fn info_of_required_borrowed_and_owned_inputs() {
    let info = backup_db::INFO;
    assert_eq!(info.name, "backup_db");
    assert_eq!(
        info.inputs,
        [
            flow::InputInfo {
                name: "db",
                hash: flow::symbol_hash("db"),
                ty: "Db",
                shape: InputShape::Required,
            },
            flow::InputInfo {
                name: "retention",
                hash: flow::symbol_hash("retention"),
                ty: "u32",
                shape: InputShape::Required,
            },
        ]
    );
    assert_eq!(
        info.outputs,
        [flow::OutputInfo {
            name: "backup",
            hash: flow::symbol_hash("backup"),
            ty: "String",
        }]
    );
    assert_eq!(info.input("retention").map(|i| i.ty), Some("u32"));
    assert_eq!(info.input("_retention"), None);
    assert_eq!(info.output("backup").map(|o| o.ty), Some("String"));
    same(
        PhantomData::<<backup_db as Provides<{ flow::symbol_hash("backup") }>>::Ty>,
        PhantomData::<String>,
    );

    let sig = Task::signature(&backup_db {});
    let inputs: Vec<_> = sig.inputs().iter().map(|i| i.name()).collect();
    assert_eq!(inputs, ["db", "retention"]);
    assert!(sig.inputs()[0].ty().is::<Db>());
    assert!(sig.inputs()[1].ty().is::<u32>());
    assert_eq!(sig.inputs()[0].kind(), &InputKind::Required);
    assert_eq!(sig.inputs()[1].kind(), &InputKind::Required);
    assert_eq!(sig.outputs().len(), 1);
    assert_eq!(sig.outputs()[0].name(), "backup");
    assert!(sig.outputs()[0].ty().is::<String>());
    assert!(!sig.is_blocking());
    assert_eq!(sig.default_priority(), 0);
    assert_eq!(sig.default_timeout(), None);
    assert!(sig.revert_inputs().is_empty());
}

#[test]
fn info_of_str_and_slice_inputs_names_the_stored_types() {
    let info = greet::INFO;
    assert_eq!(info.name, "greet");
    assert_eq!(
        info.inputs,
        [
            flow::InputInfo::new("name", "String", InputShape::Required),
            flow::InputInfo::new("scores", "Vec<u32>", InputShape::Required),
        ]
    );
    assert_eq!(info.inputs[0].hash, flow::symbol_hash("name"));
    assert_eq!(info.inputs[1].hash, flow::symbol_hash("scores"));
    assert_eq!(info.outputs, [flow::OutputInfo::new("greeting", "String")]);

    let sig = Task::signature(&greet {});
    assert_eq!(sig.inputs()[0].name(), "name");
    assert!(sig.inputs()[0].ty().is::<String>());
    assert_eq!(sig.inputs()[1].name(), "scores");
    assert!(sig.inputs()[1].ty().is::<Vec<u32>>());
    assert!(
        sig.inputs()
            .iter()
            .all(|i| i.kind() == &InputKind::Required)
    );
    same(
        PhantomData::<<greet as Provides<{ flow::symbol_hash("greeting") }>>::Ty>,
        PhantomData::<String>,
    );
}

#[test]
fn info_of_optional_and_defaulted_inputs() {
    assert_eq!(
        describe::INFO.inputs,
        [
            flow::InputInfo::new("prefix", "String", InputShape::Optional),
            flow::InputInfo::new("count", "u32", InputShape::Optional),
            flow::InputInfo::new("db", "Db", InputShape::Optional),
            flow::InputInfo::new("tags", "Vec<u32>", InputShape::Optional),
        ]
    );
    let sig = Task::signature(&describe {});
    assert!(
        sig.inputs()
            .iter()
            .all(|i| i.kind() == &InputKind::Optional)
    );
    assert!(sig.inputs()[0].ty().is::<String>());
    assert!(sig.inputs()[1].ty().is::<u32>());
    assert!(sig.inputs()[2].ty().is::<Db>());
    assert!(sig.inputs()[3].ty().is::<Vec<u32>>());

    assert_eq!(
        configure::INFO.inputs,
        [
            flow::InputInfo::new("port", "u16", InputShape::Optional),
            flow::InputInfo::new("verbose", "bool", InputShape::Optional),
            flow::InputInfo::new("host", "String", InputShape::Optional),
            flow::InputInfo::new("db", "Db", InputShape::Optional),
        ]
    );
    let sig = Task::signature(&configure {});
    let kinds: Vec<_> = sig.inputs().iter().map(|i| i.kind().clone()).collect();
    assert_eq!(kinds, [const { InputKind::Optional }; 4]);
    assert!(sig.inputs()[0].ty().is::<u16>());
    assert!(sig.inputs()[1].ty().is::<bool>());
    assert!(sig.inputs()[2].ty().is::<String>());
    assert!(sig.inputs()[3].ty().is::<Db>());
    assert_eq!(
        configure::INFO.outputs,
        [flow::OutputInfo::new("settings", "String")]
    );
}

#[test]
fn info_of_collected_inputs() {
    const ABC: &[SymbolRef] = &[
        SymbolRef::new("a"),
        SymbolRef::new("b"),
        SymbolRef::new("c"),
    ];
    assert_eq!(
        sum_parts::INFO.inputs,
        [flow::InputInfo::new(
            "parts",
            "u32",
            InputShape::Collect(ABC)
        )]
    );
    let InputShape::Collect(refs) = sum_parts::INFO.inputs[0].shape else {
        panic!("not a collection: {:?}", sum_parts::INFO.inputs[0].shape);
    };
    let hashes: Vec<u64> = refs.iter().map(|r| r.hash).collect();
    assert_eq!(
        hashes,
        [
            flow::symbol_hash("a"),
            flow::symbol_hash("b"),
            flow::symbol_hash("c")
        ]
    );
    assert_eq!(
        sum_parts::INFO.outputs,
        [flow::OutputInfo::new("total", "u32")]
    );
    let sig = Task::signature(&sum_parts {});
    assert_eq!(sig.inputs().len(), 1);
    assert_eq!(sig.inputs()[0].name(), "parts");
    assert!(sig.inputs()[0].ty().is::<u32>());
    assert_eq!(
        sig.inputs()[0].kind(),
        &InputKind::Collect(names(&["a", "b", "c"]))
    );

    const CA: &[SymbolRef] = &[SymbolRef::new("c"), SymbolRef::new("a")];
    assert_eq!(
        list_refs::INFO.inputs,
        [flow::InputInfo::new(
            "parts",
            "u32",
            InputShape::Collect(CA)
        )]
    );
    assert_eq!(
        Task::signature(&list_refs {}).inputs()[0].kind(),
        &InputKind::Collect(names(&["c", "a"]))
    );

    const BA: &[SymbolRef] = &[SymbolRef::new("b"), SymbolRef::new("a")];
    assert_eq!(
        tabulate::INFO.inputs,
        [flow::InputInfo::new(
            "by_name",
            "u32",
            InputShape::CollectMap(BA)
        )]
    );
    assert_eq!(
        tabulate::INFO.outputs,
        [flow::OutputInfo::new("table", "Vec<(String, u32)>")]
    );
    let sig = Task::signature(&tabulate {});
    assert!(sig.inputs()[0].ty().is::<u32>());
    assert_eq!(
        sig.inputs()[0].kind(),
        &InputKind::CollectMap(names(&["b", "a"]))
    );
    assert!(sig.outputs()[0].ty().is::<Vec<(String, u32)>>());
    same(
        PhantomData::<<tabulate as Provides<{ flow::symbol_hash("table") }>>::Ty>,
        PhantomData::<Vec<(String, u32)>>,
    );

    const CB: &[SymbolRef] = &[SymbolRef::new("c"), SymbolRef::new("b")];
    assert_eq!(
        key_refs::INFO.inputs,
        [flow::InputInfo::new(
            "by_name",
            "u32",
            InputShape::CollectMap(CB)
        )]
    );
    assert_eq!(
        Task::signature(&key_refs {}).inputs()[0].kind(),
        &InputKind::CollectMap(names(&["c", "b"]))
    );
}

#[test]
fn info_skips_the_context_and_destructures_tuples() {
    assert_eq!(
        scale::INFO.inputs,
        [
            flow::InputInfo::new("value", "u32", InputShape::Required),
            flow::InputInfo::new("factor", "u32", InputShape::Required),
        ]
    );
    let sig = Task::signature(&scale {});
    let inputs: Vec<_> = sig.inputs().iter().map(|i| i.name()).collect();
    assert_eq!(inputs, ["value", "factor"]);

    assert_eq!(split_addr::INFO.name, "split_addr");
    assert_eq!(
        split_addr::INFO.inputs,
        [flow::InputInfo::new("addr", "String", InputShape::Required)]
    );
    assert_eq!(
        split_addr::INFO.outputs,
        [
            flow::OutputInfo::new("host", "String"),
            flow::OutputInfo::new("port", "u16"),
        ]
    );
    assert_eq!(split_addr::INFO.outputs[1].hash, flow::symbol_hash("port"));
    let sig = Task::signature(&split_addr {});
    let outputs: Vec<&str> = sig.outputs().iter().map(|o| o.name()).collect();
    assert_eq!(outputs, ["host", "port"]);
    assert!(sig.outputs()[0].ty().is::<String>());
    assert!(sig.outputs()[1].ty().is::<u16>());
    same(
        PhantomData::<<split_addr as Provides<{ flow::symbol_hash("host") }>>::Ty>,
        PhantomData::<String>,
    );
    same(
        PhantomData::<<split_addr as Provides<{ flow::symbol_hash("port") }>>::Ty>,
        PhantomData::<u16>,
    );

    const TOUCH: flow::TaskInfo = flow::TaskInfo {
        name: "touch",
        inputs: &[flow::InputInfo::new("path", "String", InputShape::Required)],
        outputs: &[],
    };
    assert_eq!(touch::INFO, TOUCH);
    let sig = Task::signature(&touch {});
    assert_eq!(sig.inputs()[0].name(), "path");
    assert!(sig.outputs().is_empty());
}

// ---------------------------------------------------------------------------
// Running: values through every kind of input and output
// ---------------------------------------------------------------------------

/// The flow inputs `addr`, `db` and `retention`, then tasks reading them.
fn pipeline() -> flow::CompiledFlow {
    Flow::linear("pipeline")
        .input::<String>("addr")
        .input::<Db>("db")
        .input::<u32>("retention")
        .add(Atom::of(split_addr {}))
        .add(Atom::of(backup_db {}))
        .add(Atom::of(describe {}))
        .add(Atom::of(configure {}))
        .build()
        .expect("valid flow")
}

#[tokio::test]
async fn required_optional_defaulted_inputs_and_tuple_outputs_flow_through() {
    for mode in MODES {
        let mut engine = Engine::builder(pipeline())
            .mode(mode)
            .input("addr", "db.local:5432".to_string())
            .input("db", db("main"))
            .input("retention", 7u32)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(engine.state(), FlowState::Success, "{mode:?}");
        assert_eq!(
            engine.fetch::<String>("host").map(String::as_str),
            Some("db.local")
        );
        assert_eq!(engine.fetch::<u16>("port"), Some(&5432));
        assert_eq!(
            engine.fetch::<String>("backup").map(String::as_str),
            Some("main.bak.7")
        );
        // Only `db` has a provider; the other optional inputs are `None`.
        assert_eq!(
            engine.fetch::<String>("label").map(String::as_str),
            Some("-|None|Some(\"main\")|None")
        );
        // `port`, `host` and `db` are provided and win over their defaults;
        // `verbose` has no provider and falls back to `bool::default()`.
        assert_eq!(
            engine.fetch::<String>("settings").map(String::as_str),
            Some("db.local:5432 verbose=false db=main")
        );
        assert_eq!(
            format!("{:?}", engine.outputs("split_addr")),
            "Some((\"db.local\", 5432))"
        );
    }
}

#[tokio::test]
async fn optional_inputs_without_providers_get_none_or_their_defaults() {
    for mode in MODES {
        let flow = Flow::linear("bare")
            .add(Atom::of(describe {}))
            .add(Atom::of(configure {}))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine(flow, mode);
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "bare.f RUNNING",
                "describe.t RUNNING",
                "describe.t SUCCESS(\"-|None|None|None\")",
                "configure.t RUNNING",
                "configure.t SUCCESS(\"localhost:8080 verbose=false db=main\")",
                "bare.f SUCCESS"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn optional_inputs_with_providers_get_their_values() {
    for mode in MODES {
        let flow = Flow::linear("full")
            .input::<String>("prefix")
            .input::<u32>("count")
            .input::<Db>("db")
            .input::<Vec<u32>>("tags")
            .input::<u16>("port")
            .input::<bool>("verbose")
            .input::<String>("host")
            .add(Atom::of(describe {}))
            .add(Atom::of(configure {}))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("prefix", "pre".to_string())
            .input("count", 3u32)
            .input("db", db("aux"))
            .input("tags", vec![1u32, 2])
            .input("port", 9000u16)
            .input("verbose", true)
            .input("host", "example.org".to_string())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            engine.fetch::<String>("label").map(String::as_str),
            Some("pre|Some(3)|Some(\"aux\")|Some([1, 2])"),
            "{mode:?}"
        );
        assert_eq!(
            engine.fetch::<String>("settings").map(String::as_str),
            Some("example.org:9000 verbose=true db=aux"),
            "{mode:?}"
        );
    }
}

/// Provides `a = seed + 1`.
#[task(provides = a)]
fn make_a(seed: u32) -> u32 {
    seed + 1
}

/// Provides `b = seed + 2`, asynchronously.
#[task(provides = b)]
async fn make_b(seed: u32) -> u32 {
    tokio::task::yield_now().await;
    seed + 2
}

/// Provides `c = seed + 3`, through a `Result`.
#[task(provides = c)]
fn make_c(seed: u32) -> Result<u32, TaskError> {
    Ok(seed + 3)
}

#[tokio::test]
async fn collected_inputs_gather_in_order_and_by_name() {
    for mode in MODES {
        let flow = Flow::linear("collect")
            .input::<u32>("seed")
            .add(
                Flow::unordered("parts")
                    .add(Atom::of(make_a {}))
                    .add(Atom::of(make_b {}))
                    .add(Atom::of(make_c {})),
            )
            .add(
                Flow::graph("consumers")
                    .add(Atom::of(sum_parts {}))
                    .add(Atom::of(list_refs {}))
                    .add(Atom::of(tabulate {}))
                    .add(Atom::of(key_refs {})),
            )
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("seed", 10u32)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("total"), Some(&36), "{mode:?}");
        assert_eq!(
            engine.fetch::<String>("order").map(String::as_str),
            Some("[13, 11]")
        );
        assert_eq!(
            engine.fetch::<Vec<(String, u32)>>("table"),
            Some(&vec![("a".to_string(), 11), ("b".to_string(), 12)])
        );
        assert_eq!(
            engine.fetch::<String>("keyed").map(String::as_str),
            Some("{\"b\": 12, \"c\": 13}")
        );
    }
}

/// The length of `word`.
#[task(provides = length)]
fn word_len(word: &str) -> u32 {
    u32::try_from(word.len()).unwrap_or(u32::MAX)
}

/// Doubles `length`, asynchronously.
#[task(provides = doubled)]
async fn double_later(length: u32) -> u32 {
    tokio::task::yield_now().await;
    length * 2
}

/// Borrowed inputs and the context in an async task.
#[task(provides = shout)]
async fn shout(word: &str, ctx: &Context, doubled: u32) -> String {
    tokio::task::yield_now().await;
    format!(
        "{}{} from {}",
        word.to_uppercase(),
        "!".repeat(doubled as usize),
        ctx.atom()
    )
}

#[tokio::test]
async fn sync_and_async_tasks_run_in_data_order_in_a_graph() {
    for mode in MODES {
        // Added in reverse: the graph orders them by the symbols they read.
        let flow = Flow::graph("g")
            .input::<String>("word")
            .add(Atom::of(shout {}))
            .add(Atom::of(double_later {}))
            .add(Atom::of(word_len {}))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("word", "hey".to_string())
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "word_len.t RUNNING",
                "word_len.t SUCCESS(3)",
                "double_later.t RUNNING",
                "double_later.t SUCCESS(6)",
                "shout.t RUNNING",
                "shout.t SUCCESS(\"HEY!!!!!! from shout\")",
            ],
            "{mode:?}"
        );
        assert_eq!(
            engine.fetch::<String>("shout").map(String::as_str),
            Some("HEY!!!!!! from shout")
        );
    }
}

/// A task holding a handle in its fields.
#[derive(Clone)]
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

#[task(provides = echoed)]
impl Recorder {
    fn execute(&self, word: &str, times: u32) -> String {
        let echoed = word.repeat(times as usize);
        lock(&self.log).push(format!("execute {word} x{times} = {echoed}"));
        echoed
    }

    fn revert(&self, word: &str, outcome: &Outcome, failures: &Failures) {
        lock(&self.log).push(format!(
            "revert {word}: output {:?}, failures {:?}",
            outcome.output::<String>(0),
            failure_lines(failures)
        ));
    }
}

/// An async task holding a handle, with an async revert.
#[derive(Clone)]
struct Tally {
    log: Arc<Mutex<Vec<String>>>,
}

#[task(provides = tallied)]
impl Tally {
    async fn execute(&self, #[collect(a, b)] parts: Vec<u32>, ctx: &Context) -> u32 {
        tokio::task::yield_now().await;
        let sum = parts.iter().sum();
        lock(&self.log).push(format!("{} tallied {parts:?} = {sum}", ctx.atom()));
        sum
    }

    async fn revert(&self, ctx: &Context, parts: Vec<u32>, outcome: &Outcome) {
        tokio::task::yield_now().await;
        lock(&self.log).push(format!(
            "{} untallied {parts:?}, output {:?}",
            ctx.atom(),
            outcome.output::<u32>(0)
        ));
    }
}

#[test]
fn info_of_impl_block_tasks() {
    const RECORDER: flow::TaskInfo = flow::TaskInfo {
        name: "Recorder",
        inputs: &[
            flow::InputInfo::new("word", "String", InputShape::Required),
            flow::InputInfo::new("times", "u32", InputShape::Required),
        ],
        outputs: &[flow::OutputInfo::new("echoed", "String")],
    };
    assert_eq!(Recorder::INFO, RECORDER);
    const AB: &[SymbolRef] = &[SymbolRef::new("a"), SymbolRef::new("b")];
    assert_eq!(
        Tally::INFO.inputs,
        [flow::InputInfo::new(
            "parts",
            "u32",
            InputShape::Collect(AB)
        )]
    );
    same(
        PhantomData::<<Tally as Provides<{ flow::symbol_hash("tallied") }>>::Ty>,
        PhantomData::<u32>,
    );
    let log = Arc::default();
    assert_eq!(Atom::of(Recorder { log }).name(), "Recorder");
    let sig = Task::signature(&Tally {
        log: Arc::default(),
    });
    assert_eq!(
        sig.inputs()[0].kind(),
        &InputKind::Collect(names(&["a", "b"]))
    );
    assert!(sig.outputs()[0].ty().is::<u32>());
}

#[tokio::test]
async fn impl_block_tasks_use_the_handles_in_their_fields() {
    for mode in MODES {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let flow = Flow::linear("records")
            .input::<String>("word")
            .input::<u32>("times")
            .input::<u32>("seed")
            .add(Atom::of(Recorder { log: log.clone() }))
            .add(Atom::of(make_a {}))
            .add(Atom::of(make_b {}))
            .add(Atom::new("tally", Tally { log: log.clone() }))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("word", "ab".to_string())
            .input("times", 3u32)
            .input("seed", 1u32)
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            engine.fetch::<String>("echoed").map(String::as_str),
            Some("ababab")
        );
        assert_eq!(engine.fetch::<u32>("tallied"), Some(&5));
        assert_eq!(
            take(&log),
            ["execute ab x3 = ababab", "tally tallied [2, 3] = 5"],
            "{mode:?}"
        );
    }
}

/// `#[default]` on `&str` and `&[T]`: the fallback is a value of the stored type.
#[task(provides = who)]
fn whoami(#[default("anon")] name: &str, #[default] groups: &[u32]) -> String {
    format!("{name} in {groups:?}")
}

/// Strings gathered borrowed and owned.
#[task(provides = joined)]
fn join_names(
    #[collect(first, last)] borrowed: Vec<&str>,
    #[collect(last, first)] owned: Vec<String>,
) -> String {
    format!("{} / {}", borrowed.join(" "), owned.join(" "))
}

/// Maps with an owned key and a borrowed value, and the reverse.
#[task(provides = mixed)]
fn mixed_maps(
    #[collect(a, b)] owned_keys: BTreeMap<String, &u32>,
    #[collect(b, c)] owned_values: BTreeMap<&str, u32>,
) -> String {
    format!("{owned_keys:?} {owned_values:?}")
}

/// A raw identifier reads the symbol without `r#`.
#[task(provides = kind)]
fn raw_name(r#type: &str) -> String {
    format!("kind {}", r#type)
}

/// `io::Result<T>`: a `Result` alias without a written error type.
#[task(provides = parsed)]
fn parse_number(text: &str) -> std::io::Result<u32> {
    text.parse::<u32>()
        .map_err(|e| std::io::Error::other(format!("`{text}`: {e}")))
}

/// An async task with defaults and an owned context.
#[task(provides = summary)]
async fn summarize(
    #[default(db("fallback"))] db: &Db,
    #[default("-")] note: &str,
    ctx: Context,
) -> String {
    tokio::task::yield_now().await;
    format!("{} {note} by {}", db.name, ctx.atom())
}

/// A sync task with an owned context.
#[task(provides = stamped)]
fn stamp(ctx: Context, parsed: u32) -> String {
    format!("{}#{parsed}", ctx.atom())
}

#[test]
fn info_of_more_parameter_forms() {
    assert_eq!(
        whoami::INFO.inputs,
        [
            flow::InputInfo::new("name", "String", InputShape::Optional),
            flow::InputInfo::new("groups", "Vec<u32>", InputShape::Optional),
        ]
    );
    const FL: &[SymbolRef] = &[SymbolRef::new("first"), SymbolRef::new("last")];
    const LF: &[SymbolRef] = &[SymbolRef::new("last"), SymbolRef::new("first")];
    assert_eq!(
        join_names::INFO.inputs,
        [
            flow::InputInfo::new("borrowed", "String", InputShape::Collect(FL)),
            flow::InputInfo::new("owned", "String", InputShape::Collect(LF)),
        ]
    );
    let sig = Task::signature(&join_names {});
    assert!(sig.inputs().iter().all(|i| i.ty().is::<String>()));
    const AB: &[SymbolRef] = &[SymbolRef::new("a"), SymbolRef::new("b")];
    const BC: &[SymbolRef] = &[SymbolRef::new("b"), SymbolRef::new("c")];
    assert_eq!(
        mixed_maps::INFO.inputs,
        [
            flow::InputInfo::new("owned_keys", "u32", InputShape::CollectMap(AB)),
            flow::InputInfo::new("owned_values", "u32", InputShape::CollectMap(BC)),
        ]
    );
    assert_eq!(raw_name::INFO.inputs[0].name, "type");
    assert_eq!(raw_name::INFO.inputs[0].hash, flow::symbol_hash("type"));
    assert_eq!(Task::signature(&raw_name {}).inputs()[0].name(), "type");
    assert_eq!(
        parse_number::INFO.outputs,
        [flow::OutputInfo::new("parsed", "u32")]
    );
    same(
        PhantomData::<<parse_number as Provides<{ flow::symbol_hash("parsed") }>>::Ty>,
        PhantomData::<u32>,
    );
    let inputs: Vec<&str> = summarize::INFO.inputs.iter().map(|i| i.name).collect();
    assert_eq!(inputs, ["db", "note"]);
    assert_eq!(
        stamp::INFO.inputs,
        [flow::InputInfo::new("parsed", "u32", InputShape::Required)]
    );
}

#[tokio::test]
async fn more_parameter_forms_flow_through() {
    for mode in MODES {
        let flow = Flow::linear("forms")
            .input::<String>("first")
            .input::<String>("last")
            .input::<u32>("a")
            .input::<u32>("b")
            .input::<u32>("c")
            .input::<String>("type")
            .input::<String>("text")
            .input::<String>("note")
            .add(Atom::of(whoami {}))
            .add(Atom::of(join_names {}))
            .add(Atom::of(mixed_maps {}))
            .add(Atom::of(raw_name {}))
            .add(Atom::of(parse_number {}))
            .add(Atom::of(summarize {}))
            .add(Atom::new("stamper", stamp {}))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine_with(flow, mode, |b| {
            b.input("first", "Ada".to_string())
                .input("last", "Lovelace".to_string())
                .input("a", 1u32)
                .input("b", 2u32)
                .input("c", 3u32)
                .input("type", "raw".to_string())
                .input("text", "42".to_string())
                .input("note", "hi".to_string())
        });
        engine.run().await.expect("runs");
        let successes: Vec<String> = capture
            .events()
            .into_iter()
            .filter(|e| e.contains("SUCCESS"))
            .collect();
        assert_eq!(
            successes,
            [
                "whoami.t SUCCESS(\"anon in []\")",
                "join_names.t SUCCESS(\"Ada Lovelace / Lovelace Ada\")",
                "mixed_maps.t SUCCESS(\"{\\\"a\\\": 1, \\\"b\\\": 2} {\\\"b\\\": 2, \\\"c\\\": 3}\")",
                "raw_name.t SUCCESS(\"kind raw\")",
                "parse_number.t SUCCESS(42)",
                "summarize.t SUCCESS(\"fallback hi by summarize\")",
                "stamper.t SUCCESS(\"stamper#42\")",
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn an_io_result_error_is_a_failure_with_its_message() {
    for mode in MODES {
        let flow = Flow::linear("parse")
            .input::<String>("text")
            .add(Atom::of(parse_number {}))
            .build()
            .expect("valid flow");
        let (mut engine, _) = engine_with(flow, mode, |b| b.input("text", "x1".to_string()));
        let err = engine.run().await.expect_err("fails");
        assert_eq!(
            err.to_string(),
            "flow `parse` was reverted: task `parse_number` failed: `x1`: invalid digit found \
             in string",
            "{mode:?}"
        );
        assert_eq!(err.failures()[0].failure.kind(), FailureKind::Error);
    }
}

/// Waits at a barrier shared with another task: finishes only when both run
/// at once.
#[derive(Clone)]
struct Meet {
    barrier: Arc<tokio::sync::Barrier>,
}

#[task(provides = met)]
impl Meet {
    async fn execute(&self, ctx: &Context) -> String {
        self.barrier.wait().await;
        format!("{} met", ctx.atom())
    }
}

#[tokio::test]
async fn the_parallel_engine_runs_async_tasks_at_once() {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let flow = Flow::unordered("meeting")
        .add(
            Atom::new(
                "left",
                Meet {
                    barrier: barrier.clone(),
                },
            )
            .provides_as("met", "left_met"),
        )
        .add(Atom::new("right", Meet { barrier }).provides_as("met", "right_met"))
        .build()
        .expect("valid flow");
    let (mut engine, _) = engine_with(flow, flow::Mode::Parallel(2), |b| b);
    tokio::time::timeout(Duration::from_secs(60), engine.run())
        .await
        .expect("both tasks ran at once")
        .expect("runs");
    assert_eq!(
        engine.fetch::<String>("left_met").map(String::as_str),
        Some("left met")
    );
    assert_eq!(
        engine.fetch::<String>("right_met").map(String::as_str),
        Some("right met")
    );
}

// ---------------------------------------------------------------------------
// Revert
// ---------------------------------------------------------------------------

/// A hand-written error type.
#[derive(Debug)]
struct Boom {
    what: String,
}

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot ship {}", self.what)
    }
}

impl Error for Boom {}

static SHIP_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Stages `count` of `item`; undone by `unstage`.
#[task(provides = staged, revert = unstage)]
fn stage(item: &str, count: u32) -> String {
    format!("{item}x{count}")
}

fn unstage(item: &str, count: u32, outcome: &Outcome, failures: &Failures) {
    lock(&SHIP_LOG).push(format!(
        "unstage item={item} count={count} output={:?} success={} failures={:?}",
        outcome.output::<String>(0),
        outcome.is_success(),
        failure_lines(failures)
    ));
}

/// Always fails; its own compensation is told so.
#[task(revert = unexplode)]
fn explode(staged: &str) -> Result<(), Boom> {
    Err(Boom {
        what: staged.to_string(),
    })
}

fn unexplode(staged: &str, outcome: &Outcome, failures: &Failures) {
    lock(&SHIP_LOG).push(format!(
        "unexplode staged={staged} failure={:?} success={} failures={:?}",
        outcome.failure().map(|f| f.message()),
        outcome.is_success(),
        failure_lines(failures)
    ));
}

#[tokio::test]
async fn a_failure_reverts_earlier_tasks_with_their_inputs_outcome_and_the_failures() {
    for mode in MODES {
        let flow = Flow::linear("ship")
            .input::<String>("item")
            .input::<u32>("count")
            .add(Atom::of(stage {}))
            .add(Atom::of(explode {}))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("item", "widget".to_string())
            .input("count", 3u32)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.expect_err("fails");
        assert!(
            matches!(&err, RunError::Reverted { flow, failures } if flow == "ship" && failures.len() == 1),
            "{err:?}"
        );
        assert_eq!(err.failures()[0].atom, "explode");
        assert_eq!(err.failures()[0].failure.kind(), FailureKind::Error);
        assert_eq!(err.failures()[0].failure.message(), "cannot ship widgetx3");
        assert_eq!(
            err.failures()[0]
                .failure
                .downcast_ref::<Boom>()
                .map(|b| b.what.as_str()),
            Some("widgetx3")
        );
        assert_eq!(
            err.to_string(),
            "flow `ship` was reverted: task `explode` failed: cannot ship widgetx3"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
        assert_eq!(
            capture.events(),
            [
                "stage.t RUNNING",
                "stage.t SUCCESS(\"widgetx3\")",
                "explode.t RUNNING",
                "explode.t FAILURE(Failure: cannot ship widgetx3)",
                "explode.t REVERTING",
                "explode.t REVERTED(())",
                "stage.t REVERTING",
                "stage.t REVERTED(())",
            ],
            "{mode:?}"
        );
        assert_eq!(
            take(&SHIP_LOG),
            [
                "unexplode staged=widgetx3 failure=Some(\"cannot ship widgetx3\") success=false \
                 failures=[\"explode: cannot ship widgetx3\"]",
                "unstage item=widget count=3 output=Some(\"widgetx3\") success=true \
                 failures=[\"explode: cannot ship widgetx3\"]",
            ],
            "{mode:?}"
        );
    }
}

/// Fails with a plain message.
#[task]
fn refuse() -> Result<(), TaskError> {
    Err(TaskError::msg("refused"))
}

#[tokio::test]
async fn impl_block_reverts_receive_their_inputs_outcome_and_failures() {
    for mode in MODES {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let flow = Flow::linear("records")
            .input::<String>("word")
            .input::<u32>("times")
            .input::<u32>("seed")
            .add(Atom::of(Recorder { log: log.clone() }))
            .add(Atom::of(make_a {}))
            .add(Atom::of(make_b {}))
            .add(Atom::new("tally", Tally { log: log.clone() }))
            .add(Atom::of(refuse {}))
            .build()
            .expect("valid flow");
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("word", "ab".to_string())
            .input("times", 2u32)
            .input("seed", 4u32)
            .build();
        let err = engine.run().await.expect_err("fails");
        assert_eq!(
            err.to_string(),
            "flow `records` was reverted: task `refuse` failed: refused"
        );
        assert_eq!(
            take(&log),
            [
                "execute ab x2 = abab",
                "tally tallied [5, 6] = 11",
                "tally untallied [5, 6], output Some(11)",
                "revert ab: output Some(\"abab\"), failures [\"refuse: refused\"]",
            ],
            "{mode:?}"
        );
    }
}

/// Reserves seats; the async compensation returns what it released.
#[task(provides = reserved, revert = release)]
async fn reserve(seats: u32) -> u32 {
    tokio::task::yield_now().await;
    seats * 100
}

async fn release(seats: u32, outcome: &Outcome, failures: &Failures) -> Result<String, TaskError> {
    tokio::task::yield_now().await;
    Ok(format!(
        "released {seats} (reserved {:?}, after {:?})",
        outcome.output::<u32>(0),
        failure_lines(failures)
    ))
}

/// A compensation whose `Ok(())` is no revert result.
#[task(provides = noted, revert = unnote)]
fn note(seats: u32) -> u32 {
    seats + 1
}

fn unnote(_seats: u32, _outcome: &Outcome, _failures: &Failures) -> Result<(), Boom> {
    Ok(())
}

#[tokio::test]
async fn a_revert_returning_a_value_stores_it_as_the_revert_result() {
    for mode in MODES {
        let flow = Flow::linear("book")
            .input::<u32>("seats")
            .add(Atom::of(reserve {}))
            .add(Atom::of(note {}))
            .add(Atom::of(refuse {}))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("seats", 4u32)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.expect_err("fails");
        assert!(matches!(err, RunError::Reverted { .. }), "{err:?}");
        let expected = "released 4 (reserved Some(400), after [\"refuse: refused\"])";
        assert_eq!(
            engine
                .revert_result("reserve")
                .and_then(|v| v.downcast_ref::<String>())
                .map(String::as_str),
            Some(expected),
            "{mode:?}"
        );
        assert!(engine.revert_result("note").is_none());
        let reverted: Vec<String> = capture
            .events()
            .into_iter()
            .filter(|e| e.contains("REVERTED"))
            .collect();
        assert_eq!(
            reverted,
            [
                "refuse.t REVERTED(())".to_string(),
                "note.t REVERTED(())".to_string(),
                format!("reserve.t REVERTED({expected:?})"),
            ],
            "{mode:?}"
        );
    }
}

/// A hand-written error for a compensation that fails.
#[derive(Debug)]
struct Stuck;

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is stuck")
    }
}

impl Error for Stuck {}

/// Takes a lock that cannot be released.
#[task(provides = locked, revert = unlock)]
fn lock_door(door: u32) -> u32 {
    door
}

fn unlock(_door: u32, _outcome: &Outcome, _failures: &Failures) -> Result<(), Stuck> {
    Err(Stuck)
}

#[tokio::test]
async fn a_revert_returning_err_fails_the_revert() {
    for mode in MODES {
        let flow = Flow::linear("doors")
            .input::<u32>("door")
            .add(Atom::of(lock_door {}))
            .add(Atom::of(refuse {}))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("door", 2u32)
            .listener(capture.clone())
            .build();
        let err = engine.run().await.expect_err("fails");
        let RunError::RevertFailed {
            flow,
            revert_failures,
            failures,
        } = &err
        else {
            panic!("not a failed revert: {err:?}");
        };
        assert_eq!(flow, "doors");
        assert_eq!(revert_failures.len(), 1);
        assert_eq!(revert_failures[0].atom, "lock_door");
        assert_eq!(revert_failures[0].failure.message(), "the lock is stuck");
        assert_eq!(revert_failures[0].failure.kind(), FailureKind::Error);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].atom, "refuse");
        assert_eq!(failures[0].failure.message(), "refused");
        assert_eq!(
            err.to_string(),
            "flow `doors` failed and could not be fully reverted: task `lock_door` failed: the \
             lock is stuck; after: task `refuse` failed: refused"
        );
        assert_eq!(engine.state(), FlowState::Failure, "{mode:?}");
        assert_eq!(
            capture.events(),
            [
                "lock_door.t RUNNING",
                "lock_door.t SUCCESS(2)",
                "refuse.t RUNNING",
                "refuse.t FAILURE(Failure: refused)",
                "refuse.t REVERTING",
                "refuse.t REVERTED(())",
                "lock_door.t REVERTING",
                "lock_door.t REVERT_FAILURE(Failure: the lock is stuck)",
            ],
            "{mode:?}"
        );
    }
}

static BOOKINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Reads a defaulted, an optional and a borrowed input; so does its revert.
#[task(provides = booked, revert = unbook)]
async fn book(
    guest: &str,
    note: Option<&str>,
    #[default(2)] nights: u32,
    #[default] extras: &[u32],
) -> String {
    tokio::task::yield_now().await;
    format!("{guest} for {nights} ({note:?}, {extras:?})")
}

async fn unbook(
    guest: &str,
    note: Option<&str>,
    nights: u32,
    extras: &[u32],
    outcome: &Outcome,
    failures: &Failures,
) {
    tokio::task::yield_now().await;
    lock(&BOOKINGS).push(format!(
        "unbook {guest} {note:?} {nights} {extras:?} {:?} {:?}",
        outcome.output::<String>(0),
        failure_lines(failures)
    ));
}

#[tokio::test]
async fn a_revert_receives_defaulted_and_optional_inputs_as_execute_did() {
    for mode in MODES {
        let flow = Flow::linear("hotel")
            .input::<String>("guest")
            .input::<Vec<u32>>("extras")
            .add(Atom::of(book {}))
            .add(Atom::of(refuse {}))
            .build()
            .expect("valid flow");
        let (mut engine, _) = engine_with(flow, mode, |b| {
            b.input("guest", "ann".to_string())
                .input("extras", vec![7u32])
        });
        engine.run().await.expect_err("fails");
        assert_eq!(
            take(&BOOKINGS),
            ["unbook ann None 2 [7] Some(\"ann for 2 (None, [7])\") [\"refuse: refused\"]"],
            "{mode:?}"
        );
    }
}

/// An `impl` block whose `execute` takes no `self`, renamed, whose async
/// revert returns a value.
#[derive(Clone)]
struct Scaler;

#[task(name = "scaler", provides = scaled_up)]
impl Scaler {
    fn execute(x: u32, #[default(2)] by: u32, offset: Option<u32>) -> u32 {
        x * by + offset.unwrap_or(0)
    }

    async fn revert(
        &self,
        offset: Option<u32>,
        by: u32,
        outcome: &Outcome,
    ) -> Result<u32, TaskError> {
        tokio::task::yield_now().await;
        let out = outcome.output::<u32>(0).copied().unwrap_or_default();
        Ok(out * 1000 + by * 10 + offset.unwrap_or(9))
    }
}

#[tokio::test]
async fn an_impl_block_task_without_self_is_renamed_and_returns_a_revert_result() {
    assert_eq!(Scaler::INFO.name, "scaler");
    assert_eq!(
        Scaler::INFO.inputs,
        [
            flow::InputInfo::new("x", "u32", InputShape::Required),
            flow::InputInfo::new("by", "u32", InputShape::Optional),
            flow::InputInfo::new("offset", "u32", InputShape::Optional),
        ]
    );
    assert_eq!(Scaler::execute(3, 4, Some(1)), 13);
    for mode in MODES {
        let flow = Flow::linear("scaling")
            .input::<u32>("x")
            .add(Atom::of(Scaler))
            .add(Atom::of(refuse {}))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine_with(flow, mode, |b| b.input("x", 5u32));
        engine.run().await.expect_err("fails");
        assert_eq!(
            engine
                .revert_result("scaler")
                .and_then(|v| v.downcast_ref::<u32>()),
            Some(&10029),
            "{mode:?}"
        );
        assert_eq!(
            capture.events(),
            [
                "scaler.t RUNNING",
                "scaler.t SUCCESS(10)",
                "refuse.t RUNNING",
                "refuse.t FAILURE(Failure: refused)",
                "refuse.t REVERTING",
                "refuse.t REVERTED(())",
                "scaler.t REVERTING",
                "scaler.t REVERTED(10029)",
            ],
            "{mode:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The task context
// ---------------------------------------------------------------------------

/// Halves `scaled`, reporting progress through a context taken by value.
#[task(provides = halved)]
async fn halve(scaled: u32, ctx: Context) -> u32 {
    tokio::task::yield_now().await;
    ctx.progress(0.75);
    scaled / 2
}

#[tokio::test]
async fn progress_reported_through_the_context_reaches_listeners() {
    for mode in MODES {
        let flow = Flow::linear("p")
            .input::<u32>("value")
            .input::<u32>("factor")
            .add(Atom::of(scale {}))
            .add(Atom::of(halve {}))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::new().with_progress();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("value", 7u32)
            .input("factor", 6u32)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("runs");
        assert_eq!(
            capture.events(),
            [
                "p.f RUNNING",
                "scale.t RUNNING",
                "scale.t PROGRESS(0)",
                "scale.t PROGRESS(0.5)",
                "scale.t SUCCESS(42)",
                "scale.t PROGRESS(1)",
                "halve.t RUNNING",
                "halve.t PROGRESS(0)",
                "halve.t PROGRESS(0.75)",
                "halve.t SUCCESS(21)",
                "halve.t PROGRESS(1)",
                "p.f SUCCESS"
            ],
            "{mode:?}"
        );
    }
}

static FLAKY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Fails before its third attempt; provides the attempt number times ten.
#[task(provides = answer)]
fn flaky(ctx: &Context) -> Result<u32, TaskError> {
    lock(&FLAKY).push(format!("{} attempt {}", ctx.atom(), ctx.attempt()));
    if ctx.attempt() < 3 {
        Err(TaskError::msg(format!("attempt {} failed", ctx.attempt())))
    } else {
        Ok(ctx.attempt() * 10)
    }
}

#[tokio::test]
async fn the_context_gives_the_attempt_and_the_atom_name_under_a_retry() {
    for mode in MODES {
        let flow = Flow::linear("retrying")
            .retry(Retry::times(3).named("r"))
            .add(Atom::new("probe", flaky {}))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .listener(capture.clone())
            .build();
        engine.run().await.expect("succeeds on the third attempt");
        assert_eq!(
            take(&FLAKY),
            ["probe attempt 1", "probe attempt 2", "probe attempt 3"],
            "{mode:?}"
        );
        assert_eq!(engine.fetch::<u32>("answer"), Some(&30));
        assert_eq!(engine.attempts("probe"), Some(3));
        let failures: Vec<String> = capture
            .events()
            .into_iter()
            .filter(|e| e.contains("FAILURE"))
            .collect();
        assert_eq!(
            failures,
            [
                "probe.t FAILURE(Failure: attempt 1 failed)",
                "probe.t FAILURE(Failure: attempt 2 failed)"
            ]
        );
    }
}

/// Waits for the run to be cancelled, saying when it starts waiting.
#[derive(Clone)]
struct Watcher {
    started: tokio::sync::mpsc::UnboundedSender<()>,
}

#[task]
impl Watcher {
    async fn execute(&self, ctx: &Context) -> Result<(), TaskError> {
        assert!(!ctx.is_cancelled());
        let _ = self.started.send(());
        ctx.cancelled().await;
        assert!(ctx.is_cancelled());
        Err(TaskError::msg(format!("{} stopped", ctx.atom())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_tells_a_task_that_the_run_was_cancelled() {
    for mode in MODES {
        let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        let flow = Flow::linear("c")
            .input::<u32>("seed")
            .add(Atom::of(make_a {}))
            .add(Atom::new("watcher", Watcher { started }))
            .build()
            .expect("valid flow");
        let capture = CaptureListener::atoms_only();
        let mut engine = Engine::builder(flow)
            .mode(mode)
            .input("seed", 1u32)
            .listener(capture.clone())
            .build();
        let handle = engine.handle();
        let canceller = tokio::spawn(async move {
            started_rx.recv().await.expect("the watcher starts");
            handle.cancel();
        });
        let err = tokio::time::timeout(Duration::from_secs(60), engine.run())
            .await
            .expect("no hang")
            .expect_err("cancelled");
        canceller.await.expect("the canceller ends");
        assert!(matches!(err, RunError::Cancelled { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "flow `c` was cancelled and what had run was reverted; meanwhile: task `watcher` \
             failed: watcher stopped"
        );
        assert_eq!(
            capture.events(),
            [
                "make_a.t RUNNING",
                "make_a.t SUCCESS(2)",
                "watcher.t RUNNING",
                "watcher.t FAILURE(Failure: watcher stopped)",
                "watcher.t REVERTING",
                "watcher.t REVERTED(())",
                "make_a.t REVERTING",
                "make_a.t REVERTED(())",
            ],
            "{mode:?}"
        );
    }
}

/// Fails on its first execution, records each attempt.
#[derive(Clone)]
struct SecondTime {
    log: Arc<Mutex<Vec<String>>>,
}

#[task(provides = second)]
impl SecondTime {
    fn execute(&self, ctx: &Context) -> Result<u32, TaskError> {
        lock(&self.log).push(format!("{} attempt {}", ctx.atom(), ctx.attempt()));
        if ctx.attempt() == 1 {
            Err(TaskError::msg("not the first time"))
        } else {
            Ok(ctx.attempt())
        }
    }
}

#[tokio::test]
async fn the_attempt_grows_when_a_reverted_flow_runs_again() {
    for mode in MODES {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let flow = Flow::linear("again")
            .add(Atom::of(SecondTime { log: log.clone() }))
            .build()
            .expect("valid flow");
        let (mut engine, _) = engine_with(flow, mode, |b| b);
        let err = engine.run().await.expect_err("the first run fails");
        assert_eq!(
            err.to_string(),
            "flow `again` was reverted: task `SecondTime` failed: not the first time"
        );
        assert_eq!(engine.state(), FlowState::Reverted);
        engine.run().await.expect("the second run succeeds");
        assert_eq!(engine.fetch::<u32>("second"), Some(&2), "{mode:?}");
        assert_eq!(
            take(&log),
            ["SecondTime attempt 1", "SecondTime attempt 2"],
            "{mode:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// Renamed, with a default priority and timeout.
#[task(name = "renamed", priority = 7, timeout = 250ms, provides = bumped)]
fn original(x: u32) -> u32 {
    x + 1
}

/// Runs before lower priorities among ready atoms.
#[task(priority = 7)]
fn urgent() {
    lock(&ORDER).push("urgent".to_string());
}

/// The default priority.
#[task]
fn routine() {
    lock(&ORDER).push("routine".to_string());
}

/// A negative priority.
#[task(priority = -3)]
fn deferred() {
    lock(&ORDER).push("deferred".to_string());
}

static ORDER: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[task(timeout = 30s)]
fn thirty_seconds() {}

#[task(timeout = 5min)]
fn five_minutes() {}

#[task(timeout = 1h)]
fn one_hour() {}

#[task(timeout = Duration::from_millis(1500))]
fn from_expression() {}

/// Names the facade explicitly.
#[task(crate = ::flow, provides = via)]
fn via_crate_path(x: u32) -> u32 {
    x * 3
}

#[tokio::test]
async fn name_priority_and_timeout_options_set_the_defaults() {
    assert_eq!(original::INFO.name, "renamed");
    assert_eq!(
        original::INFO.outputs,
        [flow::OutputInfo::new("bumped", "u32")]
    );
    let sig = Task::signature(&original {});
    assert_eq!(sig.default_priority(), 7);
    assert_eq!(sig.default_timeout(), Some(Duration::from_millis(250)));
    assert!(!sig.is_blocking());

    let atom = Atom::of(original {});
    assert_eq!(atom.name(), "renamed");
    assert_eq!(atom.signature().default_priority(), 7);
    assert_eq!(
        atom.signature().default_timeout(),
        Some(Duration::from_millis(250))
    );
    assert!(
        format!("{atom:?}").ends_with("priority: 7, .. }"),
        "{atom:?}"
    );
    assert_eq!(Atom::new("other", original {}).name(), "other");

    let timeouts = [
        Task::signature(&thirty_seconds {}).default_timeout(),
        Task::signature(&five_minutes {}).default_timeout(),
        Task::signature(&one_hour {}).default_timeout(),
        Task::signature(&from_expression {}).default_timeout(),
    ];
    assert_eq!(
        timeouts,
        [
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(300)),
            Some(Duration::from_secs(3600)),
            Some(Duration::from_millis(1500)),
        ]
    );
    assert_eq!(Task::signature(&deferred {}).default_priority(), -3);
    assert_eq!(Task::signature(&routine {}).default_priority(), 0);

    assert_eq!(via_crate_path::INFO.name, "via_crate_path");
    assert_eq!(
        via_crate_path::INFO.inputs,
        [flow::InputInfo::new("x", "u32", InputShape::Required)]
    );

    let flow = Flow::linear("opts")
        .input::<u32>("x")
        .add(Atom::of(original {}))
        .add(Atom::of(via_crate_path {}))
        .build()
        .expect("valid flow");
    let (mut engine, capture) = engine_with(flow, flow::Mode::Serial, |b| b.input("x", 4u32));
    engine.run().await.expect("runs");
    assert_eq!(
        capture.events(),
        [
            "renamed.t RUNNING",
            "renamed.t SUCCESS(5)",
            "via_crate_path.t RUNNING",
            "via_crate_path.t SUCCESS(12)",
        ]
    );
    assert_eq!(engine.fetch::<u32>("bumped"), Some(&5));
    assert_eq!(engine.fetch::<u32>("via"), Some(&12));
}

/// An engine in `mode` capturing atom events, its builder adjusted by `with`.
fn engine_with(
    flow: flow::CompiledFlow,
    mode: flow::Mode,
    with: impl FnOnce(flow::EngineBuilder) -> flow::EngineBuilder,
) -> (Engine, CaptureListener) {
    let capture = CaptureListener::atoms_only();
    let engine = with(Engine::builder(flow).mode(mode).listener(capture.clone())).build();
    (engine, capture)
}

#[tokio::test]
async fn the_priority_option_orders_ready_atoms() {
    let flow = Flow::unordered("prio")
        .add(Atom::of(deferred {}))
        .add(Atom::of(routine {}))
        .add(Atom::of(urgent {}))
        .build()
        .expect("valid flow");
    let (mut engine, _) = engine(flow, flow::Mode::Serial);
    engine.run().await.expect("runs");
    assert_eq!(take(&ORDER), ["urgent", "routine", "deferred"]);
}

/// Never finishes on its own.
#[task(timeout = 50ms)]
async fn hang() {
    std::future::pending::<()>().await;
}

#[tokio::test(start_paused = true)]
async fn the_timeout_option_fails_a_task_that_runs_too_long() {
    for mode in MODES {
        let flow = Flow::linear("waits")
            .input::<u32>("seed")
            .add(Atom::of(make_a {}))
            .add(Atom::of(hang {}))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine_with(flow, mode, |b| b.input("seed", 1u32));
        let start = tokio::time::Instant::now();
        let err = engine.run().await.expect_err("times out");
        assert_eq!(start.elapsed(), Duration::from_millis(50), "{mode:?}");
        assert!(matches!(err, RunError::Reverted { .. }), "{err:?}");
        assert_eq!(err.failures().len(), 1);
        assert_eq!(err.failures()[0].atom, "hang");
        assert_eq!(err.failures()[0].failure.kind(), FailureKind::Timeout);
        assert_eq!(
            err.failures()[0].failure.message(),
            "task `hang` timed out after 50ms"
        );
        assert_eq!(
            capture.events(),
            [
                "make_a.t RUNNING",
                "make_a.t SUCCESS(2)",
                "hang.t RUNNING",
                "hang.t FAILURE(Failure: task `hang` timed out after 50ms)",
                "hang.t REVERTING",
                "hang.t REVERTED(())",
                "make_a.t REVERTING",
                "make_a.t REVERTED(())",
            ],
            "{mode:?}"
        );

        // The use site overrides the task's default.
        let flow = Flow::linear("shorter")
            .add(Atom::of(hang {}).timeout(Duration::from_millis(10)))
            .build()
            .expect("valid flow");
        let (mut engine, _) = engine_with(flow, mode, |b| b);
        let start = tokio::time::Instant::now();
        let err = engine.run().await.expect_err("times out");
        assert_eq!(start.elapsed(), Duration::from_millis(10), "{mode:?}");
        assert_eq!(
            err.failures()[0].failure.message(),
            "task `hang` timed out after 10ms"
        );
    }
}

static CRUNCHERS: Mutex<Vec<std::thread::ThreadId>> = Mutex::new(Vec::new());

/// A synchronous body that blocks its thread.
#[task(blocking, provides = crunched)]
fn crunch(seed: u32) -> u32 {
    lock(&CRUNCHERS).push(std::thread::current().id());
    seed * 3
}

#[tokio::test]
async fn a_blocking_task_runs_off_the_engine_thread() {
    let sig = Task::signature(&crunch {});
    assert!(sig.is_blocking());
    assert_eq!(sig.default_priority(), 0);
    assert_eq!(sig.default_timeout(), None);
    assert_eq!(
        crunch::INFO.inputs,
        [flow::InputInfo::new("seed", "u32", InputShape::Required)]
    );
    for mode in [flow::Mode::Parallel(4), flow::Mode::Serial] {
        let flow = Flow::linear("heavy")
            .input::<u32>("seed")
            .add(Atom::of(make_a {}))
            .add(Atom::of(crunch {}))
            .build()
            .expect("valid flow");
        let (mut engine, capture) = engine_with(flow, mode, |b| b.input("seed", 5u32));
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("crunched"), Some(&15), "{mode:?}");
        assert_eq!(
            capture.events(),
            [
                "make_a.t RUNNING",
                "make_a.t SUCCESS(6)",
                "crunch.t RUNNING",
                "crunch.t SUCCESS(15)",
            ],
            "{mode:?}"
        );
        let threads = std::mem::take(&mut *lock(&CRUNCHERS));
        assert_eq!(threads.len(), 1, "{mode:?}");
        assert_ne!(threads[0], std::thread::current().id(), "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// Many inputs
// ---------------------------------------------------------------------------

/// Twenty required inputs.
#[allow(clippy::too_many_arguments)]
#[task(provides = sum)]
fn sum20(
    a01: u32,
    a02: u32,
    a03: u32,
    a04: u32,
    a05: u32,
    a06: u32,
    a07: u32,
    a08: u32,
    a09: u32,
    a10: u32,
    a11: u32,
    a12: u32,
    a13: u32,
    a14: u32,
    a15: u32,
    a16: u32,
    a17: u32,
    a18: u32,
    a19: u32,
    a20: u32,
) -> u32 {
    // Weighted so that a swapped pair of inputs changes the result.
    [
        a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11, a12, a13, a14, a15, a16, a17, a18,
        a19, a20,
    ]
    .iter()
    .zip(1u32..)
    .map(|(v, w)| v * w)
    .sum()
}

#[tokio::test]
async fn a_task_with_twenty_inputs_reads_each_in_order() {
    let symbols: Vec<String> = (1..=20).map(|i| format!("a{i:02}")).collect();
    let info: Vec<&str> = sum20::INFO.inputs.iter().map(|i| i.name).collect();
    assert_eq!(info, symbols);
    assert!(sum20::INFO.inputs.iter().all(|i| i.ty == "u32"
        && i.shape == InputShape::Required
        && i.hash == flow::symbol_hash(i.name)));
    let sig = Task::signature(&sum20 {});
    let run_time: Vec<&str> = sig.inputs().iter().map(|i| i.name()).collect();
    assert_eq!(run_time, symbols);

    for mode in MODES {
        let mut flow = Flow::linear("twenty");
        for s in &symbols {
            flow = flow.input::<u32>(s.clone());
        }
        let flow = flow.add(Atom::of(sum20 {})).build().expect("valid flow");
        let mut builder = Engine::builder(flow).mode(mode);
        for (i, s) in symbols.iter().enumerate() {
            // a01 = 1, a02 = 2, ...
            builder = builder.input(s.clone(), u32::try_from(i + 1).expect("small"));
        }
        let mut engine = builder.build();
        engine.run().await.expect("runs");
        // The sum of i * i for i in 1..=20.
        assert_eq!(engine.fetch::<u32>("sum"), Some(&2870), "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// Errors and panics
// ---------------------------------------------------------------------------

/// A value, or a `TaskError` made from a message.
#[task(provides = checked)]
fn check_limit(limit: u32) -> Result<u32, TaskError> {
    if limit > 10 {
        Err(TaskError::msg(format!("limit {limit} is above 10")))
    } else {
        Ok(limit)
    }
}

/// An error with a source.
#[derive(Debug)]
struct Outer {
    source: Boom,
}

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("delivery failed")
    }
}

impl Error for Outer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Fails with a custom error type that has a cause, asynchronously.
#[task(provides = delivered)]
async fn deliver(parcel: &str) -> Result<String, Outer> {
    tokio::task::yield_now().await;
    Err(Outer {
        source: Boom {
            what: parcel.to_string(),
        },
    })
}

/// Panics.
#[task(provides = never)]
fn panics(limit: u32) -> u32 {
    panic!("limit {limit} is cursed")
}

/// Panics after an await.
#[task]
async fn panics_later(limit: u32) {
    tokio::task::yield_now().await;
    panic!("async limit {limit} is cursed");
}

/// Runs `atom` after nothing, with the inputs `limit = 13` and `parcel`.
async fn failure_of(atom: Atom, mode: flow::Mode) -> (flow::AtomFailure, Vec<String>) {
    let flow = Flow::linear("errs")
        .input::<u32>("limit")
        .input::<String>("parcel")
        .add(atom)
        .build()
        .expect("valid flow");
    let (mut engine, capture) = engine_with(flow, mode, |b| {
        b.input("limit", 13u32).input("parcel", "box".to_string())
    });
    let err = engine.run().await.expect_err("fails");
    assert!(matches!(err, RunError::Reverted { .. }), "{err:?}");
    assert_eq!(err.failures().len(), 1, "{err:?}");
    assert_eq!(engine.state(), FlowState::Reverted);
    (err.failures()[0].clone(), capture.events())
}

#[tokio::test]
async fn task_errors_and_custom_errors_become_failures_with_their_message() {
    for mode in MODES {
        let (f, events) = failure_of(Atom::of(check_limit {}), mode).await;
        assert_eq!(f.atom, "check_limit");
        assert_eq!(f.failure.kind(), FailureKind::Error);
        assert_eq!(f.failure.message(), "limit 13 is above 10");
        assert!(f.failure.causes().is_empty());
        assert_eq!(
            events,
            [
                "check_limit.t RUNNING",
                "check_limit.t FAILURE(Failure: limit 13 is above 10)",
                "check_limit.t REVERTING",
                "check_limit.t REVERTED(())",
            ],
            "{mode:?}"
        );

        let (f, _) = failure_of(Atom::of(deliver {}), mode).await;
        assert_eq!(f.atom, "deliver");
        assert_eq!(f.failure.kind(), FailureKind::Error);
        assert_eq!(f.failure.message(), "delivery failed");
        assert_eq!(f.failure.causes(), ["cannot ship box"]);
        assert_eq!(
            f.failure
                .downcast_ref::<Outer>()
                .map(|o| o.source.what.as_str()),
            Some("box")
        );
        assert!(
            f.failure.type_name().ends_with("Outer"),
            "{}",
            f.failure.type_name()
        );
    }
}

#[tokio::test]
async fn a_panicking_task_body_is_a_failure_not_a_crash() {
    for mode in MODES {
        let (f, events) = failure_of(Atom::of(panics {}), mode).await;
        assert_eq!(f.atom, "panics");
        assert_eq!(f.failure.kind(), FailureKind::Panic);
        assert_eq!(f.failure.message(), "panicked: limit 13 is cursed");
        assert_eq!(f.failure.type_name(), "panic");
        assert_eq!(
            events,
            [
                "panics.t RUNNING",
                "panics.t FAILURE(Failure: panicked: limit 13 is cursed)",
                "panics.t REVERTING",
                "panics.t REVERTED(())",
            ],
            "{mode:?}"
        );

        let (f, _) = failure_of(Atom::of(panics_later {}), mode).await;
        assert_eq!(f.atom, "panics_later");
        assert_eq!(f.failure.kind(), FailureKind::Panic);
        assert_eq!(f.failure.message(), "panicked: async limit 13 is cursed");

        // The runtime is still usable.
        let flow = Flow::linear("after")
            .input::<u32>("limit")
            .add(Atom::of(check_limit {}))
            .build()
            .expect("valid flow");
        let (mut engine, _) = engine_with(flow, mode, |b| b.input("limit", 9u32));
        engine.run().await.expect("runs");
        assert_eq!(engine.fetch::<u32>("checked"), Some(&9));
    }
}

// ---------------------------------------------------------------------------
// The functions stay callable
// ---------------------------------------------------------------------------

#[test]
fn task_functions_stay_callable_as_written() {
    assert_eq!(backup_db(&db("main"), 2), "main.bak.2");
    assert_eq!(greet("ann", &[1, 2]), "ann: [1, 2]");
    assert_eq!(
        describe(Some("p"), None, Some(&db("d")), Some(&[4])),
        "p|None|Some(\"d\")|Some([4])"
    );
    assert_eq!(configure(1, true, "h", &db("x")), "h:1 verbose=true db=x");
    assert_eq!(sum_parts(vec![1, 2, 3]), 6);
    assert_eq!(list_refs(vec![&4, &5]), "[4, 5]");
    assert_eq!(
        tabulate(BTreeMap::from([("z".to_string(), 1), ("y".to_string(), 2)])),
        [("y".to_string(), 2), ("z".to_string(), 1)]
    );
    assert_eq!(key_refs(BTreeMap::from([("k", &1)])), "{\"k\": 1}");
    assert_eq!(scale(&Context::detached("x"), 2, 3), 6);
    assert_eq!(
        split_addr("h:80").map_err(|e| e.to_string()),
        Ok(("h".to_string(), 80))
    );
    assert_eq!(
        split_addr("nope").map_err(|e| e.to_string()),
        Err("`nope` has no port".to_string())
    );
    assert_eq!(check_limit(3).map_err(|e| e.to_string()), Ok(3));
    assert_eq!(
        explode("x").map_err(|e| e.to_string()),
        Err("cannot ship x".to_string())
    );
    assert_eq!(stage("w", 2), "wx2");
    assert_eq!(original(1), 2);
    assert_eq!(
        sum20(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        210
    );
    touch("/tmp/x");
    assert_eq!(take(&TOUCHED), ["/tmp/x"]);

    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = Recorder { log: log.clone() };
    assert_eq!(recorder.execute("ha", 2), "haha");
    let outcome = Outcome::Success(flow::Outputs::one("haha".to_string()));
    recorder.revert("ha", &outcome, &Failures::new());
    assert_eq!(
        take(&log),
        [
            "execute ha x2 = haha",
            "revert ha: output Some(\"haha\"), failures []"
        ]
    );

    // The generated task type is a plain value.
    assert_eq!(format!("{:?}", backup_db {}), "backup_db");
    let copy = backup_db {};
    let _also = copy;
    assert_eq!(Atom::of(copy).name(), "backup_db");
}

#[tokio::test]
async fn async_task_functions_stay_callable_as_written() {
    assert_eq!(double_later(4).await, 8);
    assert_eq!(make_b(1).await, 3);
    assert_eq!(
        shout("hi", &Context::detached("probe"), 1).await,
        "HI! from probe"
    );
    let ctx = Context::detached("halver");
    assert_eq!(ctx.atom(), "halver");
    assert_eq!(ctx.attempt(), 1);
    assert!(!ctx.is_cancelled());
    assert_eq!(halve(9, ctx).await, 4);
    assert_eq!(
        deliver("p").await.map_err(|e| e.to_string()),
        Err("delivery failed".to_string())
    );
    assert_eq!(
        release(
            2,
            &Outcome::Success(flow::Outputs::one(200u32)),
            &Failures::new()
        )
        .await
        .map_err(|e| e.to_string()),
        Ok("released 2 (reserved Some(200), after [])".to_string())
    );

    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let tally = Tally { log: log.clone() };
    let ctx = Context::detached("t");
    assert_eq!(tally.execute(vec![1, 2], &ctx).await, 3);
    tally
        .revert(
            &ctx,
            vec![1, 2],
            &Outcome::Success(flow::Outputs::one(3u32)),
        )
        .await;
    assert_eq!(
        take(&log),
        ["t tallied [1, 2] = 3", "t untallied [1, 2], output Some(3)"]
    );
}
