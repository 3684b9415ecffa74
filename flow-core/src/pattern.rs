//! Name patterns: a symbol name with one `*`, which stands for any text
//! (`healthy_*`). A task collects every symbol whose name matches one
//! (`#[collect(healthy_*)]`), and a run-time group of `flow!` may declare one
//! among its outputs.

/// Whether `name` matches `pattern`: equal, or, when the pattern holds a `*`,
/// starting with what comes before it and ending with what comes after (the
/// `*` matches any text, the empty one too).
///
/// ```
/// use flow::checked::name_matches;
/// assert!(name_matches("healthy_*", "healthy_web-01"));
/// assert!(name_matches("healthy_*", "healthy_"));
/// assert!(!name_matches("healthy_*", "ready_web-01"));
/// assert!(name_matches("db", "db"));
/// ```
pub const fn name_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let mut star = 0;
    while star < p.len() && p[star] != b'*' {
        star += 1;
    }
    if star == p.len() {
        return p.len() == n.len() && same_bytes(p, 0, n, 0, p.len());
    }
    let suffix = p.len() - star - 1;
    n.len() >= star + suffix
        && same_bytes(p, 0, n, 0, star)
        && same_bytes(p, star + 1, n, n.len() - suffix, suffix)
}

/// Whether the `len` bytes of `a` from `at_a` are those of `b` from `at_b`
/// (both ranges in bounds).
const fn same_bytes(a: &[u8], at_a: usize, b: &[u8], at_b: usize, len: usize) -> bool {
    let mut k = 0;
    while k < len {
        if a[at_a + k] != b[at_b + k] {
            return false;
        }
        k += 1;
    }
    true
}

/// Whether `symbol` is a pattern: holds a `*`.
pub(crate) const fn is_pattern(symbol: &str) -> bool {
    let b = symbol.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'*' {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether every name that pattern `inner` matches also matches pattern
/// `outer` (`healthy_web_*` is within `healthy_*`).
pub(crate) const fn pattern_within(inner: &str, outer: &str) -> bool {
    let (i, o) = (inner.as_bytes(), outer.as_bytes());
    let (mut si, mut so) = (0, 0);
    while si < i.len() && i[si] != b'*' {
        si += 1;
    }
    while so < o.len() && o[so] != b'*' {
        so += 1;
    }
    let (isuf, osuf) = (i.len() - si - 1, o.len() - so - 1);
    if si < so || isuf < osuf {
        return false;
    }
    same_bytes(i, 0, o, 0, so) && same_bytes(i, i.len() - osuf, o, o.len() - osuf, osuf)
}

#[cfg(test)]
mod tests {
    use super::{is_pattern, name_matches, pattern_within};

    #[test]
    fn patterns_match_by_prefix_and_suffix() {
        assert!(name_matches("up_*_ok", "up_web-01_ok"));
        assert!(name_matches("up_*_ok", "up__ok"));
        assert!(!name_matches("up_*_ok", "up_ok"));
        assert!(!name_matches("up_*_ok", "up_web-01_ko"));
        assert!(!name_matches("db", "db2"));
        assert!(is_pattern("a*"));
        assert!(!is_pattern("a"));
    }

    #[test]
    fn a_narrower_pattern_is_within_a_wider_one() {
        assert!(pattern_within("healthy_web_*", "healthy_*"));
        assert!(pattern_within("healthy_*", "healthy_*"));
        assert!(pattern_within("a_*_x_ok", "a_*_ok"));
        assert!(!pattern_within("healthy_*", "healthy_web_*"));
        assert!(!pattern_within("ready_*", "healthy_*"));
        assert!(!pattern_within("a_*_ok", "a_*_x_ok"));
    }
}
