//! Groups built at run time inside `flow!` (`group name(..) -> (..) = expr`)
//! and collections by name pattern (`#[collect(prefix*)]`): the fan-in's
//! values and order, the build-time check of a group's contents against its
//! declared interface, revert of the group's members in reverse order, and
//! resume of a run with a run-time group on SQLite.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flow::{
    Atom, BuildError, Flow, FnTask, GroupProblem, Outputs, RunError, Signature, SqliteBackend,
    TaskError, TypedFlow, flow, task,
};
use tokio::sync::mpsc;

type Log = Arc<Mutex<Vec<String>>>;

/// Upgrades one host to `version`; fails for a host named in `fail`; never
/// finishes, after saying so on the channel, for the host of `hang` (the
/// crash of the resume test).
#[derive(Clone)]
struct UpgradeHost {
    host: String,
    fail: Option<String>,
    hang: Option<(String, mpsc::UnboundedSender<String>)>,
    log: Log,
}

#[task(provides = healthy)]
impl UpgradeHost {
    async fn execute(&self, version: &str) -> Result<bool, TaskError> {
        let line = format!("upgrade {} to {version}", self.host);
        self.log.lock().unwrap().push(line);
        if let Some((host, started)) = &self.hang {
            if *host == self.host {
                let _ = started.send(self.host.clone());
                std::future::pending::<()>().await;
            }
        }
        if self.fail.as_deref() == Some(self.host.as_str()) {
            return Err(TaskError::msg(format!("{} did not come back", self.host)));
        }
        Ok(self.host != "web-00")
    }

    fn revert(&self) {
        self.log
            .lock()
            .unwrap()
            .push(format!("roll back {}", self.host));
    }
}

/// One atom per host, each providing `healthy_<host>`.
fn upgrades(hosts: &[&str], fail: Option<&str>, log: &Log) -> Flow {
    hanging(hosts, fail, None, log)
}

/// [`upgrades`], with the upgrade of one host hanging.
fn hanging(
    hosts: &[&str],
    fail: Option<&str>,
    hang: Option<(&str, &mpsc::UnboundedSender<String>)>,
    log: &Log,
) -> Flow {
    let mut group = Flow::linear("hosts");
    for host in hosts {
        let task = UpgradeHost {
            host: host.to_string(),
            fail: fail.map(String::from),
            hang: hang.map(|(h, tx)| (h.to_string(), tx.clone())),
            log: log.clone(),
        };
        group.push(
            Atom::new(format!("upgrade-{host}"), task)
                .provides_as("healthy", format!("healthy_{host}")),
        );
    }
    group
}

#[task(provides = version)]
fn pick_version(release: u32) -> String {
    format!("2.{release}")
}

#[task(provides = report)]
fn report(#[collect(healthy_*)] healthy: Vec<bool>) -> Vec<bool> {
    healthy
}

#[task(provides = by_host)]
fn report_map(#[collect(healthy_*)] healthy: BTreeMap<String, bool>) -> BTreeMap<String, bool> {
    healthy
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

#[tokio::test]
async fn a_pattern_collects_every_member_output_in_name_order() {
    let log = log();
    let hosts = ["web-02", "web-00", "web-01"];
    let rollout = flow! {
        rollout(release: u32) -> (report: Vec<bool>, by_host: BTreeMap<String, bool>) {
            pick_version,
            group upgrades(version: String) -> (healthy_*: bool) = upgrades(&hosts, None, &log),
            report,
            report_map,
        }
    };
    let (list, map) = rollout.run((1,)).await.expect("runs");
    // Sorted by symbol name: healthy_web-00, healthy_web-01, healthy_web-02.
    assert_eq!(list, vec![false, true, true]);
    assert_eq!(
        map,
        BTreeMap::from([
            ("healthy_web-00".to_string(), false),
            ("healthy_web-01".to_string(), true),
            ("healthy_web-02".to_string(), true),
        ])
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "upgrade web-02 to 2.1",
            "upgrade web-00 to 2.1",
            "upgrade web-01 to 2.1"
        ]
    );
}

/// The rollout of the tests: a version, the group, the fan-in into a list.
fn rollout(group: Flow) -> TypedFlow<(u32,), (Vec<bool>,)> {
    flow! {
        rollout(release: u32) -> (report: Vec<bool>) {
            pick_version,
            group upgrades(version: String) -> (healthy_*: bool) = group,
            report,
        }
    }
}

