//! The text of a pipeline file: its name, its bytes, and positions in it.
//!
//! Every problem found in a file points at a byte range of its source; this
//! module turns those ranges into the line and column a person reads.

use std::ops::Range;
use std::sync::Arc;

/// A pipeline file's text and the name it is reported under (its path, or a
/// name given to [`Pipeline::from_str`](crate::Pipeline::from_str)).
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: String,
    /// The byte offset at which each line starts.
    line_starts: Vec<usize>,
    /// Whether every character is one byte (then offsets need no counting).
    ascii: bool,
}

impl Source {
    pub(crate) fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(Source {
            name: name.into(),
            ascii: text.is_ascii(),
            text,
            line_starts,
        })
    }

    /// The line (1-based) and column (1-based, in characters) of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }

    /// The text of `span`, or an empty text when it is out of range.
    pub(crate) fn slice(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }

    /// The byte offset of character `index` (the YAML parser counts characters).
    pub(crate) fn byte_of_char(&self, index: usize) -> usize {
        if self.ascii {
            return index.min(self.text.len());
        }
        self.text
            .char_indices()
            .nth(index)
            .map_or(self.text.len(), |(b, _)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn lines_and_columns_count_from_one_in_characters() {
        let s = Source::new("f.yaml", "ab\nçd: x\n\nz");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(1), (1, 2));
        assert_eq!(s.line_col(3), (2, 1));
        // `ç` is two bytes but one column.
        assert_eq!(s.line_col(5), (2, 2));
        assert_eq!(s.line_col(10), (3, 1));
        assert_eq!(s.line_col(11), (4, 1));
        assert_eq!(s.byte_of_char(4), 5);
        assert_eq!(s.slice(&(3..7)), "çd:");
    }
}
