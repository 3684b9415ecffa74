//! Scripts: a placeholder in a script never puts its value in the script's
//! text. It becomes a reference to an environment variable that holds the
//! value (`{ip}` reads `$FLOW_VALUE_ip`), quoted as the place it stands in
//! needs, so that the shell neither splits it nor expands it:
//!
//! | where `{ip}` stands | what `sh` reads |
//! |---|---|
//! | outside quotes, or inside `$(...)` or backquotes | `"${FLOW_VALUE_ip}"` |
//! | inside double quotes, or an unquoted here-document | `${FLOW_VALUE_ip}` |
//! | inside single quotes | `'"${FLOW_VALUE_ip}"'` (closes and reopens them) |
//!
//! Whatever the reading of the script's quotes, the value itself only ever
//! reaches the shell as the content of a variable, which the shell does not
//! parse: that is what makes a script safe. The quoting only decides whether
//! the value is kept in one piece.

use crate::error::ProblemKind;
use crate::template::{Piece, Template};

/// The prefix of the environment variables that carry values to scripts.
pub(crate) const VALUE_PREFIX: &str = "FLOW_VALUE_";

/// Where the shell is when it reads a placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    /// Outside quotes (also inside `$(...)`, with its parenthesis depth).
    Plain(u32),
    Single,
    Double,
    Backquote,
    /// A comment, to the end of the line.
    Comment,
    /// The body of a here-document; `true` when its delimiter was quoted.
    HereDoc(bool),
}

/// A here-document whose body starts on the next line.
#[derive(Debug)]
struct Pending {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
}

struct Lexer {
    stack: Vec<Context>,
    pending: Vec<Pending>,
    /// The current line of a here-document body, until its end.
    line: String,
    /// The previous character, to tell where a word starts.
    prev: char,
    escaped: bool,
    /// Text after `<<` being read as a delimiter.
    heredoc_word: Option<(String, bool, bool)>,
}

impl Lexer {
    fn new() -> Self {
        Lexer {
            stack: vec![Context::Plain(0)],
            pending: Vec::new(),
            line: String::new(),
            prev: '\n',
            escaped: false,
            heredoc_word: None,
        }
    }

    fn top(&self) -> Context {
        self.stack.last().copied().unwrap_or(Context::Plain(0))
    }

    fn set_top(&mut self, c: Context) {
        if let Some(t) = self.stack.last_mut() {
            *t = c;
        }
    }

    fn pop(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    fn feed(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let before = if i >= 2 { chars[i - 2] } else { ' ' };
            let skip = self.step(chars[i], chars.get(i + 1).copied(), before);
            i += if skip { 2 } else { 1 };
        }
    }

    /// Reads `c` (followed by `next`, `before` being two characters back);
    /// true when it consumed `next` too.
    fn step(&mut self, c: char, next: Option<char>, before: char) -> bool {
        if let Some((word, quoted, strip)) = self.heredoc_word.as_mut() {
            match c {
                '-' if word.is_empty() && !*strip && !*quoted => {
                    *strip = true;
                    return false;
                }
                ' ' | '\t' if word.is_empty() => return false,
                '\'' | '"' | '\\' => {
                    *quoted = true;
                    return false;
                }
                c if c.is_whitespace() || ";|&()<>".contains(c) => {
                    let (delimiter, quoted, strip_tabs) =
                        self.heredoc_word.take().unwrap_or_default();
                    self.pending.push(Pending {
                        delimiter,
                        quoted,
                        strip_tabs,
                    });
                }
                c => {
                    word.push(c);
                    return false;
                }
            }
        }
        if self.escaped {
            self.escaped = false;
            self.prev = c;
            return false;
        }
        let mut skip = false;
        match self.top() {
            Context::Comment => {
                if c == '\n' {
                    self.pop();
                    self.newline();
                }
            }
            Context::HereDoc(_) => {
                if c == '\n' {
                    let done = self.pending.first().is_some_and(|p| {
                        let line = if p.strip_tabs {
                            self.line.trim_start_matches('\t')
                        } else {
                            &self.line
                        };
                        line == p.delimiter
                    });
                    self.line.clear();
                    if done {
                        self.pending.remove(0);
                        self.pop();
                        self.newline();
                    }
                } else {
                    self.line.push(c);
                }
            }
            Context::Single => {
                if c == '\'' {
                    self.pop();
                }
            }
            Context::Double => match c {
                '\\' => self.escaped = true,
                '"' => self.pop(),
                '`' => self.stack.push(Context::Backquote),
                '$' if next == Some('(') => {
                    self.stack.push(Context::Plain(1));
                    skip = true;
                }
                _ => {}
            },
            ctx @ (Context::Plain(_) | Context::Backquote) => {
                let depth = match ctx {
                    Context::Plain(d) => d,
                    _ => 0,
                };
                match c {
                    '\\' => self.escaped = true,
                    '\'' => self.stack.push(Context::Single),
                    '"' => self.stack.push(Context::Double),
                    '`' if ctx == Context::Backquote => self.pop(),
                    '`' => self.stack.push(Context::Backquote),
                    '$' if next == Some('(') => {
                        self.stack.push(Context::Plain(1));
                        skip = true;
                    }
                    '(' if depth > 0 => self.set_top(Context::Plain(depth + 1)),
                    ')' if depth > 1 => self.set_top(Context::Plain(depth - 1)),
                    ')' if depth == 1 => self.pop(),
                    '#' if self.prev.is_whitespace() || ";|&(".contains(self.prev) => {
                        self.stack.push(Context::Comment);
                    }
                    '<' if self.prev == '<' && before != '<' && next != Some('<') => {
                        self.heredoc_word = Some((String::new(), false, false));
                    }
                    '\n' => self.newline(),
                    _ => {}
                }
            }
        }
        self.prev = if skip { '(' } else { c };
        skip
    }

