use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, ready};

use super::{
    AtomDetail, Backend, Claim, Definition, FlowDetail, FlowId, FlowQuery, Lease, LogBook,
    LogbookId, StorageError, now_unix,
};
use crate::engine::state::FlowState;

#[derive(Debug)]
pub(super) struct Run {
    pub(super) detail: FlowDetail,
    pub(super) atoms: BTreeMap<String, AtomDetail>,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) books: HashMap<LogbookId, LogBook>,
    pub(super) flows: BTreeMap<FlowId, Run>,
    pub(super) definitions: HashMap<String, Definition>,
    pub(super) jobs: BTreeMap<super::JobId, super::Job>,
}

/// A journal kept in memory: for tests, and for runs that need the journal's
/// record but not its durability. Leases are measured by this process's
/// clock.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use flow::{Atom, AtomState, Backend, Engine, Flow, FnTask, MemoryBackend, Outputs, Signature};
/// let t = FnTask::sync(Signature::new().provides::<u32>("n"), |_| Ok(Outputs::one(7u32)));
/// let flow = Flow::linear("f").add(Atom::new("t", t)).build().unwrap();
/// let journal = Arc::new(MemoryBackend::new());
/// let mut engine = Engine::builder(flow).storage(journal.clone()).build();
/// engine.run().await.unwrap();
/// let (run, atoms) = journal.load_flow(engine.run_id()).await.unwrap();
/// assert_eq!(run.name, "f");
/// assert_eq!(atoms[0].state, AtomState::Success);
/// assert_eq!(atoms[0].result, Some(serde_json::json!([7])));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    inner: Mutex<Inner>,
    /// Woken when a job is posted or handed back.
    pub(super) posted: tokio::sync::Notify,
}

impl MemoryBackend {
    /// An empty journal.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A logbook by id.
    pub fn logbook(&self, id: LogbookId) -> Option<LogBook> {
        self.lock().books.get(&id).cloned()
    }
}

/// Whether `claim` may take a run held as `held` at `now`; the holder and
/// the end of its lease when it may not.
pub(crate) fn claimable(
    held: &super::Ownership,
    claim: &Claim,
    now: f64,
) -> Result<(), (String, f64)> {
    match (&held.owner, held.expires_at) {
        (Some(owner), Some(until)) if until > now && *owner != claim.owner => {
            Err((owner.clone(), until))
        }
        _ => Ok(()),
    }
}

/// The end of a lease of `duration` taken at `now`.
pub(crate) fn lease_end(now: f64, duration: Duration) -> f64 {
    now + duration.as_secs_f64()
}

pub(super) fn lost(run: &Run, fence: u64) -> StorageError {
    StorageError::OwnershipLost {
        run: run.detail.id,
        fence,
        current: run.detail.ownership.fence,
        holder: run.detail.ownership.owner.clone(),
    }
}

pub(super) fn done<T: Send + 'static>(
    result: Result<T, StorageError>,
) -> BoxFuture<'static, Result<T, StorageError>> {
    ready(result).boxed()
}

impl Backend for MemoryBackend {
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>> {
        self.lock().books.insert(book.id, book);
        done(Ok(()))
    }

    fn create_flow(
        &self,
        mut flow: FlowDetail,
        atoms: Vec<AtomDetail>,
        claim: Claim,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let mut inner = self.lock();
        if inner.flows.contains_key(&flow.id) {
            return done(Err(StorageError::Exists(flow.id)));
        }
        let expires = lease_end(now_unix(), claim.duration);
        flow.ownership = super::Ownership {
            owner: Some(claim.owner.clone()),
            expires_at: Some(expires),
            fence: 1,
            cancel_requested: false,
        };
        let lease = Lease::new(flow.id, claim.owner, 1, expires);
        let atoms = atoms.into_iter().map(|a| (a.name.clone(), a)).collect();
        inner.flows.insert(
            flow.id,
            Run {
                detail: flow,
                atoms,
            },
        );
        done(Ok(lease))
    }

