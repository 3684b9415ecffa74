//! The values a run is given for a pipeline's parameters: checked against
//! their types, completed with the defaults, and turned into the run's
//! inputs (which the engine journals, so that a resumed run gets them back).

use std::ffi::{OsStr, OsString};

use flow_core::Store;

use crate::error::{Problem, ProblemKind, Problems};
use crate::model::{Param, ParamType, ParamValue, Pipeline};

/// The values given to a run, by parameter name.
///
/// A value is either typed ([`Params::set`]: it must have the parameter's
/// type) or text to be read as the parameter's type ([`Params::text`], as
/// from a command line: `count=3` makes `3` for an `int`). A parameter not
/// given takes its default; a required one not given is a problem.
///
/// ```
/// # mod flow { pub use flow_core::*; pub use flow_pipeline as pipeline; }
/// use flow::pipeline::{Params, Pipeline};
///
/// let p = Pipeline::from_str("p.yaml", "
/// name: p
/// parameters:
///   host: {type: string}
///   count: {type: int, default: 1}
/// steps:
///   - {name: ping, command: [ping, -c, '{count}', '{host}']}
/// ").unwrap();
/// assert!(p.check(&Params::new().set("host", "db-1").text("count", "3")).is_ok());
/// let err = p.check(&Params::new().set("count", "3")).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "p.yaml:4:3: parameter `host` is required and was given no value\n\
///      p.yaml:5:3: parameter `count` must be an integer, and the string \"3\" is not"
/// );
/// ```
#[derive(Clone, Debug, Default)]
pub struct Params {
    given: Vec<(String, Given)>,
}

#[derive(Clone, Debug)]
enum Given {
    Typed(ParamValue),
    Text(OsString),
}

impl Params {
    /// No values.
    pub fn new() -> Self {
        Params::default()
    }

    /// Gives parameter `name` a typed value (replacing one given before).
    pub fn set(mut self, name: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        self.put(name.into(), Given::Typed(value.into()));
        self
    }

    /// Gives parameter `name` a value written as text, read as the
    /// parameter's type (replacing one given before). Text that is not UTF-8
    /// is refused when the values are checked, with a problem naming the
    /// parameter.
    pub fn text(mut self, name: impl Into<String>, value: impl AsRef<OsStr>) -> Self {
        self.put(name.into(), Given::Text(value.as_ref().to_os_string()));
        self
    }

    fn put(&mut self, name: String, given: Given) {
        match self.given.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = given,
            None => self.given.push((name, given)),
        }
    }

    /// Whether no value was given.
    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }
}

/// The value of `param` from `given`, or why not.
fn read(param: &Param, given: &Given) -> Result<ParamValue, ProblemKind> {
    let name = || param.name.clone();
    let wrong = |value: String| ProblemKind::ParameterType {
        param: name(),
        expected: param.ty.to_string(),
        value,
    };
    let value = match given {
        Given::Text(text) => {
            let Some(text) = text.to_str() else {
                return Err(ProblemKind::NotUtf8 { param: name() });
            };
            let shown = || format!("{text:?}");
            match &param.ty {
                ParamType::String | ParamType::OneOf(_) => ParamValue::String(text.to_string()),
                ParamType::Int => ParamValue::Int(text.trim().parse().map_err(|_| wrong(shown()))?),
                ParamType::Float => {
                    let x: f64 = text.trim().parse().map_err(|_| wrong(shown()))?;
                    if !x.is_finite() {
                        return Err(wrong(shown()));
                    }
                    ParamValue::Float(x)
                }
                ParamType::Bool => match text.trim() {
                    "true" => ParamValue::Bool(true),
                    "false" => ParamValue::Bool(false),
                    _ => return Err(wrong(shown())),
                },
            }
        }
        Given::Typed(v) => match (&param.ty, v) {
            (ParamType::String | ParamType::OneOf(_), ParamValue::String(_))
            | (ParamType::Int, ParamValue::Int(_))
            | (ParamType::Bool, ParamValue::Bool(_)) => v.clone(),
            (ParamType::Float, ParamValue::Float(x)) if x.is_finite() => v.clone(),
            (_, v) => return Err(wrong(describe(v))),
        },
    };
    if let (ParamType::OneOf(list), ParamValue::String(s)) = (&param.ty, &value)
        && !list.contains(s)
    {
        return Err(wrong(format!("{s:?}")));
    }
    if let ParamValue::String(s) = &value
        && s.contains('\0')
    {
        return Err(ProblemKind::NulInValue { param: name() });
    }
    Ok(value)
}

/// A typed value as a message shows it: `the string "3"`, `the integer 3`.
fn describe(v: &ParamValue) -> String {
    match v {
        ParamValue::String(s) => format!("the string {s:?}"),
        ParamValue::Int(i) => format!("the integer {i}"),
        ParamValue::Float(x) => format!("the number {x}"),
        ParamValue::Bool(b) => format!("the boolean {b}"),
    }
}

impl Pipeline {
    /// The value of every parameter for a run given `params`, in the order of
    /// the file: what was given, else the default.
    ///
    /// # Errors
    /// Every problem together: a required parameter given no value, a value
    /// of the wrong type or not one of its list, text that is not UTF-8, a
    /// NUL byte, a value for a parameter the pipeline does not have.
    pub fn values(&self, params: &Params) -> Result<Vec<(String, ParamValue)>, Problems> {
        let mut problems = Vec::new();
        let mut out = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let given = params.given.iter().find(|(n, _)| *n == p.name);
            let value = match (given, &p.default) {
                (Some((_, g)), _) => read(p, g),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(ProblemKind::MissingParameter {
                    param: p.name.clone(),
                }),
            };
            match value {
                Ok(v) => out.push((p.name.clone(), v)),
                Err(kind) => problems.push(Problem::at(&self.source, p.span.clone(), kind)),
            }
        }
        for (name, _) in &params.given {
            if !self.params.iter().any(|p| p.name == *name) {
                problems.push(Problem::whole(
                    &self.source,
                    ProblemKind::UnknownParameter {
                        param: name.clone(),
                        known: self.params.iter().map(|p| p.name.clone()).collect(),
                    },
                ));
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(Problems::new(problems))
        }
    }

    /// Checks the values for a run: `Ok` when [`Pipeline::to_flow`] would
    /// accept them. The definition itself was checked when it was read.
    ///
    /// # Errors
    /// Every problem with the values, together (see [`Pipeline::values`]).
    pub fn check(&self, params: &Params) -> Result<(), Problems> {
        self.values(params).map(|_| ())
    }

    /// The run's inputs for `params`: one per parameter, typed (`String`,
    /// `i64`, `f64`, `bool`).
    pub(crate) fn store(&self, params: &Params) -> Result<Store, Problems> {
        let mut store = Store::new();
        for (name, v) in self.values(params)? {
            match v {
                ParamValue::String(s) => store.insert(name, s),
                ParamValue::Int(i) => store.insert(name, i),
                ParamValue::Float(x) => store.insert(name, x),
                ParamValue::Bool(b) => store.insert(name, b),
            };
        }
        Ok(store)
    }
}
