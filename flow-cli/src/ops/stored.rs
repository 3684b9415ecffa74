//! A run as the store holds it: its record, its atoms, and, for a run of a
//! pipeline, the definition it ran.

use std::path::{Path, PathBuf};

use flow::{AtomDetail, FlowDetail, FlowId};
use flow_pipeline::{ParamType, Params, Pipeline, StatusError, StepReport};

use super::{OpsError, Store};

/// The input of a pipeline run that holds its definition's hash
/// (see `Pipeline::flow`).
pub(crate) const DEFINITION: &str = "pipeline:definition";
/// The input of a pipeline run that holds its key: the name of its
/// directory of logs.
pub(crate) const RUN_KEY: &str = "pipeline:run";

/// A stored run, with its pipeline when it is a run of one.
#[derive(Debug)]
pub(crate) struct StoredRun {
    pub(crate) detail: FlowDetail,
    pub(crate) atoms: Vec<AtomDetail>,
    pub(crate) pipeline: Option<Pipeline>,
}

impl StoredRun {
    /// Reads run `run` and the definition it ran.
    pub(crate) async fn load(store: &Store, run: FlowId) -> Result<StoredRun, OpsError> {
        let (detail, atoms) = store
            .backend()
            .load_flow(run)
            .await
            .map_err(|e| OpsError::storage(e, store.location()))?;
        let pipeline = match input_str(&detail, DEFINITION) {
            None => None,
            Some(hash) => {
                let hash = hash.to_string();
                match store.definition(&hash).await {
                    Ok(Some(p)) => Some(p),
                    Ok(None) => {
                        return Err(OpsError::MissingDefinition {
                            run,
                            definition: hash,
                        });
                    }
                    Err(StatusError::Definition { problems, .. }) => {
                        return Err(OpsError::BadDefinition {
                            run,
                            definition: hash,
                            detail: problems.to_string(),
                        });
                    }
                    Err(StatusError::ReadDefinition { source, .. }) => {
                        return Err(OpsError::Store(source));
                    }
                    Err(other) => {
                        return Err(OpsError::BadDefinition {
                            run,
                            definition: hash,
                            detail: other.to_string(),
                        });
                    }
                }
            }
        };
        Ok(StoredRun {
            detail,
            atoms,
            pipeline,
        })
    }

    /// The pipeline, or the error that says `what` needs one.
    pub(crate) fn require_pipeline(&self, what: &'static str) -> Result<&Pipeline, OpsError> {
        self.pipeline
            .as_ref()
            .ok_or_else(|| OpsError::NotAPipeline {
                run: self.detail.id,
                flow: self.detail.name.clone(),
                what,
            })
    }

    /// The atom named `name`.
    pub(crate) fn atom(&self, name: &str) -> Option<&AtomDetail> {
        self.atoms.iter().find(|a| a.name == name)
    }

    /// The directory of the run's logs: where its steps' reports say, else
    /// `<logs>/<run key>` of the store.
    pub(crate) fn log_dir(&self, store: &Store) -> Option<PathBuf> {
        let reported = self.atoms.iter().find_map(|a| {
            let report = report(a)?;
            Path::new(&report.stdout.path)
                .parent()
                .map(Path::to_path_buf)
        });
        reported.or_else(|| Some(store.logs().join(input_str(&self.detail, RUN_KEY)?)))
    }

    /// The parameters' values the run was started with, by name, as JSON.
    pub(crate) fn params_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let Some(inputs) = self.detail.meta.get("inputs").and_then(|i| i.as_object()) else {
            return serde_json::Map::new();
        };
        let mut out = serde_json::Map::new();
        match &self.pipeline {
            // In the order of the definition.
            Some(p) => {
                for param in p.parameters() {
                    if let Some(v) = inputs.get(param.name()) {
                        out.insert(param.name().to_string(), v.clone());
                    }
                }
            }
            None => out.clone_from(inputs),
        }
        out
    }

    /// The parameters' values the run was started with, to start another
    /// run with.
    pub(crate) fn params(&self, pipeline: &Pipeline) -> Params {
        let json = self.params_json();
        let mut params = Params::new();
        for p in pipeline.parameters() {
            let Some(v) = json.get(p.name()) else {
                continue;
            };
            params = match (p.ty(), v) {
                (ParamType::Int, serde_json::Value::Number(n)) if n.is_i64() => {
                    params.set(p.name(), n.as_i64().unwrap_or_default())
                }
                (ParamType::Float, serde_json::Value::Number(n)) => {
                    params.set(p.name(), n.as_f64().unwrap_or_default())
                }
                (ParamType::Bool, serde_json::Value::Bool(b)) => params.set(p.name(), *b),
                (_, serde_json::Value::String(s)) => params.set(p.name(), s.as_str()),
                // Not what the definition says: the check of the values says so.
                (_, other) => params.text(p.name(), other.to_string()),
            };
        }
        params
    }
}

/// A string input of a run.
pub(crate) fn input_str<'a>(detail: &'a FlowDetail, name: &str) -> Option<&'a str> {
    detail.meta.get("inputs")?.get(name)?.as_str()
}

/// The report a step's atom holds: its result's first output.
pub(crate) fn report(atom: &AtomDetail) -> Option<StepReport> {
    let first = atom.result.as_ref()?.get(0)?.clone();
    serde_json::from_value(first).ok()
}

/// The revert report a step's atom holds: what its undo printed.
pub(crate) fn undo_report(atom: &AtomDetail) -> Option<StepReport> {
    serde_json::from_value(atom.revert_result.clone()?).ok()
}
