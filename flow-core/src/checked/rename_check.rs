//! `flow!`'s use-site renaming of outputs (`task(-> output = symbol)`):
//! its check, and the fix an ambiguous provider's sentence suggests with it.

use super::message::{Msg, same};
use crate::define::TaskInfo;

/// The sentence when an atom renames an output its task does not have.
pub(super) const fn check_renames(
    atom: &str,
    info: &TaskInfo,
    renames: &[(&str, &str)],
) -> Option<Msg> {
    let mut k = 0;
    while k < renames.len() {
        let mut found = false;
        let mut o = 0;
        while o < info.outputs.len() {
            if same(info.outputs[o].name, renames[k].0) {
                found = true;
            }
            o += 1;
        }
        if !found {
            let mut m = Msg::new()
                .push("atom ")
                .code(atom)
                .push(" renames the output ")
                .code(renames[k].0)
                .push(", but its task has no such output: ");
            if info.outputs.is_empty() {
                return Some(m.push("it provides nothing"));
            }
            m = m.push("its outputs are ");
            let mut o = 0;
            while o < info.outputs.len() {
                if o > 0 {
                    m = m.push(", ");
                }
                m = m.code(info.outputs[o].name);
                o += 1;
            }
            return Some(m);
        }
        k += 1;
    }
    None
}

/// The end of the sentence for an input `symbol` of `atom` that several
/// tasks provide, `one` of them: rename one where it is used, in `flow!`'s
/// syntax.
pub(super) const fn ambiguity_fix(m: Msg, one: &str, atom: &str, symbol: &str) -> Msg {
    m.push("; rename the output where a task is used, as in `")
        .push(one)
        .push("(-> ")
        .push(symbol)
        .push(" = ")
        .push(one)
        .push("_")
        .push(symbol)
        .push(")`, and read that one with `")
        .push(atom)
        .push("(")
        .push(symbol)
        .push(" = ")
        .push(one)
        .push("_")
        .push(symbol)
        .push(")` if it is the one meant")
}
