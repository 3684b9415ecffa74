//! Walks of a flow tree that keep their place on the heap, not on the stack:
//! dropping, cloning and printing a [`Flow`], and finding how deep it nests.
//!
//! A flow tree is built by the program, at run time, from data: nothing bounds
//! how deeply its flows nest, so nothing that walks it may recurse, or a tree
//! of some thousands of levels would overflow the thread's stack and abort
//! the process. Each walk here keeps the flows it is inside in a `Vec`.
//! [`Flow::build`] refuses trees deeper than [`Flow::MAX_DEPTH`]; the
//! compiler's own walks (`compile.rs`) keep their place on the heap too.

use std::fmt::{self, Write as _};

use crate::flow::{Flow, Item};

impl Drop for Flow {
    /// Drops the nested flows one after the other rather than one inside the
    /// other.
    fn drop(&mut self) {
        if !self.items.iter().any(|item| matches!(item, Item::Flow(_))) {
            return; // nothing nested: the fields drop as usual
        }
        let mut pending = vec![std::mem::take(&mut self.items)];
        while let Some(items) = pending.pop() {
            for item in items {
                if let Item::Flow(mut sub) = item {
                    pending.push(std::mem::take(&mut sub.items));
                    // `sub` drops here, its items taken: no deeper call.
                }
            }
        }
    }
}

impl Flow {
    /// A copy of this flow with no items yet, room made for its own.
    fn shell(&self) -> Flow {
        Flow {
            name: self.name.clone(),
            pattern: self.pattern,
            items: Vec::with_capacity(self.items.len()),
            links: self.links.clone(),
            inputs: self.inputs.clone(),
            retry: self.retry.clone(),
        }
    }
}

impl Clone for Flow {
    /// Copies the tree, nested flows one after the other.
    fn clone(&self) -> Self {
        // The flows being copied, outermost first: each with the next of
        // its items to copy and its copy so far.
        let mut open: Vec<(&Flow, usize, Flow)> = vec![(self, 0, self.shell())];
        loop {
            let (from, next, _) = open.last_mut().expect("the root stays open until the end");
            match from.items.get(*next) {
                Some(item) => {
                    *next += 1;
                    match item {
                        Item::Atom(atom) => {
                            let copy = Item::Atom(atom.clone());
                            open.last_mut().expect("open").2.items.push(copy);
                        }
                        Item::Flow(sub) => open.push((sub, 0, sub.shell())),
                    }
                }
                None => {
                    let (_, _, done) = open.pop().expect("open");
                    match open.last_mut() {
                        Some(parent) => parent.2.items.push(Item::Flow(Box::new(done))),
                        None => return done,
                    }
                }
            }
        }
    }
}

/// A writer that indents every line it starts by `level` steps of four
/// spaces, as `{:#?}` indents nested values.
struct Pad<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    level: usize,
    line_start: bool,
}

impl fmt::Write for Pad<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for line in s.split_inclusive('\n') {
            if self.line_start {
                for _ in 0..self.level {
                    self.f.write_str("    ")?;
                }
            }
            self.f.write_str(line)?;
            self.line_start = line.ends_with('\n');
        }
        Ok(())
    }
}

impl Pad<'_, '_> {
    /// Writes `text` at `level`.
    fn at(&mut self, level: usize, text: fmt::Arguments<'_>) -> fmt::Result {
        self.level = level;
        self.write_fmt(text)
    }

    /// Starts printing `flow`, whose `Flow {` line is at `level`, up to its
    /// items' opening bracket.
    fn open(&mut self, flow: &Flow, level: usize, pretty: bool) -> fmt::Result {
        if pretty {
            self.at(level, format_args!("Flow {{\n"))?;
            self.at(level + 1, format_args!("name: {:#?},\n", flow.name))?;
            self.at(level + 1, format_args!("pattern: {:#?},\n", flow.pattern))?;
            self.at(level + 1, format_args!("items: ["))?;
            if !flow.items.is_empty() {
                self.write_str("\n")?;
            }
            Ok(())
        } else {
            write!(
                self,
                "Flow {{ name: {:?}, pattern: {:?}, items: [",
                flow.name, flow.pattern
            )
        }
    }

    /// Ends printing `flow`, after its items.
    fn close(&mut self, flow: &Flow, level: usize, pretty: bool) -> fmt::Result {
        if pretty {
            if !flow.items.is_empty() {
                self.at(level + 1, format_args!("]"))?;
            } else {
                self.write_str("]")?;
            }
            self.write_str(",\n")?;
            self.at(level + 1, format_args!("links: {:#?},\n", flow.links))?;
            self.at(level + 1, format_args!("inputs: {:#?},\n", flow.inputs))?;
            self.at(level + 1, format_args!("retry: {:#?},\n", flow.retry))?;
            self.at(level, format_args!("}}"))
        } else {
            write!(
                self,
                "], links: {:?}, inputs: {:?}, retry: {:?} }}",
                flow.links, flow.inputs, flow.retry
            )
        }
    }
}

