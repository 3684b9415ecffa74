//! # flow: typed, revertible workflows
//!
//! A sequence of steps that must either finish or be cleanly undone: stop a
//! server, back up a database, upgrade it, upgrade the application, start again;
//! and if the upgrade fails, roll back what was done, in the right order.
//!
//! `flow` is built from four ideas:
//!
//! - **tasks** ([`macro@task`], [`Task`], [`FnTask`]) declare what they
//!   *require* and *provide* as named, typed symbols, do their work in
//!   `execute` and undo it in `revert`;
//! - **flows** ([`flow!`], [`Flow`]) arrange tasks and nested flows as
//!   *linear*, *unordered* or *graph* patterns;
//! - checking: [`flow!`] checks the data flow at compile time, and
//!   [`Flow::build`] checks the whole tree of a flow built at run time before
//!   anything runs: every input has a provider that runs earlier, with the same
//!   type, and nothing is ambiguous or cyclic; all problems are reported
//!   together;
//! - an [`Engine`] runs the flow on tokio, serially or in parallel, and when
//!   something fails reverts everything that ran, each atom only after all of
//!   its successors.
//!
//! ```
//! use flow::{flow, task, Failures, Outcome, TaskError};
//!
//! #[task(provides = backup, revert = delete_backup)]
//! fn back_up(db: &str) -> String {
//!     format!("{db}.bak")
//! }
//!
//! fn delete_backup(db: &str, _outcome: &Outcome, _failures: &Failures) {
//!     println!("deleting the backup of {db}");
//! }
//!
//! #[task]
//! fn migrate(backup: &str) -> Result<(), TaskError> {
//!     Err(TaskError::msg(format!("schema migration failed (backup kept in {backup})")))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Checked by the compiler: every input has an earlier provider of its type.
//! let upgrade = flow! {
//!     upgrade(db: String) {
//!         back_up,
//!         migrate,
//!     }
//! };
//! let err = upgrade.run(("main".to_string(),)).await.unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "flow `upgrade` was reverted: task `migrate` failed: \
//!      schema migration failed (backup kept in main.bak)"
//! );
//! # });
//! ```
//!
//! ## Flows built from data
//!
//! When the steps are known only at run time (read from a file, one per host
//! of a list), the builder makes the same flows from values: [`Atom`]s of
//! [`FnTask`]s (or any [`Task`]) added to a [`Flow`], checked by
//! [`Flow::build`] with the same rules and wording as [`flow!`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use flow::{Atom, CaptureListener, Engine, Flow, FnTask, Outputs, Signature, TaskError};
//!
//! let step = |provides: &'static str| {
//!     FnTask::sync(Signature::new().provides::<u32>(provides), |_| Ok(Outputs::one(1u32)))
//! };
//! let failing = FnTask::sync(Signature::new().requires::<u32>("b"), |_| Err(TaskError::msg("Woot!")));
//! let flow = Flow::linear("deploy")
//!     .add(Atom::new("a", step("a")))
//!     .add(Atom::new("b", step("b")))
//!     .add(Atom::new("c", failing))
//!     .build()?;
//! let events = CaptureListener::atoms_only();
//! let mut engine = Engine::builder(flow).listener(events.clone()).build();
//! assert!(engine.run().await.is_err());
//! let reverted: Vec<_> = events.events().into_iter().filter(|e| e.contains("REVERTED")).collect();
//! assert_eq!(reverted, ["c.t REVERTED(())", "b.t REVERTED(())", "a.t REVERTED(())"]);
//! # Ok::<(), flow::BuildErrors>(())
//! # }).unwrap();
//! ```
//!
//! Items not listed here (the `checked` module, `Provides`, `symbol_hash`)
//! are hidden: the macros' generated code uses them, and they are not part of
//! the stable API.

pub use flow_core::*;

/// Pipelines: flows written as YAML files, made of shell steps (the
/// `pipeline` feature).
#[cfg(feature = "pipeline")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
pub use flow_pipeline as pipeline;

/// The PostgreSQL journal (feature `postgres`): one store of runs shared by
/// every machine. See [`PostgresBackend`].
#[cfg(feature = "postgres")]
pub use flow_postgres as postgres;
#[cfg(feature = "postgres")]
pub use flow_postgres::{PostgresBackend, PostgresOptions};

#[doc = include_str!("docs/task.md")]
pub use flow_macros::task;

#[doc = include_str!("docs/flow.md")]
#[macro_export]
macro_rules! flow {
    ($($tokens:tt)*) => {
        $crate::macro_support::flow_impl!($crate; $($tokens)*)
    };
}

/// Items the macros' generated code names. Not a public API: it changes without
/// notice.
#[doc(hidden)]
pub mod macro_support {
    pub use flow_core::checked::{
        AT_FANOUT, AtHi, AtLo, Check, FlowTable, GROUP_INFO, Interface, MAX_CHECKED_SLOTS, Msg,
        NodeEntry, NodeKind, ProviderAt, Requires, Resolution, Row, Unresolved, check_atom,
        check_graph, name_retry, output_count, place_group, resolve, row, slot_count,
    };
    pub use flow_core::{
        Args, Context, Data, Exec, InputInfo, InputShape, IntoTaskError, IsTask, OutputInfo,
        Outputs, Provides, RevertInput, RevertReturn, Signature, SymbolRef, Task, TaskDef,
        TaskError, TaskInfo, Value, symbol_hash,
    };
    pub use flow_core::{Atom, Flow, Retry, TypedFlow};
    pub use flow_macros::flow_impl;
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
