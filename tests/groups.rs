//! Groups built at run time inside `flow!` (`group name(..) -> (..) = expr`)
//! and collections by name pattern (`#[collect(prefix*)]`): the fan-in's
//! values and order, the build-time check of a group's contents against its
//! declared interface, revert of the group's members in reverse order, and
//! resume of a run with a run-time group on SQLite.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flow::{
    Atom, BuildError, CaptureListener, Flow, GroupProblem, RunError, SqliteBackend, TaskError,
    flow, task,
};

type Log = Arc<Mutex<Vec<String>>>;

/// Upgrades one host to `version`; fails for a host named in `fail`.
struct UpgradeHost {
    host: String,
    fail: Option<String>,
    log: Log,
}

#[task(provides = healthy)]
impl UpgradeHost {
    fn execute(&self, version: &str) -> Result<bool, TaskError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("upgrade {} to {version}", self.host));
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
    let mut group = Flow::linear("hosts");
    for host in hosts {
        let task = UpgradeHost {
            host: host.to_string(),
            fail: fail.map(String::from),
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
