//! Resuming a run from the journal: after a crash, in another process, or on
//! another machine.

// A resume happens once per run, and its error is read by a person: a large
// error type costs nothing that matters here.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::compile::NONE;
use crate::engine::state::{AtomState, FlowState};
use crate::engine::{Engine, EngineBuilder};
use crate::error::ResumeError;
use crate::retry::{Attempt, History};
use crate::storage::{AtomDetail, FlowDetail, FlowId, StorageError, now_unix};
use crate::symbol::{Store, Value};
use crate::task::{Failures, Outputs};

impl EngineBuilder {
    /// Loads run `run` from the journal set with [`EngineBuilder::storage`] and
    /// makes an engine that takes it up where it stopped; [`Engine::run`] then
    /// finishes it.
    ///
    /// The flow must be the one the run was started with: atoms are matched by
    /// name. What the journal says decides what happens next:
    /// - `Success` atoms keep their stored results; they do not run again;
    /// - atoms caught `Running` (the process died while they ran) run again
    ///   from scratch, with the next [`Context::attempt`](crate::Context::attempt)
    ///   so that a task can make a repeat harmless;
    /// - atoms caught `Reverting` are reverted again;
    /// - a retry controller whose sub-flow was being reverted goes on with it,
    ///   then runs again; one caught `Retrying` starts its next attempt (a
    ///   pending backoff wait is not waited again);
    /// - a `Failure` whose consequences were not recorded is resolved again
    ///   (its retry controllers decide again);
    /// - a suspended run continues, forward or in revert;
    /// - a finished run stays finished: [`Engine::run`] returns its recorded
    ///   outcome and runs nothing ([`Engine::reset`] starts it over).
    ///
    /// The run's inputs come from the journal; inputs given to this builder are
    /// ignored.
    ///
    /// A run that has not ended is claimed first (see
    /// [`Backend`](crate::Backend)): if another engine holds it and its lease
    /// is live, this fails with [`ResumeError::Owned`], or waits for the lease
    /// to run out when [`EngineBuilder::wait_for_lease`] says so. The run is
    /// read again under the claim, and checked: a run whose records
    /// contradict each other is [`ResumeError::Damaged`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flow::{Atom, Engine, Flow, FlowState, FnTask, MemoryBackend, Outputs, Signature};
    ///
    /// let make = || {
    ///     let double = FnTask::sync(
    ///         Signature::new().requires::<u64>("n").provides::<u64>("twice"),
    ///         |a| Ok(Outputs::one(a.get::<u64>(0)? * 2)),
    ///     );
    ///     Flow::linear("double").input::<u64>("n").add(Atom::new("double", double)).build().unwrap()
    /// };
    /// let journal = Arc::new(MemoryBackend::new());
    /// let mut first = Engine::builder(make()).input("n", 21u64).storage(journal.clone()).build();
    /// first.run().await.unwrap();
    ///
    /// // Later, or in another process with the same store:
    /// let mut again = Engine::builder(make())
    ///     .storage(journal)
    ///     .resume(first.run_id())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(again.state(), FlowState::Success);
    /// again.run().await.unwrap(); // nothing left to do
    /// assert_eq!(again.fetch::<u64>("twice"), Some(&42));
    /// assert_eq!(again.attempts("double"), Some(1));
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`ResumeError::Owned`] while another engine holds the run;
    /// [`ResumeError::Damaged`] for a run whose records contradict each other;
    /// [`ResumeError::NoStorage`] without a journal; [`ResumeError::Storage`]
    /// when the run cannot be read (an unknown id is
    /// [`StorageError::NotFound`]);
    /// [`ResumeError::OtherFlow`] and [`ResumeError::DefinitionChanged`] when
    /// the flow is not the one the run was started with;
    /// [`ResumeError::Decode`], [`ResumeError::DecodeInput`] and
    /// [`ResumeError::MissingInput`] when stored values do not fit the flow's
    /// types any more.
    pub async fn resume(self, run: FlowId) -> Result<Engine, ResumeError> {
        let Some(backend) = self.backend.clone() else {
            return Err(ResumeError::NoStorage { run });
        };
        let wait = self.wait_for_lease;
        let mut engine = self.build();
        engine.run_id = run;
        let (detail, atoms) = load(&*backend, run).await?;
        if !is_final(detail.state) {
            // Claimed first, read again: nobody else writes the run now.
            engine.claim(run, wait).await?;
            let (detail, atoms) = match load(&*backend, run).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    engine.release().await;
                    return Err(e);
                }
            };
            if let Err(e) = engine.restore(detail, atoms) {
                engine.release().await;
                return Err(e);
            }
            if is_final(engine.machine.flow_state) {
                engine.release().await;
                engine.recorded = true;
            }
            return Ok(engine);
        }
        engine.restore(detail, atoms)?;
        engine.recorded = true;
        Ok(engine)
    }
}

