//! The storage conformance suite: what every [`Backend`] must do, checked the
//! same way for each. A backend's tests call [`conformance_tests!`] with an
//! async function that makes a fresh, empty store:
//!
//! ```ignore
//! async fn fresh() -> (TempDir, SqliteBackend) { ... }
//! flow_conformance::conformance_tests!(fresh);
//! ```
//!
//! which makes one `#[tokio::test]` per check, named after it.
//!
//! - [`records`]: every field round-trips, upserts, unknown runs, all-or-none
//!   writes, concurrent writers, runs that share atom names;
//! - [`ownership`]: claims, leases, fencing numbers, releases, renewals,
//!   requests to cancel, and concurrent claimants;
//! - [`queries`]: listing with filters and paging, pruning, definitions;
//! - [`jobs`]: the job board (for backends that keep one:
//!   [`job_board_tests!`]).

pub mod jobs;
pub mod ownership;
pub mod queries;
pub mod records;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use flow_core::{
    AtomDetail, AtomKind, AtomState, Backend, Claim, Failure, FlowDetail, FlowId, FlowState,
    Intention, Lease, LogBook, LogbookId, Ownership, TaskError,
};
use serde_json::{Value, json};

/// Makes one test per check of the suite, each on a fresh store from
/// `$make`, an async function returning `(guard, backend)`: the guard (a
/// temporary directory, a database dropped with it) lives as long as the test.
///
/// `conformance_tests!(optional $make)` is for backends with a server that
/// may not be there: `$make` returns `Option<(guard, backend)>`, and a test
/// given `None` passes at once (`$make` prints why).
#[macro_export]
macro_rules! conformance_tests {
    (optional $make:path) => {
        $crate::conformance_tests!(@each_optional $make;
            records::round_trip,
            records::upsert,
            records::unknown_run,
            records::save_writes_all,
            records::concurrent_writers,
            records::runs_do_not_mix,
            records::create_refuses_an_existing_run,
            ownership::a_new_run_is_held_by_its_creator,
            ownership::a_live_lease_keeps_others_out,
            ownership::a_claim_raises_the_fencing_number,
            ownership::a_stale_write_is_refused_whole,
            ownership::an_expired_lease_can_be_taken_over,
            ownership::a_released_run_can_be_claimed_at_once,
            ownership::renewals_extend_the_lease_of_the_holder_only,
            ownership::a_request_to_cancel_reaches_the_holder,
            ownership::one_of_many_claimants_wins,
            queries::list_filters_and_pages,
            queries::prune_deletes_old_ended_runs,
            queries::definitions_are_kept_by_content,
        );
    };
    (@each_optional $make:path; $($module:ident :: $check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            // `None`: the backend's server is not there, and `$make` said so.
            let Some((_guard, backend)) = $make().await else { return };
            $crate::$module::$check(&backend).await;
        }
    )*};
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            records::round_trip,
            records::upsert,
            records::unknown_run,
            records::save_writes_all,
            records::concurrent_writers,
            records::runs_do_not_mix,
            records::create_refuses_an_existing_run,
            ownership::a_new_run_is_held_by_its_creator,
            ownership::a_live_lease_keeps_others_out,
            ownership::a_claim_raises_the_fencing_number,
            ownership::a_stale_write_is_refused_whole,
            ownership::an_expired_lease_can_be_taken_over,
            ownership::a_released_run_can_be_claimed_at_once,
            ownership::renewals_extend_the_lease_of_the_holder_only,
            ownership::a_request_to_cancel_reaches_the_holder,
            ownership::one_of_many_claimants_wins,
            queries::list_filters_and_pages,
            queries::prune_deletes_old_ended_runs,
            queries::definitions_are_kept_by_content,
        );
    };
    (@each $make:path; $($module:ident :: $check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_guard, backend) = $make().await;
            $crate::$module::$check(&backend).await;
        }
    )*};
}

/// Makes one test per check of the job board, each on a fresh store from
/// `$make` (as [`conformance_tests!`], with its `optional` form for
/// backends with a server that may not be there).
#[macro_export]
macro_rules! job_board_tests {
    (optional $make:path) => {
        $crate::job_board_tests!(@each_optional $make;
            a_post_stores_a_job_and_its_pending_run,
            claims_follow_priority_age_and_known_flows,
            completing_needs_the_current_claim,
            an_expired_claim_is_taken_over_and_counted,
            a_poison_job_is_failed_not_claimed_forever,
            a_suspect_job_is_taken_alone,
            a_job_handed_back_is_claimed_at_once,
            cancelling_a_job,
            concurrent_claimants_never_share_a_job,
            a_post_wakes_a_waiting_conductor,
        );
    };
    (@each_optional $make:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            // `None`: the backend's server is not there, and `$make` said so.
            let Some((_guard, backend)) = $make().await else { return };
            $crate::jobs::$check(&backend).await;
        }
    )*};
    ($make:path) => {
        $crate::job_board_tests!(@each $make;
            a_post_stores_a_job_and_its_pending_run,
            claims_follow_priority_age_and_known_flows,
            completing_needs_the_current_claim,
            an_expired_claim_is_taken_over_and_counted,
            a_poison_job_is_failed_not_claimed_forever,
            a_suspect_job_is_taken_alone,
            a_job_handed_back_is_claimed_at_once,
            cancelling_a_job,
            concurrent_claimants_never_share_a_job,
            a_post_wakes_a_waiting_conductor,
        );
    };
    (@each $make:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_guard, backend) = $make().await;
            $crate::jobs::$check(&backend).await;
        }
    )*};
}

