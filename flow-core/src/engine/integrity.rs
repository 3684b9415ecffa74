//! What a stored run must hold before it is taken up: a run whose records
//! contradict each other was damaged or edited, and is refused with the atom
//! and what is wrong, never guessed at.

// Checked once per resume, and the error is read by a person: its size
// costs nothing that matters.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use crate::compile::Graph;
use crate::engine::state::{AtomState, FlowState, Intention};
use crate::error::ResumeError;
use crate::storage::{AtomDetail, FlowDetail};
use crate::task::Failures;

fn damaged(detail: &FlowDetail, atom: Option<&str>, what: String) -> ResumeError {
    ResumeError::Damaged {
        run: detail.id,
        atom: atom.map(str::to_string),
        detail: what,
    }
}

/// Checks that `atoms`, stored for run `detail` of flow `g`, are whole and
/// agree with each other and with the run's state.
pub(crate) fn check(
    g: &Graph,
    detail: &FlowDetail,
    atoms: &[AtomDetail],
) -> Result<(), ResumeError> {
    // Runs written since every atom gets its record when the run is created.
    if detail
        .meta
        .get("all_atoms")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        let stored: BTreeSet<&str> = atoms.iter().map(|a| a.name.as_str()).collect();
        let listed = detail.meta.get("atoms").and_then(|a| a.as_array());
        for entry in listed.into_iter().flatten() {
            if let Some(name) = entry.get(0).and_then(|n| n.as_str())
                && !stored.contains(name)
            {
                return Err(damaged(detail, Some(name), "its record is missing".into()));
            }
        }
    }
    for a in atoms {
        check_atom(g, detail, a)?;
    }
    check_flow_state(detail, atoms)
}

fn check_atom(g: &Graph, detail: &FlowDetail, a: &AtomDetail) -> Result<(), ResumeError> {
    let bad = |what: &str| Err(damaged(detail, Some(&a.name), what.to_string()));
    match a.state {
        AtomState::Success if a.result.is_none() => {
            return bad("it is recorded SUCCESS, but its result is missing");
        }
        AtomState::Failure if a.failure.is_none() => {
            return bad("it is recorded FAILURE, but its failure is missing");
        }
        AtomState::RevertFailure if a.revert_failure.is_none() => {
            return bad("it is recorded REVERT_FAILURE, but the failure of its revert is missing");
        }
        AtomState::Reverting if a.result.is_none() && a.failure.is_none() => {
            return bad(
                "it is recorded REVERTING, but neither its result nor its failure is there",
            );
        }
        AtomState::Retrying
            if g.index_of(&a.name)
                .is_some_and(|i| g.nodes[i as usize].retry().is_none()) =>
        {
            return bad("it is recorded RETRYING, which only a retry controller can be");
        }
        _ => {}
    }
    if a.intention == Intention::Retry {
        // TaskFlow's engines write it; this one never does, and a guess at
        // what it should mean here could undo or repeat work.
        return bad(
            "its intention is RETRY, which this version of flow never records: \
             the run was written by something else",
        );
    }
    match a.meta.get("history") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Array(list)) => {
            for (k, entry) in list.iter().enumerate() {
                let failures = entry.get("failures").cloned().unwrap_or_default();
                if !failures.is_null()
                    && let Err(e) = serde_json::from_value::<Failures>(failures)
                {
                    return Err(damaged(
                        detail,
                        Some(&a.name),
                        format!(
                            "attempt {} of its retry history does not decode: {e}",
                            k + 1
                        ),
                    ));
                }
            }
        }
        Some(other) => {
            return Err(damaged(
                detail,
                Some(&a.name),
                format!("its retry history is not a list: `{other}`"),
            ));
        }
    }
    Ok(())
}

fn check_flow_state(detail: &FlowDetail, atoms: &[AtomDetail]) -> Result<(), ResumeError> {
    let state = detail.state;
    let contradicts = |a: &AtomDetail| match state {
        FlowState::Success => !matches!(a.state, AtomState::Success | AtomState::Ignore),
        FlowState::Reverted => !matches!(
            a.state,
            AtomState::Pending | AtomState::Reverted | AtomState::Ignore
        ),
        FlowState::Pending => a.state != AtomState::Pending,
        _ => false,
    };
    if let Some(a) = atoms.iter().find(|a| contradicts(a)) {
        return Err(damaged(
            detail,
            Some(&a.name),
            format!("the run is recorded {state}, but this atom is {}", a.state),
        ));
    }
    if state == FlowState::Failure && !atoms.iter().any(|a| a.state == AtomState::RevertFailure) {
        return Err(damaged(
            detail,
            None,
            "the run is recorded FAILURE, but no atom's revert failed".into(),
        ));
    }
    Ok(())
}
