//! Groups that `flow!` takes at run time: `group name(inputs) -> (outputs) =
//! expr`, where `expr` is a [`Flow`] built with the builder. While the
//! program compiles, the group stands in the flow's table as an atom with the
//! declared signature; when the flow is built, [`place_group`] checks the
//! contents against that signature.

use super::message::Msg;
use super::{FlowTable, Slot, Status};
use crate::compile::{published, short_type};
use crate::define::TaskInfo;
use crate::error::{BuildError, GroupProblem};
use crate::flow::{Flow, Item};
use crate::pattern::{is_pattern, name_matches};
use crate::symbol::{Data, Name, SymbolSpec, TypeInfo};
use crate::task::{InputKind, InputSpec};

/// The name of the [`TaskInfo`] of a run-time group in a `flow!` table (the
/// node carries the group's own name): its errors say "group", not "task".
pub const GROUP_INFO: &str = "(run-time group)";

/// Whether [`slot_error`] has the sentence for slot `slot` of a node of
/// signature `info`: a run-time group's unsatisfied input, or a pattern.
pub(super) const fn has_own_message(info: &TaskInfo, slot: &Slot) -> bool {
    match slot.status {
        Status::Found | Status::Injected | Status::Absent | Status::Ambiguous(_) => false,
        _ => is_pattern(slot.symbol) || super::message::same(info.name, GROUP_INFO),
    }
}

/// The sentence for slot `slot` of node `name` (of signature `info`, the
/// slot's type `ty`) when it is a run-time group's input, or a pattern that
/// nothing matches; `None` to leave it to [`check_atom`](super::check_atom).
pub(super) const fn slot_error(
    t: &FlowTable,
    name: &str,
    info: &TaskInfo,
    slot: &Slot,
    ty: &str,
) -> Option<Msg> {
    let group = super::message::same(info.name, GROUP_INFO);
    let symbol = slot.symbol;
    let who = if group { "group " } else { "task " };
    let m = Msg::new().push(who).code(name);
    match slot.status {
        Status::Nowhere if is_pattern(symbol) => Some(
            m.push(" collects every `")
                .push(symbol)
                .push(": ")
                .push(ty)
                .push("`, but no earlier task in flow ")
                .code(t.name)
                .push(" provides a symbol matching ")
                .code(symbol)
                .push(": add a task that does before it, or a group built at run time that declares it (`group name(..) -> (")
                .push(symbol)
                .push(": ")
                .push(ty)
                .push(") = ..`)"),
        ),
        Status::Nowhere if group => Some(
            m.push(" requires `")
                .push(symbol)
                .push(": ")
                .push(ty)
                .push("`, but no earlier task in flow ")
                .code(t.name)
                .push(" provides ")
                .code(symbol)
                .push(" and the flow does not declare it as an input"),
        ),
        Status::RunsAfter(p) if group || is_pattern(symbol) => Some(
            m.push(" requires `")
                .push(symbol)
                .push(": ")
                .push(ty)
                .push("`, but ")
                .code(symbol)
                .push(" is provided only by ")
                .code(t.nodes[p as usize].name)
                .push(", which does not run before it: move ")
                .code(t.nodes[p as usize].name)
                .push(" earlier"),
        ),
        Status::Concurrent(p, g) if group => Some(
            m.push(" requires `")
                .push(symbol)
                .push(": ")
                .push(ty)
                .push("`, but ")
                .code(symbol)
                .push(" is provided only by ")
                .code(t.nodes[p as usize].name)
                .push(", which runs concurrently with it (same unordered group ")
                .code(t.nodes[g as usize].name)
                .push(")"),
        ),
        _ => None,
    }
}

/// The interface `flow!` declares for a run-time group: its name, what it
/// requires and what it provides (names or patterns), with their types.
#[derive(Clone, Debug)]
pub struct Interface {
    name: &'static str,
    requires: Vec<SymbolSpec>,
    provides: Vec<SymbolSpec>,
}

impl Interface {
    /// A group named `name` that requires and provides nothing.
    pub fn new(name: &'static str) -> Self {
        Interface {
            name,
            requires: Vec::new(),
            provides: Vec::new(),
        }
    }

    /// Declares an input `name: T`.
    pub fn requires<T: Data>(mut self, name: &'static str) -> Self {
        self.requires.push(SymbolSpec::of::<T>(name));
        self
    }