    /// At the end of a line outside quotes, the here-documents announced on
    /// it begin.
    fn newline(&mut self) {
        if let Some(p) = self.pending.first() {
            let quoted = p.quoted;
            self.stack.push(Context::HereDoc(quoted));
        }
    }

    /// What to write for a placeholder of `name` here.
    fn reference(&self, name: &str) -> Result<String, ProblemKind> {
        let var = format!("${{{VALUE_PREFIX}{name}}}");
        Ok(match self.top() {
            Context::Plain(_) | Context::Backquote | Context::Comment => format!("\"{var}\""),
            Context::Double | Context::HereDoc(false) => var,
            Context::Single => format!("'\"{var}\"'"),
            Context::HereDoc(true) => {
                return Err(ProblemKind::Conflict {
                    context: format!("`{{{name}}}`"),
                    problem: "stands in a here-document whose delimiter is quoted, where the \
                              shell expands nothing: leave the delimiter unquoted",
                });
            }
        })
    }
}

/// The text `sh -c` runs for `script`.
pub(crate) fn render(
    script: &Template,
) -> Result<String, Vec<(std::ops::Range<usize>, ProblemKind)>> {
    let mut lexer = Lexer::new();
    let mut out = String::new();
    let mut problems = Vec::new();
    for piece in &script.pieces {
        match piece {
            Piece::Text(t) => {
                lexer.feed(t);
                out.push_str(t);
            }
            Piece::Value(name, at) => match lexer.reference(name) {
                Ok(r) => {
                    out.push_str(&r);
                    // The reference stands for a word's characters.
                    lexer.prev = 'x';
                }
                Err(p) => problems.push((at.clone(), p)),
            },
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::template::Template;

    fn script(text: &str) -> String {
        let t = Template::parse(text, 0..text.len(), text).expect("template");
        render(&t).expect("renders")
    }

    #[test]
    fn each_place_gets_the_quoting_it_needs() {
        assert_eq!(script("ping -c 1 {ip}"), "ping -c 1 \"${FLOW_VALUE_ip}\"");
        assert_eq!(
            script("echo \"host={ip}!\""),
            "echo \"host=${FLOW_VALUE_ip}!\""
        );
        assert_eq!(
            script("echo 'a {ip} b'"),
            "echo 'a '\"${FLOW_VALUE_ip}\"' b'"
        );
        assert_eq!(
            script("echo \"$(cat {f})\""),
            "echo \"$(cat \"${FLOW_VALUE_f}\")\""
        );
        assert_eq!(script("x=`echo {v}`"), "x=`echo \"${FLOW_VALUE_v}\"`");
        assert_eq!(
            script("echo \"it's\" {v} 'q\"' {v}"),
            "echo \"it's\" \"${FLOW_VALUE_v}\" 'q\"' \"${FLOW_VALUE_v}\""
        );
        assert_eq!(script("echo \\\"{v}"), "echo \\\"\"${FLOW_VALUE_v}\"");
        assert_eq!(
            script("echo $(( 1 + 2 )) {v}"),
            "echo $(( 1 + 2 )) \"${FLOW_VALUE_v}\""
        );
    }

    #[test]
    fn comments_and_here_documents() {
        assert_eq!(
            script("# it's {v}\necho {v}"),
            "# it's \"${FLOW_VALUE_v}\"\necho \"${FLOW_VALUE_v}\""
        );
        assert_eq!(
            script("cat <<EOF\nit's {v}\nEOF\necho {v}"),
            "cat <<EOF\nit's ${FLOW_VALUE_v}\nEOF\necho \"${FLOW_VALUE_v}\""
        );
        assert_eq!(
            script("cat <<-EOF >x\n\tit's {v}\n\tEOF\necho 'a{v}'"),
            "cat <<-EOF >x\n\tit's ${FLOW_VALUE_v}\n\tEOF\necho 'a'\"${FLOW_VALUE_v}\"''"
        );
        let quoted = "cat <<'EOF'\n{v}\nEOF\n";
        let t = Template::parse(quoted, 0..quoted.len(), quoted).unwrap();
        let err = render(&t).unwrap_err();
        assert_eq!(err[0].0, 12..15);
    }
}
