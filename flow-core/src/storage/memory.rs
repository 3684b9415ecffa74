use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::future::{BoxFuture, FutureExt, ready};

use super::{AtomDetail, Backend, FlowDetail, FlowId, LogBook, LogbookId, StorageError};

#[derive(Debug, Default)]
struct Inner {
    books: HashMap<LogbookId, LogBook>,
    flows: BTreeMap<FlowId, (FlowDetail, BTreeMap<String, AtomDetail>)>,
}

/// A journal kept in memory: for tests, and for runs that need the journal's
/// record but not its durability.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use flow_core::{Atom, AtomState, Backend, Engine, Flow, FnTask, MemoryBackend, Outputs, Signature};
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
}

impl MemoryBackend {
    /// An empty journal.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A logbook by id.
    pub fn logbook(&self, id: LogbookId) -> Option<LogBook> {
        self.lock().books.get(&id).cloned()
    }
}

impl Backend for MemoryBackend {
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>> {
        self.lock().books.insert(book.id, book);
        ready(Ok(())).boxed()
    }

    fn save_flow(&self, flow: FlowDetail) -> BoxFuture<'_, Result<(), StorageError>> {
        let mut inner = self.lock();
        match inner.flows.get_mut(&flow.id) {
            Some((f, _)) => *f = flow,
            None => {
                inner.flows.insert(flow.id, (flow, BTreeMap::new()));
            }
        }
        ready(Ok(())).boxed()
    }

    fn save_atoms(
        &self,
        flow: FlowId,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        let mut inner = self.lock();
        let result = match inner.flows.get_mut(&flow) {
            Some((_, stored)) => {
                for a in atoms {
                    stored.insert(a.name.clone(), a);
                }
                Ok(())
            }
            None => Err(StorageError::NotFound(flow)),
        };
        ready(result).boxed()
    }

    fn load_flow(
        &self,
        flow: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>> {
        let result = self
            .lock()
            .flows
            .get(&flow)
            .map(|(f, atoms)| (f.clone(), atoms.values().cloned().collect()))
            .ok_or(StorageError::NotFound(flow));
        ready(result).boxed()
    }

    fn list_flows(&self) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>> {
        let flows = self.lock().flows.values().map(|(f, _)| f.clone()).collect();
        ready(Ok(flows)).boxed()
    }
}
