//! `task(-> output = symbol)`: an atom publishes one of its task's outputs
//! under another symbol (what `Atom::provides_as` does for the run-time
//! builder), so that two tasks providing one symbol can sit side by side.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Ident};

use super::parse::{AtomDef, Binding};

/// The binding of `-> name = value`: `value` must be a symbol name.
pub(super) fn binding(name: Ident, value: &Expr) -> syn::Result<Binding> {
    match value {
        Expr::Path(p)
            if p.qself.is_none()
                && p.path.leading_colon.is_none()
                && p.path.segments.len() == 1
                && p.path.segments[0].arguments.is_none() =>
        {
            Ok(Binding::Rename(name, p.path.segments[0].ident.clone()))
        }
        _ => Err(syn::Error::new_spanned(
            value,
            "`-> output = symbol` publishes the output under the name `symbol`: give a plain name",
        )),
    }
}

/// The table's `renames` of an atom: `(output, symbol)` pairs.
pub(super) fn table_entry(a: &AtomDef) -> TokenStream {
    let pairs = a.bindings.iter().filter_map(|b| match b {
        Binding::Rename(output, symbol) => {
            let (o, s) = (output.to_string(), symbol.to_string());
            Some(quote!((#o, #s)))
        }
        _ => None,
    });
    quote!(&[#(#pairs),*])
}

/// The builder calls of an atom's renames.
pub(super) fn builder_calls(a: &AtomDef) -> TokenStream {
    let calls = a.bindings.iter().filter_map(|b| match b {
        Binding::Rename(output, symbol) => {
            let (o, s) = (output.to_string(), symbol.to_string());
            Some(quote!(.provides_as(#o, #s)))
        }
        _ => None,
    });
    quote!(#(#calls)*)
}