impl EngineBuilder {
    /// Takes up run `run` under `lease`, a claim already made for this
    /// engine (by a conductor's claim of a job): like
    /// [`resume`](EngineBuilder::resume), without claiming. A run posted as
    /// a job, stored with its inputs and no atoms yet, starts from the
    /// beginning.
    ///
    /// # Errors
    /// As [`resume`](EngineBuilder::resume), but never
    /// [`ResumeError::Owned`].
    pub async fn resume_claimed(
        self,
        run: FlowId,
        lease: crate::storage::Lease,
    ) -> Result<Engine, ResumeError> {
        let Some(backend) = self.backend.clone() else {
            return Err(ResumeError::NoStorage { run });
        };
        let mut engine = self.build();
        engine.run_id = run;
        if let Some(journal) = engine.journal.as_mut() {
            journal.adopt(lease, &engine.machine.control);
        }
        let (detail, atoms) = load(&*backend, run).await?;
        let posted = atoms.is_empty() && detail.state == FlowState::Pending;
        engine.restore(detail, atoms)?;
        if let Some(journal) = engine.journal.as_mut() {
            journal.write_all = posted;
        }
        if is_final(engine.machine.flow_state) {
            engine.recorded = true;
        }
        Ok(engine)
    }
}

/// Whether a run in state `s` has ended.
fn is_final(s: FlowState) -> bool {
    matches!(
        s,
        FlowState::Success | FlowState::Reverted | FlowState::Failure
    )
}

async fn load(
    backend: &dyn crate::storage::Backend,
    run: FlowId,
) -> Result<(FlowDetail, Vec<AtomDetail>), ResumeError> {
    backend
        .load_flow(run)
        .await
        .map_err(|source| ResumeError::Storage { run, source })
}

impl Engine {
    /// Claims the stored run, waiting up to `wait` for a live lease to run
    /// out.
    async fn claim(&mut self, run: FlowId, wait: Duration) -> Result<(), ResumeError> {
        let Some(journal) = self.journal.as_mut() else {
            return Err(ResumeError::NoStorage { run });
        };
        let control = self.machine.control.clone();
        let until = Instant::now() + wait;
        loop {
            match journal.claim_stored(run, &control).await {
                Ok(()) => return Ok(()),
                Err(StorageError::Owned {
                    owner, expires_at, ..
                }) => {
                    let now = Instant::now();
                    if now >= until || tokio::runtime::Handle::try_current().is_err() {
                        return Err(ResumeError::Owned {
                            run,
                            owner,
                            expires_at,
                        });
                    }
                    let left = Duration::try_from_secs_f64(expires_at - now_unix())
                        .unwrap_or(Duration::ZERO);
                    let nap = left.clamp(Duration::from_millis(5), Duration::from_secs(1));
                    tokio::time::sleep(nap.min(until - now)).await;
                }
                Err(source) => return Err(ResumeError::Storage { run, source }),
            }
        }
    }

