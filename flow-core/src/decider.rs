//! Conditional links: a graph link that carries a *decider*, run just before the
//! link's target would start.
//!
//! A decider sees the results of the atoms on the target's incoming decider
//! links. If any decider says no, the target is ignored (`IGNORE`), and so is
//! the region chosen by the widest [`Depth`] among the "no" votes. Ignored atoms
//! count as done for their successors and are skipped by revert.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use flow::{Atom, AtomState, Decider, Engine, Flow, FnTask, Outputs, Signature};
//! let check = FnTask::sync(Signature::new().provides::<bool>("healthy"), |_| Ok(Outputs::one(false)));
//! let deploy = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
//! let flow = Flow::graph("g")
//!     .add(Atom::new("check", check))
//!     .add(Atom::new("deploy", deploy))
//!     .link_if("check", "deploy", Decider::new(|r| r.get::<bool>("check") == Some(&true)))
//!     .build()
//!     .unwrap();
//! let mut engine = Engine::builder(flow).build();
//! engine.run().await.unwrap();
//! assert_eq!(engine.atom_state("deploy"), Some(AtomState::Ignore));
//! # });
//! ```
//!
//! # Depths
//!
//! As in TaskFlow, a nested flow is another flow: `Neighbors` and `Flow`
//! stop at it, and at the end of the graph flow; only `All` goes into
//! nested flows and past the graph. Take graph `g`, followed by `e` in a
//! linear flow, whose link `a -> b` carries a decider that says no:
//!
//! ```text
//!        no         yes
//!   a ------> b ---------> sub [ s1 -> s2 ]
//!             |             ^
//!             v             |
//!             c ----> d ----'
//! ```
//!
//! | depth       | ignored                     | runs                        |
//! |-------------|-----------------------------|-----------------------------|
//! | `Atom`      | `b`                         | `a`, `c`, `d`, `s1`, `s2`, `e` |
//! | `Neighbors` | `b`, `c`                    | `a`, `d`, `s1`, `s2`, `e`   |
//! | `Flow`      | `b`, `c`, `d`               | `a`, `s1`, `s2`, `e`        |
//! | `All`       | `b`, `c`, `d`, `s1`, `s2`, `e` | `a`                      |
//!
//! `sub` runs under `Neighbors` and `Flow` although `b` was ignored: its own
//! decider (`b -> sub`) says yes, and an ignored atom counts as done.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use flow::{Atom, AtomState, Decider, Depth, Engine, Flow, FnTask, Outputs, Signature};
//! let step = |name: &'static str| {
//!     Atom::new(name, FnTask::sync(Signature::new().provides::<u32>(name), |_| Ok(Outputs::one(1u32))))
//! };
//! let decided = |depth: Depth| {
//!     Flow::linear("outer")
//!         .add(
//!             Flow::graph("g")
//!                 .add(step("a"))
//!                 .add(step("b"))
//!                 .add(step("c"))
//!                 .add(step("d"))
//!                 .add(Flow::linear("sub").add(step("s1")).add(step("s2")))
//!                 .link_if("a", "b", Decider::new(|r| r.get::<u32>("a") == Some(&2)).depth(depth))
//!                 .link_if("b", "sub", Decider::new(|_| true))
//!                 .link("b", "c")
//!                 .link("c", "d")
//!                 .link("d", "sub"),
//!         )
//!         .add(step("e"))
//!         .build()
//!         .unwrap()
//! };
//! for (depth, ignored) in [
//!     (Depth::Atom, vec!["b"]),
//!     (Depth::Neighbors, vec!["b", "c"]),
//!     (Depth::Flow, vec!["b", "c", "d"]),
//!     (Depth::All, vec!["b", "c", "d", "s1", "s2", "e"]),
//! ] {
//!     let mut engine = Engine::builder(decided(depth)).build();
//!     engine.run().await.unwrap();
//!     let skipped: Vec<&str> = ["a", "b", "c", "d", "s1", "s2", "e"]
//!         .into_iter()
//!         .filter(|atom| engine.atom_state(atom) == Some(AtomState::Ignore))
//!         .collect();
//!     assert_eq!(skipped, ignored, "{depth:?}");
//! }
//! # });
//! ```
//!
//! **Deviation:** when a link's target is a nested flow, its region is all of
//! that flow's atoms, and the depth starts from there. TaskFlow applies such
//! a decider to each first atom of the nested flow in turn, so that `Atom`
//! there ignores only those first atoms and runs the rest of the flow.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::symbol::Data;
use crate::task::Outputs;

/// How much a "no" ignores besides the link's target; see the
/// [module's docs](self#depths) for each depth on one example.
///
/// The *graph's own atoms* are the atoms of the graph flow holding the link
/// that are not inside a flow nested in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Depth {
    /// Only the target (all of its atoms, when it is a flow). What follows
    /// it runs, the target counting as done.
    Atom,
    /// The target and the graph's own atoms one link after it. A flow
    /// nested in the graph, and what follows the graph, run.
    Neighbors,
    /// The target and the graph's own atoms that follow it through the
    /// graph's own atoms. A flow nested in the graph runs (TaskFlow: "it will
    /// not affect tasks/retries that are in successor nested flows"), and so
    /// does what follows only through it, and what follows the graph.
    Flow,
    /// The target and everything after it: in nested flows, and after the
    /// graph. The default.
    #[default]
    All,
}

/// The results a decider sees: the outputs of the atoms on the target's
/// incoming decider links, by atom name.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub(crate) map: BTreeMap<String, Outputs>,
}

impl Results {
    /// The first output of `atom`, if it is a `T`.
    pub fn get<T: Data>(&self, atom: &str) -> Option<&T> {
        self.map.get(atom)?.values().first()?.downcast_ref()
    }

    /// All outputs of `atom`.
    pub fn outputs(&self, atom: &str) -> Option<&Outputs> {
        self.map.get(atom)
    }

    /// The atoms whose results are here.
    pub fn atoms(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

type DecideFn = dyn Fn(&Results) -> bool + Send + Sync;

/// A function that says whether a link's target runs, with the depth of what a
/// "no" ignores.
#[derive(Clone)]
pub struct Decider {
    pub(crate) decide: Arc<DecideFn>,
    pub(crate) depth: Depth,
}

impl Decider {
    /// A decider with the default depth, [`Depth::All`].
    pub fn new(decide: impl Fn(&Results) -> bool + Send + Sync + 'static) -> Self {
        Decider {
            decide: Arc::new(decide),
            depth: Depth::All,
        }
    }

    /// Sets what a "no" ignores besides the target.
    pub fn depth(mut self, depth: Depth) -> Self {
        self.depth = depth;
        self
    }
}

impl fmt::Debug for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decider")
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}
