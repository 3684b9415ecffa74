//! Generation of the task's impls from the checked model.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::options::Options;
use super::params::{Input, Special};
use super::returns::Returns;

/// One argument of a call to the user's function.
#[derive(Clone)]
pub(crate) enum Arg {
    /// The input at this index.
    Input(usize),
    /// A non-symbol parameter, by reference (`true`) or cloned.
    Special(Special, bool),
}

/// A call to the user's `execute` or `revert`.
pub(crate) struct Call {
    /// What to call: `backup_db`, `<Deploy>::execute`.
    pub(crate) path: TokenStream,
    /// Whether it takes `&self`.
    pub(crate) receiver: bool,
    pub(crate) is_async: bool,
    pub(crate) args: Vec<Arg>,
    /// Where errors about the call point.
    pub(crate) span: Span,
}

/// Everything needed to generate a task.
pub(crate) struct Model {
    /// The task's name.
    pub(crate) name: String,
    /// The type implementing the task.
    pub(crate) task_type: TokenStream,
    /// The inputs of `execute`.
    pub(crate) inputs: Vec<Input>,
    pub(crate) execute: Call,
    /// How the result of `execute` becomes outputs.
    pub(crate) returns: Returns,
    pub(crate) revert: Option<Call>,
    /// Whether an async method needs `self` cloned into its future.
    pub(crate) needs_clone: bool,
}

impl Call {
    /// Whether one of the parameters is the special value `special`.
    fn uses(&self, special: Special) -> bool {
        self.args
            .iter()
            .any(|a| matches!(a, Arg::Special(s, _) if *s == special))
    }

    fn uses_context(&self) -> bool {
        self.uses(Special::Context)
    }

    /// The statement that takes the run's failures from the context, for a
    /// `revert` that has a parameter for them (asking costs a lock).
    fn take_failures(&self) -> TokenStream {
        if self.uses(Special::Failures) {
            quote!(let __failures = __ctx.failures();)
        } else {
            TokenStream::new()
        }
    }

