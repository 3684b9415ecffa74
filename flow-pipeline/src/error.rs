//! Problems found in a pipeline file or in the values given to it: each one
//! typed, located (file, line, column, the offending text) and rendered as a
//! [`miette`] diagnostic; all of them reported together.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

use crate::source::Source;

/// What is wrong. Each variant's message names the step, parameter or key
/// concerned and says what to do.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file could not be read.
    #[error("cannot read the file: {message}")]
    Read {
        /// What the operating system said.
        message: String,
    },
    /// The text is not YAML.
    #[error("this is not valid YAML: {message}")]
    Syntax {
        /// What the YAML parser said.
        message: String,
    },
    /// A mapping has a key it may not have.
    #[error("{context} has no key `{key}`: its keys are {}", quoted(.allowed))]
    UnknownKey {
        /// Where the mapping is (`the pipeline`, `step \`ping\``, ...).
        context: String,
        /// The key found.
        key: String,
        /// The keys allowed there.
        allowed: &'static [&'static str],
    },
    /// A mapping lacks a key it needs.
    #[error("{context} needs a `{key}`")]
    MissingKey {
        /// Where the mapping is.
        context: String,
        /// The key missing.
        key: &'static str,
    },
    /// A value has the wrong YAML type.
    #[error("{what} must be {expected}, not {found}")]
    WrongType {
        /// The value (`the name of the pipeline`, `\`timeout\` of step \`ping\``).
        what: String,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// Two keys that exclude each other, or none of two that one is needed of.
    #[error("{context} {problem}")]
    Conflict {
        /// Where.
        context: String,
        /// What is wrong, and what to do.
        problem: &'static str,
    },
    /// A name that does not follow the rules for its kind.
    #[error("{what} `{name}` is not a valid name: {rule}")]
    InvalidName {
        /// `a step`, `a parameter`, `an output`, `an environment variable`.
        what: &'static str,
        /// The name.
        name: String,
        /// The rule.
        rule: &'static str,
    },
    /// Two steps have the same name.
    #[error("two steps are named `{name}` (the first on line {first_line}): rename one")]
    DuplicateStep {
        /// The name.
        name: String,
        /// The line of the first.
        first_line: usize,
    },
    /// A parameter and a step output, or two step outputs, share a name.
    #[error("`{name}` names {first} and {second}: a placeholder must name one value, rename one")]
    DuplicateValue {
        /// The name.
        name: String,
        /// What it names first.
        first: String,
        /// What it names again.
        second: String,
    },
    /// `depends-on` names something that is not a step.
    #[error("step `{step}` depends on `{dependency}`, which is not a step of this pipeline")]
    UnknownDependency {
        /// The step.
        step: String,
        /// The name it depends on.
        dependency: String,
    },
    /// The steps' dependencies form a cycle.
    #[error(
        "the steps depend on each other in a cycle: {}; remove one of these dependencies",
        cycle(.steps)
    )]
    Cycle {
        /// The steps on the cycle, in order (the first is repeated at the end).
        steps: Vec<String>,
    },
    /// A placeholder names no parameter and no step output.
    #[error("step `{step}` uses `{{{name}}}`, which names no parameter and no step output")]
    UnknownPlaceholder {
        /// The step.
        step: String,
        /// The name in the placeholder.
        name: String,
    },
    /// A placeholder names the output of a step that does not run before.
    #[error(
        "step `{step}` uses `{{{name}}}`, the output of step `{provider}`, which does not run \
         before it: add `{provider}` to its `depends-on`"
    )]
    NotAPredecessor {
        /// The step.
        step: String,
        /// The output's name.
        name: String,
        /// The step that provides it.
        provider: String,
    },
    /// A `{` or `}` that is neither doubled nor part of a placeholder.
    #[error(
        "a lone `{brace}`: write `{brace}{brace}` for a literal brace, or `{{name}}` for a value"
    )]
    LoneBrace {
        /// The brace.
        brace: char,
    },
    /// A placeholder that is not a name.
    #[error(
        "`{{{text}}}` is not a placeholder: a placeholder is a name of letters, digits and `_` \
         in braces; write `{{{{` and `}}}}` for literal braces"
    )]
    BadPlaceholder {
        /// The text between the braces.
        text: String,
    },
    /// A parameter's default does not have the parameter's type.
    #[error("the default of parameter `{param}` must be {expected}, not {found}")]
    DefaultType {
        /// The parameter.
        param: String,
        /// Its type.
        expected: String,
        /// What the default is.
        found: String,
    },
    /// A required parameter was given no value.
    #[error("parameter `{param}` is required and was given no value")]
    MissingParameter {
        /// The parameter.
        param: String,
    },
    /// A parameter was given a value of the wrong type.
    #[error("parameter `{param}` must be {expected}, and {value} is not")]
    ParameterType {
        /// The parameter.
        param: String,
        /// Its type.
        expected: String,
        /// The value given, as written.
        value: String,
    },
    /// A value was given for a parameter the pipeline does not have.
    #[error("the pipeline has no parameter `{param}`: its parameters are {}", quoted(.known))]
    UnknownParameter {
        /// The name given.
        param: String,
        /// The parameters there are.
        known: Vec<String>,
    },
    /// A value holds a NUL byte, which no argument or environment variable can.
    #[error(
        "the value of parameter `{param}` holds a NUL byte, which no program can receive in an \
         argument or in its environment"
    )]
    NulInValue {
        /// The parameter.
        param: String,
    },
    /// A value is not UTF-8 text.
    #[error(
        "the value of parameter `{param}` is not UTF-8 text: the journal keeps values as UTF-8, \
         so it could not keep this one exactly"
    )]
    NotUtf8 {
        /// The parameter.
        param: String,
    },
    /// A duration that cannot be read.
    #[error(
        "`{text}` is not a duration: write whole numbers with units, such as `30s`, `5m`, \
         `1h30m` or `500ms`"
    )]
    Duration {
        /// The text.
        text: String,
    },
}

