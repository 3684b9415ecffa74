//! The return type of a task function, and the outputs it provides.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, Ident, PathArguments, ReturnType, Type};

use super::options::Provides;
use crate::util::{Errors, type_text};

/// What the function returns.
pub(crate) struct Returns {
    /// `Some` when the function returns `Result`: the error type when written
    /// (`None` for an alias such as `io::Result<T>`), for spans.
    pub(crate) fallible: Option<Option<Type>>,
    /// Whether the (`Ok`) value is `()`.
    pub(crate) unit: bool,
    /// The outputs: symbol name and type, in order.
    pub(crate) outputs: Vec<(String, Type)>,
    /// Whether the value is a tuple destructured into the outputs.
    pub(crate) destructure: bool,
    /// The struct whose fields are the outputs, when it is one, and those
    /// fields as written.
    pub(crate) struct_path: Option<(syn::Path, Vec<Ident>)>,
    /// Where to point errors about the value.
    pub(crate) span: Span,
}

/// The `Ok` type of a `Result`, and its error type when written.
fn result_parts(ty: &Type) -> Option<(Type, Option<Type>)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    let ok = types.next()?;
    Some((ok, types.next()))
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// Reads the return type against `provides`.
pub(crate) fn parse(
    output: &ReturnType,
    provides: Option<&Provides>,
    fn_span: Span,
    errors: &mut Errors,
) -> Returns {
    let (value, fallible, span): (Option<Type>, Option<Option<Type>>, Span) = match output {
        ReturnType::Default => (None, None, fn_span),
        ReturnType::Type(_, ty) => match result_parts(ty) {
            Some((ok, err)) => (Some(ok), Some(err), ty.span()),
            None => (Some((**ty).clone()), None, ty.span()),
        },
    };
    let value = value.filter(|v| !is_unit(v));
    let mut returns = Returns {
        fallible,
        unit: value.is_none(),
        outputs: Vec::new(),
        destructure: false,
        struct_path: None,
        span,
    };
    match (provides, value) {
        (None, None) => {}
        (None, Some(v)) => errors.push(
            &v,
            format!(
                "the task returns a `{}` but does not name it: add `provides = name` to `#[task]` (or `provides = (a, b)` for a tuple)",
                type_text(&v)
            ),
        ),
        (Some(Provides::One(name)), None) => errors.push(
            name,
            format!("`provides = {name}`, but the task returns nothing: return the value, or remove `provides`"),
        ),
        (Some(Provides::Many(_, tokens)), None) => errors.push(
            tokens,
            "`provides` names outputs, but the task returns nothing: return a tuple, or remove `provides`",
        ),
        (Some(Provides::Struct(st)), None) => errors.push(
            &st.tokens,
            "`provides` names the fields of a struct, but the task returns nothing: return the struct, or remove `provides`",
        ),
        (Some(Provides::Struct(st)), Some(_)) => {
            let fields = st.fields.iter().map(|(name, _)| name.clone()).collect();
            returns.struct_path = Some((st.path.clone(), fields));
            for (name, ty) in &st.fields {
                returns.outputs.push((symbol(name), ty.clone()));
            }
        }
        (Some(Provides::One(name)), Some(v)) => {
            returns.outputs.push((symbol(name), v));
        }
        (Some(Provides::Many(names, tokens)), Some(v)) => match &v {
            Type::Tuple(t) if t.elems.len() == names.len() => {
                returns.destructure = true;
                for (name, ty) in names.iter().zip(&t.elems) {
                    returns.outputs.push((symbol(name), ty.clone()));
                }
            }
            Type::Tuple(t) => errors.push(
                tokens,
                format!(
                    "`provides` names {} outputs but the task returns a tuple of {}: give one name per element of `{}`",
                    names.len(),
                    t.elems.len(),
                    type_text(&v)
                ),
            ),
            other => errors.push(
                other,
                format!(
                    "`provides = (...)` destructures a tuple, but the task returns `{}`: return a tuple of {} elements, written out, or use `provides = name`",
                    type_text(other),
                    names.len()
                ),
            ),
        },
    }
    returns
}

fn symbol(name: &Ident) -> String {
    syn::ext::IdentExt::unraw(name).to_string()
}

