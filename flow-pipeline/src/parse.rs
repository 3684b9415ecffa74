//! From YAML nodes to the typed model, collecting every problem on the way:
//! unknown keys, missing keys, wrong types, bad names, bad defaults.

use std::time::Duration;

use flow_core::Backoff;

use crate::error::ProblemKind;
use crate::model::{Command, Param, ParamType, ParamValue, RetrySpec, Step, Undo};
use crate::reader::Entries;
pub(crate) use crate::reader::Reader;
use crate::shell;
use crate::template::is_value_name;
use crate::yaml::{Node, Yaml};

const TOP: &[&str] = &["name", "description", "parameters", "steps"];
const PARAM: &[&str] = &["type", "one-of", "default", "required", "description"];
const STEP: &[&str] = &[
    "name",
    "description",
    "command",
    "script",
    "depends-on",
    "env",
    "working-directory",
    "timeout",
    "retry",
    "undo",
    "output",
];
const UNDO: &[&str] = &["command", "script", "timeout"];
const RETRY: &[&str] = &["attempts", "delay", "backoff", "max-delay", "jitter"];

/// What a definition is made of, before the checks across steps.
pub(crate) struct Parsed {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) params: Vec<Param>,
    pub(crate) steps: Vec<Step>,
    /// Names of steps, and of values, whose definitions have problems of
    /// their own: known, so that no problem is reported twice.
    pub(crate) broken_steps: Vec<String>,
    pub(crate) broken_values: Vec<String>,
}

/// Whether `name` may name a step: letters, digits, `_`, `-` and `.`, not
/// starting with `-` or `.` (it names log files too).
pub(crate) fn is_step_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn is_env_name(name: &str) -> bool {
    is_value_name(name) && !name.starts_with("FLOW_")
}

const VALUE_RULE: &str = "use ASCII letters, digits and `_`, starting with a letter or `_`";
const STEP_RULE: &str =
    "use ASCII letters, digits, `_`, `-` and `.`, starting with a letter, a digit or `_`";
const ENV_RULE: &str = "use ASCII letters, digits and `_`, starting with a letter or `_`; names \
                        starting with `FLOW_` are set by flow";

/// Reads a whole definition.
pub(crate) fn definition(r: &mut Reader<'_>, root: &Node) -> Option<Parsed> {
    let entries = r.map(root, "the pipeline", TOP)?;
    let name = match Reader::get(&entries, "name") {
        Some(n) => r.name(
            n,
            "a pipeline",
            || "the pipeline's `name`".into(),
            is_step_name,
            STEP_RULE,
        ),
        None => {
            r.missing(root, "the pipeline", "name");
            None
        }
    };
    let description = Reader::get(&entries, "description")
        .and_then(|n| r.string(n, || "the pipeline's `description`".into()));
    let mut params = Vec::new();
    let mut broken_values = Vec::new();
    let mut broken_steps = Vec::new();
    if let Some(node) = Reader::get(&entries, "parameters") {
        match &node.value {
            Yaml::Map(list) => {
                for (k, v) in list {
                    match param(r, k, v) {
                        Some(p) => params.push(p),
                        None => broken_values.extend(string_of(k)),
                    }
                }
            }
            Yaml::Null => {}
            _ => r.wrong_type(node, "the pipeline's `parameters`".into(), "a mapping"),
        }
    }
    let mut steps = Vec::new();
    match Reader::get(&entries, "steps") {
        Some(node) => {
            if let Some(items) = r.list(node, || "the pipeline's `steps`".into()) {
                for item in items {
                    match step(r, item) {
                        Some(s) => steps.push(s),
                        None => {
                            broken_steps.extend(field(item, "name").and_then(string_of));
                            broken_values.extend(field(item, "output").and_then(string_of));
                        }
                    }
                }
            }
        }
        None => r.missing(root, "the pipeline", "steps"),
    }
    Some(Parsed {
        name: name?,
        description,
        params,
        steps,
        broken_steps,
        broken_values,
    })
}

