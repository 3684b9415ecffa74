//! Tasks defined outside the `flow` crate and its tests, reaching `flow` under
//! another name (`flowlib`) through `#[task(crate = flowlib)]`.
//!
//! The crate denies clippy's pedantic lints, so `cargo clippy -- -D warnings`
//! proves that what `#[task]` generates is clean under them.
#![warn(clippy::pedantic)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use flowlib::{Context, Failures, Outcome, TaskError, task};

/// A database name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbName(pub String);

/// An error of the tasks here.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// Names the backup of `db`.
#[task(crate = flowlib, provides = backup)]
#[must_use]
pub fn backup_name(db: &DbName, #[default(1)] generation: u32) -> String {
    format!("{}.{generation}.bak", db.0)
}

/// Adds up the sizes of the listed parts.
#[task(crate = flowlib, provides = total)]
#[must_use]
pub fn total_size(#[collect(part_a, part_b, part_c)] parts: Vec<u64>) -> u64 {
    parts.into_iter().sum()
}

/// Labels each part with its size.
#[task(crate = flowlib, provides = (labels, count))]
#[must_use]
pub fn label_parts(
    #[collect(part_a, part_b)] parts: BTreeMap<&str, &u64>,
    prefix: Option<&str>,
) -> (Vec<String>, usize) {
    let prefix = prefix.unwrap_or("part");
    let labels: Vec<String> = parts
        .into_iter()
        .map(|(k, v)| format!("{prefix}:{k}={v}"))
        .collect();
    let count = labels.len();
    (labels, count)
}

/// Checks a host name, asynchronously.
///
/// # Errors
/// When the host is empty.
#[task(crate = flowlib, provides = checked, priority = 2, timeout = 5s, name = "check_host")]
pub async fn check(host: String, ctx: &Context) -> Result<String, Refused> {
    ctx.progress(0.5);
    std::future::ready(()).await;
    if host.is_empty() {
        Err(Refused(host))
    } else {
        Ok(host)
    }
}

/// Writes to a journal on a blocking thread, undone by `unjournal`.
///
/// # Errors
/// Never: the signature shows the `TaskError` form.
#[task(crate = flowlib, blocking, revert = unjournal)]
pub fn journal(checked: &str, log: &[String]) -> Result<(), TaskError> {
    let _ = (checked, log.len());
    Ok(())
}

/// Undoes [`journal`].
#[allow(clippy::unnecessary_wraps)]
fn unjournal(
    checked: &str,
    log: &[String],
    outcome: &Outcome,
    failures: &Failures,
) -> Result<u32, Refused> {
    let _ = (checked, log, outcome.is_success(), failures.len());
    Ok(1)
}

/// A deployment holding a shared log.
#[derive(Clone, Debug, Default)]
pub struct Deploy {
    /// What ran, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

#[task(crate = flowlib, provides = version)]
impl Deploy {
    /// Deploys `app`.
    ///
    /// # Errors
    /// When `app` is empty.
    ///
    /// # Panics
    /// When the log is poisoned.
    pub async fn execute(&self, app: &String, ctx: Context) -> Result<u32, Refused> {
        std::future::ready(()).await;
        self.log
            .lock()
            .unwrap()
            .push(format!("deploy {app} #{}", ctx.attempt()));
        if app.is_empty() {
            return Err(Refused(app.clone()));
        }
        Ok(u32::try_from(app.len()).unwrap_or(u32::MAX))
    }

    /// Undoes the deployment.
    ///
    /// # Panics
    /// When the log is poisoned.
    pub fn revert(&self, app: &String, outcome: &Outcome) {
        let version = outcome.output::<u32>(0).copied();
        self.log
            .lock()
            .unwrap()
            .push(format!("undeploy {app} {version:?}"));
    }
}
