//! `#[task]`: parse the function or impl block into a model, check it, then
//! generate the task type and its impls.

mod expand;
mod options;
mod params;
mod pattern;
mod returns;
mod values;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, Item, ItemFn, ItemImpl, Type};

use crate::util::{Errors, type_text};
use expand::{Arg, Call, Model};
use options::Options;
use params::{Param, Role, Special};

/// Expands `#[task(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = options::parse(args, &mut errors);
    let item: Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(e) => {
            let e = e.to_compile_error();
            return quote!(#item #e);
        }
    };
    match item {
        Item::Fn(f) => function(f, &options, errors),
        Item::Impl(i) => implementation(i, &options, errors),
        other => {
            errors.push(
                first_tokens(&other),
                "`#[task]` goes on a function, or on the `impl` block of a type with an `execute` method",
            );
            let errs = errors.finish();
            quote!(#other #errs)
        }
    }
}

/// A short span for an item: its first tokens.
fn first_tokens(item: &Item) -> TokenStream {
    item.to_token_stream().into_iter().take(2).collect()
}

/// Rejects what a task function cannot be: generic or unsafe.
fn check_signature(sig: &syn::Signature, errors: &mut Errors) {
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(
            &sig.generics,
            "generic tasks are not supported: every symbol needs one concrete type so that flows can be checked; write a `#[task]` for each type you need (it may call a generic function)",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(
            unsafety,
            "an `unsafe fn` cannot be a task: make a safe function that wraps the unsafe call",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(
            variadic,
            "a task cannot be variadic: gather values with `#[collect(a, b)]`",
        );
    }
}

fn function(mut f: ItemFn, options: &Options, mut errors: Errors) -> TokenStream {
    check_signature(&f.sig, &mut errors);
    for arg in &f.sig.inputs {
        if let FnArg::Receiver(r) = arg {
            errors.push(
                r,
                "a free function cannot take `self`: to keep handles (clients, pools) in a struct, put `#[task]` on its `impl` block and name the method `execute`",
            );
        }
    }
    let params = params::parse(&mut f.sig.inputs, Role::Execute, &mut errors);
    let returns = returns::parse(
        &f.sig.output,
        options.provides.as_ref(),
        f.sig.ident.span(),
        &mut errors,
    );
    let is_async = f.sig.asyncness.is_some();
    if let (Some(span), Some(_)) = (options.blocking, &f.sig.asyncness) {
        errors.add(syn::Error::new(
            span,
            "`blocking` is for a synchronous body that blocks its thread; an `async` task must not block: remove `blocking`, or make the function synchronous",
        ));
    }
    if !errors.is_empty() {
        let errs = errors.finish();
        return quote!(#f #errs);
    }

    let ident = f.sig.ident.clone();
    let (inputs, args) = split(params);
    let revert = options.revert.as_ref().map(|path| {
        let mut args = args.clone();
        args.push(Arg::Special(Special::Outcome, true));
        args.push(Arg::Special(Special::Failures, true));
        Call {
            path: path.to_token_stream(),
            receiver: false,
            is_async,
            args,
            span: path.span(),
        }
    });
    let model = Model {
        name: options
            .name
            .as_ref()
            .map_or_else(|| params::symbol_name_raw(&ident), syn::LitStr::value),
        task_type: ident.to_token_stream(),
        inputs,
        execute: Call {
            path: ident.to_token_stream(),
            receiver: false,
            is_async,
            args,
            span: ident.span(),
        },
        returns,
        revert,
        needs_clone: false,
    };
    let vis = &f.vis;
    let doc = format!(
        "The task made by `#[task]` from the function `{ident}`: place it in a flow with `flow!`, or with `Atom::of({ident} {{}})`."
    );
    let generated = expand::generate(&model, options);
    quote! {
        #f
        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default)]
        #vis struct #ident {}
        #generated
    }
}

/// Separates inputs from the argument list of the call.
fn split(params: Vec<Param>) -> (Vec<params::Input>, Vec<Arg>) {
    let mut inputs = Vec::new();
    let mut args = Vec::new();
    for p in params {
        match p {
            Param::Input(input) => {
                args.push(Arg::Input(inputs.len()));
                inputs.push(*input);
            }
            Param::Special(s, by_ref) => args.push(Arg::Special(s, by_ref)),
        }
    }
    (inputs, args)
}

/// Whether a method takes `&self` (`Some(true)`), nothing (`Some(false)`), or a
/// receiver a task cannot have (`None`, recorded).
fn receiver(method: &ImplItemFn, errors: &mut Errors) -> Option<bool> {
    match method.sig.inputs.first() {
        Some(FnArg::Receiver(r)) => {
            if r.reference.is_none() || r.colon_token.is_some() {
                errors.push(
                    r,
                    "a task method takes `&self`: the engine keeps the task and may run it many times",
                );
                None
            } else if r.mutability.is_some() {
                errors.push(
                    r,
                    "a task method takes `&self`, not `&mut self`: tasks are shared between runs; keep mutable state behind a `Mutex` or an atomic",
                );
                None
            } else {
                Some(true)
            }
        }
        _ => Some(false),
    }
}

