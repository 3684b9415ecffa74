//! The runtime of `flow`: typed, revertible workflows.
//!
//! Users normally depend on the `flow` crate, which re-exports everything here
//! together with the `#[task]` and `flow!` macros. This crate holds the run-time
//! API on its own: [`Task`]s declare typed inputs and outputs, [`Flow`]s arrange
//! them (linear, unordered, graph, nested freely), [`Flow::build`] validates the
//! whole tree at once, and an [`Engine`] runs it, serially or in parallel on
//! tokio, reverting everything that ran, in reverse dependency order, when
//! something fails.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use flow::{Atom, Engine, Flow, FnTask, Outputs, RunError, Signature, TaskError};
//!
//! let backup = FnTask::sync(
//!     Signature::new().requires::<String>("db").provides::<String>("backup"),
//!     |a| Ok(Outputs::one(format!("{}.bak", a.get::<String>(0)?))),
//! )
//! .on_revert_sync(|input| {
//!     println!("deleting the backup of {:?}", input.outcome);
//!     Ok(None)
//! });
//! let upgrade = FnTask::sync(
//!     Signature::new().requires::<String>("backup"),
//!     |_| Err(TaskError::msg("schema migration failed")),
//! );
//! let flow = Flow::linear("upgrade")
//!     .input::<String>("db")
//!     .add(Atom::new("backup", backup))
//!     .add(Atom::new("upgrade", upgrade))
//!     .build()
//!     .unwrap();
//! let mut engine = Engine::builder(flow).input("db", "main".to_string()).build();
//! let err = engine.run().await.unwrap_err();
//! assert!(matches!(err, RunError::Reverted { .. }));
//! assert_eq!(err.to_string(), "flow `upgrade` was reverted: task `upgrade` failed: schema migration failed");
//! # });
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
pub mod checked;
mod compile;
pub mod conductor;
pub mod decider;
mod define;
pub mod engine;
mod error;
mod exact;
mod export;
mod failure;
mod flow;
mod link_order;
pub mod notify;
pub mod retry;
pub mod storage;
mod symbol;
mod task;
mod tree;

pub use checked::TypedFlow;
pub use compile::CompiledFlow;
pub use decider::{Decider, Depth, Results};
pub use define::{
    InputInfo, InputShape, IntoTaskError, OutputInfo, Provides, RevertReturn, SymbolRef, TaskDef,
    TaskInfo, symbol_hash,
};
#[doc(hidden)]
pub use define::{ViaAnyhow, ViaBoxed, ViaError, ViaTaskError};
pub use engine::control::RunHandle;
pub use engine::state::{
    AtomKind, AtomState, FlowState, Intention, TransitionError, atom_transition_allowed,
    flow_transition_allowed,
};
pub use engine::{Engine, EngineBuilder, Mode};
pub use error::{AtomFailure, BuildError, BuildErrors, Method, Missing, ResumeError, RunError};
pub use export::{FlowGraph, GraphNode};
pub use failure::{Failure, FailureKind, TaskError};
pub use flow::{Atom, Flow, Item, Link, Pattern};
pub use notify::{CaptureListener, Detail, DurationListener, Event, Listener, LoggingListener};
pub use retry::{Attempt, Backoff, Decision, History, Retry, RetryStrategy};
pub use storage::{
    AtomDetail, Backend, Claim, Definition, FlowDetail, FlowId, FlowQuery, Lease, LogBook,
    LogbookId, MemoryBackend, Operation, Ownership, StorageError, now_unix,
};
#[cfg(any(feature = "sqlite", feature = "system-sqlite"))]
pub use storage::{SqliteBackend, SqliteOptions, SqliteStats, Synchronous};
pub use symbol::{CodecError, Data, Name, Store, SymbolSpec, TypeInfo, Value};
pub use task::{
    ArgError, Args, Context, Exec, Failures, FnTask, InputKind, InputSpec, Outcome, Outputs,
    RevertInput, Signature, Task,
};
