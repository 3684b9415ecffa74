//! `#[collect(prefix*)]`: a collection of every symbol whose name matches a
//! pattern, instead of a list of names.

use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::{Ident, LitStr, Token};

/// The pattern of `#[collect(healthy_*)]` or `#[collect("healthy_*")]`, as
/// text; `None` when the attribute lists names instead.
pub(super) fn parse(attr: &syn::Attribute) -> Option<String> {
    attr.parse_args_with(|input: ParseStream<'_>| {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            let text = lit.value();
            if !text.contains('*') || text.matches('*').count() > 1 {
                return Err(syn::Error::new(lit.span(), "not a pattern"));
            }
            return Ok(text);
        }
        let prefix = Ident::parse_any(input)?;
        input.parse::<Token![*]>()?;
        if !input.is_empty() {
            return Err(input.error("not a pattern"));
        }
        Ok(format!("{}*", prefix.unraw()))
    })
    .ok()
}