/// How long a lease lasts in the checks that need it live.
pub const LIVE: Duration = Duration::from_secs(120);

/// An error with a cause, to give a failure a chain of causes.
#[derive(Debug)]
struct DiskFull(std::io::Error);

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk full on /var")
    }
}

impl std::error::Error for DiskFull {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A failure with the message `Woot!`.
pub fn woot() -> Failure {
    Failure::from_error(TaskError::msg("Woot!"))
}

/// A failure with a cause.
pub fn disk_full() -> Failure {
    Failure::from_error(TaskError::from(DiskFull(std::io::Error::other(
        "no space left on device",
    ))))
}

/// A logbook named `name`.
pub fn logbook(name: &str) -> LogBook {
    LogBook {
        id: LogbookId::new(),
        name: name.to_string(),
        created_at: 1_700_000_000.25,
        updated_at: 1_700_000_100.5,
        meta: json!({ "owner": name }),
    }
}

/// A run of flow `name` in `state`, not yet stored.
pub fn run(book: LogbookId, name: &str, state: FlowState) -> FlowDetail {
    FlowDetail {
        id: FlowId::new(),
        logbook: book,
        name: name.to_string(),
        state,
        meta: json!({
            "inputs": { "x": 41, "label": "ü ✓ \"quoted\"" },
            "atoms": [["a", "TASK"], ["r", "RETRY"]],
            "revert_all": false,
        }),
        created_at: 1_700_000_000.0,
        updated_at: 1_700_000_123.125,
        ownership: Ownership::default(),
    }
}

/// A plain pending atom.
pub fn atom(name: &str) -> AtomDetail {
    AtomDetail::pending(name, AtomKind::Task)
}

/// A successful atom with `result` as its outputs.
pub fn done(name: &str, result: Value, version: u64) -> AtomDetail {
    AtomDetail {
        state: AtomState::Success,
        result: Some(result),
        progress: 1.0,
        attempts: 1,
        version,
        ..atom(name)
    }
}

/// Everything a detail holds, failures included: `AtomDetail` is not
/// `PartialEq`, its JSON is.
pub fn snapshots(atoms: &[AtomDetail]) -> Vec<Value> {
    let mut atoms = atoms.to_vec();
    atoms.sort_by(|a, b| a.name.cmp(&b.name));
    atoms
        .iter()
        .map(|a| serde_json::to_value(a).expect("a detail encodes"))
        .collect()
}

/// Atoms by name.
pub fn by_name(atoms: Vec<AtomDetail>) -> BTreeMap<String, AtomDetail> {
    atoms.into_iter().map(|a| (a.name.clone(), a)).collect()
}

/// A run as stored: its record with the ownership the store keeps.
pub fn held(mut flow: FlowDetail, lease: &Lease) -> FlowDetail {
    flow.ownership = Ownership {
        owner: Some(lease.owner.clone()),
        expires_at: Some(lease.expires_at),
        fence: lease.fence,
        cancel_requested: lease.cancel_requested,
    };
    flow
}

/// Stores `flow` with `atoms`, claimed by `owner` for a live lease.
pub async fn create(
    b: &dyn Backend,
    flow: &FlowDetail,
    atoms: Vec<AtomDetail>,
    owner: &str,
) -> Lease {
    b.create_flow(flow.clone(), atoms, Claim::new(owner, LIVE))
        .await
        .expect("a new run is created")
}

/// The stored run `id` without its ownership (for comparisons with what was
/// written).
pub async fn stored(b: &dyn Backend, id: FlowId) -> (FlowDetail, Vec<AtomDetail>) {
    let (mut flow, atoms) = b.load_flow(id).await.expect("the run is stored");
    flow.ownership = Ownership::default();
    (flow, atoms)
}

/// The states, intentions and kinds to cycle through.
pub const INTENTIONS: [Intention; 4] = [
    Intention::Execute,
    Intention::Revert,
    Intention::Retry,
    Intention::Ignore,
];

/// Both atom kinds.
pub const KINDS: [AtomKind; 2] = [AtomKind::Task, AtomKind::Retry];
