//! Pipelines run by conductors: posting a run as a job, and the registry of
//! pipelines a conductor runs.
//!
//! A job names its flow by name and version: a pipeline's job names the
//! pipeline and the hash of its definition, which is saved in the store
//! first. A conductor registers each pipeline it is given under the same
//! name and hash, so it takes exactly the jobs of the definitions it has.

use std::path::{Path, PathBuf};

use flow::FlowId;
use flow::conductor::Registry;
use flow::storage::JobId;
use flow::storage::NewJob;
use flow_pipeline::{Params, Pipeline};

use super::{OpsError, Store};

/// A posted job.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Posted {
    /// The job.
    pub job: JobId,
    /// The run made for it.
    pub run: FlowId,
    /// The flow's name: the pipeline's.
    pub flow: String,
    /// The flow's version: the hash of the pipeline's definition.
    pub version: String,
}

/// Posts a run of `pipeline` with `params` as a job, for a conductor that
/// has this definition (`flow conductor --pipelines FILE`).
///
/// # Errors
/// [`OpsError::Problems`] when the values do not fit the parameters; what
/// the store says.
pub async fn post_run(
    store: &Store,
    pipeline: &Pipeline,
    params: &Params,
) -> Result<Posted, OpsError> {
    let run = pipeline.to_flow(params, &store.settings())?;
    pipeline
        .save(&**store.backend())
        .await
        .map_err(OpsError::Store)?;
    let mut job = NewJob::new(pipeline.name(), pipeline.hash());
    for (name, value) in run.inputs().iter() {
        let json = value.encode().map_err(|e| OpsError::Build {
            pipeline: pipeline.name().to_string(),
            detail: format!("the value of `{name}` cannot be stored: {e}"),
        })?;
        job = job.input(name, json);
    }
    let posted = store.board().post(job).await.map_err(OpsError::Store)?;
    Ok(Posted {
        job: posted.id,
        run: posted.run,
        flow: posted.flow,
        version: posted.version,
    })
}

/// Reads the pipelines in `paths`: files, and the `.yaml` and `.yml` files of
/// directories (not their subdirectories), in name order.
///
/// # Errors
/// Every problem of every file, together ([`OpsError::Problems`]);
/// [`OpsError::NoPipelines`] when there is no file; a directory that cannot
/// be read.
pub fn read_pipelines(paths: &[PathBuf]) -> Result<Vec<Pipeline>, OpsError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let io = |source| OpsError::Io {
                what: "cannot read the directory",
                path: path.clone(),
                source,
            };
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_pipeline_file(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(OpsError::NoPipelines {
            paths: paths.to_vec(),
        });
    }
    let mut pipelines = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        match Pipeline::from_path(file) {
            Ok(p) => pipelines.push(p),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(pipelines)
    } else {
        Err(OpsError::Problems { problems })
    }
}

fn is_pipeline_file(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// The registry of a conductor of `pipelines`, whose steps log under the
/// store's logs: each pipeline under its name, at the hash of its
/// definition. The definitions are saved in the store too.
///
/// # Errors
/// What the store says.
pub async fn pipeline_registry(
    store: &Store,
    pipelines: &[Pipeline],
) -> Result<Registry, OpsError> {
    let settings = store.settings();
    let mut registry = Registry::new();
    for p in pipelines {
        p.save(&**store.backend()).await.map_err(OpsError::Store)?;
        let flow = p.flow(&settings).build().map_err(|e| OpsError::Build {
            pipeline: p.name().to_string(),
            detail: e.to_string(),
        })?;
        registry.register_as(p.name(), p.hash(), flow);
    }
    Ok(registry)
}
