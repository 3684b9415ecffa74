//! The structural checks of a `flow!` made before any code is generated:
//! names of siblings, labels, retry controllers and links.

use std::collections::BTreeMap;

use syn::Ident;

use super::expand::{Flat, What};
use super::parse::{FlowDef, Group, Item, Kind};
use crate::util::Errors;

/// The label links use for item `item` of a group.
pub(super) fn label(item: &Item) -> Option<Ident> {
    match item {
        Item::Atom(a) => Some(a.label()),
        Item::Group(g) => g.name.clone(),
        Item::Run(r) => Some(r.name.clone()),
    }
}

/// Two items of a linear or unordered group with one name, when one of them
/// is a group: two sibling sub-flows, or a sub-flow named like a sibling atom
/// (as `Flow::build` refuses them). Two atoms of one name anywhere in the
/// tree are the compile-time check's, which knows the tasks' own names.
pub(super) fn sibling_names(g: &Group, gname: &str, errors: &mut Errors) {
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    for item in &g.items {
        let Some(name) = label(item) else { continue };
        let is_group = matches!(item, Item::Group(_) | Item::Run(_));
        match seen.get(&name.to_string()).copied() {
            Some(true) if is_group => {
                let kind = match item {
                    Item::Group(sub) => sub.kind.word(),
                    Item::Atom(_) | Item::Run(_) => "linear",
                };
                errors.push(
                    &name,
                    format!("flow `{gname}` has two sub-flows named `{name}`: the items of a flow need distinct names, rename one (`{kind} {name}_2 {{ ... }}`)"),
                );
            }
            Some(other_is_group) if is_group || other_is_group => errors.push(
                &name,
                format!("flow `{gname}` has an atom and a sub-flow named `{name}`: the items of a flow need distinct names, rename the atom with `as` (`{name} as {name}_task`) or the sub-flow"),
            ),
            Some(_) => {}
            None => {
                seen.insert(name.to_string(), is_group);
            }
        }
    }
}

/// Checks what the tokens alone show: links, retries, declarations.
pub(super) fn check(def: &FlowDef, flat: &Flat<'_>, errors: &mut Errors) {
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for (name, _) in &def.inputs {
        if seen.insert(name.to_string(), ()).is_some() {
            errors.push(
                name,
                format!("the flow input `{name}` is declared twice: declare it once"),
            );
        }
    }
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for (name, _) in &def.outputs {
        if seen.insert(name.to_string(), ()).is_some() {
            errors.push(
                name,
                format!("the flow output `{name}` is declared twice: declare it once"),
            );
        }
    }
    for node in &flat.nodes {
        let What::Group(g, gname) = &node.what else {
            continue;
        };
        if let Some(retry) = &g.retry {
            if g.items.is_empty() {
                errors.add(syn::Error::new(
                    retry.span,
                    format!("retry controller `{gname}.retry` of flow `{gname}` has nothing to control: add atoms to the flow, or remove the controller"),
                ));
            }
        }
        if g.kind != Kind::Graph {
            sibling_names(g, gname, errors);
            continue;
        }
        let mut labels: BTreeMap<String, bool> = BTreeMap::new();
        for item in &g.items {
            if let Some(l) = label(item) {
                if labels
                    .insert(l.to_string(), matches!(item, Item::Group(_) | Item::Run(_)))
                    .is_some()
                {
                    errors.push(
                        &l,
                        format!("graph flow `{gname}` has two items called `{l}`: give one another name with `as`, so links can tell them apart"),
                    );
                }
            }
        }
        for link in &g.links {
            for end in [&link.from, &link.to] {
                if !labels.contains_key(&end.to_string()) {
                    errors.push(
                        end,
                        format!(
                            "graph flow `{gname}` links `{}` -> `{}`, but `{end}` is not an item of that graph: link only atoms or flows added to it",
                            link.from, link.to
                        ),
                    );
                }
            }
            if link.decider.is_some() && labels.get(&link.from.to_string()) == Some(&true) {
                errors.push(
                    &link.from,
                    format!(
                        "graph flow `{gname}` has a decider on the link `{}` -> `{}`, but `{}` is a flow: a decider reads an atom's result, so link from an atom",
                        link.from, link.to, link.from
                    ),
                );
            }
        }
    }
}
