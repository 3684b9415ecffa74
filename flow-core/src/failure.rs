//! Failures: what is captured when a task returns an error, panics, or breaks its
//! contract.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The error a task body returns.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it with `?`, and
/// the original error stays reachable through [`Failure::downcast_ref`] while the
/// failure is in memory.
///
/// ```
/// use flow::TaskError;
/// #[derive(Debug, thiserror::Error)]
/// #[error("disk full")]
/// struct DiskFull;
///
/// fn body() -> Result<u32, TaskError> {
///     Err(DiskFull)?
/// }
/// let err = body().unwrap_err();
/// assert_eq!(err.to_string(), "disk full");
/// ```
pub struct TaskError {
    error: Arc<dyn StdError + Send + Sync>,
    type_name: &'static str,
}

impl TaskError {
    /// An error that is only a message.
    ///
    /// ```
    /// let e = flow::TaskError::msg("Woot!");
    /// assert_eq!(e.to_string(), "Woot!");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        TaskError {
            error: Arc::new(Message(message.to_string())),
            type_name: std::any::type_name::<Message>(),
        }
    }

    /// A boxed error, as applications often carry them: the error inside
    /// stays reachable through [`Failure::downcast_ref`] and keeps its
    /// causes. (A `Box<dyn Error>` is not itself an `Error`, so `?` and
    /// `From` cannot take it; `#[task]` functions may return it as is.)
    ///
    /// ```
    /// use flow::{Failure, TaskError};
    /// let io = std::io::Error::other("disk full");
    /// let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(io);
    /// let failure = Failure::from_error(TaskError::boxed(boxed));
    /// assert_eq!(failure.message(), "disk full");
    /// assert!(failure.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn boxed(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        TaskError {
            error: Arc::from(error),
            type_name: "Box<dyn Error + Send + Sync>",
        }
    }

    /// An `anyhow::Error` (feature `anyhow`): its message is the error's
    /// own, its context chain becomes the failure's causes.
    ///
    /// ```
    /// # #[cfg(feature = "anyhow")] {
    /// use flow::{Failure, TaskError};
    /// let error = anyhow::anyhow!("disk full").context("writing the backup");
    /// let failure = Failure::from_error(TaskError::from_anyhow(error));
    /// assert_eq!(failure.message(), "writing the backup");
    /// assert_eq!(failure.causes(), ["disk full"]);
    /// # }
    /// ```
    #[cfg(feature = "anyhow")]
    #[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        let boxed: Box<dyn StdError + Send + Sync + 'static> = error.into();
        TaskError {
            error: Arc::from(boxed),
            type_name: "anyhow::Error",
        }
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for TaskError {
    fn from(error: E) -> Self {
        TaskError {
            error: Arc::new(error),
            type_name: std::any::type_name::<E>(),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("type", &self.type_name)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// A backtrace captured when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` asks for
/// one, turned into text only when read: resolving symbols costs far more
/// than walking the stack, and most failures are never printed.
struct Trace {
    captured: std::backtrace::Backtrace,
    text: std::sync::OnceLock<String>,
}

impl Trace {
    fn capture() -> Option<Trace> {
        let captured = std::backtrace::Backtrace::capture();
        (captured.status() == std::backtrace::BacktraceStatus::Captured).then(|| Trace {
            captured,
            text: std::sync::OnceLock::new(),
        })
    }

    fn text(&self) -> &str {
        self.text.get_or_init(|| self.captured.to_string())
    }
}

/// A plain message used as an error.
#[derive(Debug, Clone)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// How a failure came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailureKind {
    /// The task returned an error.
    Error,
    /// The task panicked; the panic was caught.
    Panic,
    /// The task broke its declared contract (for example it returned a value of
    /// another type than it declared).
    Contract,
    /// The task's runtime went away before the task finished (its tokio task was
    /// cancelled).
    Aborted,
    /// The task ran longer than its timeout.
    Timeout,
    /// The task returned a value that the journal cannot hold exactly (a
    /// float that is not finite, `Some(None)`, a number out of JSON's range,
    /// a map whose keys are not strings, ...).
    Unstorable,
    /// The run was cancelled and the task did not stop within the grace
    /// period: it was given up on.
    Cancelled,
}

#[derive(Deserialize)]
struct FailureData {
    kind: FailureKind,
    message: String,
    type_name: String,
    causes: Vec<String>,
    backtrace: Option<String>,
}

/// A captured failure: the message, the error's type name, its chain of causes,
/// and (while in memory) the original error.
///
/// Cloning is cheap. A failure survives a serde round trip, except for the
/// original error, which only lives in memory.
///
/// ```
/// use flow::{Failure, TaskError};
/// let f = Failure::from_error(TaskError::msg("Woot!"));
/// assert_eq!(f.message(), "Woot!");
/// assert_eq!(f.to_string(), "Failure: Woot!");
/// let json = serde_json::to_string(&f).unwrap();
/// let back: Failure = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.message(), "Woot!");
/// ```
#[derive(Clone)]
pub struct Failure(Arc<FailureInner>);

struct FailureInner {
    /// `data.backtrace` holds the text of a failure read back from a journal.
    data: FailureData,
    trace: Option<Trace>,
    error: Option<Arc<dyn StdError + Send + Sync>>,
}

/// What a failure serializes to: [`FailureData`], with the backtrace's text.
#[derive(Serialize)]
struct FailureOut<'a> {
    kind: FailureKind,
    message: &'a str,
    type_name: &'a str,
    causes: &'a [String],
    backtrace: Option<&'a str>,
}

impl Failure {
    /// Captures a task's error.
    pub fn from_error(error: TaskError) -> Self {
        let mut causes = Vec::new();
        let mut source = error.error.source();
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        Failure(Arc::new(FailureInner {
            data: FailureData {
                kind: FailureKind::Error,
                message: error.error.to_string(),
                type_name: error.type_name.to_string(),
                causes,
                backtrace: None,
            },
            trace: Trace::capture(),
            error: Some(error.error),
        }))
    }

    /// Captures a caught panic from its payload.
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "task panicked with a non-string payload".to_string()
        };
        let mut failure = Failure::new(FailureKind::Panic, format!("panicked: {message}"), "panic");
        if let Some(inner) = Arc::get_mut(&mut failure.0) {
            inner.trace = Trace::capture();
        }
        failure
    }

    /// A failure of the given kind with a message.
    pub fn new(
        kind: FailureKind,
        message: impl Into<String>,
        type_name: impl Into<String>,
    ) -> Self {
        Failure(Arc::new(FailureInner {
            data: FailureData {
                kind,
                message: message.into(),
                type_name: type_name.into(),
                causes: Vec::new(),
                backtrace: None,
            },
            trace: None,
            error: None,
        }))
    }

    /// How the failure came about.
    pub fn kind(&self) -> FailureKind {
        self.0.data.kind
    }

    /// The error's message (`Display` text).
    pub fn message(&self) -> &str {
        &self.0.data.message
    }

    /// The Rust type name of the error, `"panic"` for a panic.
    pub fn type_name(&self) -> &str {
        &self.0.data.type_name
    }

    /// The messages of the error's chain of sources, outermost first.
    pub fn causes(&self) -> &[String] {
        &self.0.data.causes
    }

    /// The backtrace of the point where the engine captured the failure, when
    /// `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` asks for backtraces.
    pub fn backtrace(&self) -> Option<&str> {
        match &self.0.trace {
            Some(trace) => Some(trace.text()),
            None => self.0.data.backtrace.as_deref(),
        }
    }

    /// The original error as an `E`, while the failure is still in memory.
    ///
    /// ```
    /// use flow::{Failure, TaskError};
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("disk full on {0}")]
    /// struct DiskFull(String);
    ///
    /// let f = Failure::from_error(TaskError::from(DiskFull("sda".into())));
    /// assert_eq!(f.downcast_ref::<DiskFull>().map(|e| e.0.as_str()), Some("sda"));
    /// assert!(f.type_name().ends_with("DiskFull"));
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.0.error.as_deref()?.downcast_ref::<E>()
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("kind", &self.0.data.kind)
            .field("message", &self.0.data.message)
            .field("type_name", &self.0.data.type_name)
            .field("causes", &self.0.data.causes)
            .finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure: {}", self.0.data.message)
    }
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let data = &self.0.data;
        FailureOut {
            kind: data.kind,
            message: &data.message,
            type_name: &data.type_name,
            causes: &data.causes,
            backtrace: self.backtrace(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Failure {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Failure(Arc::new(FailureInner {
            data: FailureData::deserialize(deserializer)?,
            trace: None,
            error: None,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backtrace_becomes_text_when_read_and_when_serialized() {
        let mut failure = Failure::new(FailureKind::Panic, "panicked: boom", "panic");
        let inner = Arc::get_mut(&mut failure.0).expect("not shared yet");
        inner.trace = Some(Trace {
            captured: std::backtrace::Backtrace::force_capture(),
            text: std::sync::OnceLock::new(),
        });
        let trace = failure.0.trace.as_ref().expect("set above");
        assert!(
            trace.text.get().is_none(),
            "nothing is resolved before it is read"
        );
        let text = failure.backtrace().expect("a backtrace").to_string();
        assert!(!text.is_empty());
        assert_eq!(trace.text.get().map(String::as_str), Some(text.as_str()));
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(json["backtrace"], serde_json::Value::String(text.clone()));
        assert_eq!(json["message"], "panicked: boom");
        let back: Failure = serde_json::from_value(json).unwrap();
        assert_eq!(back.backtrace(), Some(text.as_str()));
    }

    #[test]
    fn no_backtrace_unless_asked() {
        let failure = Failure::new(FailureKind::Error, "nope", "x");
        assert_eq!(failure.backtrace(), None);
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(json["backtrace"], serde_json::Value::Null);
    }
}
