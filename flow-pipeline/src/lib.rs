//! Pipelines: flows written as YAML files, made of shell steps.
//!
//! (Crate documentation: see the `pipeline` module of the `flow` crate.)
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod error;
mod model;
mod params;
mod parse;
mod run;
mod shell;
mod source;
mod template;
mod yaml;

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use error::{Location, Problem, ProblemKind, Problems};
pub use model::{Param, ParamType, ParamValue, Pipeline, Step};
pub use params::Params;
pub use run::PipelineRun;
pub use run::report::{LogTail, StepError, StepReport};
pub use run::settings::Settings;

impl Pipeline {
    /// Reads and checks the pipeline in the file at `path`.
    ///
    /// # Errors
    /// Every problem of the file, together (see [`Pipeline::from_str`]); a
    /// file that cannot be read is one problem of kind
    /// [`ProblemKind::Read`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Pipeline, Problems> {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Pipeline::from_str(name, &text),
            Err(e) => {
                let source = source::Source::new(name, String::new());
                Err(Problems::new(vec![Problem::whole(
                    &source,
                    ProblemKind::Read {
                        message: e.to_string(),
                    },
                )]))
            }
        }
    }

    /// Reads and checks a pipeline from `text`, reported as file `name`.
    ///
    /// # Errors
    /// Every problem, together, each pointing at its line and column: text
    /// that is not YAML, unknown or missing keys, values of the wrong type,
    /// invalid names, duplicate steps, unknown dependencies, cycles,
    /// placeholders that name no parameter and no output of a step that runs
    /// before, defaults of the wrong type.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(name: impl Into<String>, text: &str) -> Result<Pipeline, Problems> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let canonical = text.replace("\r\n", "\n");
        let source = source::Source::new(name, canonical);
        let root = yaml::load(&source).map_err(|p| Problems::new(vec![p]))?;
        let mut reader = parse::Reader::new(&source);
        let parsed = parse::definition(&mut reader, &root);
        if let Some(parsed) = &parsed {
            check::check(&mut reader, parsed);
        }
        match parsed {
            Some(p) if reader.problems.is_empty() => {
                let hash = hex(&Sha256::digest(source.text.as_bytes()));
                Ok(Pipeline {
                    source: Arc::clone(&source),
                    hash,
                    name: p.name,
                    description: p.description,
                    params: p.params,
                    steps: p.steps,
                })
            }
            _ => Err(Problems::new(reader.problems)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
