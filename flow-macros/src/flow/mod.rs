//! `flow!`: parse the flow, check what can be checked on its tokens, then
//! generate the static table, the compile-time checks and the run-time flow.

mod checks;
mod expand;
mod group;
mod parse;
mod rename;

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{ParseStream, Parser};

/// Expands `flow_impl!(krate; name(...) -> (...) { ... })`; `krate` is the
/// path of the `flow` crate, given by the `flow!` wrapper as `$crate`.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let split = |input: ParseStream<'_>| -> syn::Result<(TokenStream, TokenStream)> {
        let mut krate = TokenStream::new();
        while !input.peek(syn::Token![;]) {
            let tt: proc_macro2::TokenTree = input.parse()?;
            krate.extend([tt]);
        }
        input.parse::<syn::Token![;]>()?;
        Ok((krate, input.parse()?))
    };
    let (krate, body) = match split.parse2(input) {
        Ok(parts) => parts,
        Err(e) => return e.to_compile_error(),
    };
    let def: parse::FlowDef = match syn::parse2(body) {
        Ok(def) => def,
        Err(e) => {
            let e = e.to_compile_error();
            // The error alone, as the block's value: nothing after it is
            // reported as an unreachable statement.
            return quote!({ #e });
        }
    };
    expand::generate(&def, &krate)
}
