//! Procedural macros of `flow`: an implementation detail. Depend on the `flow`
//! crate, which re-exports them with their documentation.
//!
//! The `#[task]` attribute and the `flow!` macro arrive here; until then this
//! crate exports nothing.
