//! The context a task runs in: its name, attempt, progress and the run's
//! failures.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::outputs::Failures;
use crate::engine::control::Control;
use crate::notify::Notifier;

/// What a task can see of the run it is part of: its name, the attempt number,
/// and a way to report progress.
///
/// Cloning is cheap; clone it into an async body that needs it.
#[derive(Clone)]
pub struct Context {
    pub(super) shared: Arc<ContextShared>,
    pub(super) index: u32,
    pub(super) attempt: u32,
}

/// What every context of one run shares: handing a context to a task costs
/// one reference count.
pub(crate) struct ContextShared {
    /// Where the atom's name is.
    pub(super) names: Names,
    pub(super) notifier: Notifier,
    pub(super) control: Arc<Control>,
    /// The run's failures as of the latest revert started: the engine
    /// replaces them before a revert whenever a failure has come or gone
    /// since, so that a revert costs no reference count of its own.
    pub(super) failures: Mutex<Arc<Failures>>,
}

/// Where the contexts of a run find their atoms' names: the run's compiled
/// graph.
pub(crate) trait AtomNames: Send + Sync {
    /// The name of atom `index`, or `""` for none.
    fn atom_name(&self, index: u32) -> &str;
}

pub(super) enum Names {
    /// The run's atoms, indexed by the context's atom.
    Graph(Arc<dyn AtomNames>),
    /// A detached context's own name.
    Detached(Arc<str>),
}

impl ContextShared {
    pub(crate) fn new(
        graph: Arc<dyn AtomNames>,
        notifier: Notifier,
        control: Arc<Control>,
    ) -> Arc<Self> {
        Arc::new(ContextShared {
            names: Names::Graph(graph),
            notifier,
            control,
            failures: Mutex::default(),
        })
    }

    /// Makes `failures` what [`Context::failures`] returns.
    pub(crate) fn publish_failures(&self, failures: Failures) {
        *self.failures.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(failures);
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("atom", &self.atom())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(shared: Arc<ContextShared>, index: u32, attempt: u32) -> Self {
        Context {
            shared,
            index,
            attempt,
        }
    }

    /// Points a lent context at another atom and attempt.
    pub(crate) fn point(&mut self, index: u32, attempt: u32) {
        self.index = index;
        self.attempt = attempt;
    }

    /// Whether the run was cancelled: a long task should stop early and
    /// return an error.
    pub fn is_cancelled(&self) -> bool {
        self.shared.control.cancel_requested()
    }

    /// Resolves when the run is cancelled; use it in a `tokio::select!`
    /// beside the task's work.
    pub async fn cancelled(&self) {
        self.shared
            .control
            .cancelled_token()
            .cancelled_owned()
            .await;
    }

    /// How long this task may go on after a cancel before the engine gives
    /// up on it.
    pub(crate) fn grace(&self) -> std::time::Duration {
        self.shared.control.grace
    }

    /// A context for calling a task's body directly, outside any engine (unit
    /// tests of task bodies).
    ///
    /// ```
    /// let ctx = flow::Context::detached("probe");
    /// assert_eq!(ctx.atom(), "probe");
    /// assert_eq!(ctx.attempt(), 1);
    /// ctx.progress(0.5); // nobody listens: a no-op
    /// ```
    pub fn detached(atom: &str) -> Self {
        let shared = ContextShared {
            names: Names::Detached(Arc::from(atom)),
            notifier: Notifier::default(),
            control: Control::new(),
            failures: Mutex::default(),
        };
        Context::new(Arc::new(shared), 0, 1)
    }

    /// The atom's name.
    pub fn atom(&self) -> &str {
        match &self.shared.names {
            Names::Graph(g) => g.atom_name(self.index),
            Names::Detached(name) => name,
        }
    }

    /// Which execution of this atom this is, from 1: it grows each time the atom
    /// is run again (a new run after a revert, or a resumed run).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Every failure of the run so far, keyed by atom name: what a `revert`
    /// is undoing after. The engine brings it up to date before each revert
    /// it starts; during `execute` it holds the failures as of the latest
    /// revert (none before the first), and a detached context has none.
    ///
    /// Asking takes a lock and a reference count, so a revert that does not
    /// need the failures costs nothing for them.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::{Arc, Mutex};
    /// use flow::{Atom, Engine, Exec, Flow, FnTask, Outputs, Signature, TaskError};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let undo = FnTask::sync(Signature::new(), |_| Ok(Outputs::new())).on_revert(
    ///     move |_, ctx| {
    ///         let failures = ctx.failures();
    ///         log.lock().unwrap().extend(failures.keys().cloned());
    ///         Exec::Ready(Ok(None))
    ///     },
    /// );
    /// let fail = FnTask::sync(Signature::new(), |_| Err(TaskError::msg("no")));
    /// let flow = Flow::linear("f")
    ///     .add(Atom::new("undo", undo))
    ///     .add(Atom::new("fail", fail))
    ///     .build()
    ///     .unwrap();
    /// Engine::builder(flow).build().run().await.unwrap_err();
    /// assert_eq!(*seen.lock().unwrap(), ["fail"]);
    /// assert!(flow::Context::detached("probe").failures().is_empty());
    /// # });
    /// ```
    pub fn failures(&self) -> Arc<Failures> {
        self.shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reports progress, clamped to `0.0..=1.0`. The engine itself reports `0.0`
    /// when the task starts and `1.0` when it ends.
    pub fn progress(&self, progress: f32) {
        self.shared
            .notifier
            .progress(self.atom(), self.index, progress);
    }
}
