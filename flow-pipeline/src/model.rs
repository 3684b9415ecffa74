//! The typed model of a pipeline definition: its parameters and its steps,
//! as read from a file and checked.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::source::Source;
use crate::template::Template;

/// A pipeline definition, read from a file and checked: every name it uses
/// is known, its dependencies form no cycle, its defaults have their
/// parameters' types. A `Pipeline` value is always a valid definition.
///
/// Build one with [`Pipeline::from_path`] or [`Pipeline::from_str`]; turn it
/// into a flow with [`Pipeline::to_flow`].
#[derive(Clone)]
pub struct Pipeline {
    pub(crate) source: Arc<Source>,
    pub(crate) hash: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) params: Vec<Param>,
    pub(crate) steps: Vec<Step>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("file", &self.source.name)
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("parameters", &self.params)
            .field("steps", &self.steps)
            .finish()
    }
}

impl Pipeline {
    /// The pipeline's name: the name of the flow it becomes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the pipeline is for, if the file says.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The parameters, in the order of the file.
    pub fn parameters(&self) -> &[Param] {
        &self.params
    }

    /// The steps, in the order of the file.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The content hash of the definition, in 64 lower-case hexadecimal
    /// digits: the SHA-256 of [`FORMAT`](crate::FORMAT), a NUL byte and the
    /// text (a leading byte-order mark removed, line ends made `\n`), which
    /// is how a store of definitions keyed by content names it. Two files
    /// that differ only in how their lines end have the same hash; any other
    /// change makes another.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The name the file was read under (its path, or the name given).
    pub fn file(&self) -> &str {
        &self.source.name
    }

    /// The text of the definition, as read.
    pub fn source(&self) -> &str {
        &self.source.text
    }
}

/// The type of a parameter.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ParamType {
    /// Any text (a Rust `String`).
    String,
    /// A whole number (an `i64`).
    Int,
    /// A finite number (an `f64`).
    Float,
    /// `true` or `false`.
    Bool,
    /// One of the listed texts (a `String`).
    OneOf(Vec<String>),
}

impl fmt::Display for ParamType {
    /// How a message names the type: `a string`, `one of `a`, `b``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::String => f.write_str("a string"),
            ParamType::Int => f.write_str("an integer"),
            ParamType::Float => f.write_str("a number"),
            ParamType::Bool => f.write_str("`true` or `false`"),
            ParamType::OneOf(list) => {
                f.write_str("one of ")?;
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{v}`")?;
                }
                Ok(())
            }
        }
    }
}

/// A parameter's value.
///
/// ```
/// # mod flow { pub use flow_core::*; pub use flow_pipeline as pipeline; }
/// use flow::pipeline::ParamValue;
/// assert_eq!(ParamValue::from("a b").to_string(), "a b");
/// assert_eq!(ParamValue::from(-3i64).to_string(), "-3");
/// assert_eq!(ParamValue::from(0.5).to_string(), "0.5");
/// assert_eq!(ParamValue::from(true).to_string(), "true");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ParamValue {
    /// Text, for `string` and one-of parameters.
    String(String),
    /// For `int` parameters.
    Int(i64),
    /// For `float` parameters.
    Float(f64),
    /// For `bool` parameters.
    Bool(bool),
}

impl fmt::Display for ParamValue {
    /// The text a command receives: integers in decimal, numbers in Rust's
    /// shortest form that reads back the same, booleans as `true`/`false`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for ParamValue {
    fn from(s: &str) -> Self {
        ParamValue::String(s.to_string())
    }
}

impl From<String> for ParamValue {
    fn from(s: String) -> Self {
        ParamValue::String(s)
    }
}

impl From<i64> for ParamValue {
    fn from(i: i64) -> Self {
        ParamValue::Int(i)
    }
}

impl From<f64> for ParamValue {
    fn from(x: f64) -> Self {
        ParamValue::Float(x)
    }
}

impl From<bool> for ParamValue {
    fn from(b: bool) -> Self {
        ParamValue::Bool(b)
    }
}

/// A parameter of a pipeline.
#[derive(Clone, Debug)]
pub struct Param {
    pub(crate) name: String,
    pub(crate) span: Range<usize>,
    pub(crate) ty: ParamType,
    pub(crate) default: Option<ParamValue>,
    pub(crate) description: Option<String>,
}

impl Param {
    /// The parameter's name: `{name}` stands for its value.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its type.
    pub fn ty(&self) -> &ParamType {
        &self.ty
    }

    /// Its default, if it has one.
    pub fn default(&self) -> Option<&ParamValue> {
        self.default.as_ref()
    }

    /// Whether a run must be given a value: a parameter without a default is
    /// required.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// What it is for, if the file says.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// A step of a pipeline: a program to run, what it waits for, and what undoes
/// it.
#[derive(Clone, Debug)]
pub struct Step {
    pub(crate) name: String,
    pub(crate) span: Range<usize>,
    pub(crate) description: Option<String>,
    pub(crate) command: Command,
    pub(crate) depends_on: Vec<(String, Range<usize>)>,
    pub(crate) env: Vec<(String, Template)>,
    pub(crate) dir: Option<Template>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: Option<RetrySpec>,
    pub(crate) undo: Option<Undo>,
    pub(crate) output: Option<(String, Range<usize>)>,
}

impl Step {
    /// The step's name (also its atom's name in the flow).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is for, if the file says.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The steps that must succeed before it starts, as written.
    pub fn depends_on(&self) -> impl ExactSizeIterator<Item = &str> {
        self.depends_on.iter().map(|(d, _)| d.as_str())
    }

    /// Whether it declares an undo command.
    pub fn has_undo(&self) -> bool {
        self.undo.is_some()
    }

    /// The name under which its standard output becomes a value, if it does.
    pub fn output(&self) -> Option<&str> {
        self.output.as_ref().map(|(o, _)| o.as_str())
    }

    /// Its time limit, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// How many times it is tried before it fails (1 unless it has `retry`).
    pub fn attempts(&self) -> usize {
        self.retry.as_ref().map_or(1, |r| r.attempts)
    }

    /// Whether it runs a script with `sh` (else a program with its arguments).
    pub fn is_script(&self) -> bool {
        matches!(self.command, Command::Script { .. })
    }

    /// Every template of the step (command, environment, directory), with
    /// the undo's when `undo` is true.
    pub(crate) fn templates(&self, undo: bool) -> Vec<&Template> {
        let command = if undo {
            match &self.undo {
                Some(u) => &u.command,
                None => return Vec::new(),
            }
        } else {
            &self.command
        };
        let mut all: Vec<&Template> = match command {
            Command::Args(args) => args.iter().collect(),
            Command::Script { template, .. } => vec![template],
        };
        all.extend(self.env.iter().map(|(_, t)| t));
        all.extend(self.dir.iter());
        all
    }
}

/// What a step runs.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// A program and its arguments; each value stays inside its argument.
    Args(Vec<Template>),
    /// A script for `sh -c`, its placeholders already turned into references
    /// to environment variables (`text`).
    Script { template: Template, text: String },
}

/// A step's undo command.
#[derive(Clone, Debug)]
pub(crate) struct Undo {
    pub(crate) command: Command,
    pub(crate) timeout: Option<Duration>,
}

/// A step's retries.
#[derive(Clone, Debug)]
pub(crate) struct RetrySpec {
    pub(crate) attempts: usize,
    pub(crate) backoff: flow_core::Backoff,
}
