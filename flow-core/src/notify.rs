//! Notifications: events for every flow and atom state change and every progress
//! update, delivered to registered listeners.
//!
//! With no listener registered, the engine builds no event at all.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::state::{AtomKind, AtomState, FlowState};
use crate::failure::Failure;
use crate::symbol::Value;
use crate::task::outputs::Outputs;

/// What came with an atom's state change.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Detail<'a> {
    /// Nothing.
    None,
    /// The outputs, with `SUCCESS`.
    Result(&'a Outputs),
    /// The failure, with `FAILURE` and `REVERT_FAILURE`.
    Failure(&'a Failure),
    /// The revert result, with `REVERTED`.
    Reverted(Option<&'a Value>),
}

/// One notification.
///
/// Its `Display` is the canonical event text: `"<atom>.t <STATE>"`,
/// `"<atom>.t SUCCESS(<Debug of the result>)"`, `"<atom>.t FAILURE(Failure: <message>)"`,
/// `"<atom>.r ..."` for retry controllers, `"<flow>.f <STATE>"` for flows, and
/// `"<atom>.t PROGRESS(<p>)"` for progress.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A flow changed state.
    Flow {
        /// The flow's name.
        flow: &'a str,
        /// The new state.
        state: FlowState,
    },
    /// An atom changed state.
    Atom {
        /// The atom's name.
        atom: &'a str,
        /// Task or retry controller.
        kind: AtomKind,
        /// The new state.
        state: AtomState,
        /// What came with it.
        detail: Detail<'a>,
    },
    /// A task reported progress.
    Progress {
        /// The atom's name.
        atom: &'a str,
        /// From 0.0 to 1.0.
        progress: f32,
    },
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Flow { flow, state } => write!(f, "{flow}.f {state}"),
            Event::Atom {
                atom,
                kind,
                state,
                detail,
            } => {
                let k = match kind {
                    AtomKind::Task => "t",
                    AtomKind::Retry => "r",
                };
                write!(f, "{atom}.{k} {state}")?;
                match detail {
                    Detail::None => Ok(()),
                    Detail::Result(out) => write!(f, "({out:?})"),
                    Detail::Failure(fail) => write!(f, "({fail})"),
                    Detail::Reverted(Some(v)) => write!(f, "({v:?})"),
                    Detail::Reverted(None) => f.write_str("(())"),
                }
            }
            Event::Progress { atom, progress } => write!(f, "{atom}.t PROGRESS({progress})"),
        }
    }
}

/// Receives events. Called on the engine's task (or, for progress, on the task
/// that reports it): keep it quick and never block.
pub trait Listener: Send + Sync + 'static {
    /// Handles one event.
    fn on_event(&self, event: &Event<'_>);

    /// Whether this listener is sent [`Event::Progress`] events (by default
    /// it is). Asked once, when the engine is built: a listener that answers
    /// `false` costs the run nothing for the progress of each atom, which
    /// the engine reports as it starts and finishes.
    ///
    /// ```
    /// use flow::{Event, Listener};
    /// struct States;
    /// impl Listener for States {
    ///     fn on_event(&self, event: &Event<'_>) {
    ///         assert!(!matches!(event, Event::Progress { .. }));
    ///     }
    ///     fn wants_progress(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!States.wants_progress());
    /// ```
    fn wants_progress(&self) -> bool {
        true
    }
}

struct Shared {
    listeners: Vec<Arc<dyn Listener>>,
    /// Those of `listeners` that want progress events, in the same order.
    progress_listeners: Vec<Arc<dyn Listener>>,
    progress: Option<Arc<[AtomicU32]>>,
}

/// The engine's fan-out to listeners. Empty when nobody listens.
#[derive(Clone, Default)]
pub(crate) struct Notifier(Option<Arc<Shared>>);

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_ref().map_or(0, |s| s.listeners.len());
        write!(f, "Notifier({n} listeners)")
    }
}

impl Notifier {
    pub(crate) fn new(
        listeners: Vec<Arc<dyn Listener>>,
        progress: Option<Arc<[AtomicU32]>>,
    ) -> Self {
        if listeners.is_empty() && progress.is_none() {
            Notifier(None)
        } else {
            let progress_listeners = listeners
                .iter()
                .filter(|l| l.wants_progress())
                .cloned()
                .collect();
            Notifier(Some(Arc::new(Shared {
                listeners,
                progress_listeners,
                progress,
            })))
        }
    }