    /// The statements that read the arguments, and the call expression.
    fn invoke(&self, inputs: &[Input]) -> (TokenStream, TokenStream) {
        let mut lets = TokenStream::new();
        let mut pre = TokenStream::new();
        let mut values = Vec::new();
        if self.receiver {
            values.push(quote!(__this));
        }
        for arg in &self.args {
            match arg {
                Arg::Input(i) => {
                    let read = inputs[*i].read(*i, &mut pre);
                    let local = format_ident!("__a{}", i);
                    lets.extend(quote!(let #local = #read;));
                    values.push(quote!(#local));
                }
                Arg::Special(s, by_ref) => {
                    let place = match s {
                        Special::Context => quote!((*__ctx)),
                        Special::Outcome => quote!(__input.outcome),
                        Special::Failures => quote!((*__failures)),
                    };
                    values.push(if *by_ref {
                        quote!(&#place)
                    } else {
                        quote!(::core::clone::Clone::clone(&#place))
                    });
                }
            }
        }
        let path = &self.path;
        let call = if self.is_async {
            quote_spanned!(self.span=> #path(#(#values),*).await)
        } else {
            quote_spanned!(self.span=> #path(#(#values),*))
        };
        (quote!(#pre #lets), call)
    }
}

/// The `TaskDef`, `Provides` and `Task` impls.
pub(crate) fn generate(model: &Model, options: &Options) -> TokenStream {
    let krate = options.krate();
    let rt = quote!(#krate::macro_support);
    let ty = &model.task_type;
    let name = &model.name;
    let returns = &model.returns;

    let inputs_info = model.inputs.iter().map(|i| i.info(&rt));
    let outputs_info = returns.info(&rt);
    let provides_impls = returns.provides_impls(&rt, ty);

    let declare_inputs = model.inputs.iter().map(Input::declare);
    let declare_outputs = returns.declare();
    let blocking = options.blocking.map(|s| quote_spanned!(s=> .blocking()));
    let priority = options
        .priority
        .as_ref()
        .map(|p| quote_spanned!(syn::spanned::Spanned::span(p)=> .priority(#p)));
    let timeout = options.timeout.as_ref().map(|t| quote!(.timeout(#t)));

    let checks = slot_checks(model, &rt);
    let (value_checks, bounds) = super::values::checks(model, &rt);
    let execute = execute_method(model, &rt, returns);
    let revert = model.revert.as_ref().map(|r| revert_method(model, r, &rt));

    quote! {
        const _: () = {
            impl #rt::TaskDef for #ty #bounds {
                const INFO: #rt::TaskInfo = #rt::TaskInfo {
                    name: #name,
                    inputs: &[#(#inputs_info),*],
                    outputs: &[#(#outputs_info),*],
                };
            }

            #provides_impls

            #checks
            #value_checks

            impl #rt::Task for #ty #bounds {
                fn signature(&self) -> #rt::Signature {
                    #rt::Signature::new()
                        #(#declare_inputs)*
                        #declare_outputs
                        #blocking
                        #priority
                        #timeout
                }

                #execute

                #revert
            }
        };
    }
}

fn this_param(model: &Model, call: &Call) -> (TokenStream, TokenStream) {
    if call.receiver {
        let ty = &model.task_type;
        (quote!(__this: &#ty,), quote!(self,))
    } else {
        (TokenStream::new(), TokenStream::new())
    }
}

fn execute_method(model: &Model, rt: &TokenStream, returns: &Returns) -> TokenStream {
    let call = &model.execute;
    let (stmts, invoke) = call.invoke(&model.inputs);
    let finish = returns.finish(rt, invoke);
    let body = quote!(#stmts #finish);
    if call.is_async {
        let (this, this_ref) = async_this(model, call);
        let (ctx, ctx_ref) = async_ctx(call);
        quote! {
            fn execute(&self, __args: #rt::Args, __ctx: &#rt::Context) -> #rt::Exec {
                #this
                #ctx
                #rt::Exec::future(async move {
                    #this_ref
                    #ctx_ref
                    let __args = &__args;
                    let __result: ::core::result::Result<#rt::Outputs, #rt::TaskError> = { #body };
                    __result
                })
            }
        }
    } else {
        let (this_decl, this_arg) = this_param(model, call);
        let bounds = super::values::bounds(model, rt);
        quote! {
            fn execute(&self, __args: #rt::Args, __ctx: &#rt::Context) -> #rt::Exec {
                fn __flow_execute(
                    #this_decl
                    __args: &#rt::Args,
                    __ctx: &#rt::Context,
                ) -> ::core::result::Result<#rt::Outputs, #rt::TaskError> #bounds {
                    #body
                }
                #rt::Exec::Ready(__flow_execute(#this_arg &__args, __ctx))
            }
        }
    }
}

fn async_this(model: &Model, call: &Call) -> (TokenStream, TokenStream) {
    if call.receiver && model.needs_clone {
        (
            quote_spanned!(call.span=> let __this = ::core::clone::Clone::clone(self);),
            quote!(let __this = &__this;),
        )
    } else {
        (TokenStream::new(), TokenStream::new())
    }
}

fn async_ctx(call: &Call) -> (TokenStream, TokenStream) {
    if call.uses_context() {
        (
            quote!(let __ctx = ::core::clone::Clone::clone(__ctx);),
            quote!(let __ctx = &__ctx;),
        )
    } else {
        (TokenStream::new(), TokenStream::new())
    }
}

fn revert_method(model: &Model, call: &Call, rt: &TokenStream) -> TokenStream {
    let (stmts, invoke) = call.invoke(&model.inputs);
    let span = call.span;
    let convert = quote_spanned!(span=> #rt::RevertReturn::into_revert_result);
    let result = quote!(::core::result::Result<::core::option::Option<#rt::Value>, #rt::TaskError>);
    if call.is_async {
        let (this, this_ref) = async_this(model, call);
        let (ctx, ctx_ref) = async_ctx(call);
        let failures = call.take_failures();
        quote! {
            fn revert(&self, __input: #rt::RevertInput, __ctx: &#rt::Context) -> #rt::Exec<::core::option::Option<#rt::Value>> {
                #this
                #failures
                #ctx
                #rt::Exec::future(async move {
                    #this_ref
                    #ctx_ref
                    let __input = &__input;
                    let __args = &__input.args;
                    let __result: #result = { #stmts #convert(#invoke) };
                    __result
                })
            }
        }
    } else {
        let (this_decl, this_arg) = this_param(model, call);
        let failures = call.take_failures();
        let bounds = super::values::bounds(model, rt);
        quote! {
            fn revert(&self, __input: #rt::RevertInput, __ctx: &#rt::Context) -> #rt::Exec<::core::option::Option<#rt::Value>> {
                fn __flow_revert(
                    #this_decl
                    __input: &#rt::RevertInput,
                    __ctx: &#rt::Context,
                ) -> #result #bounds {
                    let __args = &__input.args;
                    #failures
                    #stmts
                    #convert(#invoke)
                }
                #rt::Exec::Ready(__flow_revert(#this_arg &__input, __ctx))
            }
        }
    }
}

/// For each input symbol (an input, or one symbol of a collection): the
/// `Requires` impl keyed by its name, with its type and its check, a trait
/// whose failure message names the task, the symbol and the types (`flow!`
/// coerces `&()` to `dyn` of it, which holds only for the required type);
/// and `Requires<0>`, the check of a slot that needs none.
fn slot_checks(model: &Model, rt: &TokenStream) -> TokenStream {
    let task = &model.task_type;
    let mut out = quote! {
        impl #rt::Requires<0> for #task {
            type Ty = ();
            type Check<X, W> = dyn ::core::any::Any;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for input in &model.inputs {
        let ty = &input.ty;
        let symbols: Vec<String> = match (&input.shape, &input.pattern) {
            (_, Some(p)) => vec![p.clone()],
            (shape, None) => match shape {
                super::params::Shape::Collect(list, _)
                | super::params::Shape::CollectMap(list, ..) => list
                    .iter()
                    .map(|n| syn::ext::IdentExt::unraw(n).to_string())
                    .collect(),
                _ => vec![input.symbol.clone()],
            },
        };
        for symbol in symbols {
            // A symbol read twice is checked against its first type.
            if seen.contains(&symbol) {
                continue;
            }
            seen.push(symbol.clone());
            let message = format!(
                "task `{}` requires `{}: {}`, but its provider `{{W}}` provides `{}` as `{{X}}`: make the types agree, or rebind the input to another symbol",
                model.name, symbol, input.text, symbol
            );
            let label = format!("`{symbol}` is provided as `{{X}}` here");
            // Named for what it says, since the compiler's help line names
            // it: "the trait `requires_port<String, pick_port>` is not
            // implemented for `()`"; a pattern's `*` reads `any`.
            let name = format_ident!("requires_{}", symbol.replace('*', "any"));
            out.extend(quote! {
                #[diagnostic::on_unimplemented(message = #message, label = #label)]
                #[allow(non_camel_case_types, unreachable_pub)]
                pub trait #name<X, W> {}
                impl<S, W> #name<#ty, W> for S {}
                impl #rt::Requires<{ #rt::symbol_hash(#symbol) }> for #task {
                    type Ty = #ty;
                    type Check<X, W> = dyn #name<X, W>;
                }
            });
        }
    }
    out
}
