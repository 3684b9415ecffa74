//! Parameters of a task function: inputs, and the context, outcome and failures
//! that are not symbols.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Expr, FnArg, GenericArgument, Ident, Pat, PathArguments, Token, Type};

use crate::util::{Errors, type_text};

/// How a parameter is made from the stored `&T`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `T`: cloned.
    Owned,
    /// `&T`: borrowed.
    Borrowed,
    /// `&str` from a `String` symbol.
    Str,
    /// `&[T]` from a `Vec<T>` symbol.
    Slice,
}

/// How an input is satisfied and passed.
pub(crate) enum Shape {
    Required(Access),
    /// An `Option<...>` parameter.
    Optional(Access),
    /// A `#[default]` parameter: the expression, or `Default::default()`.
    Default(Access, Option<Expr>),
    /// `#[collect(...)] xs: Vec<...>`.
    Collect(Vec<Ident>, Access),
    /// `#[collect(...)] xs: BTreeMap<String or &str, ...>`; `true` for owned keys.
    CollectMap(Vec<Ident>, bool, Access),
}

/// One input: a symbol the task reads.
pub(crate) struct Input {
    /// The symbol's name (the parameter's, without `r#` or one leading `_`).
    pub(crate) symbol: String,
    /// The parameter as written.
    pub(crate) ident: Ident,
    /// The symbol's type (the element type, for a collection).
    pub(crate) ty: Type,
    /// The symbol's type as a reader would write it, for messages.
    pub(crate) text: String,
    /// The parameter's type as written.
    pub(crate) written: Type,
    pub(crate) shape: Shape,
    /// `#[collect(prefix*)]`: the pattern of the symbols gathered (the
    /// shape's list is then empty).
    pub(crate) pattern: Option<String>,
}

/// A parameter that is not a symbol.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    Context,
    Outcome,
    Failures,
}

impl Special {
    fn type_name(self) -> &'static str {
        match self {
            Special::Context => "Context",
            Special::Outcome => "Outcome",
            Special::Failures => "Failures",
        }
    }
}

/// One parameter of the function, in order.
pub(crate) enum Param {
    Input(Box<Input>),
    /// Passed by reference (`true`) or cloned.
    Special(Special, bool),
}

/// Where the parameters belong, which decides what may appear.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Execute,
    Revert,
}

