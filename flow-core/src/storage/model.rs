//! What the journal holds: ids, logbooks, runs, atoms, claims on runs,
//! queries over runs, and stored flow definitions.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::state::{AtomKind, AtomState, FlowState, Intention};
use crate::failure::Failure;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                $name(uuid::Uuid::new_v4())
            }

            /// The id as 16 bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                uuid::Uuid::parse_str(s).map($name).map_err(|_| IdError(s.to_string()))
            }
        }
    };
}

id_type!(
    /// The id of a logbook.
    LogbookId
);
id_type!(
    /// The id of a run (a flow detail).
    ///
    /// ```
    /// use flow::FlowId;
    /// let id: FlowId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
    /// assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
    /// assert!("not-an-id".parse::<FlowId>().is_err());
    /// ```
    FlowId
);

id_type!(
    /// The id of a job on a [`JobBoard`](crate::storage::JobBoard).
    JobId
);

/// A string that is not an id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an id: ids look like 67e55044-10b1-426f-9247-bb680e5fe0c8")]
pub struct IdError(String);

/// A group of runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogBook {
    /// Its id.
    pub id: LogbookId,
    /// Its name.
    pub name: String,
    /// When it was created (seconds since the Unix epoch).
    pub created_at: f64,
    /// When it last changed.
    pub updated_at: f64,
    /// Free-form metadata.
    pub meta: serde_json::Value,
}

/// One run of a flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowDetail {
    /// The run's id.
    pub id: FlowId,
    /// The logbook it belongs to.
    pub logbook: LogbookId,
    /// The flow's name.
    pub name: String,
    /// The flow's state.
    pub state: FlowState,
    /// Metadata; `inputs` holds the run's store as JSON, `atoms` the flow's
    /// atoms as `[name, kind]` pairs, `definition` the id of a stored
    /// [`Definition`] when the run has one.
    pub meta: serde_json::Value,
    /// When the run was created (seconds since the Unix epoch).
    pub created_at: f64,
    /// When it last changed (seconds since the Unix epoch).
    pub updated_at: f64,
    /// Who holds the run, as the store has it. Kept by the store itself:
    /// loads fill it in, writes ignore it (claims change it).
    #[serde(default)]
    pub ownership: Ownership,
}

/// Who holds a run: the state of its claim, kept by the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ownership {
    /// The owner's id, while someone holds the run (until it releases it,
    /// even after its lease ran out).
    pub owner: Option<String>,
    /// When the owner's lease ends (seconds since the Unix epoch, by the
    /// store's clock).
    pub expires_at: Option<f64>,
    /// The fencing number of the latest claim: raised by every claim, 0 for a
    /// run never claimed.
    pub fence: u64,
    /// Whether someone asked the run to cancel ([`Backend::request_cancel`](crate::Backend::request_cancel)).
    pub cancel_requested: bool,
}

impl Ownership {
    /// Whether someone holds the run at `now` (seconds since the Unix epoch):
    /// an owner whose lease has not run out.
    ///
    /// ```
    /// use flow::Ownership;
    /// let held = Ownership { owner: Some("web-1:812".into()), expires_at: Some(100.0), fence: 3, cancel_requested: false };
    /// assert!(held.is_live(99.5));
    /// assert!(!held.is_live(100.5));
    /// assert!(!Ownership::default().is_live(0.0));
    /// ```
    pub fn is_live(&self, now: f64) -> bool {
        self.owner.is_some() && self.expires_at.is_some_and(|t| t > now)
    }
}

/// One atom of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtomDetail {
    /// The atom's name (unique in its flow).
    pub name: String,
    /// Task or retry controller.
    pub kind: AtomKind,
    /// The state.
    pub state: AtomState,
    /// The intention.
    pub intention: Intention,
    /// The outputs of `execute` as a JSON array, in declared order.
    pub result: Option<serde_json::Value>,
    /// The failure of `execute`.
    pub failure: Option<Failure>,
    /// The result of `revert`.
    pub revert_result: Option<serde_json::Value>,
    /// The failure of `revert`.
    pub revert_failure: Option<Failure>,
    /// The latest progress, from 0.0 to 1.0.
    pub progress: f32,
    /// How many times `execute` was started.
    pub attempts: u32,
    /// Bumped by every write of this detail.
    pub version: u64,
    /// Free-form metadata.
    pub meta: serde_json::Value,
}

impl AtomDetail {
    /// A pending atom that has not run, as a new run records each of its
    /// atoms.
    ///
    /// ```
    /// use flow::{AtomDetail, AtomKind, AtomState, Intention};
    /// let a = AtomDetail::pending("backup", AtomKind::Task);
    /// assert_eq!((a.state, a.intention, a.attempts), (AtomState::Pending, Intention::Execute, 0));
    /// ```
    pub fn pending(name: impl Into<String>, kind: AtomKind) -> Self {
        AtomDetail {
            name: name.into(),
            kind,
            state: AtomState::Pending,
            intention: Intention::Execute,
            result: None,
            failure: None,
            revert_result: None,
            revert_failure: None,
            progress: 0.0,
            attempts: 0,
            version: 0,
            meta: serde_json::Value::Null,
        }
    }
}