impl fmt::Debug for Flow {
    /// Prints what `#[derive(Debug)]` would, nested flows one after the
    /// other.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pretty = f.alternate();
        let mut pad = Pad {
            f,
            level: 0,
            line_start: false,
        };
        pad.open(self, 0, pretty)?;
        // The flows being printed, outermost first: each with the next of its
        // items to print and the level of its `Flow {` line.
        let mut open: Vec<(&Flow, usize, usize)> = vec![(self, 0, 0)];
        while let Some((flow, next, level)) = open.last_mut() {
            let (flow, level) = (*flow, *level);
            let Some(item) = flow.items.get(*next) else {
                pad.close(flow, level, pretty)?;
                open.pop();
                if let Some(&(_, _, parent)) = open.last() {
                    // The end of the `Flow(..)` item holding it.
                    if pretty {
                        pad.write_str(",\n")?;
                        pad.at(parent + 2, format_args!("),\n"))?;
                    } else {
                        pad.write_str(")")?;
                    }
                }
                continue;
            };
            if !pretty && *next > 0 {
                pad.write_str(", ")?;
            }
            *next += 1;
            match item {
                Item::Atom(atom) => {
                    if pretty {
                        pad.at(level + 2, format_args!("Atom(\n"))?;
                        pad.at(level + 3, format_args!("{atom:#?},\n"))?;
                        pad.at(level + 2, format_args!("),\n"))?;
                    } else {
                        write!(pad, "Atom({atom:?})")?;
                    }
                }
                Item::Flow(sub) => {
                    if pretty {
                        pad.at(level + 2, format_args!("Flow(\n"))?;
                    } else {
                        pad.write_str("Flow(")?;
                    }
                    pad.open(sub, level + 3, pretty)?;
                    open.push((sub, 0, level + 3));
                }
            }
        }
        Ok(())
    }
}

/// The deepest flow of the tree of `root` (the first in declaration order
/// among the deepest) and how deep it is: 1 for the root alone.
pub(crate) fn deepest(root: &Flow) -> (&str, usize) {
    let mut best = (&*root.name, 1);
    let mut open: Vec<(&Flow, usize)> = vec![(root, 1)];
    while let Some((flow, depth)) = open.pop() {
        if depth > best.1 {
            best = (&flow.name, depth);
        }
        // Pushed last to first, so that the first is taken first.
        for item in flow.items.iter().rev() {
            if let Item::Flow(sub) = item {
                open.push((sub, depth + 1));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Atom, FnTask, Outputs, Signature};

    fn atom(name: &'static str) -> Atom {
        Atom::new(name, FnTask::sync(Signature::new(), |_| Ok(Outputs::new())))
    }

    /// A mirror of the tree's types that derives `Debug`: what the printing
    /// above must match.
    mod derived {
        use crate::{Atom, Link, Name, Pattern, Retry, SymbolSpec};

        #[derive(Debug)]
        #[allow(dead_code)]
        pub(super) struct Flow {
            pub(super) name: Name,
            pub(super) pattern: Pattern,
            pub(super) items: Vec<Item>,
            pub(super) links: Vec<Link>,
            pub(super) inputs: Vec<SymbolSpec>,
            pub(super) retry: Option<Box<(Atom, Retry)>>,
        }

        #[derive(Debug)]
        #[allow(dead_code)]
        pub(super) enum Item {
            Atom(Atom),
            Flow(Box<Flow>),
        }
    }

    fn mirror(flow: &Flow) -> derived::Flow {
        derived::Flow {
            name: flow.name.clone(),
            pattern: flow.pattern,
            items: (flow.items.iter())
                .map(|item| match item {
                    Item::Atom(a) => derived::Item::Atom(a.clone()),
                    Item::Flow(f) => derived::Item::Flow(Box::new(mirror(f))),
                })
                .collect(),
            links: flow.links.clone(),
            inputs: flow.inputs.clone(),
            retry: flow.retry.clone(),
        }
    }

    fn sample() -> Flow {
        Flow::linear("root")
            .input::<u32>("x")
            .add(atom("a"))
            .add(
                Flow::graph("g")
                    .add(atom("b"))
                    .add(Flow::unordered("empty"))
                    .add(Flow::linear("inner").add(atom("c")).add(atom("d")))
                    .link("b", "inner"),
            )
            .add(
                Flow::linear("r")
                    .retry(crate::Retry::times(2).named("again"))
                    .add(atom("e")),
            )
            .add(atom("f"))
    }

    #[test]
    fn debug_prints_what_a_derive_would() {
        let flow = sample();
        assert_eq!(format!("{flow:?}"), format!("{:?}", mirror(&flow)));
        assert_eq!(format!("{flow:#?}"), format!("{:#?}", mirror(&flow)));
        let empty = Flow::graph("none");
        assert_eq!(format!("{empty:?}"), format!("{:?}", mirror(&empty)));
        assert_eq!(format!("{empty:#?}"), format!("{:#?}", mirror(&empty)));
        // Through an item too.
        let item = Item::from(sample());
        let expected = derived::Item::Flow(Box::new(mirror(&sample())));
        assert_eq!(format!("{item:#?}"), format!("{expected:#?}"));
        assert_eq!(format!("{item:?}"), format!("{expected:?}"));
    }

    #[test]
    fn clone_copies_the_whole_tree() {
        let flow = sample();
        let copy = flow.clone();
        assert_eq!(format!("{copy:#?}"), format!("{flow:#?}"));
        drop(flow);
        assert_eq!(copy.items().len(), 4);
    }

    #[test]
    fn deepest_finds_the_first_of_the_deepest() {
        assert_eq!(deepest(&Flow::linear("alone")), ("alone", 1));
        assert_eq!(deepest(&sample()), ("empty", 3));
    }
}
