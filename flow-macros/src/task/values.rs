//! The values a task reads and provides must be `Data` (`Debug + Send +
//! Sync + 'static`, serde `Serialize + DeserializeOwned`). One assertion per
//! type says so in one sentence; the task's impl assumes it (through a
//! higher-ranked bound, which the compiler does not check where it is
//! written), so the uses of the type in the generated code add no errors of
//! their own.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use super::expand::Model;

/// The assertions, and the where clause of the task's impl.
pub(crate) fn checks(model: &Model, rt: &TokenStream) -> (TokenStream, TokenStream) {
    let mut out = TokenStream::new();
    let mut assert = |what: &str, types: Vec<(&Type, proc_macro2::Span)>| {
        if types.is_empty() {
            return;
        }
        let name = format_ident!("{}_of_{}", what, crate::util::sanitize(&model.name));
        let message = format!(
            "`{{T}}` cannot be an {what} of task `{}`: the values of tasks must be `Debug + Send + Sync + 'static` and serde `Serialize + DeserializeOwned` (derive them, or wrap the type)",
            model.name
        );
        out.extend(quote! {
            #[diagnostic::on_unimplemented(message = #message, label = "not a value a task can exchange")]
            #[allow(non_camel_case_types, unreachable_pub)]
            pub trait #name<T> {
                const OK: () = ();
            }
            #[diagnostic::do_not_recommend]
            impl<T: #rt::Data> #name<T> for () {}
        });
        for (ty, span) in types {
            out.extend(quote_spanned! {span=>
                const _: () = <() as #name<#ty>>::OK;
            });
        }
    };
    assert(
        "input",
        model
            .inputs
            .iter()
            .map(|i| (&i.ty, i.written.span()))
            .collect(),
    );
    assert(
        "output",
        model
            .returns
            .outputs
            .iter()
            .map(|(_, ty)| (ty, ty.span()))
            .collect(),
    );
    (out, bounds(model, rt))
}

/// `where for<'a> T: Data, ...` over the task's input and output types: the
/// impls and functions that use them assume it (a bound that names a
/// lifetime it does not use is not checked where it is written), so a type
/// that is not `Data` makes only the error of [`checks`].
pub(crate) fn bounds(model: &Model, rt: &TokenStream) -> TokenStream {
    let types =
        (model.inputs.iter().map(|i| &i.ty)).chain(model.returns.outputs.iter().map(|(_, t)| t));
    let bounds: Vec<TokenStream> = types
        .map(|ty| quote!(for<'__flow> #ty: #rt::Data))
        .collect();
    if bounds.is_empty() {
        TokenStream::new()
    } else {
        quote!(where #(#bounds),*)
    }
}