    /// Whether anybody listens to events.
    #[inline]
    pub(crate) fn listening(&self) -> bool {
        self.0.as_ref().is_some_and(|s| !s.listeners.is_empty())
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        if let Some(s) = &self.0 {
            for l in &s.listeners {
                deliver(&**l, event);
            }
        }
    }

    pub(crate) fn progress(&self, atom: &str, index: u32, progress: f32) {
        let Some(s) = &self.0 else { return };
        let progress = if progress.is_nan() {
            0.0
        } else {
            progress.clamp(0.0, 1.0)
        };
        if let Some(cells) = &s.progress
            && let Some(c) = cells.get(index as usize)
        {
            c.store(progress.to_bits(), Ordering::Relaxed);
        }
        for l in &s.progress_listeners {
            deliver(&**l, &Event::Progress { atom, progress });
        }
    }
}

/// Hands an event to a listener; a listener that panics is logged and skipped,
/// never allowed to unwind into the engine.
fn deliver(listener: &dyn Listener, event: &Event<'_>) {
    let call = std::panic::AssertUnwindSafe(|| listener.on_event(event));
    if std::panic::catch_unwind(call).is_err() {
        tracing::error!(target: "flow", %event, "a listener panicked while handling an event; the event was skipped for it");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records every event as its canonical text; made for tests.
///
/// An event is kept as it came (the atom's name, its state, and a shared
/// reference to its outputs, failure or revert result) and made into text
/// when [`CaptureListener::events`] reads it, so that listening costs the
/// run little: the text of an output is its `Debug` at the time of reading.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use flow::{Atom, CaptureListener, Engine, Flow, FnTask, Outputs, Signature};
/// let five = FnTask::sync(Signature::new().provides::<u32>("n"), |_| Ok(Outputs::one(5u32)));
/// let flow = Flow::linear("task1").add(Atom::new("task1", five)).build().unwrap();
/// let capture = CaptureListener::new();
/// let mut engine = Engine::builder(flow).listener(capture.clone()).build();
/// engine.run().await.unwrap();
/// assert_eq!(
///     capture.events(),
///     ["task1.f RUNNING", "task1.t RUNNING", "task1.t SUCCESS(5)", "task1.f SUCCESS"]
/// );
/// # });
/// ```
#[derive(Clone, Default)]
pub struct CaptureListener {
    events: Arc<Log>,
    flows: bool,
    progress: bool,
    skip_flows: bool,
}

impl CaptureListener {
    /// Captures flow and atom state events (not progress).
    pub fn new() -> Self {
        CaptureListener {
            flows: true,
            ..CaptureListener::default()
        }
    }

    /// Captures atom state events only.
    pub fn atoms_only() -> Self {
        CaptureListener {
            skip_flows: true,
            ..CaptureListener::default()
        }
    }

    /// Also captures progress events.
    pub fn with_progress(mut self) -> Self {
        self.progress = true;
        self
    }

    /// The events so far, as text.
    pub fn events(&self) -> Vec<String> {
        lock(&self.events).iter().map(Captured::text).collect()
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        lock(&self.events).clear();
    }
}

impl fmt::Debug for CaptureListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureListener")
            .field("events", &lock(&self.events).len())
            .finish()
    }
}

impl Listener for CaptureListener {
    fn wants_progress(&self) -> bool {
        self.progress
    }

    fn on_event(&self, event: &Event<'_>) {
        let keep = match event {
            Event::Flow { .. } => self.flows && !self.skip_flows,
            Event::Atom { .. } => true,
            Event::Progress { .. } => self.progress,
        };
        if keep {
            let captured = Captured::new(event);
            lock(&self.events).push(captured);
        }
    }
}

/// The events a [`CaptureListener`] keeps, behind a `std` mutex: a lock that
/// spins would burn a tokio worker while a reader copies the log, and the
/// two locks per task cost nothing a run with a listener would notice. A
/// listener that panicked while holding it leaves a log still worth reading.
type Log = Mutex<Vec<Captured>>;