impl Returns {
    /// Turns `__out`, what the function returned, into `Outputs` (or an early
    /// `return Err(...)`).
    pub(crate) fn finish(&self, rt: &TokenStream, call: TokenStream) -> TokenStream {
        let span = self.span;
        let value = match &self.fallible {
            None if self.unit => quote!(#call;),
            None => quote!(let __out = #call;),
            Some(err) => {
                let err_span = err.as_ref().map_or(span, Spanned::span);
                let convert = quote_spanned!(err_span=> #rt::IntoTaskError::into_task_error(__e));
                if self.unit {
                    quote! {
                        if let ::core::result::Result::Err(__e) = #call {
                            return ::core::result::Result::Err(#convert);
                        }
                    }
                } else {
                    quote! {
                        let __out = match #call {
                            ::core::result::Result::Ok(__v) => __v,
                            ::core::result::Result::Err(__e) => {
                                return ::core::result::Result::Err(#convert);
                            }
                        };
                    }
                }
            }
        };
        let outputs = if self.unit {
            quote!(#rt::Outputs::new())
        } else if let Some((path, fields)) = &self.struct_path {
            // The fields named, each checked against the type written for
            // it; fields not named are dropped.
            let names: Vec<Ident> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| quote::format_ident!("__o{}", i, span = f.span()))
                .collect();
            // A trait per field, implemented for the type written in
            // `provides` only: the field's value coerces to its `dyn` only
            // when the types agree, and a mismatch prints its message.
            let struct_name = crate::util::type_text(path);
            let typed = self
                .outputs
                .iter()
                .zip(fields)
                .zip(&names)
                .map(|(((_, ty), field), n)| {
                    let field = symbol(field);
                    let written = crate::util::type_text(ty);
                    let check = quote::format_ident!("provides_{}", field, span = ty.span());
                    let message = format!(
                        "`provides` gives `{field}` the type `{written}`, but the field `{field}` of `{struct_name}` is `{{Self}}`: write the field's type"
                    );
                    let label = format!("`{field}` is `{{Self}}`");
                    quote_spanned! {ty.span()=>
                        #[diagnostic::on_unimplemented(message = #message, label = #label)]
                        #[allow(non_camel_case_types)]
                        trait #check {}
                        #[diagnostic::do_not_recommend]
                        impl #check for #ty {}
                        let _: &dyn #check = &#n;
                    }
                });
            quote!({
                let #path { #(#fields: #names,)* .. } = __out;
                #(#typed)*
                #rt::Outputs::new() #(.with(#names))*
            })
        } else if self.destructure {
            let names: Vec<Ident> = (0..self.outputs.len())
                .map(|i| quote::format_ident!("__o{}", i))
                .collect();
            let withs = self
                .outputs
                .iter()
                .zip(&names)
                .map(|((_, ty), n)| quote_spanned!(ty.span()=> .with(#n)));
            quote!({
                let (#(#names),*) = __out;
                #rt::Outputs::new() #(#withs)*
            })
        } else {
            quote_spanned!(span=> #rt::Outputs::one(__out))
        };
        quote! {
            #value
            ::core::result::Result::Ok(#outputs)
        }
    }

    /// The `Signature` builder calls declaring the outputs.
    pub(crate) fn declare(&self) -> TokenStream {
        let calls = self
            .outputs
            .iter()
            .map(|(name, ty)| quote_spanned!(ty.span()=> .provides::<#ty>(#name)));
        quote!(#(#calls)*)
    }

    /// The `OutputInfo`s.
    pub(crate) fn info(&self, rt: &TokenStream) -> Vec<TokenStream> {
        self.outputs
            .iter()
            .map(|(name, ty)| {
                let text = type_text(ty);
                quote!(#rt::OutputInfo::new(#name, #text))
            })
            .collect()
    }

    /// `impl Provides<{hash}> for Task { type Ty = T; }` per output.
    pub(crate) fn provides_impls(&self, rt: &TokenStream, task: &impl ToTokens) -> TokenStream {
        let impls = self.outputs.iter().map(|(name, ty)| {
            quote! {
                impl #rt::Provides<{ #rt::symbol_hash(#name) }> for #task {
                    type Ty = #ty;
                }
            }
        });
        quote!(#(#impls)*)
    }
}
