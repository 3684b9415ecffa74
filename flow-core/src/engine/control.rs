//! Controlling a run from elsewhere: suspend it, or cancel it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub(crate) struct Control {
    suspend: AtomicBool,
    cancel: AtomicBool,
    token: Mutex<CancellationToken>,
    pub(crate) wake: Notify,
    /// How long an asynchronous task may go on after a cancel before the
    /// engine gives up on it.
    pub(crate) grace: Duration,
}

/// How long a task may ignore a cancel, unless the engine is told otherwise.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

impl Control {
    pub(crate) fn new() -> Arc<Self> {
        Control::with_grace(DEFAULT_GRACE)
    }

    pub(crate) fn with_grace(grace: Duration) -> Arc<Self> {
        Arc::new(Control {
            suspend: AtomicBool::new(false),
            cancel: AtomicBool::new(false),
            token: Mutex::new(CancellationToken::new()),
            wake: Notify::new(),
            grace,
        })
    }

    fn token(&self) -> MutexGuard<'_, CancellationToken> {
        self.token.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn suspend_requested(&self) -> bool {
        self.suspend.load(Ordering::Acquire)
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    /// Forgets the requests once a run has ended (or stopped), so that the next
    /// run starts clean.
    pub(crate) fn clear(&self) {
        self.suspend.store(false, Ordering::Release);
        if self.cancel.swap(false, Ordering::AcqRel) {
            *self.token() = CancellationToken::new();
        }
    }

    pub(crate) fn cancelled_token(&self) -> CancellationToken {
        self.token().clone()
    }

    /// Asks the run to cancel (see [`RunHandle::cancel`]).
    pub(crate) fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
        self.token().cancel();
        self.wake.notify_one();
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("suspend", &self.suspend_requested())
            .field("cancel", &self.cancel_requested())
            .finish()
    }
}

/// Suspends or cancels an engine's run from another task (or from inside one of
/// its own tasks). Cheap to clone; obtained with
/// [`Engine::handle`](crate::Engine::handle).
///
/// A request applies to the run in progress, or to the next run if none is in
/// progress; it is forgotten when that run stops.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use flow::{Atom, Engine, Flow, FlowState, FnTask, Outputs, RunError, RunHandle, Signature};
/// use std::sync::{Arc, Mutex};
///
/// let slot: Arc<Mutex<Option<RunHandle>>> = Arc::default();
/// let handle_in_task = slot.clone();
/// let pause = FnTask::sync(Signature::new(), move |_| {
///     if let Some(h) = handle_in_task.lock().unwrap().as_ref() { h.suspend(); }
///     Ok(Outputs::new())
/// });
/// let then = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
/// let flow = Flow::linear("f").add(Atom::new("pause", pause)).add(Atom::new("then", then)).build().unwrap();
/// let mut engine = Engine::builder(flow).build();
/// *slot.lock().unwrap() = Some(engine.handle());
/// assert!(matches!(engine.run().await, Err(RunError::Suspended { .. })));
/// assert_eq!(engine.state(), FlowState::Suspended);
/// *slot.lock().unwrap() = None;
/// engine.run().await.unwrap(); // continues with `then`
/// assert_eq!(engine.state(), FlowState::Success);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct RunHandle(pub(crate) Arc<Control>);

impl RunHandle {
    /// Asks the run to suspend: no new atom starts, running ones finish, the
    /// flow ends `Suspended`. Running the engine again continues.
    pub fn suspend(&self) {
        self.0.suspend.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }

    /// Cancels the run: nothing new is scheduled, running tasks see
    /// [`Context::is_cancelled`](crate::Context::is_cancelled) (and
    /// [`Context::cancelled`](crate::Context::cancelled) resolves), and
    /// everything that ran is reverted. The run returns
    /// [`RunError::Cancelled`](crate::RunError::Cancelled).
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether a cancellation was requested and not yet handled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancel_requested()
    }
}