/// Reads the parameters (the receiver excluded), and removes `#[collect]` and
/// `#[default]` from them so the function compiles as written.
pub(crate) fn parse(
    inputs: &mut Punctuated<FnArg, Token![,]>,
    role: Role,
    errors: &mut Errors,
) -> Vec<Param> {
    let mut params = Vec::new();
    for arg in inputs.iter_mut() {
        let FnArg::Typed(pt) = arg else { continue };
        let mut collect: Option<(TokenStream, Vec<Ident>)> = None;
        let mut pattern: Option<String> = None;
        let mut default: Option<(TokenStream, Option<Expr>)> = None;
        let mut kept = Vec::new();
        for attr in std::mem::take(&mut pt.attrs) {
            if attr.path().is_ident("collect") {
                if let Some(p) = super::pattern::parse(&attr) {
                    pattern = Some(p);
                    collect = Some((attr.to_token_stream(), Vec::new()));
                    continue;
                }
                let names = attr.parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated);
                match names {
                    Ok(names) if !names.is_empty() => {
                        let names: Vec<Ident> = names.into_iter().collect();
                        for (i, n) in names.iter().enumerate() {
                            if names[..i].contains(n) {
                                errors.push(n, format!("`{n}` is listed twice in `#[collect]`"));
                            }
                        }
                        collect = Some((attr.to_token_stream(), names));
                    }
                    _ => errors.push(&attr, "list the symbols to gather, `#[collect(a, b, c)]`, or give a pattern, `#[collect(healthy_*)]`"),
                }
            } else if attr.path().is_ident("default") {
                let expr = match &attr.meta {
                    syn::Meta::Path(_) => Ok(None),
                    syn::Meta::List(_) => attr.parse_args::<Expr>().map(Some),
                    syn::Meta::NameValue(_) => Err(syn::Error::new_spanned(&attr, "")),
                };
                match expr {
                    Ok(expr) => default = Some((attr.to_token_stream(), expr)),
                    Err(_) => errors.push(
                        &attr,
                        "write `#[default]` for `Default::default()`, or `#[default(expr)]`",
                    ),
                }
            } else {
                kept.push(attr);
            }
        }
        pt.attrs = kept;

        let ident = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            Pat::Wild(_) => {
                errors.push(
                    &pt.pat,
                    "a task parameter needs a name: the name is the symbol it requires (write `_name` to leave it unused)",
                );
                continue;
            }
            other => {
                errors.push(
                    other,
                    "unsupported parameter pattern: name the parameter (`x: T`), since its name is the symbol it requires, and destructure it in the body",
                );
                continue;
            }
        };

        if let Some((special, by_ref)) = special(&pt.ty, errors) {
            if role == Role::Execute && special != Special::Context {
                errors.push(
                    &pt.ty,
                    format!(
                        "only `revert` receives the `{}`: remove this parameter from `execute`",
                        special.type_name()
                    ),
                );
            }
            if params
                .iter()
                .any(|p| matches!(p, Param::Special(s, ..) if *s == special))
            {
                errors.push(
                    &pt.ty,
                    format!(
                        "the `{}` is taken twice: keep one parameter",
                        special.type_name()
                    ),
                );
            }
            let attr = collect.map(|(t, _)| t).or(default.map(|(t, _)| t));
            if let Some(tokens) = attr {
                errors.push(
                    tokens,
                    "this parameter is not a symbol: remove the attribute",
                );
            }
            params.push(Param::Special(special, by_ref));
            continue;
        }

        let symbol = symbol_name(&ident);
        if params
            .iter()
            .any(|p| matches!(p, Param::Input(i) if i.symbol == symbol))
        {
            errors.push(
                &ident,
                format!("two parameters read the symbol `{symbol}`: give each input its own name"),
            );
        }
        let written = (*pt.ty).clone();
        let parsed = match (collect, default) {
            (Some((tokens, _)), Some(_)) => {
                errors.push(
                    tokens,
                    "`#[collect]` and `#[default]` do not combine: keep one",
                );
                None
            }
            (Some((_, names)), None) => collection(&written, names, errors),
            (None, Some((tokens, expr))) => {
                if option_inner(&written).is_some() {
                    errors.push(
                        tokens,
                        "an `Option` parameter is already optional: remove `#[default]`, or take the inner type",
                    );
                    None
                } else {
                    access(&written, errors).map(|(a, ty)| (ty, Shape::Default(a, expr)))
                }
            }
            (None, None) => match option_inner(&written) {
                Some(inner) => access(inner, errors).map(|(a, ty)| (ty, Shape::Optional(a))),
                None => access(&written, errors).map(|(a, ty)| (ty, Shape::Required(a))),
            },
        };
        if let Some((ty, shape)) = parsed {
            params.push(Param::Input(Box::new(Input {
                symbol,
                ident,
                text: stored_text(&ty),
                ty,
                written,
                shape,
                pattern,
            })));
        }
    }
    params
}

/// The text of a stored type, without the absolute paths this macro writes
/// for `&str` (`String`) and `&[T]` (`Vec<T>`).
fn stored_text(ty: &Type) -> String {
    type_text(ty)
        .replace("::std::string::String", "String")
        .replace("::std::vec::Vec", "Vec")
}

