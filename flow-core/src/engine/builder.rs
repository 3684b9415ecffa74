//! [`EngineBuilder`]: how an engine is configured before it runs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::control::{self};
use super::journal::Journal;
use super::lease::OwnerConfig;
use super::machine::Machine;
use super::{Engine, Mode};
use crate::compile::CompiledFlow;
use crate::notify::{Listener, Notifier};
use crate::storage::{Backend, FlowId, LogbookId};
use crate::symbol::{Data, Store, Value};

/// Configures an [`Engine`].
///
/// ```
/// use flow::{Engine, Flow, CaptureListener};
/// let flow = Flow::linear("empty").build().unwrap();
/// let engine = Engine::builder(flow)
///     .parallel(4)
///     .listener(CaptureListener::new())
///     .build();
/// # let _ = engine;
/// ```
#[must_use]
pub struct EngineBuilder {
    pub(crate) flow: CompiledFlow,
    pub(crate) store: Store,
    pub(crate) mode: Mode,
    pub(crate) listeners: Vec<Arc<dyn Listener>>,
    pub(crate) backend: Option<Arc<dyn Backend>>,
    pub(crate) logbook: Option<LogbookId>,
    pub(crate) owner: Option<String>,
    pub(crate) lease: Duration,
    pub(crate) renew_every: Option<Duration>,
    pub(crate) wait_for_lease: Duration,
    pub(crate) cancel_grace: Duration,
    pub(crate) keep_claim: bool,
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("flow", &self.flow)
            .field("mode", &self.mode)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The run's inputs (replacing any set before).
    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// Adds one input to the store.
    pub fn input<T: Data>(mut self, name: impl Into<String>, value: T) -> Self {
        self.store.insert(name, value);
        self
    }

    /// Adds one already wrapped input to the store.
    pub fn input_value(mut self, name: impl Into<String>, value: Value) -> Self {
        self.store.insert_value(name, value);
        self
    }

    /// Runs one atom at a time, in a deterministic order (the default).
    pub fn serial(mut self) -> Self {
        self.mode = Mode::Serial;
        self
    }

    /// Runs up to `max_concurrency` atoms at once (0 is taken as 1).
    pub fn parallel(mut self, max_concurrency: usize) -> Self {
        self.mode = Mode::Parallel(max_concurrency.max(1));
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = match mode {
            Mode::Parallel(n) => Mode::Parallel(n.max(1)),
            m => m,
        };
        self
    }

    /// Registers a listener.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Registers a shared listener.
    pub fn listener_arc(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Journals the run to `backend`.
    pub fn storage(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Files the run in this logbook (a new one is made otherwise).
    pub fn logbook(mut self, logbook: LogbookId) -> Self {
        self.logbook = Some(logbook);
        self
    }

    /// The id this engine claims its run under, shown to anyone who finds
    /// the run held (default: `host:pid:xxxxxxxx`, unique per engine).
    ///
    /// Two engines given the same id can take a run from each other at any
    /// time: give each process its own.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// How long a claim on the run lasts unless renewed (default 30 s). The
    /// engine renews it while it works, every third of its length unless
    /// [`renew_every`](EngineBuilder::renew_every) says otherwise. If the
    /// process dies or hangs, another may take the run over once the lease
    /// has run out: a shorter lease means a quicker takeover, and more
    /// writes to the store.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flow::{Engine, Flow};
    /// let flow = Flow::linear("f").build().unwrap();
    /// let engine = Engine::builder(flow)
    ///     .lease(Duration::from_secs(10))
    ///     .renew_every(Duration::from_secs(2))
    ///     .build();
    /// # let _ = engine;
    /// ```
    pub fn lease(mut self, length: Duration) -> Self {
        self.lease = length.max(Duration::from_millis(1));
        self
    }

    /// How often the engine renews its lease (default: a third of the
    /// lease).
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = Some(every.max(Duration::from_millis(1)));
        self
    }

    /// Keeps the claim on the run when [`Engine::run`] returns, renewing it,
    /// instead of giving the run back: for callers that give it back
    /// themselves, as a conductor does with its job
    /// ([`Engine::detach_lease`]).
    pub fn keep_claim(mut self) -> Self {
        self.keep_claim = true;
        self
    }

    /// How long an asynchronous task may go on after the run was cancelled
    /// before the engine gives up on it (default 10 s): its future is dropped,
    /// and it fails with a [`FailureKind::Cancelled`](crate::FailureKind::Cancelled)
    /// failure, then is reverted like any failure. A task that watches
    /// [`Context::cancelled`](crate::Context::cancelled) stops sooner, on its
    /// own terms. Synchronous and blocking tasks cannot be interrupted: the
    /// engine waits for them.
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// When [`resume`](EngineBuilder::resume) finds the run held by an owner
    /// whose lease is live, waits up to `max` for that lease to run out
    /// (checking again as it ends) instead of failing at once with
    /// [`ResumeError::Owned`](crate::ResumeError::Owned). Default: no wait.
    pub fn wait_for_lease(mut self, max: Duration) -> Self {
        self.wait_for_lease = max;
        self
    }

    /// Makes the engine.
    pub fn build(self) -> Engine {
        let n = self.flow.0.nodes.len();
        let progress: Option<Arc<[AtomicU32]>> = self
            .backend
            .as_ref()
            .map(|_| (0..n).map(|_| AtomicU32::new(0)).collect());
        let notifier = Notifier::new(self.listeners, progress.clone());
        let control = control::Control::with_grace(self.cancel_grace);
        let machine = Machine::new(
            self.flow.0.clone(),
            notifier,
            self.backend.is_some(),
            control,
        );
        let ownership = OwnerConfig {
            owner: self.owner.unwrap_or_else(super::lease::default_owner),
            lease: self.lease,
            renew_every: self.renew_every.unwrap_or(self.lease / 3),
        };
        let keep_claim = self.keep_claim;
        let journal = self.backend.map(|backend| {
            let progress = progress.unwrap_or_else(|| Arc::from(Vec::new()));
            let mut journal = Journal::new(backend, self.logbook, n, progress, ownership);
            journal.keep_claim = keep_claim;
            journal
        });
        Engine {
            flow: self.flow,
            store: self.store,
            mode: self.mode,
            machine,
            journal,
            run_id: FlowId::new(),
            recorded: false,
        }
    }
}