    fn claim_flow(&self, run: FlowId, claim: Claim) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let mut inner = self.lock();
        let Some(stored) = inner.flows.get_mut(&run) else {
            return done(Err(StorageError::NotFound(run)));
        };
        let now = now_unix();
        let held = &mut stored.detail.ownership;
        if let Err((owner, expires_at)) = claimable(held, &claim, now) {
            return done(Err(StorageError::Owned {
                run,
                owner,
                expires_at,
            }));
        }
        held.fence += 1;
        held.owner = Some(claim.owner.clone());
        held.expires_at = Some(lease_end(now, claim.duration));
        let lease = Lease::new(run, claim.owner, held.fence, lease_end(now, claim.duration))
            .with_cancel_requested(held.cancel_requested);
        done(Ok(lease))
    }

    fn renew_lease(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> BoxFuture<'_, Result<Lease, StorageError>> {
        let mut inner = self.lock();
        let Some(stored) = inner.flows.get_mut(&lease.run) else {
            return done(Err(StorageError::NotFound(lease.run)));
        };
        // Given back since: a renewal its holder had under way does not take
        // it again.
        if stored.detail.ownership.fence != lease.fence || stored.detail.ownership.owner.is_none() {
            return done(Err(lost(stored, lease.fence)));
        }
        let held = &mut stored.detail.ownership;
        let expires = lease_end(now_unix(), duration);
        held.owner = Some(lease.owner.clone());
        held.expires_at = Some(expires);
        let renewed = Lease::new(lease.run, lease.owner.clone(), lease.fence, expires)
            .with_cancel_requested(held.cancel_requested);
        done(Ok(renewed))
    }

    fn release_flow(&self, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>> {
        let mut inner = self.lock();
        let Some(stored) = inner.flows.get_mut(&lease.run) else {
            return done(Err(StorageError::NotFound(lease.run)));
        };
        if stored.detail.ownership.fence != lease.fence {
            return done(Err(lost(stored, lease.fence)));
        }
        stored.detail.ownership.owner = None;
        stored.detail.ownership.expires_at = None;
        done(Ok(()))
    }

    fn save_run(
        &self,
        run: FlowId,
        fence: u64,
        flow: Option<FlowDetail>,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        let mut inner = self.lock();
        let Some(stored) = inner.flows.get_mut(&run) else {
            return done(Err(StorageError::NotFound(run)));
        };
        if stored.detail.ownership.fence != fence {
            return done(Err(lost(stored, fence)));
        }
        if let Some(mut flow) = flow {
            flow.id = run;
            flow.ownership = stored.detail.ownership.clone();
            stored.detail = flow;
        }
        for a in atoms {
            stored.atoms.insert(a.name.clone(), a);
        }
        done(Ok(()))
    }

    fn request_cancel(&self, run: FlowId) -> BoxFuture<'_, Result<(), StorageError>> {
        let mut inner = self.lock();
        let result = match inner.flows.get_mut(&run) {
            Some(stored) => {
                stored.detail.ownership.cancel_requested = true;
                Ok(())
            }
            None => Err(StorageError::NotFound(run)),
        };
        done(result)
    }

    fn load_flow(
        &self,
        run: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>> {
        let result = self
            .lock()
            .flows
            .get(&run)
            .map(|r| (r.detail.clone(), r.atoms.values().cloned().collect()))
            .ok_or(StorageError::NotFound(run));
        done(result)
    }

    fn list_flows(&self, query: FlowQuery) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>> {
        let inner = self.lock();
        let mut flows: Vec<FlowDetail> = inner
            .flows
            .values()
            .map(|r| &r.detail)
            .filter(|f| query.matches(f))
            .cloned()
            .collect();
        flows.sort_by(|a, b| {
            b.created_at
                .total_cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        let flows = flows
            .into_iter()
            .skip(query.offset)
            .take(query.limit.unwrap_or(usize::MAX))
            .collect();
        done(Ok(flows))
    }

    fn prune_flows(&self, before: f64) -> BoxFuture<'_, Result<u64, StorageError>> {
        let mut inner = self.lock();
        let count = inner.flows.len();
        inner.flows.retain(|_, r| {
            let ended = matches!(
                r.detail.state,
                FlowState::Success | FlowState::Reverted | FlowState::Failure
            );
            !(ended && r.detail.updated_at < before)
        });
        let Inner { flows, jobs, .. } = &mut *inner;
        jobs.retain(|_, j| flows.contains_key(&j.run));
        done(Ok((count - inner.flows.len()) as u64))
    }

    fn save_definition(&self, definition: Definition) -> BoxFuture<'_, Result<(), StorageError>> {
        self.lock()
            .definitions
            .entry(definition.id.clone())
            .or_insert(definition);
        done(Ok(()))
    }

    fn load_definition(&self, id: &str) -> BoxFuture<'_, Result<Option<Definition>, StorageError>> {
        done(Ok(self.lock().definitions.get(id).cloned()))
    }
}
