//! Sentences built while the program compiles, in a fixed buffer, then raised
//! with `panic!` so the compiler prints them.

/// A sentence under construction, or built: what `flow!`'s constants panic
/// with when a check fails.
#[derive(Debug)]
pub struct Msg {
    bytes: [u8; 2048],
    len: usize,
}

impl Msg {
    pub(crate) const fn new() -> Self {
        Msg {
            bytes: [0; 2048],
            len: 0,
        }
    }

    /// Appends `s`, cutting the sentence (on a character boundary) when full.
    pub(crate) const fn push(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && self.len < self.bytes.len() - 4 {
            self.bytes[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        if i < b.len() {
            while self.len > 0 && (self.bytes[self.len - 1] & 0xC0) == 0x80 {
                self.len -= 1;
            }
            if self.len > 0 && self.bytes[self.len - 1] >= 0xC0 {
                self.len -= 1;
            }
        }
        self
    }

    /// Appends `` `s` ``.
    pub(crate) const fn code(self, s: &str) -> Self {
        self.push("`").push(s).push("`")
    }

    /// The sentence, which a constant of `flow!` panics with: the compiler
    /// prints it as the error.
    pub const fn text(&self) -> &str {
        let (text, _) = self.bytes.split_at(self.len);
        match core::str::from_utf8(text) {
            Ok(s) => s,
            Err(_) => "flow! found an error it could not describe",
        }
    }
}

/// Whether two strings are equal.
pub(crate) const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
