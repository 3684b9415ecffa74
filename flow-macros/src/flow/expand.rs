//! Generation of a `flow!`.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::checks::check;
use super::group::RunGroup;
use super::parse::{AtomDef, Binding, FlowDef, Group, Item, Kind};
use crate::util::{Errors, type_text};

/// How many input slots per task are compared by type (`MAX_CHECKED_SLOTS`
/// in flow-core's `checked` module; the generated code asserts they agree).
const CHECKED_SLOTS: usize = 24;

/// Entries per provider table (`AT_FANOUT` in flow-core's `checked` module).
const FANOUT: usize = 128;

/// A node of the flattened tree.
pub(super) struct Node<'a> {
    pub(super) parent: u32,
    pub(super) end: u32,
    pub(super) what: What<'a>,
    /// The run-time name, as an expression of type `&'static str`.
    pub(super) name: TokenStream,
}

pub(super) enum What<'a> {
    Atom(&'a AtomDef),
    Group(&'a Group, String),
    Run(&'a RunGroup),
}

pub(super) struct Flat<'a> {
    pub(super) nodes: Vec<Node<'a>>,
    pub(super) groups: usize,
    /// Whether a group is built at run time.
    pub(super) runs: bool,
}

impl<'a> Flat<'a> {
    fn group(&mut self, g: &'a Group, parent: u32, name: String) -> u32 {
        let index = self.nodes.len() as u32;
        self.nodes.push(Node {
            parent,
            end: 0,
            what: What::Group(g, name.clone()),
            name: quote!(#name),
        });
        for item in &g.items {
            match item {
                Item::Atom(a) => {
                    let path = &a.path;
                    let name = match &a.label {
                        Some(l) => {
                            let s = l.to_string();
                            quote!(#s)
                        }
                        None => {
                            let alias =
                                format_ident!("__FlowTask{}", self.nodes.len(), span = path.span());
                            quote_spanned!(path.span()=> <() as __rt::IsTask<#alias>>::INFO.name)
                        }
                    };
                    let i = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        parent: index,
                        end: i + 1,
                        what: What::Atom(a),
                        name,
                    });
                }
                Item::Group(sub) => {
                    self.groups += 1;
                    let name = sub.name.as_ref().map_or_else(
                        || format!("{}-{}", sub.kind.word(), self.groups),
                        Ident::to_string,
                    );
                    self.group(sub, index, name);
                }
                Item::Run(r) => {
                    self.runs = true;
                    let name = syn::ext::IdentExt::unraw(&r.name).to_string();
                    let i = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        parent: index,
                        end: i + 1,
                        what: What::Run(r),
                        name: quote!(#name),
                    });
                }
            }
        }
        let end = self.nodes.len() as u32;
        self.nodes[index as usize].end = end;
        index
    }
}

/// Generates the whole `flow!` expression.
pub(crate) fn generate(def: &FlowDef, krate: &TokenStream) -> TokenStream {
    let mut flat = Flat {
        nodes: Vec::new(),
        groups: 0,
        runs: false,
    };
    flat.group(&def.body, u32::MAX, def.name.to_string());
    let mut errors = Errors::default();
    check(def, &flat, &mut errors);
    if let Some(errs) = errors.finish() {
        // The errors alone: the last is the block's value, so nothing after
        // them is reported as an unreachable statement.
        return quote!({ #errs });
    }

    let flow_name = def.name.to_string();
    let outputs_index = flat.nodes.len();
    let node_count = outputs_index + 1;

    // Declared inputs.
    let input_infos = def.inputs.iter().map(|(n, ty)| {
        let (n, t) = (n.to_string(), type_text(ty));
        quote!(__rt::OutputInfo::new(#n, #t))
    });
    let input_provides = def.inputs.iter().map(|(n, ty)| {
        let n = n.to_string();
        quote! {
            impl __rt::Provides<{ __rt::symbol_hash(#n) }> for flow_inputs {
                type Ty = #ty;
            }
        }
    });

    // The table's nodes.
    let mut entries = Vec::new();
    let mut at_impls = Vec::new();
    let mut retry_types = Vec::new();
    let mut atom_checks = Vec::new();
    let mut graph_checks = Vec::new();
    let mut links = Vec::new();
    let mut aliases = Vec::new();
    for (i, node) in flat.nodes.iter().enumerate() {
        let parent = node.parent;
        let end = node.end;
        let name = &node.name;
        match &node.what {
            What::Atom(a) => {
                let span = a.path.span();
                let alias = format_ident!("__FlowTask{}", i, span = span);
                let user_path = &a.path;
                aliases.push(quote_spanned! {span=>
                    #[allow(dead_code)]
                    type #alias = #user_path;
                });
                let path = &alias;
                let (rebinds, injects): (Vec<_>, Vec<_>) = a
                    .bindings
                    .iter()
                    .partition(|b| matches!(b, Binding::Rebind(..)));
                let rebinds = rebinds.iter().filter_map(|b| match b {
                    Binding::Rebind(input, symbol) => {
                        let (i, s) = (input.to_string(), symbol.to_string());
                        Some(quote!((#i, #s)))
                    }
                    _ => None,
                });
                let injects = injects.iter().filter_map(|b| match b {
                    Binding::Inject(input, _) => {
                        let i = input.to_string();
                        Some(quote!(#i))
                    }
                    _ => None,
                });
                let renames = super::rename::table_entry(a);
                entries.push(quote_spanned! {span=>
                    __rt::NodeEntry {
                        kind: __rt::NodeKind::Atom(&<() as __rt::IsTask<#path>>::INFO),
                        name: #name,
                        parent: #parent,
                        end: #end,
                        rebinds: &[#(#rebinds),*],
                        renames: #renames,
                        injects: &[#(#injects),*],
                        retry: &[],
                    }
                });
                at_impls.push((i, quote!(#path)));
                let row = format_ident!("FLOW_ROW_{}", i);
                let checks = (0..CHECKED_SLOTS).map(|j| slot_check(&quote!(#path), &row, j, span));
                let check_fn = format_ident!("__flow_check_{}", i);
                atom_checks.push(atom_check(i, &row, &check_fn, checks, span));
            }
            What::Run(r) => {
                entries.push(r.entry(i, parent, end));
                at_impls.push((i, r.provider()));
                atom_checks.push(r.items(i));
            }
            What::Group(g, _) => {
                let kind = match g.kind {
                    Kind::Linear => quote!(__rt::NodeKind::Linear),
                    Kind::Unordered => quote!(__rt::NodeKind::Unordered),
                    Kind::Graph => quote!(__rt::NodeKind::Graph),
                };
                let retry = g.retry.as_ref().and_then(|r| r.provides.as_ref());
                let retry_infos = retry.iter().map(|(n, ty)| {
                    let (n, t) = (n.to_string(), type_text(ty));
                    quote!(__rt::OutputInfo::new(#n, #t))
                });
                entries.push(quote! {
                    __rt::NodeEntry {
                        kind: #kind,
                        name: #name,
                        parent: #parent,
                        end: #end,
                        rebinds: &[],
                        renames: &[],
                        injects: &[],
                        retry: &[#(#retry_infos),*],
                    }
                });
                if let Some((n, ty)) = retry {
                    let marker =
                        format_ident!("retry_of_{}", crate::util::sanitize(&node_label(node)));
                    let n = n.to_string();
                    retry_types.push(quote! {
                        #[allow(non_camel_case_types, dead_code)]
                        struct #marker;
                        impl __rt::Provides<{ __rt::symbol_hash(#n) }> for #marker {
                            type Ty = #ty;
                        }
                    });
                    at_impls.push((i, quote!(#marker)));
                }
                if g.kind == Kind::Graph {
                    let span = g.span;
                    let extra = g.links.len();
                    graph_checks.push(quote_spanned! {span=>
                        const _: () = if let ::core::option::Option::Some(m) =
                            __rt::check_graph::<__FLOW_S, __FLOW_N, __FLOW_P, { __FLOW_S + #extra }>(&__FLOW_TABLE, &__FLOW_RES, #i)
                        {
                            ::core::panic!("{}", m.text())
                        };
                    });
                    // Links by node index.
                    let first_child = i as u32 + 1;
                    let mut children = Vec::new();
                    let mut c = first_child;
                    while c < end {
                        children.push(c);
                        c = flat.nodes[c as usize].end;
                    }
                    for link in &g.links {
                        let find = |l: &Ident| {
                            children
                                .iter()
                                .copied()
                                .find(|&c| *l == node_label(&flat.nodes[c as usize]))
                        };
                        if let (Some(f), Some(t)) = (find(&link.from), find(&link.to)) {
                            links.push(quote!((#f, #t)));
                        }
                    }
                }
            }
        }
    }

    // The outputs, as a last atom of the root group.
    let output_slots = def.outputs.iter().map(|(n, ty)| {
        let (n, t) = (n.to_string(), type_text(ty));
        quote!(__rt::InputInfo::new(#n, #t, __rt::InputShape::Required))
    });
    let outputs_name = format!("{flow_name}.outputs");
    let output_checks = def.outputs.iter().map(|(n, ty)| {
        let trait_name = format_ident!("output_{}", n);
        let message = format!(
            "flow `{flow_name}` declares the output `{n}: {}`, but its provider `{{W}}` provides `{n}` as `{{X}}`",
            type_text(ty)
        );
        let label = format!("`{n}` is provided as `{{X}}` here");
        let name = n.to_string();
        let span = n.span();
        quote_spanned! {span=>
            #[diagnostic::on_unimplemented(message = #message, label = #label)]
            #[allow(non_camel_case_types)]
            trait #trait_name<X, W> {}
            impl<S, W> #trait_name<#ty, W> for S {}
            impl __rt::Requires<{ __rt::symbol_hash(#name) }> for flow_outputs {
                type Ty = #ty;
                type Check<X, W> = dyn #trait_name<X, W>;
            }
        }
    });
    let output_row = format_ident!("FLOW_OUTPUTS");
    let output_predicates = (0..def.outputs.len()).map(|j| {
        slot_check(
            &quote!(flow_outputs),
            &output_row,
            j,
            def.outputs[j].0.span(),
        )
    });
    let name_span = def.name.span();
    let outputs_check = quote_spanned! {name_span=>
        const _: () = if let ::core::option::Option::Some(m) = __rt::check_atom(&__FLOW_TABLE, &__FLOW_RES, #outputs_index) {
            ::core::panic!("{}", m.text())
        };
        #[allow(dead_code)]
        const FLOW_OUTPUTS: __rt::Row = __rt::row(&__FLOW_TABLE, &__FLOW_RES, #outputs_index);
        #[allow(dead_code)]
        fn __flow_check_outputs() {
            #(#output_predicates)*
        }
    };

    at_impls.push((node_count, quote!(flow_inputs)));
    at_impls.push((node_count + 1, quote!(__rt::Unresolved)));
    let provider_map = provider_map(&at_impls);
    let built = build_group(&def.body, &flat, 0, def);
    let input_types: Vec<&Type> = def.inputs.iter().map(|(_, t)| t).collect();
    let output_types: Vec<&Type> = def.outputs.iter().map(|(_, t)| t).collect();
    let input_names: Vec<String> = def.inputs.iter().map(|(n, _)| n.to_string()).collect();
    let output_names: Vec<String> = def.outputs.iter().map(|(n, _)| n.to_string()).collect();
    let typed = if flat.runs {
        quote! {{
            let mut __flow_group_errors = ::std::vec::Vec::new();
            let __flow_built = #built;
            __rt::TypedFlow::<(#(#input_types,)*), (#(#output_types,)*)>::with_group_errors(
                __flow_built,
                &[#(#input_names),*],
                &[#(#output_names),*],
                __flow_group_errors,
            )
        }}
    } else {
        quote! {
            __rt::TypedFlow::<(#(#input_types,)*), (#(#output_types,)*)>::new(
                #built,
                &[#(#input_names),*],
                &[#(#output_names),*],
            )
        }
    };

    quote! {
        {
            use #krate::macro_support as __rt;

            #(#aliases)*

            #[allow(non_camel_case_types, dead_code)]
            struct flow_inputs;
            #(#input_provides)*

            #[allow(dead_code, non_camel_case_types)]
            struct flow_outputs;
            impl __rt::Requires<0> for flow_outputs {
                type Ty = ();
                type Check<X, W> = dyn ::core::any::Any;
            }
            #(#output_checks)*

            const __FLOW_OUTPUTS_INFO: __rt::TaskInfo = __rt::TaskInfo {
                name: #outputs_name,
                inputs: &[#(#output_slots),*],
                outputs: &[],
            };

            static __FLOW_TABLE: __rt::FlowTable = __rt::FlowTable {
                name: #flow_name,
                inputs: &[#(#input_infos),*],
                nodes: &[
                    #(#entries,)*
                    __rt::NodeEntry {
                        kind: __rt::NodeKind::Atom(&__FLOW_OUTPUTS_INFO),
                        name: #outputs_name,
                        parent: 0,
                        end: #node_count as u32,
                        rebinds: &[],
                        renames: &[],
                        injects: &[],
                        retry: &[],
                    },
                ],
                links: &[#(#links),*],
            };
            const __FLOW_N: usize = #node_count;
            const __FLOW_S: usize = __rt::slot_count(&__FLOW_TABLE);
            const __FLOW_P: usize = __rt::output_count(&__FLOW_TABLE);
            static __FLOW_RES: __rt::Resolution<__FLOW_S, __FLOW_N, __FLOW_P> = __rt::resolve(&__FLOW_TABLE);

            const _: () = ::core::assert!(
                __rt::MAX_CHECKED_SLOTS == #CHECKED_SLOTS && __rt::AT_FANOUT == #FANOUT,
                "flow-macros and flow-core disagree: use the same version of both",
            );

            #[allow(dead_code, non_camel_case_types)]
            struct flow_providers;
            #provider_map
            #(#retry_types)*

            #(#atom_checks)*
            #(#graph_checks)*
            #outputs_check

            #typed
        }
    }
}

/// The type check of slot `j` of `task` at row `row`: `&()` coerced to the
/// `dyn` of the input's check trait, spanned on `span` (where the error
/// points).
pub(super) fn slot_check(
    task: &TokenStream,
    row: &Ident,
    j: usize,
    span: proc_macro2::Span,
) -> TokenStream {
    let x = quote_spanned!(span=> &());
    quote! {
        let _: &__rt::Check<
            #task,
            { #row.name[#j] },
            flow_providers,
            { #row.hi[#j] },
            { #row.lo[#j] },
            { #row.hash[#j] },
        > = #x;
    }
}

/// `AtHi` and `AtLo` impls mapping each provider index to its type, in
/// tables of `AT_FANOUT` (128) entries.
fn provider_map(entries: &[(usize, TokenStream)]) -> TokenStream {
    let mut tables: BTreeMap<usize, Vec<(usize, &TokenStream)>> = BTreeMap::new();
    for (index, ty) in entries {
        tables
            .entry(index / FANOUT)
            .or_default()
            .push((index % FANOUT, ty));
    }
    let mut out = TokenStream::new();
    for (hi, rows) in tables {
        let table = format_ident!("flow_providers_{}", hi);
        let rows = rows.iter().map(|(lo, ty)| {
            quote! {
                impl __rt::AtLo<#lo> for #table {
                    type Task = #ty;
                }
            }
        });
        out.extend(quote! {
            #[allow(dead_code, non_camel_case_types)]
            struct #table;
            impl __rt::AtHi<#hi> for flow_providers {
                type Next = #table;
            }
            #(#rows)*
        });
    }
    out
}

fn node_label(node: &Node<'_>) -> String {
    match &node.what {
        What::Atom(a) => a.label().to_string(),
        What::Group(_, name) => name.clone(),
        What::Run(r) => syn::ext::IdentExt::unraw(&r.name).to_string(),
    }
}

/// The run-time builder expression for group `g`, node `index`.
fn build_group(g: &Group, flat: &Flat<'_>, index: u32, def: &FlowDef) -> TokenStream {
    let What::Group(_, name) = &flat.nodes[index as usize].what else {
        return quote!(::core::unreachable!());
    };
    let ctor = match g.kind {
        Kind::Linear => quote!(linear),
        Kind::Unordered => quote!(unordered),
        Kind::Graph => quote!(graph),
    };
    let mut out = quote!(__rt::Flow::#ctor(#name));
    if index == 0 {
        for (n, ty) in &def.inputs {
            let n = n.to_string();
            out.extend(quote!(.input::<#ty>(#n)));
        }
    }
    if let Some(retry) = &g.retry {
        let expr = &retry.expr;
        let named = quote!(__rt::name_retry(#expr, #name));
        let with = match &retry.provides {
            Some((n, _)) => {
                let n = n.to_string();
                quote!(__rt::Retry::provides(#named, #n))
            }
            None => named,
        };
        out.extend(quote!(.retry(#with)));
    }
    let mut c = index + 1;
    let end = flat.nodes[index as usize].end;
    let mut names: BTreeMap<String, TokenStream> = BTreeMap::new();
    for item in &g.items {
        let node = &flat.nodes[c as usize];
        names.insert(node_label(node), node.name.clone());
        let built = match item {
            Item::Atom(a) => build_atom(a, &node.name, c),
            Item::Group(sub) => build_group(sub, flat, c, def),
            Item::Run(r) => r.build(),
        };
        out.extend(quote!(.add(#built)));
        c = node.end;
    }
    debug_assert!(c == end);
    for link in &g.links {
        let (Some(from), Some(to)) = (
            names.get(&link.from.to_string()),
            names.get(&link.to.to_string()),
        ) else {
            continue;
        };
        match &link.decider {
            Some(d) => out.extend(quote!(.link_if(#from, #to, #d))),
            None => out.extend(quote!(.link(#from, #to))),
        }
    }
    out
}

fn build_atom(a: &AtomDef, name: &TokenStream, index: u32) -> TokenStream {
    let span = a.path.span();
    let path = format_ident!("__FlowTask{}", index, span = span);
    let value = match (&a.fields, &a.value) {
        (_, Some(expr)) => quote_spanned!(expr.span()=> { let __task: #path = #expr; __task }),
        (Some(fields), None) => quote_spanned!(span=> #path { #fields }),
        (None, None) => quote_spanned!(span=> #path {}),
    };
    let mut out = quote!(__rt::Atom::new(#name, #value));
    for b in &a.bindings {
        match b {
            Binding::Rebind(input, symbol) => {
                let (i, s) = (input.to_string(), symbol.to_string());
                out.extend(quote!(.rebind(#i, #s)));
            }
            Binding::Inject(input, expr) => {
                let i = input.to_string();
                let espan = expr.span();
                let ispan = input.span();
                let ty = quote_spanned!(ispan=> <#path as __rt::Requires<{ __rt::symbol_hash(#i) }>>::Ty);
                out.extend(
                    quote_spanned!(espan=> .inject(#i, { let __value: #ty = #expr; __value })),
                );
            }
            Binding::Rename(..) => {}
        }
    }
    out.extend(super::rename::builder_calls(a));
    if let Some(p) = &a.priority {
        out.extend(quote_spanned!(p.span()=> .priority(#p)));
    }
    out
}

/// The checks of the atom (or run-time group) at node `i`, spanned on it:
/// its names, in a constant of its own that panics with the sentence (so
/// that the compiler prints the sentence and this line only: not the frames
/// of the evaluation that built it, nor the uses of a constant in error);
/// its row, which never fails; and its type checks, in a function of their
/// own.
pub(super) fn atom_check(
    i: usize,
    row: &Ident,
    check_fn: &Ident,
    checks: impl Iterator<Item = TokenStream>,
    span: proc_macro2::Span,
) -> TokenStream {
    quote_spanned! {span=>
        const _: () = if let ::core::option::Option::Some(m) = __rt::check_atom(&__FLOW_TABLE, &__FLOW_RES, #i) {
            ::core::panic!("{}", m.text())
        };
        #[allow(dead_code)]
        const #row: __rt::Row = __rt::row(&__FLOW_TABLE, &__FLOW_RES, #i);
        #[allow(dead_code, non_snake_case)]
        fn #check_fn() {
            #(#checks)*
        }
    }
}
