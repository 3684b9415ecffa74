//! Text with placeholders: `{name}` stands for a value, `{{` and `}}` for
//! literal braces. Parsing keeps, for each placeholder, where it is in the
//! file, so that a wrong name is reported on its own characters.

use std::ops::Range;

use crate::error::ProblemKind;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text taken as written (braces already undoubled).
    Text(String),
    /// A placeholder: the value's name and where it stands in the file.
    Value(String, Range<usize>),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) pieces: Vec<Piece>,
    /// Where the whole string is in the file.
    pub(crate) span: Range<usize>,
}

/// Whether `name` may be a parameter's or an output's name, and so a
/// placeholder's: an ASCII letter or `_`, then letters, digits and `_`.
pub(crate) fn is_value_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parses `text`, which the file holds in `span` (`raw` being the file's
    /// text there). Problems come back with the byte range they concern.
    pub(crate) fn parse(
        text: &str,
        span: Range<usize>,
        raw: &str,
    ) -> Result<Template, Vec<(Range<usize>, ProblemKind)>> {
        let mut pieces = Vec::new();
        let mut problems = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        // Each placeholder's text is looked for in the raw file text in turn,
        // so that its place is exact whatever the quoting style; when it is
        // not found there (escapes), the whole string is pointed at.
        let mut cursor = 0usize;
        let mut locate = |needle: &str| -> Range<usize> {
            match raw.get(cursor..).and_then(|r| r.find(needle)) {
                Some(i) => {
                    let start = cursor + i;
                    cursor = start + needle.len();
                    span.start + start..span.start + start + needle.len()
                }
                None => span.clone(),
            }
        };
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                literal.push('{');
                locate("{{");
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                literal.push('}');
                locate("}}");
                rest = after;
            } else if let Some(after) = tail.strip_prefix('}') {
                problems.push((locate("}"), ProblemKind::LoneBrace { brace: '}' }));
                rest = after;
            } else {
                match tail[1..].find(['{', '}']) {
                    Some(j) if tail.as_bytes()[1 + j] == b'}' => {
                        let inner = &tail[1..1 + j];
                        let place = locate(&tail[..j + 2]);
                        if is_value_name(inner) {
                            if !literal.is_empty() {
                                pieces.push(Piece::Text(std::mem::take(&mut literal)));
                            }
                            pieces.push(Piece::Value(inner.to_string(), place));
                        } else {
                            problems.push((
                                place,
                                ProblemKind::BadPlaceholder {
                                    text: inner.to_string(),
                                },
                            ));
                        }
                        rest = &tail[j + 2..];
                    }
                    _ => {
                        problems.push((locate("{"), ProblemKind::LoneBrace { brace: '{' }));
                        rest = &tail[1..];
                    }
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if problems.is_empty() {
            Ok(Template { pieces, span })
        } else {
            Err(problems)
        }
    }

    /// The names of the values used, with where each stands, in order.
    pub(crate) fn values(&self) -> impl Iterator<Item = (&str, &Range<usize>)> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Value(name, at) => Some((name.as_str(), at)),
            Piece::Text(_) => None,
        })
    }

    /// The text with each value put in place, by `value(name)`.
    pub(crate) fn render<'v>(&self, mut value: impl FnMut(&str) -> &'v str) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Value(name, _) => out.push_str(value(name)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Piece, Template};
    use crate::error::ProblemKind;

    fn parse(text: &str) -> Result<Template, Vec<(std::ops::Range<usize>, ProblemKind)>> {
        Template::parse(text, 10..10 + text.len(), text)
    }

    #[test]
    fn placeholders_and_doubled_braces() {
        let t = parse("a{ip}b{{c}}{x_1}").unwrap();
        assert_eq!(
            t.pieces,
            [
                Piece::Text("a".into()),
                Piece::Value("ip".into(), 11..15),
                Piece::Text("b{c}".into()),
                Piece::Value("x_1".into(), 21..26),
            ]
        );
        assert_eq!(
            t.render(|n| if n == "ip" { "1.2.3.4" } else { "X" }),
            "a1.2.3.4b{c}X"
        );
    }

    #[test]
    fn lone_braces_and_bad_placeholders_are_problems_in_place() {
        let err = parse("x } y { z {a b} {{ok}}").unwrap_err();
        assert_eq!(
            err,
            [
                (12..13, ProblemKind::LoneBrace { brace: '}' }),
                (16..17, ProblemKind::LoneBrace { brace: '{' }),
                (20..25, ProblemKind::BadPlaceholder { text: "a b".into() }),
            ]
        );
    }

    #[test]
    fn a_placeholder_found_in_a_quoted_string_points_inside_the_quotes() {
        // The file holds `"ping {ip}"` at 100..111.
        let t = Template::parse("ping {ip}", 100..111, "\"ping {ip}\"").unwrap();
        assert_eq!(t.values().next(), Some(("ip", &(106..110))));
    }
}