/// The messages of the build errors of `flow`.
fn build_errors(flow: &TypedFlow<(u32,), (Vec<bool>,)>) -> Vec<String> {
    match flow.compiled() {
        Ok(_) => Vec::new(),
        Err(e) => e.errors().iter().map(ToString::to_string).collect(),
    }
}

/// A task of a group: `sig`, returning `true` for each output.
fn member(sig: Signature) -> FnTask {
    let count = sig.outputs().len();
    FnTask::sync(sig, move |_| {
        let mut out = Outputs::new();
        for _ in 0..count {
            out = out.with(true);
        }
        Ok(out)
    })
}

#[tokio::test]
async fn a_failing_member_reverts_the_members_before_it_last_first() {
    let log = log();
    let flow = rollout(upgrades(
        &["web-01", "web-02", "web-03"],
        Some("web-02"),
        &log,
    ));
    let err = flow.run((7,)).await.expect_err("web-02 fails");
    assert_eq!(
        err.to_string(),
        "flow `rollout` was reverted: task `upgrade-web-02` failed: web-02 did not come back"
    );
    assert!(matches!(err, RunError::Reverted { .. }));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "upgrade web-01 to 2.7",
            "upgrade web-02 to 2.7",
            "roll back web-02",
            "roll back web-01",
        ]
    );
}

#[tokio::test]
async fn the_contents_may_not_require_an_undeclared_symbol() {
    let probe = member(
        Signature::new()
            .requires::<String>("version")
            .requires::<String>("region")
            .provides::<bool>("healthy_probe"),
    );
    let flow = rollout(Flow::linear("hosts").add(Atom::new("probe", probe)));
    assert_eq!(
        build_errors(&flow),
        [
            "group `upgrades` holds task `probe`, which requires `region: String`, but no task of \
             the group provides it and the group does not declare it: add `region: String` to the \
             group's inputs in `flow!`",
            "task `probe` requires `region: String`, but no earlier task in flow `rollout` \
             provides `region` and the flow does not declare it as an input",
        ]
    );
    let err = flow.run((1,)).await.expect_err("does not build");
    assert!(matches!(
        &err,
        RunError::Build(e) if matches!(
            &e.errors()[0],
            BuildError::GroupInterface { group, problem: GroupProblem::UndeclaredInput { symbol, .. } }
                if group == "upgrades" && symbol == "region"
        )
    ));
}

#[test]
fn the_contents_read_declared_inputs_with_the_declared_type() {
    let probe = member(
        Signature::new()
            .requires::<u32>("version")
            .provides::<bool>("healthy_probe"),
    );
    let flow = rollout(Flow::linear("hosts").add(Atom::new("probe", probe)));
    assert_eq!(
        build_errors(&flow),
        [
            "group `upgrades` declares the input `version: String`, but its task `probe` requires \
             `version` as `u32`: make the types agree",
            "task `probe` requires `version: u32`, but its provider `pick_version` provides \
             `version` as `String`: make the types agree, or rebind the input to another symbol",
        ]
    );
}

#[test]
fn the_contents_must_provide_a_symbol_matching_each_declared_pattern() {
    let flow = rollout(upgrades(&[], None, &log()));
    assert_eq!(
        build_errors(&flow),
        [
            "group `upgrades` declares that it provides `healthy_*: bool`, but no task of the group \
          provides a symbol matching `healthy_*`: add a task that does, or remove the output from \
          the group's declaration"
        ]
    );
}

#[test]
fn the_contents_provide_the_declared_type_and_nothing_undeclared() {
    let wrong = FnTask::sync(
        Signature::new().provides::<String>("healthy_web-01"),
        |_| Ok(Outputs::one("yes".to_string())),
    );
    let extra = member(Signature::new().provides::<bool>("drained"));
    let flow = rollout(
        Flow::unordered("hosts")
            .add(Atom::new("wrong", wrong))
            .add(Atom::new("extra", extra)),
    );
    assert_eq!(
        build_errors(&flow),
        [
            "group `upgrades` declares that it provides `healthy_*: bool`, but its task `wrong` \
             provides `healthy_web-01` as `String`: make the types agree",
            "group `upgrades` holds task `extra`, which provides `drained: bool`, but the group \
             does not declare it: add `drained: bool` (or a pattern matching it) to the group's \
             outputs in `flow!`",
            "task `report` requires `healthy_web-01: bool`, but its provider `wrong` provides \
             `healthy_web-01` as `String`: make the types agree, or rebind the input to another \
             symbol",
        ]
    );
}

