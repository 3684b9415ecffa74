//! The flow definitions a conductor knows, by name and version.

use std::collections::BTreeMap;

use crate::compile::CompiledFlow;

/// The flow definitions a conductor can run, by name and version.
///
/// A job names a flow and a version; a conductor claims only the jobs whose
/// flow it knows at that version, and leaves the others for a conductor that
/// does. Any flow can be registered: a typed flow from `flow!`
/// ([`Registry::register_typed`]), one made with the
/// [`Flow`](crate::Flow) builder, or a pipeline.
///
/// ```
/// use flow::conductor::Registry;
/// use flow::{Atom, Flow, FnTask, Outputs, Signature};
///
/// let step = FnTask::sync(Signature::new(), |_| Ok(Outputs::new()));
/// let deploy = Flow::linear("deploy").add(Atom::new("step", step)).build().unwrap();
/// let mut registry = Registry::new();
/// registry.register("2", deploy);
/// assert!(registry.get("deploy", "2").is_some());
/// assert!(registry.get("deploy", "1").is_none());
/// assert_eq!(registry.known(), [("deploy".to_string(), "2".to_string())]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Registry {
    flows: BTreeMap<(String, String), CompiledFlow>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `flow` under its own name, at `version` (replacing what was
    /// registered there).
    pub fn register(&mut self, version: impl Into<String>, flow: CompiledFlow) -> &mut Self {
        let name = flow.name().to_string();
        self.register_as(name, version, flow)
    }

    /// Registers a typed flow (from `flow!`) under its name, at `version`.
    ///
    /// # Errors
    /// The flow's build errors, when it could not be built.
    pub fn register_typed<I, O>(
        &mut self,
        version: impl Into<String>,
        flow: &crate::TypedFlow<I, O>,
    ) -> Result<&mut Self, crate::BuildErrors>
    where
        I: crate::checked::FlowInputs,
        O: crate::checked::FlowOutputs,
    {
        let compiled = flow.compiled().map_err(Clone::clone)?.clone();
        Ok(self.register(version, compiled))
    }

    /// Registers `flow` under `name` at `version`.
    pub fn register_as(
        &mut self,
        name: impl Into<String>,
        version: impl Into<String>,
        flow: CompiledFlow,
    ) -> &mut Self {
        self.flows.insert((name.into(), version.into()), flow);
        self
    }

    /// The flow registered under `name` at `version`.
    pub fn get(&self, name: &str, version: &str) -> Option<&CompiledFlow> {
        self.flows.get(&(name.to_string(), version.to_string()))
    }

    /// Every `(name, version)` registered.
    pub fn known(&self) -> Vec<(String, String)> {
        self.flows.keys().cloned().collect()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}