fn implementation(mut imp: ItemImpl, options: &Options, mut errors: Errors) -> TokenStream {
    if let Some((_, path, _)) = &imp.trait_ {
        errors.push(
            path,
            "`#[task]` goes on an inherent `impl` block (`impl MyTask { fn execute(...) }`), not on a trait impl",
        );
    }
    if !imp.generics.params.is_empty() || imp.generics.where_clause.is_some() {
        errors.push(
            &imp.generics,
            "generic tasks are not supported: every symbol needs one concrete type so that flows can be checked; put `#[task]` on an impl for a concrete type",
        );
    }
    if let Some(path) = &options.revert {
        errors.push(
            path,
            "`revert = ...` is for a task function; in an `impl` block, write the compensation as a `revert` method",
        );
    }
    let self_ty = (*imp.self_ty).clone();
    let type_name = match &self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    let Some(type_name) = type_name else {
        errors.push(
            &self_ty,
            "`#[task]` goes on the `impl` block of a named type",
        );
        let errs = errors.finish();
        return quote!(#imp #errs);
    };

    let mut exec: Option<(Vec<Param>, bool, bool, returns::Returns, proc_macro2::Span)> = None;
    let mut rev: Option<(Vec<Param>, bool, bool, Type, proc_macro2::Span)> = None;
    for item in &mut imp.items {
        let ImplItem::Fn(method) = item else { continue };
        let name = method.sig.ident.to_string();
        if name != "execute" && name != "revert" {
            continue;
        }
        check_signature(&method.sig, &mut errors);
        let recv = receiver(method, &mut errors);
        if name == "execute" {
            let params = params::parse(&mut method.sig.inputs, Role::Execute, &mut errors);
            let returns = returns::parse(
                &method.sig.output,
                options.provides.as_ref(),
                method.sig.ident.span(),
                &mut errors,
            );
            if let (Some(span), Some(_)) = (options.blocking, &method.sig.asyncness) {
                errors.add(syn::Error::new(
                    span,
                    "`blocking` is for a synchronous body that blocks its thread; an `async` task must not block: remove `blocking`, or make `execute` synchronous",
                ));
            }
            exec = Some((
                params,
                recv.unwrap_or(true),
                method.sig.asyncness.is_some(),
                returns,
                method.sig.ident.span(),
            ));
        } else {
            let params = params::parse(&mut method.sig.inputs, Role::Revert, &mut errors);
            let ret: Type = match &method.sig.output {
                syn::ReturnType::Default => syn::parse_quote!(()),
                syn::ReturnType::Type(_, ty) => (**ty).clone(),
            };
            rev = Some((
                params,
                recv.unwrap_or(true),
                method.sig.asyncness.is_some(),
                ret,
                method.sig.ident.span(),
            ));
        }
    }
    let Some((exec_params, exec_self, exec_async, returns, exec_span)) = exec else {
        errors.push(
            &imp.self_ty,
            format!(
                "`#[task]` needs an `execute` method: add `fn execute(&self, ...)` to this `impl {type_name}` block; it does the task's work (and an optional `revert` undoes it)"
            ),
        );
        let errs = errors.finish();
        return quote!(#imp #errs);
    };
    let (inputs, exec_args) = split(exec_params);
    let revert = rev.map(|(params, by_self, is_async, ret, span)| {
        let args = revert_args(&inputs, params, &mut errors);
        Call {
            path: quote!(<#self_ty>::revert),
            receiver: by_self,
            is_async,
            args,
            span: ret.span().join(span).unwrap_or(span),
        }
    });
    if !errors.is_empty() {
        let errs = errors.finish();
        return quote!(#imp #errs);
    }
    let needs_clone =
        (exec_async && exec_self) || revert.as_ref().is_some_and(|r| r.is_async && r.receiver);
    let model = Model {
        name: options.name.as_ref().map_or(type_name, syn::LitStr::value),
        task_type: self_ty.to_token_stream(),
        inputs,
        execute: Call {
            path: quote!(<#self_ty>::execute),
            receiver: exec_self,
            is_async: exec_async,
            args: exec_args,
            span: exec_span,
        },
        returns,
        revert,
        needs_clone,
    };
    let generated = expand::generate(&model, options);
    quote! {
        #imp
        #generated
    }
}

/// Maps the parameters of `revert` onto the inputs of `execute`, by symbol.
fn revert_args(inputs: &[params::Input], params: Vec<Param>, errors: &mut Errors) -> Vec<Arg> {
    let expected = || {
        let list: Vec<String> = inputs
            .iter()
            .map(|i| format!("`{}: {}`", i.symbol, type_text(&i.written)))
            .collect();
        if list.is_empty() {
            "`execute` has no inputs".to_string()
        } else {
            format!("`execute` takes {}", list.join(", "))
        }
    };
    let mut args = Vec::new();
    for p in params {
        match p {
            Param::Special(s, by_ref) => args.push(Arg::Special(s, by_ref)),
            Param::Input(input) => {
                if !matches!(
                    input.shape,
                    params::Shape::Required(_) | params::Shape::Optional(_)
                ) {
                    errors.push(
                        &input.ident,
                        "`#[collect]` and `#[default]` belong on `execute`'s parameter: `revert` receives the same value; remove the attribute here",
                    );
                    continue;
                }
                match inputs.iter().position(|i| i.symbol == input.symbol) {
                    Some(index) if type_text(&inputs[index].written) == type_text(&input.written) => {
                        args.push(Arg::Input(index));
                    }
                    Some(index) => errors.push(
                        &input.written,
                        format!(
                            "`revert` takes `{}: {}` but `execute` takes `{}: {}`: `revert` receives the same inputs as `execute`, so give it the same type",
                            input.symbol,
                            type_text(&input.written),
                            inputs[index].symbol,
                            type_text(&inputs[index].written)
                        ),
                    ),
                    None => errors.push(
                        &input.ident,
                        format!(
                            "`revert` takes `{}`, which is not an input of `execute`: `revert` receives the same inputs as `execute` (any of them, by name), plus `&Outcome`, `&Failures` and `&Context`; {}",
                            input.symbol,
                            expected()
                        ),
                    ),
                }
            }
        }
    }
    args
}
