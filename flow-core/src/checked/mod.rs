//! Compile-time checking of flows written with `flow!`.
//!
//! `flow!` describes its flow in a `static` [`FlowTable`]: the tree of groups
//! and atoms, each atom with its task's [`TaskInfo`]. While the
//! program compiles, `resolve` finds the provider of every input of every
//! atom, with the rules of [`Flow::build`](crate::Flow::build), and
//! [`check_atom`] and [`check_graph`], evaluated in constants spanned on the
//! atom (or graph) in the macro call, stop the build with the same sentence
//! [`BuildError`](crate::BuildError) prints at run time. The types of the
//! inputs are then compared exactly by the trait solver, through
//! [`Check`], with the provider found here given as a const generic.
//!
//! Nothing here is meant to be written by hand: these are the building blocks
//! of the code `flow!` generates. Hidden from the documentation, and not part
//! of the stable API: they change without notice.

mod message;
pub use message::Msg;
mod check;
mod group;
mod rename_check;
mod resolve;
mod slots;
mod suggest;
mod typed;

pub use crate::pattern::name_matches;
pub use check::{check_atom, check_graph};
pub use group::{GROUP_INFO, Interface, place_group};
pub use resolve::{Row, provider_at, resolve, row, slot_hash};
pub use slots::{output_count, slot_count, slot_count_of};
pub use typed::{FlowInputs, FlowOutputs, TypedFlow};

use crate::define::{OutputInfo, TaskInfo};

/// No parent: the root group.
pub const NO_NODE: u32 = u32::MAX;

/// The `At` index of an input no provider satisfies (absent, injected, or in
/// error): its check is skipped.
pub const UNRESOLVED: usize = usize::MAX;

/// What a node of a [`FlowTable`] is.
#[derive(Clone, Copy, Debug)]
pub enum NodeKind {
    /// An atom running this task.
    Atom(&'static TaskInfo),
    /// A linear group.
    Linear,
    /// An unordered group.
    Unordered,
    /// A graph group.
    Graph,
}

/// A node of a [`FlowTable`]: an atom or a group. Nodes are in pre-order, so
/// a group's subtree is the nodes `index..end`.
#[derive(Clone, Copy, Debug)]
pub struct NodeEntry {
    /// Atom or group, and which.
    pub kind: NodeKind,
    /// The atom's or group's name.
    pub name: &'static str,
    /// The enclosing group, or [`NO_NODE`] for the root.
    pub parent: u32,
    /// One past the last node of the subtree.
    pub end: u32,
    /// For an atom: `(input, symbol)` pairs, the input reading the symbol.
    pub rebinds: &'static [(&'static str, &'static str)],
    /// For an atom: `(output, symbol)` pairs, the output published as the
    /// symbol.
    pub renames: &'static [(&'static str, &'static str)],
    /// For an atom: the inputs given a constant.
    pub injects: &'static [&'static str],
    /// For a group with a retry controller: what the controller provides.
    pub retry: &'static [OutputInfo],
}

impl NodeEntry {
    const fn info(&self) -> Option<&'static TaskInfo> {
        match self.kind {
            NodeKind::Atom(info) => Some(info),
            _ => None,
        }
    }
}

/// A flow as `flow!` describes it.
#[derive(Clone, Copy, Debug)]
pub struct FlowTable {
    /// The flow's name.
    pub name: &'static str,
    /// The declared inputs.
    pub inputs: &'static [OutputInfo],
    /// The tree, root first, in pre-order.
    pub nodes: &'static [NodeEntry],
    /// Explicit links between items of a graph group: `(from, to)` node indices.
    pub links: &'static [(u32, u32)],
}

/// How one input slot of one atom was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Provided: see [`Slot::provider`].
    Found,
    /// Given a constant at the use site.
    Injected,
    /// Optional, and nothing provides it.
    Absent,
    /// Nothing provides it and the flow does not declare it.
    Nowhere,
    /// Only this node, which does not run before, provides it.
    RunsAfter(u32),
    /// Only this node, in the same unordered group (the second), provides it.
    Concurrent(u32, u32),
    /// Several nodes with no order between them provide it: those inside the
    /// subtree of this node.
    Ambiguous(u32),
}

