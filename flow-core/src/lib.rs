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
//!
//! # A map of this crate
//!
//! For a newcomer, in reading order; each part uses only the parts above it.
//! 1. `symbol`, `exact`: named, typed values, and their exact JSON form.
//! 2. `failure`: what a failed task says. `engine::state`: the states of atoms and runs, and which changes are legal.
//! 3. `storage`: the journal ([`Backend`]), its records, the memory and SQLite stores, the job board.
//! 4. `task`: the [`Task`] trait; `task/` holds [`Signature`], [`Args`], [`Outputs`] and [`Context`], a file each.
//! 5. `retry`, `decider`, `flow`: retry controllers, conditional links, and the tree a flow is.
//! 6. `compile`: a flow tree becomes a flat graph; every input is resolved to its source once.
//! 7. `engine`: runs that graph. `engine/machine` is the one place a state changes; `pool` is the parallel workers; `journal`, `lease` and `resume` are the store's side.
//! 8. `checked` (flows checked at compile time by `flow!`), `export` (DOT and Mermaid), `conductor` (runs shared through a job board).
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, lowest first; a module uses only its own layer and those below,
// and no two modules use each other (tests/layers.rs reads the sources and
// checks both):
//   symbol, exact < failure < engine::state, engine::control < storage
//   < error < task's signature, args and outputs < notify < task < retry,
//   decider, define < flow, tree, link_order < compile < engine < export,
//   checked < conductor.
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
mod pattern;
pub mod retry;
pub mod storage;
mod symbol;
mod task;
mod tree;

pub use checked::TypedFlow;
pub use compile::CompiledFlow;
pub use decider::{Decider, Depth, Results};
pub use define::{
    InputInfo, InputShape, IntoTaskError, IsTask, OutputInfo, Provides, RevertReturn, SymbolRef,
    TaskDef, TaskInfo, symbol_hash,
};
#[doc(hidden)]
pub use define::{ViaAnyhow, ViaBoxed, ViaError, ViaTaskError};
pub use engine::control::RunHandle;
pub use engine::state::{
    AtomKind, AtomState, FlowState, Intention, TransitionError, atom_transition_allowed,
    flow_transition_allowed,
};
pub use engine::{Engine, EngineBuilder, Mode};
pub use error::{
    AtomFailure, BuildError, BuildErrors, GroupProblem, Method, Missing, ResumeError, RunError,
};
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
