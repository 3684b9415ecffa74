//! "Did you mean": the symbol of a flow nearest to a name nothing provides,
//! found while the program compiles.

use super::FlowTable;

/// Names longer than this are not compared.
const MAX_LEN: usize = 32;

/// At most this many candidates of a near length are compared, so that one
/// evaluation stays far below the compiler's limit on constant evaluation.
const MAX_COMPARED: usize = 64;

/// The edit distance of `a` and `b` (insertions, deletions, substitutions),
/// both at most [`MAX_LEN`] bytes.
pub(super) const fn distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev = [0usize; MAX_LEN + 1];
    let mut cur = [0usize; MAX_LEN + 1];
    let mut j = 0;
    while j <= b.len() {
        prev[j] = j;
        j += 1;
    }
    let mut i = 1;
    while i <= a.len() {
        cur[0] = i;
        let mut j = 1;
        while j <= b.len() {
            let cost = if a[i - 1] == b[j - 1] { 0 } else { 1 };
            let mut best = prev[j - 1] + cost;
            if prev[j] + 1 < best {
                best = prev[j] + 1;
            }
            if cur[j - 1] + 1 < best {
                best = cur[j - 1] + 1;
            }
            cur[j] = best;
            j += 1;
        }
        let mut k = 0;
        while k <= b.len() {
            prev[k] = cur[k];
            k += 1;
        }
        i += 1;
    }
    prev[b.len()]
}

/// How far a name of `len` bytes may be from a suggestion.
const fn allowed(len: usize) -> usize {
    if len <= 4 { 1 } else { 2 }
}

/// The symbol of `t` (an output of one of its tasks or retry controllers,
/// or a declared input) nearest to `name`, when one is near enough.
pub(super) const fn nearest(t: &FlowTable, name: &str) -> Option<&'static str> {
    let a = name.as_bytes();
    if a.len() > MAX_LEN || a.is_empty() {
        return None;
    }
    let limit = allowed(a.len());
    let mut best: Option<&'static str> = None;
    let mut best_d = limit + 1;
    let mut compared = 0;
    let mut n = 0;
    // Declared inputs first, then the nodes' outputs.
    while n <= t.nodes.len() && compared < MAX_COMPARED {
        let list: &'static [crate::define::OutputInfo] = if n == t.nodes.len() {
            t.inputs
        } else {
            match t.nodes[n].kind {
                super::NodeKind::Atom(info) => info.outputs,
                _ => t.nodes[n].retry,
            }
        };
        let mut o = 0;
        while o < list.len() && compared < MAX_COMPARED {
            let b = list[o].name.as_bytes();
            let gap = if a.len() > b.len() {
                a.len() - b.len()
            } else {
                b.len() - a.len()
            };
            if gap <= limit && b.len() <= MAX_LEN && !super::message::same(list[o].name, name) {
                compared += 1;
                let d = distance(a, b);
                if d < best_d {
                    best_d = d;
                    best = Some(list[o].name);
                }
            }
            o += 1;
        }
        n += 1;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::distance;

    #[test]
    fn distances_count_edits() {
        assert_eq!(distance(b"schema", b"schema"), 0);
        assert_eq!(distance(b"shema", b"schema"), 1);
        assert_eq!(distance(b"schmea", b"schema"), 2);
        assert_eq!(distance(b"", b"abc"), 3);
        assert_eq!(distance(b"kitten", b"sitting"), 3);
    }
}