/// A name as written, without `r#`.
pub(crate) fn symbol_name_raw(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// The symbol a parameter reads: its name without `r#` and one leading `_`.
pub(crate) fn symbol_name(ident: &Ident) -> String {
    let name = ident.unraw().to_string();
    match name.strip_prefix('_') {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => name,
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn type_args(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `Context`, `Outcome` or `Failures`, by reference or owned.
fn special(ty: &Type, errors: &mut Errors) -> Option<(Special, bool)> {
    let (inner, by_ref) = match ty {
        Type::Reference(r) => (&*r.elem, Some(r)),
        other => (other, None),
    };
    let seg = last_segment(inner)?;
    if !seg.arguments.is_none() {
        return None;
    }
    let which = match seg.ident.to_string().as_str() {
        "Context" => Special::Context,
        "Outcome" => Special::Outcome,
        "Failures" => Special::Failures,
        _ => return None,
    };
    if let Some(r) = by_ref {
        if r.mutability.is_some() {
            errors.push(ty, format!("take `&{}`, not `&mut`", which.type_name()));
        }
    }
    Some((which, by_ref.is_some()))
}

/// The `T` of `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let seg = last_segment(ty)?;
    if seg.ident != "Option" {
        return None;
    }
    match type_args(seg).as_slice() {
        [inner] => Some(inner),
        _ => None,
    }
}

/// How a parameter of type `ty` is made, and the symbol's type.
fn access(ty: &Type, errors: &mut Errors) -> Option<(Access, Type)> {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => {
            errors.push(
                ty,
                "inputs are shared between tasks: take `&T` or `T`, not `&mut T`",
            );
            None
        }
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
                Some((Access::Str, syn::parse_quote!(::std::string::String)))
            }
            Type::Slice(s) => {
                let elem = &s.elem;
                Some((Access::Slice, syn::parse_quote!(::std::vec::Vec<#elem>)))
            }
            elem => plain(elem, errors).map(|t| (Access::Borrowed, t)),
        },
        other => plain(other, errors).map(|t| (Access::Owned, t)),
    }
}

/// A type a symbol can have: concrete, with no `impl Trait` or `_`.
fn plain(ty: &Type, errors: &mut Errors) -> Option<Type> {
    match ty {
        Type::ImplTrait(_) => {
            errors.push(
                ty,
                "`impl Trait` makes the task generic, which is not supported: a symbol needs one concrete type",
            );
            None
        }
        Type::Infer(_) => {
            errors.push(ty, "write the parameter's type: it is the symbol's type");
            None
        }
        Type::Reference(_) => {
            errors.push(ty, "take one level of reference: `&T`");
            None
        }
        other => Some(other.clone()),
    }
}

/// `Vec<T>` or `BTreeMap<String, T>` under `#[collect]`.
fn collection(ty: &Type, names: Vec<Ident>, errors: &mut Errors) -> Option<(Type, Shape)> {
    let bad = |errors: &mut Errors| {
        errors.push(
            ty,
            format!(
                "`#[collect]` gathers into `Vec<T>` (in the listed order) or `BTreeMap<String, T>` (keyed by symbol name), not `{}`",
                type_text(ty)
            ),
        );
        None
    };
    let Some(seg) = last_segment(ty) else {
        return bad(errors);
    };
    let args = type_args(seg);
    if seg.ident == "Vec" && args.len() == 1 {
        let (access, elem) = access(args[0], errors)?;
        return Some((elem, Shape::Collect(names, access)));
    }
    if seg.ident == "BTreeMap" && args.len() == 2 {
        let owned_key = match args[0] {
            Type::Path(p) if p.qself.is_none() && last_is(p, "String") => true,
            Type::Reference(r) if matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")) => {
                false
            }
            key => {
                errors.push(
                    key,
                    "a collected map is keyed by symbol name: use `String` or `&str` as its key",
                );
                return None;
            }
        };
        let (access, elem) = access(args[1], errors)?;
        return Some((elem, Shape::CollectMap(names, owned_key, access)));
    }
    bad(errors)
}

fn last_is(p: &syn::TypePath, name: &str) -> bool {
    p.path
        .segments
        .last()
        .is_some_and(|s| s.ident == name && s.arguments.is_none())
}

impl Input {
    /// The expression that makes the parameter from `__args` (`&Args`), the
    /// input being at `index`. A default's storage is declared in `pre`.
    pub(crate) fn read(&self, index: usize, pre: &mut TokenStream) -> TokenStream {
        let ty = &self.ty;
        let span = syn::spanned::Spanned::span(&self.written);
        let args = quote::quote_spanned!(span=> __args);
        let conv = |a: Access, v: TokenStream| match a {
            Access::Owned => quote!(::core::clone::Clone::clone(#v)),
            Access::Borrowed => v,
            Access::Str => quote!(::std::string::String::as_str(#v)),
            Access::Slice => quote!(::std::vec::Vec::as_slice(#v)),
        };
        let map_fn = |a: Access| match a {
            Access::Owned => quote!(::core::clone::Clone::clone),
            Access::Borrowed => quote!(::core::convert::identity),
            Access::Str => quote!(::std::string::String::as_str),
            Access::Slice => quote!(::std::vec::Vec::as_slice),
        };
        match &self.shape {
            Shape::Required(a) => conv(*a, quote::quote_spanned!(span=> #args.get::<#ty>(#index)?)),
            Shape::Optional(Access::Borrowed) => {
                quote::quote_spanned!(span=> #args.optional::<#ty>(#index)?)
            }
            Shape::Optional(Access::Owned) => {
                quote::quote_spanned!(span=> #args.optional::<#ty>(#index)?.cloned())
            }
            Shape::Optional(a) => {
                let f = map_fn(*a);
                quote::quote_spanned!(span=> #args.optional::<#ty>(#index)?.map(#f))
            }
            Shape::Default(a, expr) => {
                let value = match expr {
                    Some(e) => quote::quote_spanned!(syn::spanned::Spanned::span(e)=> #e),
                    None => quote!(<#ty as ::core::default::Default>::default()),
                };
                let written = &self.written;
                match a {
                    Access::Owned => quote::quote_spanned!(span=>
                        match #args.optional::<#ty>(#index)? {
                            ::core::option::Option::Some(__v) => ::core::clone::Clone::clone(__v),
                            ::core::option::Option::None => #value,
                        }
                    ),
                    _ => {
                        let v = conv(*a, quote!(__v));
                        let value = match expr {
                            Some(e) => quote::quote_spanned!(syn::spanned::Spanned::span(e)=> #e),
                            None if *a == Access::Borrowed => {
                                quote!(<#ty as ::core::default::Default>::default())
                            }
                            None => quote!(<#written as ::core::default::Default>::default()),
                        };
                        let store = quote::format_ident!("__default_{}", index);
                        pre.extend(quote!(let #store;));
                        let borrow = if *a == Access::Borrowed {
                            quote!(&#store)
                        } else {
                            quote!(&*#store)
                        };
                        quote::quote_spanned!(span=>
                            match #args.optional::<#ty>(#index)? {
                                ::core::option::Option::Some(__v) => #v,
                                ::core::option::Option::None => {
                                    #store = #value;
                                    #borrow
                                }
                            }
                        )
                    }
                }
            }
            Shape::Collect(_, Access::Borrowed) => {
                quote::quote_spanned!(span=> #args.list::<#ty>(#index)?)
            }
            Shape::Collect(_, a) => {
                let f = map_fn(*a);
                quote::quote_spanned!(span=>
                    ::core::iter::Iterator::collect(
                        ::core::iter::Iterator::map(::core::iter::IntoIterator::into_iter(#args.list::<#ty>(#index)?), #f)
                    )
                )
            }
            Shape::CollectMap(_, false, Access::Borrowed) => {
                quote::quote_spanned!(span=> #args.map::<#ty>(#index)?)
            }
            Shape::CollectMap(_, owned_key, a) => {
                let k = if *owned_key {
                    quote!(::std::borrow::ToOwned::to_owned(__k))
                } else {
                    quote!(__k)
                };
                let v = conv(*a, quote!(__v));
                quote::quote_spanned!(span=>
                    ::core::iter::Iterator::collect(
                        ::core::iter::Iterator::map(
                            ::core::iter::IntoIterator::into_iter(#args.map::<#ty>(#index)?),
                            |(__k, __v)| (#k, #v),
                        )
                    )
                )
            }
        }
    }

    /// The `Signature` builder call declaring this input.
    pub(crate) fn declare(&self) -> TokenStream {
        let ty = &self.ty;
        let name = &self.symbol;
        let names = |list: &Vec<Ident>| -> Vec<String> {
            list.iter().map(|n| n.unraw().to_string()).collect()
        };
        match (&self.shape, &self.pattern) {
            (Shape::Collect(..), Some(p)) => return quote!(.collect_matching::<#ty>(#name, #p)),
            (Shape::CollectMap(..), Some(p)) => {
                return quote!(.collect_matching_map::<#ty>(#name, #p));
            }
            _ => {}
        }
        match &self.shape {
            Shape::Required(_) => quote!(.requires::<#ty>(#name)),
            Shape::Optional(_) | Shape::Default(..) => quote!(.optional::<#ty>(#name)),
            Shape::Collect(list, _) => {
                let list = names(list);
                quote!(.collect::<#ty>(#name, [#(#list),*]))
            }
            Shape::CollectMap(list, ..) => {
                let list = names(list);
                quote!(.collect_map::<#ty>(#name, [#(#list),*]))
            }
        }
    }

    /// The `InputInfo` of this input.
    pub(crate) fn info(&self, rt: &TokenStream) -> TokenStream {
        let name = &self.symbol;
        let ty = &self.text;
        let shape = match (&self.shape, &self.pattern) {
            (Shape::Collect(..), Some(p)) => quote!(#rt::InputShape::Matching(#p)),
            (Shape::CollectMap(..), Some(p)) => quote!(#rt::InputShape::MatchingMap(#p)),
            (shape, _) => Self::shape_info(shape, rt),
        };
        quote!(#rt::InputInfo::new(#name, #ty, #shape))
    }

    fn shape_info(shape: &Shape, rt: &TokenStream) -> TokenStream {
        let refs = |list: &Vec<Ident>| {
            let list: Vec<String> = list.iter().map(|n| n.unraw().to_string()).collect();
            quote!(&[#(#rt::SymbolRef::new(#list)),*])
        };
        match shape {
            Shape::Required(_) => quote!(#rt::InputShape::Required),
            Shape::Optional(_) | Shape::Default(..) => quote!(#rt::InputShape::Optional),
            Shape::Collect(list, _) => {
                let r = refs(list);
                quote!(#rt::InputShape::Collect(#r))
            }
            Shape::CollectMap(list, ..) => {
                let r = refs(list);
                quote!(#rt::InputShape::CollectMap(#r))
            }
        }
    }
}