    fn restore(&mut self, detail: FlowDetail, atoms: Vec<AtomDetail>) -> Result<(), ResumeError> {
        let run = detail.id;
        let g = self.flow.0.clone();
        if detail.name != *g.name {
            return Err(ResumeError::OtherFlow {
                run,
                flow: g.name.to_string(),
                stored: detail.name,
            });
        }
        check_definition(self, &detail, &atoms)?;
        crate::engine::integrity::check(&g, &detail, &atoms)?;
        self.store = restore_inputs(self, &detail)?;

        let m = &mut self.machine;
        let journal = self.journal.as_mut();
        let mut versions = journal.map(|j| {
            j.started = true;
            j.logbook = Some(detail.logbook);
            j.created_at = detail.created_at;
            (&mut j.versions, j.progress.clone(), &mut j.times)
        });
        let mut owners = Vec::new();
        for a in atoms {
            let Some(i) = g.index_of(&a.name) else {
                continue;
            };
            let iu = i as usize;
            let node = &g.nodes[iu];
            m.slots[iu].state = a.state;
            m.slots[iu].intention = a.intention;
            m.slots[iu].attempts = a.attempts;
            if let Some(result) = a.result {
                m.outputs[iu] = Some(decode_outputs(run, node, result)?);
            }
            if let Some(failure) = a.failure {
                m.failure.set(iu, Some(failure));
                m.failed.push(i);
            }
            m.revert_results.set(iu, a.revert_result.map(Value::new));
            if let Some(f) = a.revert_failure {
                m.revert_failures.push((i, f));
            }
            if let Some(owner) = a.meta.get("owner").and_then(|o| o.as_str()) {
                owners.push((i, owner.to_string()));
            }
            if let Some(list) = a.meta.get("history").and_then(|h| h.as_array()) {
                m.histories.insert(i, decode_history(run, node, list)?);
            }
            if let Some((versions, progress, times)) = &mut versions {
                versions[iu] = a.version;
                times[iu] = crate::engine::journal::Times::from_meta(&a.meta);
                if let Some(p) = progress.get(iu) {
                    p.store(a.progress.to_bits(), Ordering::Relaxed);
                }
            }
        }
        m.failed.sort_unstable();
        for (i, owner) in owners {
            m.slots[i as usize].owner = g.index_of(&owner).unwrap_or(NONE);
        }
        let flag = |name: &str| detail.meta.get(name).and_then(serde_json::Value::as_bool);
        m.revert_all = flag("revert_all").unwrap_or(false);
        m.cancelled = flag("cancelled").unwrap_or(false);
        m.halted = m.slots.iter().any(|s| s.state == AtomState::RevertFailure);
        m.flow_state = match detail.state {
            FlowState::Running | FlowState::Suspending | FlowState::Resuming => FlowState::Running,
            other => other,
        };
        // What was loaded is in the journal already; what taking the run up
        // changes (atoms caught mid-way, failures resolved again) is not, and
        // goes with the first flush.
        let _ = m.take_dirty();
        m.sync_announced();
        if matches!(m.flow_state, FlowState::Running | FlowState::Suspended) {
            m.restored()?;
        }
        Ok(())
    }
}

fn check_definition(
    engine: &Engine,
    detail: &FlowDetail,
    atoms: &[AtomDetail],
) -> Result<(), ResumeError> {
    let g = &engine.flow.0;
    let now: BTreeMap<&str, &str> = g.nodes[..g.atoms]
        .iter()
        .map(|n| (n.name.as_ref(), n.kind().as_str()))
        .collect();
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    if let Some(list) = detail.meta.get("atoms").and_then(|a| a.as_array()) {
        for entry in list {
            if let (Some(name), Some(kind)) = (
                entry.get(0).and_then(|v| v.as_str()),
                entry.get(1).and_then(|v| v.as_str()),
            ) {
                stored.insert(name.to_string(), kind.to_string());
            }
        }
    }
    let listed = !stored.is_empty() || now.is_empty();
    for a in atoms {
        stored
            .entry(a.name.clone())
            .or_insert_with(|| a.kind.as_str().to_string());
    }
    let added: Vec<String> = if listed {
        now.keys()
            .filter(|n| !stored.contains_key(**n))
            .map(|n| (*n).to_string())
            .collect()
    } else {
        Vec::new()
    };
    // An atom dropped from the definition is no loss when it needs nothing
    // more: it never ran, was undone, or was skipped.
    let settled = |name: &str| {
        atoms.iter().find(|a| a.name == name).is_none_or(|a| {
            matches!(
                a.state,
                AtomState::Pending | AtomState::Reverted | AtomState::Ignore
            )
        })
    };
    let removed: Vec<String> = stored
        .keys()
        .filter(|n| !now.contains_key(n.as_str()) && !settled(n))
        .cloned()
        .collect();
    let changed_kind: Vec<String> = stored
        .iter()
        .filter(|(n, k)| now.get(n.as_str()).is_some_and(|now| now != k))
        .map(|(n, _)| n.clone())
        .collect();
    if added.is_empty() && removed.is_empty() && changed_kind.is_empty() {
        return Ok(());
    }
    Err(ResumeError::DefinitionChanged {
        run: detail.id,
        flow: g.name.to_string(),
        added,
        removed,
        changed_kind,
    })
}