/// One input slot (an input, or one symbol of a collection) of one atom.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The symbol read (after rebinding).
    pub symbol: &'static str,
    /// [`symbol_hash`](crate::symbol_hash) of the symbol.
    pub hash: u64,
    /// The provider's index for `At`: an atom's node, a group's node for its
    /// retry controller, the node count for the flow's inputs, or
    /// [`UNRESOLVED`].
    pub provider: usize,
    /// The outcome.
    pub status: Status,
}

const EMPTY_SLOT: Slot = Slot {
    symbol: "",
    hash: 0,
    provider: UNRESOLVED,
    status: Status::Absent,
};

/// Every slot of every atom, resolved once; `base[n]` is where node `n`'s
/// slots start. `P` is the number of outputs in the flow (the provider index).
#[derive(Clone, Copy, Debug)]
pub struct Resolution<const S: usize, const N: usize, const P: usize> {
    /// The slots, atom after atom.
    pub slots: [Slot; S],
    /// Where each node's slots start.
    pub base: [u32; N],
    /// Every output, `(hash, node)`, sorted.
    pub providers: [(u64, u32); P],
    /// Every atom's name hash and node, sorted (groups get `u64::MAX`).
    pub names: [(u64, u32); N],
}

/// How many input slots of a task `flow!` compares by type; a task with more
/// fails to compile inside `flow!` (the run-time builder has no limit).
pub const MAX_CHECKED_SLOTS: usize = 24;

/// How many provider indices one [`AtLo`] table holds. Provider types are
/// found in two steps (`index / AT_FANOUT`, then `index % AT_FANOUT`) so that
/// the compiler never picks among thousands of impls of one trait for one
/// type.
pub const AT_FANOUT: usize = 128;

/// First step from a provider index to the provider's type: the table of
/// indices `H * AT_FANOUT ..`.
pub trait AtHi<const H: usize> {
    /// The table.
    type Next;
}

/// Second step from a provider index to the provider's type.
pub trait AtLo<const L: usize> {
    /// The provider: a task type, or a marker type.
    type Task;
}

/// The provider of an input that needs no type check.
#[derive(Debug)]
pub struct Unresolved;

impl<const H: u64> crate::Provides<H> for Unresolved {
    type Ty = Unresolved;
}

/// The type check of one input slot: task `T`'s input whose name hashes to
/// `N` (0 for a slot that needs no check) is given, by the provider at
/// `HI * AT_FANOUT + LO` in flow `F`, the value of its output whose symbol
/// hashes to `H`. `flow!` coerces `&()` to a reference to this type: the
/// coercion holds only when the provided type is the required one, and its
/// failure prints the message of the input's own trait, with no chain of
/// impls in between.
pub type Check<T, const N: u64, F, const HI: usize, const LO: usize, const H: u64> =
    <T as Requires<N>>::Check<
        <ProviderAt<F, HI, LO> as crate::Provides<H>>::Ty,
        ProviderAt<F, HI, LO>,
    >;

/// The provider at `HI * AT_FANOUT + LO` in flow `F`.
pub type ProviderAt<F, const HI: usize, const LO: usize> =
    <<F as AtHi<HI>>::Next as AtLo<LO>>::Task;

/// Implemented by a task made by `#[task]` for each of its inputs (by the
/// [`symbol_hash`](crate::symbol_hash) of its name): the type of the input,
/// which a constant injected at the use site must have.
#[diagnostic::on_unimplemented(
    message = "task `{Self}` has no input of that name to give a constant",
    label = "no such input",
    note = "use the name of one of the task's parameters (or of a symbol its `#[collect]` lists)"
)]
pub trait Requires<const H: u64> {
    /// The input's type.
    type Ty;
    /// `dyn` of the input's check trait, which `()` implements for
    /// `X` = the input's type and any provider `W`; its failure message
    /// names the task, the input, the provider and both types. `Requires<0>`
    /// (a slot with nothing to check) has `dyn Any`.
    type Check<X, W>: ?Sized;
}

/// Names the retry controller of group `group` `<group>.retry`, unless its
/// strategy was given a name of its own with [`Retry::named`](crate::Retry::named).
pub fn name_retry(retry: crate::Retry, group: &str) -> crate::Retry {
    if retry.name == "retry" {
        retry.named(format!("{group}.retry"))
    } else {
        retry
    }
}