/// An event as [`CaptureListener`] keeps it until it is read.
enum Captured {
    Flow {
        flow: KeptName,
        state: FlowState,
    },
    Atom {
        atom: KeptName,
        kind: AtomKind,
        state: AtomState,
        detail: Kept,
    },
    Progress {
        atom: KeptName,
        progress: f32,
    },
}

/// A name as [`CaptureListener`] keeps it: up to [`KeptName::INLINE`] bytes in
/// place, read from the name in at most four loads (no call to copy a few
/// bytes, which costs more than an event's other work), so that keeping an
/// event of a short-named atom allocates nothing; longer names on the heap.
enum KeptName {
    Inline { len: u8, words: [u64; 2] },
    Heap(Box<str>),
}

impl KeptName {
    /// The longest name kept in place.
    const INLINE: usize = 16;

    fn new(name: &str) -> Self {
        let b = name.as_bytes();
        let len = b.len();
        if len > KeptName::INLINE {
            return KeptName::Heap(name.into());
        }
        // Two loads that overlap cover any length from n to 2n bytes; the
        // bytes they share are the same, so or-ing them is exact.
        let words = if len >= 8 {
            let hi = if len > 8 {
                u64::from_le_bytes(head(&b[len - 8..])) >> ((16 - len) * 8)
            } else {
                0
            };
            [u64::from_le_bytes(head(b)), hi]
        } else if len >= 4 {
            let lo = u32::from_le_bytes(head(b)) as u64;
            let hi = u32::from_le_bytes(head(&b[len - 4..])) as u64;
            [lo | (hi << ((len - 4) * 8)), 0]
        } else {
            let mut w = 0u64;
            for (k, &byte) in b.iter().enumerate() {
                w |= (byte as u64) << (k * 8);
            }
            [w, 0]
        };
        KeptName::Inline {
            len: len as u8,
            words,
        }
    }

    /// The name's text.
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            KeptName::Inline { len, words } => {
                let mut bytes = [0u8; KeptName::INLINE];
                bytes[..8].copy_from_slice(&words[0].to_le_bytes());
                bytes[8..].copy_from_slice(&words[1].to_le_bytes());
                String::from_utf8_lossy(&bytes[..*len as usize])
                    .into_owned()
                    .into()
            }
            KeptName::Heap(name) => std::borrow::Cow::Borrowed(name),
        }
    }
}

/// The first `N` bytes of `b`, which has at least `N`.
fn head<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut w = [0; N];
    w.copy_from_slice(&b[..N]);
    w
}

/// An owned [`Detail`]: the values and failures are shared, not copied.
enum Kept {
    None,
    Result(Outputs),
    Failure(Failure),
    Reverted(Option<Value>),
}

impl Captured {
    fn new(event: &Event<'_>) -> Self {
        match *event {
            Event::Flow { flow, state } => Captured::Flow {
                flow: KeptName::new(flow),
                state,
            },
            Event::Atom {
                atom,
                kind,
                state,
                detail,
            } => Captured::Atom {
                atom: KeptName::new(atom),
                kind,
                state,
                detail: match detail {
                    Detail::None => Kept::None,
                    Detail::Result(out) => Kept::Result(out.clone()),
                    Detail::Failure(fail) => Kept::Failure(fail.clone()),
                    Detail::Reverted(v) => Kept::Reverted(v.cloned()),
                },
            },
            Event::Progress { atom, progress } => Captured::Progress {
                atom: KeptName::new(atom),
                progress,
            },
        }
    }

    /// The event's canonical text.
    fn text(&self) -> String {
        let name = match self {
            Captured::Flow { flow, .. } => flow.text(),
            Captured::Atom { atom, .. } | Captured::Progress { atom, .. } => atom.text(),
        };
        let event = match self {
            Captured::Flow { state, .. } => Event::Flow {
                flow: &name,
                state: *state,
            },
            Captured::Atom {
                kind,
                state,
                detail,
                ..
            } => Event::Atom {
                atom: &name,
                kind: *kind,
                state: *state,
                detail: match detail {
                    Kept::None => Detail::None,
                    Kept::Result(out) => Detail::Result(out),
                    Kept::Failure(fail) => Detail::Failure(fail),
                    Kept::Reverted(v) => Detail::Reverted(v.as_ref()),
                },
            },
            Captured::Progress { progress, .. } => Event::Progress {
                atom: &name,
                progress: *progress,
            },
        };
        event.to_string()
    }
}