/// What a claim on a run asks for: who claims it, and for how long.
///
/// ```
/// use std::time::Duration;
/// use flow::Claim;
/// let claim = Claim::new("conductor-2", Duration::from_secs(30));
/// assert_eq!(claim.owner, "conductor-2");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claim {
    /// The claimant's id, shown to whoever finds the run held.
    pub owner: String,
    /// How long the lease lasts unless renewed.
    pub duration: Duration,
}

impl Claim {
    /// A claim by `owner` for a lease of `duration`.
    pub fn new(owner: impl Into<String>, duration: Duration) -> Self {
        Claim {
            owner: owner.into(),
            duration,
        }
    }
}

/// A held claim on a run: proof of ownership, renewed while the owner
/// works. Every journal write of the run carries its `fence`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Lease {
    /// The run.
    pub run: FlowId,
    /// The owner's id.
    pub owner: String,
    /// The fencing number of this claim: writes carrying an older one are
    /// refused.
    pub fence: u64,
    /// When the lease ends unless renewed (seconds since the Unix epoch, by
    /// the store's clock).
    pub expires_at: f64,
    /// Whether someone asked the run to cancel.
    pub cancel_requested: bool,
}

impl Lease {
    /// A lease as a backend grants it.
    pub fn new(run: FlowId, owner: impl Into<String>, fence: u64, expires_at: f64) -> Self {
        Lease {
            run,
            owner: owner.into(),
            fence,
            expires_at,
            cancel_requested: false,
        }
    }

    /// The same lease, with someone's request to cancel the run noted.
    pub fn with_cancel_requested(mut self, requested: bool) -> Self {
        self.cancel_requested = requested;
        self
    }
}

/// Which runs [`Backend::list_flows`](crate::Backend::list_flows) returns,
/// newest first.
///
/// ```
/// use flow::{FlowQuery, FlowState};
/// let failed_today = FlowQuery::new()
///     .name("upgrade")
///     .state(FlowState::Reverted)
///     .state(FlowState::Failure)
///     .created_after(1_700_000_000.0)
///     .limit(20);
/// assert_eq!(failed_today.states.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct FlowQuery {
    /// Only runs of this flow.
    pub name: Option<String>,
    /// Only runs in one of these states (any state when empty).
    pub states: Vec<FlowState>,
    /// Only runs created at or after this time (seconds since the Unix epoch).
    pub created_after: Option<f64>,
    /// Only runs created before this time.
    pub created_before: Option<f64>,
    /// Only runs held (now or last) by this owner.
    pub owner: Option<String>,
    /// At most this many runs.
    pub limit: Option<usize>,
    /// Skip this many runs first (paging).
    pub offset: usize,
}

impl FlowQuery {
    /// Every run.
    pub fn new() -> Self {
        FlowQuery::default()
    }

    /// Only runs of flow `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Also runs in `state` (the first call narrows to that state).
    pub fn state(mut self, state: FlowState) -> Self {
        self.states.push(state);
        self
    }

    /// Only runs created at or after `t`.
    pub fn created_after(mut self, t: f64) -> Self {
        self.created_after = Some(t);
        self
    }

    /// Only runs created before `t`.
    pub fn created_before(mut self, t: f64) -> Self {
        self.created_before = Some(t);
        self
    }

    /// Only runs held, now or last, by `owner`.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// At most `n` runs.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` runs.
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Whether `flow` is one of the runs asked for (paging apart).
    pub fn matches(&self, flow: &FlowDetail) -> bool {
        self.name.as_ref().is_none_or(|n| *n == flow.name)
            && (self.states.is_empty() || self.states.contains(&flow.state))
            && self.created_after.is_none_or(|t| flow.created_at >= t)
            && self.created_before.is_none_or(|t| flow.created_at < t)
            && (self.owner.is_none() || self.owner == flow.ownership.owner)
    }
}

/// A flow definition kept in the store by content hash: what a run ran,
/// for tools that take a run up without the program that started it (a
/// pipeline file, say). A changed definition is a new one; runs keep theirs.
///
/// ```
/// use flow::Definition;
/// let def = Definition::new("web-check", "pipeline/yaml", "name: web-check\nsteps: []\n");
/// assert_eq!(def.id.len(), 64); // hex SHA-256 of format and body
/// assert_eq!(def.id, Definition::new("web-check", "pipeline/yaml", "name: web-check\nsteps: []\n").id);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Definition {
    /// The hex SHA-256 of the format and the body.
    pub id: String,
    /// The flow's name.
    pub name: String,
    /// What the body is, e.g. `pipeline/yaml`.
    pub format: String,
    /// The definition itself.
    pub body: String,
    /// When it was first stored (seconds since the Unix epoch).
    pub created_at: f64,
}

impl Definition {
    /// A definition of flow `name`, its id the hash of `format` and `body`.
    pub fn new(
        name: impl Into<String>,
        format: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        let (format, body) = (format.into(), body.into());
        Definition {
            id: definition_id(&format, &body),
            name: name.into(),
            format,
            body,
            created_at: super::now_unix(),
        }
    }
}

/// The id of a definition: the hex SHA-256 of its format, a zero byte, and
/// its body.
pub fn definition_id(format: &str, body: &str) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(format.as_bytes());
    hasher.update([0u8]);
    hasher.update(body.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