#[test]
fn the_group_takes_its_declared_name_in_the_tree() {
    let log = log();
    let twice = upgrades(&["web-01"], None, &log).add(Atom::new(
        "upgrade-web-01",
        member(Signature::new().provides::<bool>("healthy_again")),
    ));
    assert_eq!(
        build_errors(&rollout(twice)),
        [
            "two atoms are named `upgrade-web-01` at `rollout/upgrades/upgrade-web-01`: names \
             must be unique in a flow tree, rename one"
        ]
    );
}

#[task(provides = healthy_db)]
fn check_db() -> bool {
    true
}

#[task(provides = healthy_cache)]
fn check_cache() -> bool {
    false
}

#[tokio::test]
async fn a_pattern_also_collects_fixed_providers() {
    let checks = flow! {
        checks() -> (report: Vec<bool>, by_host: BTreeMap<String, bool>) {
            check_db,
            check_cache,
            report,
            report_map,
        }
    };
    let (list, map) = checks.run(()).await.expect("runs");
    assert_eq!(list, vec![false, true]);
    assert_eq!(
        map,
        BTreeMap::from([
            ("healthy_cache".to_string(), false),
            ("healthy_db".to_string(), true)
        ])
    );
}

#[tokio::test]
async fn a_run_with_a_run_time_group_resumes_from_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("runs.db");
    let hosts = ["web-01", "web-02", "web-03"];
    let first_log = log();
    let (tx, mut started) = mpsc::unbounded_channel();
    let first = rollout(hanging(&hosts, None, Some(("web-02", &tx)), &first_log));
    let store = Arc::new(SqliteBackend::open(&path).expect("the store opens"));
    let mut engine = first.engine((3,)).expect("builds").storage(store).build();
    let run = engine.run_id();
    tokio::select! {
        result = engine.run() => panic!("the run ended before the crash: {result:?}"),
        host = started.recv() => assert_eq!(host.as_deref(), Some("web-02")),
    }
    drop(engine);
    assert_eq!(
        *first_log.lock().unwrap(),
        ["upgrade web-01 to 2.3", "upgrade web-02 to 2.3"]
    );

    let log = log();
    let again = rollout(upgrades(&hosts, None, &log));
    let store = Arc::new(SqliteBackend::open(&path).expect("the store opens again"));
    let mut resumed = (again.resuming().expect("builds"))
        .storage(store)
        .resume(run)
        .await
        .expect("resumes");
    resumed.run().await.expect("finishes");
    assert_eq!(again.outputs(&resumed), Some((vec![true, true, true],)));
    // web-01 finished before the crash: its result is reused, not recomputed.
    assert_eq!(
        *log.lock().unwrap(),
        ["upgrade web-02 to 2.3", "upgrade web-03 to 2.3"]
    );
}

#[tokio::test]
async fn a_narrower_declared_pattern_satisfies_a_wider_collect() {
    let log = log();
    let hosts = ["web_02", "web_01"];
    let rollout = flow! {
        rollout(release: u32) -> (report: Vec<bool>) {
            pick_version,
            group web(version: String) -> (healthy_web_*: bool) = upgrades(&hosts, None, &log),
            report,
        }
    };
    assert_eq!(rollout.run((4,)).await.expect("runs"), (vec![true, true],));
    assert_eq!(
        *log.lock().unwrap(),
        ["upgrade web_02 to 2.4", "upgrade web_01 to 2.4"]
    );
}

#[tokio::test]
async fn a_group_in_a_graph_is_ordered_by_the_data_it_exchanges() {
    let log = log();
    let hosts = ["web-01", "web-02"];
    // Declared in reverse: the graph orders them by what they read.
    let rollout = flow! {
        rollout(release: u32) -> (report: Vec<bool>) {
            graph ordered {
                report,
                group upgrades(version: String) -> (healthy_*: bool) = upgrades(&hosts, None, &log),
                pick_version,
            },
        }
    };
    assert_eq!(rollout.run((9,)).await.expect("runs"), (vec![true, true],));
    assert_eq!(
        *log.lock().unwrap(),
        ["upgrade web-01 to 2.9", "upgrade web-02 to 2.9"]
    );
}