/// Logs every event through `tracing` (target `flow`): state changes at `INFO`
/// (failures at `WARN`, revert failures at `ERROR`), progress at `DEBUG`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoggingListener;

impl Listener for LoggingListener {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Flow { flow, state } => {
                tracing::info!(target: "flow", flow, state = %state, "flow {state}")
            }
            Event::Atom {
                atom,
                state,
                detail,
                ..
            } => match (state, detail) {
                (AtomState::Failure, Detail::Failure(f)) => {
                    tracing::warn!(target: "flow", atom, state = %state, failure = %f.message(), "{event}")
                }
                (AtomState::RevertFailure, Detail::Failure(f)) => {
                    tracing::error!(target: "flow", atom, state = %state, failure = %f.message(), "{event}")
                }
                _ => tracing::info!(target: "flow", atom, state = %state, "{event}"),
            },
            Event::Progress { atom, progress } => {
                tracing::debug!(target: "flow", atom, progress, "{event}")
            }
        }
    }
}

/// How long each atom's `execute` and `revert` took, measured from its
/// `RUNNING` (or `REVERTING`) event to the state that ended it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use flow::{Atom, DurationListener, Engine, Flow, FnTask, Outputs, Signature};
/// let t = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
/// let flow = Flow::linear("f").add(Atom::new("t", t)).build().unwrap();
/// let durations = DurationListener::new();
/// let mut engine = Engine::builder(flow).listener(durations.clone()).build();
/// engine.run().await.unwrap();
/// assert!(durations.execute_durations().contains_key("t"));
/// # });
/// ```
#[derive(Clone, Default)]
pub struct DurationListener {
    inner: Arc<Mutex<Durations>>,
}

#[derive(Default)]
struct Durations {
    started: BTreeMap<String, Instant>,
    execute: BTreeMap<String, Duration>,
    revert: BTreeMap<String, Duration>,
}

impl DurationListener {
    /// A recorder with nothing recorded.
    pub fn new() -> Self {
        DurationListener::default()
    }

    /// The duration of each atom's latest `execute`.
    pub fn execute_durations(&self) -> BTreeMap<String, Duration> {
        lock(&self.inner).execute.clone()
    }

    /// The duration of each atom's latest `revert`.
    pub fn revert_durations(&self) -> BTreeMap<String, Duration> {
        lock(&self.inner).revert.clone()
    }
}

impl fmt::Debug for DurationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurationListener").finish_non_exhaustive()
    }
}

impl Listener for DurationListener {
    fn wants_progress(&self) -> bool {
        false
    }

    fn on_event(&self, event: &Event<'_>) {
        let Event::Atom { atom, state, .. } = event else {
            return;
        };
        let mut d = lock(&self.inner);
        match state {
            AtomState::Running | AtomState::Reverting => {
                d.started.insert((*atom).to_string(), Instant::now());
            }
            AtomState::Success | AtomState::Failure => {
                if let Some(t) = d.started.remove(*atom) {
                    d.execute.insert((*atom).to_string(), t.elapsed());
                }
            }
            AtomState::Reverted | AtomState::RevertFailure => {
                if let Some(t) = d.started.remove(*atom) {
                    d.revert.insert((*atom).to_string(), t.elapsed());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeptName;

    #[test]
    fn a_name_of_any_length_is_kept_whole() {
        for text in [
            "abcdefghijklmnopqrstuvwxyz0123456789ABCD",
            "éàüöñçßøåæ€日本語のテキスト",
        ] {
            for end in (0..=text.len()).filter(|&end| text.is_char_boundary(end)) {
                let name = &text[..end];
                let kept = KeptName::new(name);
                assert_eq!(kept.text(), name, "{end} bytes");
                assert_eq!(
                    matches!(kept, KeptName::Inline { .. }),
                    end <= KeptName::INLINE,
                    "{end} bytes"
                );
            }
        }
        // Bytes past the name's end are not read: the same prefix of two
        // different texts gives equal names.
        let (a, b) = ("eleven-byte|xxxx", "eleven-byte|yyyy");
        assert_eq!(
            KeptName::new(&a[..11]).text(),
            KeptName::new(&b[..11]).text()
        );
        assert_eq!(KeptName::new(&a[..11]).text(), "eleven-byte");
    }
}
