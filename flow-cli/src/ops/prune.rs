//! Deleting the runs that ended before a date, with their logs.

use flow::FlowQuery;

use super::inspect::{RunStatus, RunSummary};
use super::stored::{RUN_KEY, input_str};
use super::{OpsError, Store};

/// What [`prune_runs`] deleted (or would delete).
#[derive(Debug)]
#[non_exhaustive]
pub struct Pruned {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// How many directories of logs went with them.
    pub log_dirs: usize,
}

/// Deletes the runs that ended (succeeded, reverted, failed) and last changed
/// before `before` (seconds since the Unix epoch), with their directories of
/// logs under the store's logs; with `dry_run`, only says which.
///
/// # Errors
/// What the store says; a directory of logs that cannot be deleted.
pub async fn prune_runs(store: &Store, before: f64, dry_run: bool) -> Result<Pruned, OpsError> {
    let mut query = FlowQuery::new();
    for s in [RunStatus::Succeeded, RunStatus::Failed] {
        for state in s.states() {
            query = query.state(*state);
        }
    }
    let ended = store
        .backend()
        .list_flows(query)
        .await
        .map_err(OpsError::Store)?;
    let now = flow::storage::now_unix();
    let old: Vec<_> = ended
        .into_iter()
        .filter(|r| r.updated_at < before)
        .collect();
    let runs = old.iter().map(|r| RunSummary::of(r, now)).collect();
    if dry_run {
        return Ok(Pruned { runs, log_dirs: 0 });
    }
    store
        .backend()
        .prune_flows(before)
        .await
        .map_err(OpsError::Store)?;
    let mut log_dirs = 0;
    for run in &old {
        // A run's key names its directory; a key that could name anything
        // else is left alone.
        let Some(key) = input_str(run, RUN_KEY) else {
            continue;
        };
        if key.parse::<flow::FlowId>().is_err() {
            continue;
        }
        let dir = store.logs().join(key);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => log_dirs += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(OpsError::Io {
                    what: "cannot delete the logs",
                    path: dir,
                    source,
                });
            }
        }
    }
    Ok(Pruned { runs, log_dirs })
}
