//! Groups built at run time inside `flow!`:
//!
//! ```text
//! group upgrades(version: String) -> (healthy_*: bool) = upgrade_group(&hosts),
//! ```
//!
//! While the program compiles, the group stands in the flow's table as an
//! atom whose signature is the declared interface (its outputs may be
//! patterns: a prefix, then `*`), so its inputs are checked against what
//! runs before it and its outputs against what reads them. When the flow is
//! built, the expression's `Flow` is named after the group and checked
//! against the interface (`place_group`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Token, Type, parenthesized};

use super::expand::{atom_check, slot_check};
use crate::util::type_text;

/// `group name(inputs) -> (outputs) = expr`.
pub(crate) struct RunGroup {
    pub(crate) name: Ident,
    pub(crate) inputs: Vec<(Ident, Type)>,
    /// The name (a symbol, or a pattern ending in `*`), spanned on its
    /// identifier, and the type.
    pub(crate) outputs: Vec<(String, Ident, Type)>,
    pub(crate) expr: Expr,
}

/// Whether the input starts a run-time group: `group name(`.
pub(crate) fn peek(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    matches!(fork.call(Ident::parse_any), Ok(w) if w == "group")
        && fork.peek(Ident)
        && fork.peek2(syn::token::Paren)
}

pub(crate) fn parse(input: ParseStream<'_>) -> syn::Result<RunGroup> {
    input.call(Ident::parse_any)?;
    let name: Ident = input.parse()?;
    let content;
    parenthesized!(content in input);
    let inputs = Punctuated::<(Ident, Type), Token![,]>::parse_terminated_with(&content, |i| {
        let name: Ident = i.parse()?;
        i.parse::<Token![:]>()?;
        Ok((name, i.parse()?))
    })?
    .into_iter()
    .collect();
    let mut outputs = Vec::new();
    if input.peek(Token![->]) {
        input.parse::<Token![->]>()?;
        let content;
        parenthesized!(content in input);
        let list =
            Punctuated::<(String, Ident, Type), Token![,]>::parse_terminated_with(&content, |i| {
                let name: Ident = i.parse()?;
                let mut text = name.unraw().to_string();
                if i.peek(Token![*]) {
                    i.parse::<Token![*]>()?;
                    text.push('*');
                }
                i.parse::<Token![:]>()?;
                Ok((text, name, i.parse()?))
            })?;
        outputs = list.into_iter().collect();
    }
    if !input.peek(Token![=]) {
        return Err(input.error(
            "a group built at run time ends with `= expr`, an expression that makes its `flow::Flow`: `group name(inputs) -> (outputs) = make_group(..)`",
        ));
    }
    input.parse::<Token![=]>()?;
    let expr: Expr = input.parse()?;
    Ok(RunGroup {
        name,
        inputs,
        outputs,
        expr,
    })
}

impl RunGroup {
    fn marker(&self) -> Ident {
        format_ident!("group_{}", self.name.unraw())
    }

    fn info(&self, i: usize) -> Ident {
        format_ident!("GROUP_INFO_{}", i)
    }

    /// The node of the flow's table, spanned on the group's name.
    pub(crate) fn entry(&self, i: usize, parent: u32, end: u32) -> TokenStream {
        let info = self.info(i);
        let name = self.name.unraw().to_string();
        quote_spanned! {self.name.span()=>
            __rt::NodeEntry {
                kind: __rt::NodeKind::Atom(&#info),
                name: #name,
                parent: #parent,
                end: #end,
                rebinds: &[],
                renames: &[],
                injects: &[],
                retry: &[],
            }
        }
    }

    /// The provider type standing for the group in the type checks.
    pub(crate) fn provider(&self) -> TokenStream {
        let marker = self.marker();
        quote!(#marker)
    }

    /// The group's signature, its marker type, and the checks of its inputs.
    pub(crate) fn items(&self, i: usize) -> TokenStream {
        let info = self.info(i);
        let marker = self.marker();
        let gname = self.name.unraw().to_string();
        let input_infos = self.inputs.iter().map(|(n, ty)| {
            let (n, t) = (n.unraw().to_string(), type_text(ty));
            quote!(__rt::InputInfo::new(#n, #t, __rt::InputShape::Required))
        });
        let output_infos = self.outputs.iter().map(|(n, _, ty)| {
            let t = type_text(ty);
            quote!(__rt::OutputInfo::new(#n, #t))
        });
        let provides = self.outputs.iter().map(|(n, _, ty)| {
            quote! {
                impl __rt::Provides<{ __rt::symbol_hash(#n) }> for #marker {
                    type Ty = #ty;
                }
            }
        });
        let slot_checks = self.inputs.iter().map(|(n, ty)| {
            let symbol = n.unraw().to_string();
            let trait_name = format_ident!("group_{}_requires_{}", gname, symbol);
            let message = format!(
                "group `{gname}` requires `{symbol}: {}`, but its provider `{{W}}` provides `{symbol}` as `{{X}}`: make the types agree",
                type_text(ty)
            );
            let label = format!("`{symbol}` is provided as `{{X}}` here");
            quote_spanned! {n.span()=>
                #[diagnostic::on_unimplemented(message = #message, label = #label)]
                #[allow(non_camel_case_types)]
                trait #trait_name<X, W> {}
                impl<S, W> #trait_name<#ty, W> for S {}
                impl __rt::Requires<{ __rt::symbol_hash(#symbol) }> for #marker {
                    type Ty = #ty;
                    type Check<X, W> = dyn #trait_name<X, W>;
                }
            }
        });
        let row = format_ident!("FLOW_ROW_{}", i);
        let checks = self
            .inputs
            .iter()
            .enumerate()
            .map(|(j, (n, _))| slot_check(&quote!(#marker), &row, j, n.span()));
        let check_fn = format_ident!("flow_check_group_{}", i);
        let span = self.name.span();
        let atom_check = atom_check(i, &row, &check_fn, checks, span);
        quote_spanned! {span=>
            const #info: __rt::TaskInfo = __rt::TaskInfo {
                name: __rt::GROUP_INFO,
                inputs: &[#(#input_infos),*],
                outputs: &[#(#output_infos),*],
            };
            #[allow(non_camel_case_types, dead_code)]
            struct #marker {}
            impl __rt::Requires<0> for #marker {
                type Ty = ();
                type Check<X, W> = dyn ::core::any::Any;
            }
            #(#provides)*
            #(#slot_checks)*
            #atom_check
        }
    }

    /// The run-time item: the expression's flow, named after the group and
    /// checked against the interface into `__flow_group_errors`.
    pub(crate) fn build(&self) -> TokenStream {
        let name = self.name.unraw().to_string();
        let requires = self.inputs.iter().map(|(n, ty)| {
            let n = n.unraw().to_string();
            quote!(.requires::<#ty>(#n))
        });
        let provides = self
            .outputs
            .iter()
            .map(|(n, _, ty)| quote!(.provides::<#ty>(#n)));
        let expr = &self.expr;
        let value = quote_spanned!(expr.span()=> { let __group: __rt::Flow = #expr; __group });
        quote! {
            __rt::place_group(
                __rt::Interface::new(#name)#(#requires)*#(#provides)*,
                #value,
                &mut __flow_group_errors,
            )
        }
    }
}