/// The string a node holds, if it is one.
fn string_of(node: &Node) -> Option<String> {
    match &node.value {
        Yaml::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// The value of `key` in mapping `node`.
fn field<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Yaml::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Yaml::Str(s) if s == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn param(r: &mut Reader<'_>, key: &Node, node: &Node) -> Option<Param> {
    let name = r.name(
        key,
        "a parameter",
        || "a parameter's name".into(),
        is_value_name,
        VALUE_RULE,
    );
    let shown = name
        .clone()
        .unwrap_or_else(|| r.source.slice(&key.span).to_string());
    let context = format!("parameter `{shown}`");
    let entries = r.map(node, &context, PARAM)?;
    let ty = match (
        Reader::get(&entries, "type"),
        Reader::get(&entries, "one-of"),
    ) {
        (Some(_), Some(_)) => {
            r.problem(
                key.span.clone(),
                ProblemKind::Conflict {
                    context: context.clone(),
                    problem: "has both `type` and `one-of`: a one-of parameter is a string, \
                              remove `type`",
                },
            );
            None
        }
        (None, Some(list)) => {
            let items = r.list(list, || format!("`one-of` of {context}"))?;
            let mut values = Vec::new();
            for item in items {
                values.push(r.text(item, || format!("an entry of `one-of` of {context}"))?);
            }
            if values.is_empty() {
                r.problem(
                    list.span.clone(),
                    ProblemKind::Conflict {
                        context: format!("`one-of` of {context}"),
                        problem: "is empty: list the values the parameter may take",
                    },
                );
                return None;
            }
            Some(ParamType::OneOf(values))
        }
        (Some(t), None) => match r.string(t, || format!("`type` of {context}"))?.as_str() {
            "string" => Some(ParamType::String),
            "int" => Some(ParamType::Int),
            "float" => Some(ParamType::Float),
            "bool" => Some(ParamType::Bool),
            _ => {
                r.wrong_type(
                    t,
                    format!("`type` of {context}"),
                    "one of `string`, `int`, `float`, `bool`",
                );
                None
            }
        },
        (None, None) => Some(ParamType::String),
    };
    let description = Reader::get(&entries, "description")
        .and_then(|n| r.string(n, || format!("`description` of {context}")));
    let required = Reader::get(&entries, "required").and_then(|n| {
        r.bool(n, || format!("`required` of {context}"))
            .map(|b| (b, n))
    });
    let default_node = Reader::get(&entries, "default");
    let ty = ty?;
    let default = match default_node {
        Some(d) => Some(default_value(r, name.as_deref().unwrap_or(&shown), &ty, d)?),
        None => None,
    };
    match (required, default_node) {
        (Some((true, n)), Some(_)) => {
            r.problem(
                n.span.clone(),
                ProblemKind::Conflict {
                    context: context.clone(),
                    problem: "is required and has a default, which it would never use: remove \
                              one of them",
                },
            );
            return None;
        }
        (Some((false, n)), None) => {
            r.problem(
                n.span.clone(),
                ProblemKind::Conflict {
                    context: context.clone(),
                    problem: "is not required and has no default: give it a `default`",
                },
            );
            return None;
        }
        _ => {}
    }
    Some(Param {
        name: name?,
        span: key.span.clone(),
        ty,
        default,
        description,
    })
}

/// A default of type `ty`, or a problem saying what it is instead.
fn default_value(
    r: &mut Reader<'_>,
    param: &str,
    ty: &ParamType,
    node: &Node,
) -> Option<ParamValue> {
    let value = match (ty, &node.value) {
        (ParamType::String, Yaml::Str(s)) => ParamValue::String(s.clone()),
        (ParamType::OneOf(list), Yaml::Str(s)) if list.contains(s) => ParamValue::String(s.clone()),
        (ParamType::Int, Yaml::Int(i)) => ParamValue::Int(*i),
        (ParamType::Float, Yaml::Float(x)) if x.is_finite() => ParamValue::Float(*x),
        (ParamType::Float, Yaml::Int(i)) => ParamValue::Float(*i as f64),
        (ParamType::Bool, Yaml::Bool(b)) => ParamValue::Bool(*b),
        (ty, value) => {
            let found = match value {
                Yaml::Str(s) => format!("`{s}`"),
                Yaml::Float(x) if !x.is_finite() => format!("`{}`", r.source.slice(&node.span)),
                other => format!("{} (`{}`)", other.describe(), r.source.slice(&node.span)),
            };
            r.problem(
                node.span.clone(),
                ProblemKind::DefaultType {
                    param: param.to_string(),
                    expected: ty.to_string(),
                    found,
                },
            );
            return None;
        }
    };
    if let ParamValue::String(s) = &value
        && s.contains('\0')
    {
        r.problem(
            node.span.clone(),
            ProblemKind::NulInValue {
                param: param.to_string(),
            },
        );
        return None;
    }
    Some(value)
}

fn step(r: &mut Reader<'_>, node: &Node) -> Option<Step> {
    // The name first, for the messages about the rest.
    let name_node = field(node, "name");
    let name = name_node.and_then(|n| {
        r.name(
            n,
            "a step",
            || "a step's `name`".into(),
            is_step_name,
            STEP_RULE,
        )
    });
    let context = match &name {
        Some(n) => format!("step `{n}`"),
        None => "a step".to_string(),
    };
    let entries = r.map(node, &context, STEP)?;
    if name_node.is_none() {
        r.missing(node, &context, "name");
    }
    let description = Reader::get(&entries, "description")
        .and_then(|n| r.string(n, || format!("`description` of {context}")));
    let command = command(r, node, &entries, &context);
    let mut depends_on = Vec::new();
    if let Some(list) = Reader::get(&entries, "depends-on")
        && let Some(items) = r.list(list, || format!("`depends-on` of {context}"))
    {
        for item in items {
            if let Some(d) = r.string(item, || format!("an entry of `depends-on` of {context}")) {
                depends_on.push((d, item.span.clone()));
            }
        }
    }
    let mut env = Vec::new();
    if let Some(map) = Reader::get(&entries, "env") {
        if let Yaml::Map(list) = &map.value {
            for (k, v) in list {
                let key = r.name(
                    k,
                    "an environment variable",
                    || format!("a key of `env` of {context}"),
                    is_env_name,
                    ENV_RULE,
                );
                let value = r.template(v, || format!("`env` `{}` of {context}", r_slice(k)));
                if let (Some(key), Some(value)) = (key, value) {
                    env.push((key, value));
                }
            }
        } else {
            r.wrong_type(map, format!("`env` of {context}"), "a mapping");
        }
    }
    let dir = Reader::get(&entries, "working-directory")
        .and_then(|n| r.template(n, || format!("`working-directory` of {context}")));
    let timeout = Reader::get(&entries, "timeout")
        .and_then(|n| r.duration(n, || format!("`timeout` of {context}")));
    let retry = Reader::get(&entries, "retry").and_then(|n| retry(r, n, &context));
    let undo = Reader::get(&entries, "undo").and_then(|n| undo(r, n, &context));
    let output = Reader::get(&entries, "output").and_then(|n| {
        r.name(
            n,
            "an output",
            || format!("`output` of {context}"),
            is_value_name,
            VALUE_RULE,
        )
        .map(|o| (o, n.span.clone()))
    });
    Some(Step {
        name: name?,
        span: name_node.map_or(node.span.clone(), |n| n.span.clone()),
        description,
        command: command?,
        depends_on,
        env,
        dir,
        timeout,
        retry,
        undo,
        output,
    })
}

fn r_slice(k: &Node) -> String {
    match &k.value {
        Yaml::Str(s) => s.clone(),
        _ => String::new(),
    }
}

/// A step's or an undo's `command` or `script`.
fn command(
    r: &mut Reader<'_>,
    node: &Node,
    entries: &Entries<'_>,
    context: &str,
) -> Option<Command> {
    match (
        Reader::get(entries, "command"),
        Reader::get(entries, "script"),
    ) {
        (Some(_), Some(_)) => {
            r.problem(
                node.span.clone(),
                ProblemKind::Conflict {
                    context: context.to_string(),
                    problem: "has both `command` and `script`: give one",
                },
            );
            None
        }
        (None, None) => {
            r.problem(
                node.span.clone(),
                ProblemKind::Conflict {
                    context: context.to_string(),
                    problem: "has neither `command` nor `script`: give a `command` (a program \
                              and its arguments) or a `script` (run by `sh`)",
                },
            );
            None
        }
        (Some(list), None) => {
            let Yaml::Seq(items) = &list.value else {
                r.problem(
                    list.span.clone(),
                    ProblemKind::WrongType {
                        what: format!("`command` of {context}"),
                        expected: "a list of a program and its arguments (use `script` for a \
                                   shell script)",
                        found: list.value.describe(),
                    },
                );
                return None;
            };
            if items.is_empty() {
                r.problem(
                    list.span.clone(),
                    ProblemKind::Conflict {
                        context: format!("`command` of {context}"),
                        problem: "is empty: name a program to run",
                    },
                );
                return None;
            }
            let mut args = Vec::with_capacity(items.len());
            let mut ok = true;
            for item in items {
                match r.template(item, || format!("an argument of `command` of {context}")) {
                    Some(t) => args.push(t),
                    None => ok = false,
                }
            }
            ok.then_some(Command::Args(args))
        }
        (None, Some(text)) => {
            let template = r.template(text, || format!("`script` of {context}"))?;
            match shell::render(&template) {
                Ok(text) => Some(Command::Script { template, text }),
                Err(problems) => {
                    for (span, kind) in problems {
                        r.problem(span, kind);
                    }
                    None
                }
            }
        }
    }
}

fn undo(r: &mut Reader<'_>, node: &Node, step: &str) -> Option<Undo> {
    let context = format!("the `undo` of {step}");
    let entries = r.map(node, &context, UNDO)?;
    let timeout = Reader::get(&entries, "timeout")
        .and_then(|n| r.duration(n, || format!("`timeout` of {context}")));
    Some(Undo {
        command: command(r, node, &entries, &context)?,
        timeout,
    })
}

fn retry(r: &mut Reader<'_>, node: &Node, step: &str) -> Option<RetrySpec> {
    let context = format!("the `retry` of {step}");
    let entries = r.map(node, &context, RETRY)?;
    let attempts = match Reader::get(&entries, "attempts") {
        Some(n) => match n.value {
            Yaml::Int(i) if i >= 1 => usize::try_from(i).ok(),
            _ => {
                r.wrong_type(
                    n,
                    format!("`attempts` of {context}"),
                    "a whole number from 1",
                );
                None
            }
        },
        None => {
            r.missing(node, &context, "attempts");
            None
        }
    };
    let delay = Reader::get(&entries, "delay")
        .and_then(|n| r.duration(n, || format!("`delay` of {context}")));
    let max = Reader::get(&entries, "max-delay")
        .and_then(|n| r.duration(n, || format!("`max-delay` of {context}")));
    let jitter = Reader::get(&entries, "jitter")
        .and_then(|n| r.bool(n, || format!("`jitter` of {context}")));
    let exponential = match Reader::get(&entries, "backoff") {
        None => false,
        Some(n) => match r.string(n, || format!("`backoff` of {context}"))?.as_str() {
            "fixed" => false,
            "exponential" => true,
            _ => {
                r.wrong_type(
                    n,
                    format!("`backoff` of {context}"),
                    "`fixed` or `exponential`",
                );
                return None;
            }
        },
    };
    let backoff = match (exponential, delay) {
        (_, None) => Backoff::None,
        (false, Some(d)) => Backoff::Fixed(d),
        (true, Some(base)) => Backoff::Exponential {
            base,
            max: max.unwrap_or(Duration::from_secs(300)),
            jitter: jitter.unwrap_or(false),
        },
    };
    Some(RetrySpec {
        attempts: attempts?,
        backoff,
    })
}

#[cfg(test)]
mod tests {
    use super::is_step_name;
    use crate::reader::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "30", "s", "1.5s", "3 weeks", "-1s", "1x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn step_names() {
        assert!(is_step_name("fetch-page.v2_b"));
        assert!(is_step_name("2nd"));
        for bad in ["", "-x", ".hidden", "..", "a/b", "a b", "a:b", "é"] {
            assert!(!is_step_name(bad), "{bad}");
        }
    }
}
