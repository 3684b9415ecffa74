//! Reading YAML nodes as what the format expects there (a mapping with known
//! keys, a string, a duration...), each mismatch a problem collected on the
//! way rather than an early return.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Problem, ProblemKind};
use crate::source::Source;
use crate::template::{Template, is_value_name};
use crate::yaml::{Node, Yaml};

pub(crate) struct Reader<'s> {
    pub(crate) source: &'s Arc<Source>,
    pub(crate) problems: Vec<Problem>,
}

/// A mapping's entries: the key, the key's span, the value.
pub(crate) type Entries<'n> = Vec<(&'n str, Range<usize>, &'n Node)>;

impl<'s> Reader<'s> {
    pub(crate) fn new(source: &'s Arc<Source>) -> Self {
        Reader {
            source,
            problems: Vec::new(),
        }
    }

    pub(crate) fn problem(&mut self, span: Range<usize>, kind: ProblemKind) {
        self.problems.push(Problem::at(self.source, span, kind));
    }

    pub(crate) fn wrong_type(&mut self, node: &Node, what: String, expected: &'static str) {
        let found = node.value.describe();
        self.problem(
            node.span.clone(),
            ProblemKind::WrongType {
                what,
                expected,
                found,
            },
        );
    }

    /// The entries of mapping `node`, keeping only the `allowed` keys.
    pub(crate) fn map<'n>(
        &mut self,
        node: &'n Node,
        context: &str,
        allowed: &'static [&'static str],
    ) -> Option<Entries<'n>> {
        let Yaml::Map(entries) = &node.value else {
            self.wrong_type(node, context.to_string(), "a mapping");
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match &k.value {
                Yaml::Str(key) if allowed.contains(&key.as_str()) => {
                    out.push((key.as_str(), k.span.clone(), v));
                }
                _ => {
                    let key = self.source.slice(&k.span).to_string();
                    self.problem(
                        k.span.clone(),
                        ProblemKind::UnknownKey {
                            context: context.to_string(),
                            key,
                            allowed,
                        },
                    );
                }
            }
        }
        Some(out)
    }

    pub(crate) fn get<'n>(entries: &Entries<'n>, key: &str) -> Option<&'n Node> {
        entries.iter().find(|(k, _, _)| *k == key).map(|e| e.2)
    }

    pub(crate) fn string(&mut self, node: &Node, what: impl FnOnce() -> String) -> Option<String> {
        match &node.value {
            Yaml::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, what(), "a string");
                None
            }
        }
    }

    /// A scalar as text: a string as read, any other scalar as written (so
    /// that `-c 2` or `1.10` in a command mean what they show).
    pub(crate) fn text(&mut self, node: &Node, what: impl FnOnce() -> String) -> Option<String> {
        match &node.value {
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Int(_) | Yaml::Float(_) | Yaml::Bool(_) => {
                Some(self.source.slice(&node.span).to_string())
            }
            Yaml::Map(entries) if is_unquoted_placeholder(entries) => {
                let text = self.source.slice(&node.span).to_string();
                self.problem(
                    node.span.clone(),
                    ProblemKind::Conflict {
                        context: format!("`{text}`"),
                        problem: "is a mapping to YAML when it is not in quotes: write a \
                                  placeholder in quotes, as \"{name}\"",
                    },
                );
                None
            }
            _ => {
                self.wrong_type(node, what(), "a string");
                None
            }
        }
    }

    pub(crate) fn template(
        &mut self,
        node: &Node,
        what: impl FnOnce() -> String,
    ) -> Option<Template> {
        let text = self.text(node, what)?;
        let raw = self.source.slice(&node.span).to_string();
        match Template::parse(&text, node.span.clone(), &raw) {
            Ok(t) => Some(t),
            Err(problems) => {
                for (span, kind) in problems {
                    self.problem(span, kind);
                }
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        node: &Node,
        what: impl FnOnce() -> String,
    ) -> Option<Duration> {
        let text = self.text(node, what)?;
        match parse_duration(&text) {
            Some(d) => Some(d),
            None => {
                self.problem(node.span.clone(), ProblemKind::Duration { text });
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, node: &Node, what: impl FnOnce() -> String) -> Option<bool> {
        match node.value {
            Yaml::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, what(), "`true` or `false`");
                None
            }
        }
    }

    pub(crate) fn list<'n>(
        &mut self,
        node: &'n Node,
        what: impl FnOnce() -> String,
    ) -> Option<&'n [Node]> {
        match &node.value {
            Yaml::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, what(), "a list");
                None
            }
        }
    }

    pub(crate) fn name(
        &mut self,
        node: &Node,
        what: &'static str,
        context: impl FnOnce() -> String,
        valid: fn(&str) -> bool,
        rule: &'static str,
    ) -> Option<String> {
        let name = self.string(node, context)?;
        if valid(&name) {
            Some(name)
        } else {
            self.problem(
                node.span.clone(),
                ProblemKind::InvalidName { what, name, rule },
            );
            None
        }
    }

    pub(crate) fn missing(&mut self, node: &Node, context: &str, key: &'static str) {
        self.problem(
            node.span.clone(),
            ProblemKind::MissingKey {
                context: context.to_string(),
                key,
            },
        );
    }
}

/// Whether a mapping is what YAML makes of an unquoted `{name}`.
fn is_unquoted_placeholder(entries: &[(Node, Node)]) -> bool {
    matches!(entries, [(k, v)] if matches!(&k.value, Yaml::Str(s) if is_value_name(s))
        && matches!(v.value, Yaml::Null))
}

/// Reads `30s`, `5m`, `1h30m`, `500ms`, `2d`: whole numbers with units.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let one = match &rest[..unit] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return None,
        };
        total = total.checked_add(one.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[unit..];
    }
    Some(total)
}