fn quoted(items: &[impl AsRef<str>]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| format!("`{}`", i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a` depends on `b`, which depends on `a`.
fn cycle(steps: &[String]) -> String {
    let mut out = String::new();
    for (i, s) in steps.iter().enumerate() {
        match i {
            0 => out.push_str(&format!("`{s}`")),
            1 => out.push_str(&format!(" depends on `{s}`")),
            _ => out.push_str(&format!(", which depends on `{s}`")),
        }
    }
    out
}

/// Where a problem is: a byte range of the file, its line and column, and the
/// text there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    span: Range<usize>,
    line: usize,
    column: usize,
    snippet: String,
}

impl Location {
    /// The byte range in the file.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The line, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column, from 1, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The offending text.
    pub fn snippet(&self) -> &str {
        &self.snippet
    }
}

/// One problem: what is wrong, and where.
///
/// `Display` prints `file:line:column: message`; as a [`miette::Diagnostic`]
/// it shows the offending text in its file.
#[derive(Clone)]
pub struct Problem {
    kind: ProblemKind,
    location: Option<Location>,
    source: Arc<Source>,
}

impl Problem {
    pub(crate) fn at(source: &Arc<Source>, span: Range<usize>, kind: ProblemKind) -> Self {
        let (line, column) = source.line_col(span.start);
        let snippet = source.slice(&span).to_string();
        Problem {
            kind,
            location: Some(Location {
                span,
                line,
                column,
                snippet,
            }),
            source: source.clone(),
        }
    }

    pub(crate) fn whole(source: &Arc<Source>, kind: ProblemKind) -> Self {
        Problem {
            kind,
            location: None,
            source: source.clone(),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> &ProblemKind {
        &self.kind
    }

    /// The message, without the location.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// The file's name (as given, or its path).
    pub fn file(&self) -> &str {
        &self.source.name
    }

    /// Where in the file, when the problem has a place (a value given for an
    /// unknown parameter has none).
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The line, from 1 (0 when the problem has no place).
    pub fn line(&self) -> usize {
        self.location.as_ref().map_or(0, |l| l.line)
    }

    /// The column, from 1 (0 when the problem has no place).
    pub fn column(&self) -> usize {
        self.location.as_ref().map_or(0, |l| l.column)
    }

    /// The offending text (empty when the problem has no place).
    pub fn snippet(&self) -> &str {
        self.location.as_ref().map_or("", |l| &l.snippet)
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("file", &self.source.name)
            .field("kind", &self.kind)
            .field("location", &self.location)
            .finish()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(
                f,
                "{}:{}:{}: {}",
                self.source.name, l.line, l.column, self.kind
            ),
            None => write!(f, "{}: {}", self.source.name, self.kind),
        }
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("flow::pipeline::{}", code(&self.kind))))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.location
            .as_ref()
            .map(|_| &*self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let l = self.location.as_ref()?;
        let span = SourceSpan::from(l.span.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(label(&self.kind).to_string()),
            span,
        ))))
    }
}

/// A short code per kind, for `miette`'s report.
fn code(kind: &ProblemKind) -> &'static str {
    match kind {
        ProblemKind::Read { .. } => "read",
        ProblemKind::Syntax { .. } => "syntax",
        ProblemKind::UnknownKey { .. } => "unknown_key",
        ProblemKind::MissingKey { .. } => "missing_key",
        ProblemKind::WrongType { .. } => "wrong_type",
        ProblemKind::Conflict { .. } => "conflict",
        ProblemKind::InvalidName { .. } => "invalid_name",
        ProblemKind::DuplicateStep { .. } => "duplicate_step",
        ProblemKind::DuplicateValue { .. } => "duplicate_value",
        ProblemKind::UnknownDependency { .. } => "unknown_dependency",
        ProblemKind::Cycle { .. } => "cycle",
        ProblemKind::UnknownPlaceholder { .. } => "unknown_placeholder",
        ProblemKind::NotAPredecessor { .. } => "not_a_predecessor",
        ProblemKind::LoneBrace { .. } => "lone_brace",
        ProblemKind::BadPlaceholder { .. } => "bad_placeholder",
        ProblemKind::DefaultType { .. } => "default_type",
        ProblemKind::MissingParameter { .. } => "missing_parameter",
        ProblemKind::ParameterType { .. } => "parameter_type",
        ProblemKind::UnknownParameter { .. } => "unknown_parameter",
        ProblemKind::NulInValue { .. } => "nul_in_value",
        ProblemKind::NotUtf8 { .. } => "not_utf8",
        ProblemKind::Duration { .. } => "duration",
    }
}

/// The words under the underlined text.
fn label(kind: &ProblemKind) -> &'static str {
    match kind {
        ProblemKind::Read { .. } | ProblemKind::Syntax { .. } => "here",
        ProblemKind::UnknownKey { .. } => "unknown key",
        ProblemKind::MissingKey { .. } => "in this mapping",
        ProblemKind::WrongType { .. } | ProblemKind::DefaultType { .. } => "wrong type",
        ProblemKind::Conflict { .. } => "here",
        ProblemKind::InvalidName { .. } => "invalid name",
        ProblemKind::DuplicateStep { .. } => "second step of this name",
        ProblemKind::DuplicateValue { .. } => "named again here",
        ProblemKind::UnknownDependency { .. } => "no such step",
        ProblemKind::Cycle { .. } => "closes the cycle",
        ProblemKind::UnknownPlaceholder { .. } => "unknown name",
        ProblemKind::NotAPredecessor { .. } => "does not run before this step",
        ProblemKind::LoneBrace { .. } | ProblemKind::BadPlaceholder { .. } => "here",
        ProblemKind::MissingParameter { .. } => "declared here",
        ProblemKind::ParameterType { .. }
        | ProblemKind::NulInValue { .. }
        | ProblemKind::NotUtf8 { .. } => "the parameter",
        ProblemKind::UnknownParameter { .. } => "here",
        ProblemKind::Duration { .. } => "not a duration",
    }
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// Every problem found, in the order of the file.
///
/// `Display` prints one problem per line; [`Problems::render`] draws each with
/// the file's text, as a command-line tool shows them.
///
/// ```
/// # mod flow { pub use flow_core::*; pub use flow_pipeline as pipeline; }
/// use flow::pipeline::Pipeline;
///
/// let err = Pipeline::from_str("bad.yaml", "name: bad\nsteps:\n  - name: a\n    command: [ls]\n    depends-on: [b]\n")
///     .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "bad.yaml:5:18: step `a` depends on `b`, which is not a step of this pipeline"
/// );
/// assert!(err.render().contains("no such step"));
/// ```
#[derive(Clone, Debug)]
pub struct Problems {
    problems: Vec<Problem>,
}

impl Problems {
    pub(crate) fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| {
            p.location
                .as_ref()
                .map_or((usize::MAX, 0), |l| (l.span.start, l.span.end))
        });
        Problems { problems }
    }

    /// The problems, in the order of the file (those without a place last).
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.problems.iter()
    }

    /// How many problems there are (at least one).
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Always false: there is at least one problem.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Each problem drawn with the lines of the file around it, without
    /// colours: what a command-line tool prints.
    pub fn render(&self) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        let mut out = String::new();
        for p in &self.problems {
            if handler.render_report(&mut out, &Bare(p)).is_err() {
                out.push_str(&p.to_string());
            }
            out.push('\n');
        }
        out
    }
}

/// A problem whose message leaves out the location, which its report shows.
struct Bare<'a>(&'a Problem);

impl fmt::Debug for Bare<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Bare<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.location {
            Some(_) => fmt::Display::fmt(&self.0.kind, f),
            None => fmt::Display::fmt(self.0, f),
        }
    }
}

impl std::error::Error for Bare<'_> {}

impl Diagnostic for Bare<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.code()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.0.labels()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            fmt::Display::fmt(p, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Diagnostic for Problems {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}
