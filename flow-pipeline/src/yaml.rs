//! Reading YAML into a small tree of nodes, each with the byte range it came
//! from, through [`saphyr`] (maintained, YAML 1.2, a span for every node).

use std::ops::Range;
use std::sync::Arc;

use saphyr::{MarkedYamlOwned, ScalarOwned, YamlDataOwned, YamlLoader};
use saphyr_parser::{Parser, Span};

use crate::error::{Problem, ProblemKind};
use crate::source::Source;

/// A YAML node and the bytes of the file it was read from.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) span: Range<usize>,
    pub(crate) value: Yaml,
}

/// A node's value, with YAML 1.2's core types resolved.
#[derive(Clone, Debug)]
pub(crate) enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in the order written.
    Map(Vec<(Node, Node)>),
    /// A tagged node or a value that does not read as its tag says.
    Other,
}

impl Yaml {
    /// The type's name as a message says it: `a string`, `a list`.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Yaml::Null => "empty",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) => "an integer",
            Yaml::Float(_) => "a number",
            Yaml::Str(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
            Yaml::Other => "a tagged value",
        }
    }
}

/// Reads the one YAML document of `source`.
// Once per file, and the problem is reported to a person: its size does not
// matter.
#[allow(clippy::result_large_err)]
pub(crate) fn load(source: &Arc<Source>) -> Result<Node, Problem> {
    let mut loader = YamlLoader::<MarkedYamlOwned>::default();
    let mut parser = Parser::new_from_str(&source.text);
    let scanned = parser.load(&mut loader, true);
    if let Some(e) = scanned.err().or_else(|| loader.error().cloned()) {
        let at = source.byte_of_char(e.marker().index());
        let end = source.text[at..]
            .chars()
            .next()
            .map_or(at, |c| at + c.len_utf8());
        return Err(Problem::at(
            source,
            at..end,
            ProblemKind::Syntax {
                message: e.info().to_string(),
            },
        ));
    }
    let mut docs = loader.into_documents();
    match docs.len() {
        0 => Ok(Node {
            span: 0..0,
            value: Yaml::Null,
        }),
        1 => Ok(convert(source, docs.remove(0))),
        _ => {
            let second = convert(source, docs.remove(1));
            Err(Problem::at(
                source,
                second.span,
                ProblemKind::Syntax {
                    message: "a pipeline file holds one YAML document, and this is a second".into(),
                },
            ))
        }
    }
}

fn span(source: &Source, s: Span) -> Range<usize> {
    source.byte_of_char(s.start.index())..source.byte_of_char(s.end.index())
}

fn convert(source: &Source, node: MarkedYamlOwned) -> Node {
    let mut range = span(source, node.span);
    let value = match node.data {
        YamlDataOwned::Value(scalar) => match scalar {
            ScalarOwned::Null => Yaml::Null,
            ScalarOwned::Boolean(b) => Yaml::Bool(b),
            ScalarOwned::Integer(i) => Yaml::Int(i),
            ScalarOwned::FloatingPoint(f) => Yaml::Float(f.into_inner()),
            ScalarOwned::String(s) => Yaml::Str(s),
        },
        YamlDataOwned::Representation(s, _, _) => Yaml::Str(s),
        YamlDataOwned::Sequence(items) => {
            Yaml::Seq(items.into_iter().map(|n| convert(source, n)).collect())
        }
        YamlDataOwned::Mapping(map) => Yaml::Map(
            map.into_iter()
                .map(|(k, v)| (convert(source, k), convert(source, v)))
                .collect(),
        ),
        YamlDataOwned::Tagged(_, _) | YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => {
            Yaml::Other
        }
    };
    // A block mapping or list ends where the next one starts: trim what
    // follows its last character, so that a problem underlines only it.
    if matches!(value, Yaml::Map(_) | Yaml::Seq(_)) {
        let text = source.slice(&range);
        range.end = range.start + text.trim_end().len();
        // A flow collection's span stops before its closing bracket.
        let close = match text.chars().next() {
            Some('{') => Some('}'),
            Some('[') => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            let after = source.text.get(range.end..).unwrap_or("");
            let gap = after.len() - after.trim_start().len();
            if after.trim_start().starts_with(close) && !source.slice(&range).ends_with(close) {
                range.end += gap + 1;
            }
        }
    }
    Node { span: range, value }
}
