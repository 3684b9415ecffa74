//! Running a pipeline: the flow it becomes, and the task of each step.

mod process;
pub(crate) mod report;
pub(crate) mod settings;
mod stale;
pub(crate) mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flow_core::{Atom, BuildErrors, Engine, EngineBuilder, Flow, Retry, Store};

use crate::error::Problems;
use crate::model::{ParamType, Pipeline};
use crate::params::Params;
use settings::Settings;
use task::{DEFINITION, RUN_KEY, Shared, StepTask};

/// A run of a pipeline, ready to start: its flow, its inputs (the parameters'
/// values and the run's key), and where its logs go.
///
/// The values are the flow's inputs, so the engine journals them with the
/// run: a run is resumed from the pipeline's definition and the journal
/// alone ([`Pipeline::flow`] and [`EngineBuilder::resume`]).
#[derive(Debug)]
pub struct PipelineRun {
    flow: Flow,
    inputs: Store,
    key: String,
    log_dir: PathBuf,
}

impl PipelineRun {
    /// The flow: a graph of one atom per step.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The run's inputs: each parameter's value, typed, the run's key and
    /// the definition's hash.
    pub fn inputs(&self) -> &Store {
        &self.inputs
    }

    /// The run's key: the name of its directory of logs.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The directory that holds the run's logs: `<logs>/<key>/<step>.stdout`,
    /// `<step>.stderr`, and `<step>.undo.stdout`/`.stderr` for undo commands.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The flow and the inputs, to build an engine as you like.
    pub fn into_parts(self) -> (Flow, Store) {
        (self.flow, self.inputs)
    }

    /// Builds the flow and an engine builder with the run's inputs.
    ///
    /// # Errors
    /// What [`Flow::build`] reports; a pipeline that was read without
    /// problems builds without any.
    pub fn engine(self) -> Result<EngineBuilder, BuildErrors> {
        Ok(Engine::builder(self.flow.build()?).store(self.inputs))
    }
}

impl Pipeline {
    /// The flow of this pipeline with `params`, ready to run on any engine
    /// and store.
    ///
    /// # Errors
    /// Every problem with `params`, together (see [`Pipeline::values`]).
    pub fn to_flow(&self, params: &Params, settings: &Settings) -> Result<PipelineRun, Problems> {
        let mut inputs = self.store(params)?;
        let key = flow_core::FlowId::new().to_string();
        inputs.insert(RUN_KEY, key.clone());
        inputs.insert(DEFINITION, self.hash.clone());
        Ok(PipelineRun {
            flow: self.flow(settings),
            inputs,
            log_dir: settings.logs().join(&key),
            key,
        })
    }

    /// The flow of this pipeline, without values: what resumes a run (the
    /// journal holds its values).
    ///
    /// Each step is an atom named after it; a step with `retry` is an atom in
    /// a flow of the same name, under a retry controller named
    /// `<step>:retry`. The flow's inputs are the parameters, the run's key
    /// (`pipeline:run`) and the definition's hash (`pipeline:definition`).
    pub fn flow(&self, settings: &Settings) -> Flow {
        let settings = Arc::new(settings.clone());
        let mut flow = Flow::graph(self.name.clone())
            .input::<String>(RUN_KEY)
            .input::<String>(DEFINITION);
        for p in &self.params {
            flow = match p.ty {
                ParamType::Int => flow.input::<i64>(p.name.clone()),
                ParamType::Float => flow.input::<f64>(p.name.clone()),
                ParamType::Bool => flow.input::<bool>(p.name.clone()),
                _ => flow.input::<String>(p.name.clone()),
            };
        }
        flow.reserve(self.steps.len());
        for s in &self.steps {
            let task = Shared(Arc::new(StepTask::new(self, s, settings.clone())));
            let atom = Atom::new(s.name.clone(), task);
            match &s.retry {
                Some(r) => {
                    let retry = Retry::times(r.attempts)
                        .named(format!("{}:retry", s.name))
                        .backoff(r.backoff);
                    flow.push(Flow::linear(s.name.clone()).retry(retry).add(atom));
                }
                None => {
                    flow.push(atom);
                }
            }
        }
        for s in &self.steps {
            for (dep, _) in &s.depends_on {
                flow.push_link(dep.clone(), s.name.clone());
            }
        }
        flow
    }
}