fn restore_inputs(engine: &Engine, detail: &FlowDetail) -> Result<Store, ResumeError> {
    let run = detail.id;
    let g = &engine.flow.0;
    let stored = detail.meta.get("inputs");
    let mut store = Store::new();
    for spec in &g.inputs {
        let Some(json) = stored.and_then(|s| s.get(spec.name())) else {
            return Err(ResumeError::MissingInput {
                run,
                flow: g.name.to_string(),
                symbol: spec.name().to_string(),
            });
        };
        let value = spec
            .ty()
            .decode(json.clone())
            .map_err(|source| ResumeError::DecodeInput {
                run,
                symbol: spec.name().to_string(),
                expected: crate::compile::short_type(spec.ty().name()),
                source,
            })?;
        store.insert_value(spec.name(), value);
    }
    Ok(store)
}

fn decode_outputs(
    run: FlowId,
    node: &crate::compile::Node,
    result: serde_json::Value,
) -> Result<Outputs, ResumeError> {
    let specs = node.signature.outputs();
    let values = match result {
        serde_json::Value::Array(values) => values,
        other => vec![other],
    };
    if values.len() != specs.len() {
        return Err(ResumeError::OutputsChanged {
            run,
            atom: node.name.to_string(),
            stored: values.len(),
            declared: specs.len(),
        });
    }
    let mut out = Outputs::new();
    for (k, (json, spec)) in values.into_iter().zip(specs.iter()).enumerate() {
        let value = spec
            .ty()
            .decode(json)
            .map_err(|source| ResumeError::Decode {
                run,
                atom: node.name.to_string(),
                symbol: node.output_name(k).to_string(),
                expected: crate::compile::short_type(spec.ty().name()),
                source,
            })?;
        out = out.with_value(value);
    }
    Ok(out)
}

fn decode_history(
    run: FlowId,
    node: &crate::compile::Node,
    list: &[serde_json::Value],
) -> Result<History, ResumeError> {
    let ty = node.retry().and_then(|r| r.0.strategy.provides_type());
    let mut history = History::default();
    for entry in list {
        let value = match (entry.get("value"), ty) {
            (None | Some(serde_json::Value::Null), _) => None,
            (Some(v), Some(ty)) => {
                Some(ty.decode(v.clone()).map_err(|source| ResumeError::Decode {
                    run,
                    atom: node.name.to_string(),
                    symbol: "retry value".into(),
                    expected: crate::compile::short_type(ty.name()),
                    source,
                })?)
            }
            (Some(v), None) => Some(Value::new(v.clone())),
        };
        // `integrity::check` made sure that the failures decode.
        let failures: Failures = entry
            .get("failures")
            .filter(|f| !f.is_null())
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or_default();
        history.attempts.push(Attempt { value, failures });
    }
    Ok(history)
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>(_: &T) {}
    fn check(b: EngineBuilder) {
        is_send(&b.resume(FlowId::new()));
    }
    let _ = check;
}
