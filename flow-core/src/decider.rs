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
//! use flow_core::{Atom, AtomState, Decider, Engine, Flow, FnTask, Outputs, Signature};
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

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::symbol::Data;
use crate::task::Outputs;

/// How much a "no" ignores besides the link's target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Depth {
    /// Only the target (all of its atoms, when it is a flow).
    Atom,
    /// The target and its direct successors.
    Neighbors,
    /// The target and everything after it inside the same graph flow.
    Flow,
    /// The target and everything after it. The default.
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
