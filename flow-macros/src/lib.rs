//! Procedural macros of `flow`: an implementation detail. Depend on the `flow`
//! crate, which re-exports them with their documentation.

mod flow;
mod task;
mod util;

use proc_macro::TokenStream;

/// Turns a function, or an `impl` block with `execute` and `revert`, into a task.
///
/// Documented in the `flow` crate, which re-exports it.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// The implementation of `flow!`: the `flow!` wrapper of the `flow` crate
/// calls it with the crate's path first.
#[doc(hidden)]
#[proc_macro]
pub fn flow_impl(input: TokenStream) -> TokenStream {
    flow::expand(input.into()).into()
}