    /// Declares an output `name: T`; `name` may be a pattern (`healthy_*`).
    pub fn provides<T: Data>(mut self, name: &'static str) -> Self {
        self.provides.push(SymbolSpec::of::<T>(name));
        self
    }
}

/// `flow`, named as the interface says, after its contents were checked
/// against it; every disagreement is pushed to `errors`, which the typed
/// flow reports as its build errors.
///
/// The contents may read what their own tasks provide and what the interface
/// declares as inputs, with the declared types; they must provide each
/// declared output (a pattern: at least one matching symbol), with the
/// declared type, and nothing the interface does not declare.
pub fn place_group(iface: Interface, mut flow: Flow, errors: &mut Vec<BuildError>) -> Flow {
    flow.name = Name::Borrowed(iface.name);
    let mut problems = Vec::new();
    // What the contents provide, and what they read.
    let mut provided: Vec<(String, TypeInfo, String)> = Vec::new();
    let mut reads: Vec<(String, TypeInfo, String)> = Vec::new();
    let mut stack = vec![&flow];
    while let Some(f) = stack.pop() {
        let retry = f.retry.as_ref().map(|r| &r.0);
        let atoms = f.items.iter().filter_map(|item| match item {
            Item::Atom(a) => Some(a),
            Item::Flow(sub) => {
                stack.push(sub);
                None
            }
        });
        for a in retry.into_iter().chain(atoms) {
            let sig = &a.signature;
            for (s, o) in published(a).zip(sig.outputs()) {
                provided.push((s.to_string(), o.ty(), a.name.to_string()));
            }
            let inputs: Vec<&InputSpec> = sig.inputs().iter().chain(sig.revert_inputs()).collect();
            for input in inputs {
                let names: Vec<&str> = match input.kind() {
                    InputKind::Required | InputKind::Optional => vec![input.name()],
                    InputKind::Collect(n) | InputKind::CollectMap(n) => {
                        n.iter().map(|s| &**s).collect()
                    }
                    // A pattern reads whatever matches: nothing in particular.
                    _ => Vec::new(),
                };
                for read in names {
                    if a.injects().iter().any(|(n, _)| n == read) {
                        continue;
                    }
                    let symbol = (a.rebinds().iter().rev())
                        .find(|(n, _)| n == read)
                        .map_or(read, |(_, s)| &**s);
                    reads.push((symbol.to_string(), input.ty(), a.name.to_string()));
                }
            }
        }
    }
    for (symbol, ty, atom) in &reads {
        if provided.iter().any(|(s, _, _)| s == symbol) {
            continue;
        }
        match iface.requires.iter().find(|r| r.name() == symbol) {
            Some(r) if r.ty() != *ty => problems.push(GroupProblem::InputType {
                atom: atom.clone(),
                symbol: symbol.clone(),
                declared: short_type(r.ty().name()),
                required: short_type(ty.name()),
            }),
            Some(_) => {}
            None => problems.push(GroupProblem::UndeclaredInput {
                atom: atom.clone(),
                symbol: symbol.clone(),
                type_name: short_type(ty.name()),
            }),
        }
    }
    for out in &iface.provides {
        let mut matched = provided
            .iter()
            .filter(|(s, _, _)| name_matches(out.name(), s));
        let Some(first) = matched.next() else {
            problems.push(GroupProblem::MissingOutput {
                symbol: out.name().to_string(),
                type_name: short_type(out.ty().name()),
            });
            continue;
        };
        if let Some((symbol, ty, atom)) = std::iter::once(first)
            .chain(matched)
            .find(|(_, ty, _)| *ty != out.ty())
        {
            problems.push(GroupProblem::OutputType {
                atom: atom.clone(),
                symbol: symbol.clone(),
                declared_symbol: out.name().to_string(),
                declared: short_type(out.ty().name()),
                provided: short_type(ty.name()),
            });
        }
    }
    for (symbol, ty, atom) in &provided {
        if !iface
            .provides
            .iter()
            .any(|o| name_matches(o.name(), symbol))
        {
            problems.push(GroupProblem::UndeclaredOutput {
                atom: atom.clone(),
                symbol: symbol.clone(),
                type_name: short_type(ty.name()),
            });
        }
    }
    errors.extend(
        problems
            .into_iter()
            .map(|problem| BuildError::GroupInterface {
                group: iface.name.to_string(),
                problem,
            }),
    );
    flow
}
