//! The engine's side of the journal: what it writes after each step, and
//! the claim it holds on its run (a lease it renews, a fencing number every
//! write carries, given back when the run stops).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use futures::FutureExt;

use crate::engine::control::Control;
use crate::engine::lease::{Holding, LeaseCell, OwnerConfig, renew};
use crate::engine::machine::Machine;
use crate::engine::state::AtomState;
use crate::storage::{
    AtomDetail, Backend, Claim, FlowDetail, FlowId, Lease, LogBook, LogbookId, Ownership,
    StorageError, now_unix,
};
use crate::symbol::Store;
use crate::task::Outputs;

pub(crate) struct Journal {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) logbook: Option<LogbookId>,
    /// Whether the run is in the store.
    pub(crate) started: bool,
    pub(crate) versions: Vec<u64>,
    pub(crate) progress: Arc<[AtomicU32]>,
    definition: Option<(serde_json::Value, serde_json::Value)>,
    pub(crate) ownership: OwnerConfig,
    holding: Option<Holding>,
    /// When the run was created (seconds since the Unix epoch).
    pub(crate) created_at: f64,
    /// The run is stored without its atoms (a posted job): the next write
    /// records every atom.
    pub(crate) write_all: bool,
    /// Whether `run` keeps the claim when it returns, for whoever gives it
    /// back (a conductor, with the job).
    pub(crate) keep_claim: bool,
    /// When each atom's latest `execute` and `revert` started and ended, as
    /// the journal records them.
    pub(crate) times: Vec<Times>,
}

/// When an atom's latest `execute` and `revert` started and ended (seconds
/// since the Unix epoch), kept in its journal record's metadata:
/// `started_at`, `ended_at`, `revert_started_at`, `revert_ended_at`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Times {
    started: Option<f64>,
    ended: Option<f64>,
    revert_started: Option<f64>,
    revert_ended: Option<f64>,
}

impl Times {
    const KEYS: [&'static str; 4] = [
        "started_at",
        "ended_at",
        "revert_started_at",
        "revert_ended_at",
    ];

    /// The times recorded in an atom's metadata.
    pub(crate) fn from_meta(meta: &serde_json::Value) -> Self {
        let at = |k: &str| meta.get(k).and_then(serde_json::Value::as_f64);
        Times {
            started: at(Self::KEYS[0]),
            ended: at(Self::KEYS[1]),
            revert_started: at(Self::KEYS[2]),
            revert_ended: at(Self::KEYS[3]),
        }
    }

    /// Notes that the atom is written in `state` at `now`.
    fn note(&mut self, state: AtomState, now: f64) {
        match state {
            AtomState::Running => {
                *self = Times {
                    started: Some(now),
                    ..Times::default()
                };
            }
            AtomState::Success | AtomState::Failure => {
                if self.ended.is_none() {
                    // Started and ended between two writes (a retry
                    // controller decides on the spot): no time between.
                    self.started = self.started.or(Some(now));
                    self.ended = Some(now);
                }
            }
            AtomState::Reverting => {
                // An execute that ended between two writes ended by now.
                if self.started.is_some() && self.ended.is_none() {
                    self.ended = Some(now);
                }
                self.revert_started = Some(now);
                self.revert_ended = None;
            }
            AtomState::Reverted | AtomState::RevertFailure => {
                if self.started.is_some() && self.ended.is_none() {
                    self.ended = Some(now);
                }
                self.revert_started = self.revert_started.or(Some(now));
                if self.revert_ended.is_none() {
                    self.revert_ended = Some(now);
                }
            }
            AtomState::Pending => *self = Times::default(),
            AtomState::Ignore | AtomState::Retrying => {}
        }
    }

    fn write(&self, meta: &mut serde_json::Map<String, serde_json::Value>) {
        let values = [
            self.started,
            self.ended,
            self.revert_started,
            self.revert_ended,
        ];
        for (key, value) in Self::KEYS.into_iter().zip(values) {
            if let Some(t) = value {
                meta.insert(key.into(), serde_json::json!(t));
            }
        }
    }
}

impl Journal {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        logbook: Option<LogbookId>,
        atoms: usize,
        progress: Arc<[AtomicU32]>,
        ownership: OwnerConfig,
    ) -> Self {
        Journal {
            backend,
            logbook,
            started: false,
            versions: vec![0; atoms],
            progress,
            definition: None,
            ownership,
            holding: None,
            created_at: now_unix(),
            write_all: false,
            keep_claim: false,
            times: vec![Times::default(); atoms],
        }
    }

    fn claim(&self) -> Claim {
        Claim::new(self.ownership.owner.clone(), self.ownership.lease)
    }

    /// The lease held, if any.
    pub(crate) fn lease(&self) -> Option<Lease> {
        self.holding.as_ref().map(|h| h.cell.lease())
    }

    /// Holds `lease`, granted at `started`, and renews it in the background
    /// while a tokio runtime is there (else at each write, when due).
    fn hold(&mut self, lease: Lease, started: Instant, control: &Arc<Control>) {
        let cancel = lease.cancel_requested;
        let cell = LeaseCell::new(lease, started + self.ownership.lease);
        let renewer = tokio::runtime::Handle::try_current().ok().map(|rt| {
            rt.spawn(renew(
                self.backend.clone(),
                cell.clone(),
                control.clone(),
                self.ownership.lease,
                self.ownership.renew_every,
            ))
            .abort_handle()
        });
        self.holding = Some(Holding { cell, renewer });
        if cancel {
            control.cancel();
        }
    }

    /// Holds `lease`, a claim made by someone else for this engine (a
    /// conductor's claim of a job).
    pub(crate) fn adopt(&mut self, lease: Lease, control: &Arc<Control>) {
        self.hold(lease, Instant::now(), control);
    }

    /// Stops holding the run without giving it back: its lease, as last
    /// renewed, for whoever gives it back.
    pub(crate) fn detach(&mut self) -> Option<Lease> {
        self.holding.take().map(|h| h.cell.lease())
    }

    /// Claims stored run `run` for this engine.
    pub(crate) async fn claim_stored(
        &mut self,
        run: FlowId,
        control: &Arc<Control>,
    ) -> Result<(), StorageError> {
        let started = Instant::now();
        let lease = self.backend.claim_flow(run, self.claim()).await?;
        self.hold(lease, started, control);
        Ok(())
    }

    /// Whether this engine holds its run (or the run is not stored yet).
    pub(crate) fn needs_claim(&self) -> bool {
        self.started && self.holding.is_none()
    }

    /// Gives the run back, if held: anyone may claim it at once.
    pub(crate) async fn release(&mut self) {
        if let Some(holding) = self.holding.take() {
            let lease = holding.cell.lease();
            drop(holding);
            if let Err(e) = self.backend.release_flow(&lease).await {
                tracing::debug!(target: "flow", run = %lease.run, "giving the run back: {e}");
            }
        }
    }

    /// Gives the run back without waiting (the engine is going away): the
    /// release is asked for at once and its future polled once (see
    /// [`Backend::release_flow`]).
    pub(crate) fn release_now(&mut self) {
        if let Some(holding) = self.holding.take() {
            let lease = holding.cell.lease();
            drop(holding);
            let _ = self.backend.release_flow(&lease).now_or_never();
        }
    }

    /// The error of a run this engine no longer holds, if it does not. A
    /// lease past its end, or due for renewal where nothing renews it in the
    /// background, is renewed first: the store says whether someone else
    /// took the run meanwhile.
    async fn check_held(&mut self) -> Result<(), StorageError> {
        let Some(holding) = &self.holding else {
            return Ok(());
        };
        let cell = holding.cell.clone();
        let background = holding.renewer.is_some();
        let (length, every) = (self.ownership.lease, self.ownership.renew_every);
        let renew_now = cell.with(|h| {
            let now = Instant::now();
            h.lost.is_none()
                && (now >= h.deadline || (!background && now + length >= h.deadline + every))
        });
        if renew_now {
            let lease = cell.lease();
            let started = Instant::now();
            match self.backend.renew_lease(&lease, length).await {
                Ok(renewed) => cell.renewed(renewed, started, length),
                Err(e) => cell.note(&e),
            }
        }
        cell.check()
    }

    /// The flow's atoms, as stored with the run: `[["name", "TASK"], ..]`.
    /// The flow's atoms and the order between them, as stored with the run:
    /// `[["name", "TASK"], ..]` and `[["from", "to"], ..]` (an edge from an
    /// atom to one that waits for it). Tools read the graph of a run from
    /// them (the `pipeline_steps` view of a SQLite store, for one).
    fn definition(&mut self, m: &Machine) -> (serde_json::Value, serde_json::Value) {
        self.definition
            .get_or_insert_with(|| {
                let g = &m.g;
                let atoms = g.nodes[..g.atoms]
                    .iter()
                    .map(|n| serde_json::json!([n.name.as_ref(), n.kind().as_str()]))
                    .collect();
                let graph = crate::compile::CompiledFlow(g.clone()).graph();
                let names = graph.nodes();
                let edges = graph
                    .edges()
                    .iter()
                    .map(|&(from, to)| serde_json::json!([names[from].name, names[to].name]))
                    .collect();
                (
                    serde_json::Value::Array(atoms),
                    serde_json::Value::Array(edges),
                )
            })
            .clone()
    }

    fn encode(m: &Machine, i: u32, outputs: &Outputs) -> Result<serde_json::Value, StorageError> {
        let node = &m.g.nodes[i as usize];
        let mut list = Vec::with_capacity(outputs.len());
        for (k, v) in outputs.values().iter().enumerate() {
            list.push(v.encode().map_err(|source| StorageError::Encode {
                atom: node.name.to_string(),
                symbol: node.output_name(k).to_string(),
                source,
            })?);
        }
        Ok(serde_json::Value::Array(list))
    }

    /// An atom's metadata: a controller's history
    /// (`{"history": [{"value": .., "failures": {..}}]}`), and the controller
    /// whose retry is reverting the atom (`{"owner": name}`).
    fn meta(&self, m: &Machine, i: u32) -> Result<serde_json::Value, StorageError> {
        let mut meta = serde_json::Map::new();
        if let Some(times) = self.times.get(i as usize) {
            times.write(&mut meta);
        }
        let owner = m.slots[i as usize].owner;
        if owner != crate::compile::NONE {
            meta.insert(
                "owner".into(),
                serde_json::Value::String(m.g.nodes[owner as usize].name.to_string()),
            );
        }
        if let Some(history) = Self::history(m, i)? {
            meta.insert("history".into(), history);
        }
        Ok(if meta.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Object(meta)
        })
    }

    fn history(m: &Machine, i: u32) -> Result<Option<serde_json::Value>, StorageError> {
        let Some(history) = m.histories.get(&i) else {
            return Ok(None);
        };
        let mut attempts = Vec::with_capacity(history.len());
        for attempt in history.attempts() {
            let value = match &attempt.value {
                Some(v) => v.encode().map_err(|source| StorageError::Encode {
                    atom: m.g.nodes[i as usize].name.to_string(),
                    symbol: "retry value".into(),
                    source,
                })?,
                None => serde_json::Value::Null,
            };
            let failures = serde_json::to_value(&attempt.failures).unwrap_or_default();
            attempts.push(serde_json::json!({ "value": value, "failures": failures }));
        }
        Ok(Some(serde_json::Value::Array(attempts)))
    }

    fn detail(&mut self, m: &Machine, i: u32) -> Result<AtomDetail, StorageError> {
        let iu = i as usize;
        self.versions[iu] += 1;
        if let Some(times) = self.times.get_mut(iu) {
            times.note(m.slots[iu].state, now_unix());
        }
        let result = m.outputs[iu]
            .as_ref()
            .map(|o| Self::encode(m, i, o))
            .transpose()?;
        let revert_result = match m.revert_results.get(iu) {
            Some(v) => Some(v.encode().map_err(|source| StorageError::Encode {
                atom: m.g.nodes[iu].name.to_string(),
                symbol: "revert result".into(),
                source,
            })?),
            None => None,
        };
        let revert_failure = m
            .revert_failures
            .iter()
            .rev()
            .find(|(a, _)| *a == i)
            .map(|(_, f)| f.clone());
        Ok(AtomDetail {
            name: m.g.nodes[iu].name.to_string(),
            kind: m.g.nodes[iu].kind(),
            state: m.slots[iu].state,
            intention: m.slots[iu].intention,
            result,
            failure: m.failure.get(iu).cloned(),
            revert_result,
            revert_failure,
            progress: self
                .progress
                .get(iu)
                .map_or(0.0, |p| f32::from_bits(p.load(Ordering::Relaxed))),
            attempts: m.slots[iu].attempts,
            version: self.versions[iu],
            meta: self.meta(m, i)?,
        })
    }

    fn flow_detail(
        &mut self,
        m: &Machine,
        run_id: FlowId,
        store: &Store,
    ) -> Result<FlowDetail, StorageError> {
        let mut inputs = serde_json::Map::new();
        for (k, v) in store.iter() {
            let json = v.encode().map_err(|source| StorageError::Encode {
                atom: "<inputs>".into(),
                symbol: k.to_string(),
                source,
            })?;
            inputs.insert(k.to_string(), json);
        }
        let (definition, edges) = self.definition(m);
        Ok(FlowDetail {
            id: run_id,
            logbook: self.logbook.unwrap_or_default(),
            name: m.g.name.to_string(),
            state: m.flow_state,
            meta: serde_json::json!({
                "inputs": inputs,
                "atoms": definition,
                "edges": edges,
                "all_atoms": true,
                "revert_all": m.revert_all,
                "cancelled": m.cancelled,
            }),
            created_at: self.created_at,
            updated_at: now_unix(),
            ownership: Ownership::default(),
        })
    }

    /// Writes what changed since the last write; the first write creates
    /// the run, every atom with it, and claims it.
    pub(crate) async fn flush(
        &mut self,
        m: &mut Machine,
        run_id: FlowId,
        store: &Store,
    ) -> Result<(), StorageError> {
        let (atoms, flow_changed) = m.take_dirty();
        if !self.started {
            let id = self.logbook.unwrap_or_default();
            self.logbook = Some(id);
            let now = now_unix();
            self.backend
                .save_logbook(LogBook {
                    id,
                    name: m.g.name.to_string(),
                    created_at: now,
                    updated_at: now,
                    meta: serde_json::Value::Null,
                })
                .await?;
            let detail = self.flow_detail(m, run_id, store)?;
            let all = (0..m.g.atoms as u32)
                .filter(|&i| !m.g.nodes[i as usize].is_barrier())
                .map(|i| self.detail(m, i))
                .collect::<Result<Vec<_>, _>>()?;
            let started = Instant::now();
            let lease = self.backend.create_flow(detail, all, self.claim()).await?;
            self.started = true;
            self.hold(lease, started, &m.control);
            return Ok(());
        }
        self.check_held().await?;
        let atoms = if std::mem::take(&mut self.write_all) {
            (0..m.g.atoms as u32)
                .filter(|&i| !m.g.nodes[i as usize].is_barrier())
                .collect()
        } else {
            atoms
        };
        let details = atoms
            .into_iter()
            .map(|i| self.detail(m, i))
            .collect::<Result<Vec<_>, _>>()?;
        // After the atoms: the run's last change is no earlier than theirs.
        let flow = if flow_changed {
            Some(self.flow_detail(m, run_id, store)?)
        } else {
            None
        };
        if flow.is_none() && details.is_empty() {
            return Ok(());
        }
        let fence = self.lease().map_or(0, |l| l.fence);
        let written = self.backend.save_run(run_id, fence, flow, details).await;
        if let (Err(e), Some(h)) = (&written, &self.holding) {
            h.cell.note(e);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::Times;
    use crate::engine::state::AtomState::*;

    /// The times an atom's record gets, for the states it is written in.
    fn times(written: &[(crate::engine::state::AtomState, f64)]) -> serde_json::Value {
        let mut t = Times::default();
        for &(state, now) in written {
            t.note(state, now);
        }
        let mut meta = serde_json::Map::new();
        t.write(&mut meta);
        serde_json::Value::Object(meta)
    }

    #[test]
    fn each_execute_and_revert_gets_its_start_and_end() {
        assert_eq!(
            times(&[
                (Running, 1.0),
                (Success, 2.0),
                (Reverting, 3.0),
                (Reverted, 4.0)
            ]),
            serde_json::json!({"started_at": 1.0, "ended_at": 2.0, "revert_started_at": 3.0, "revert_ended_at": 4.0})
        );
        // Failed and reverted between two writes: its execute ended by the
        // time its revert was written.
        assert_eq!(
            times(&[(Running, 1.0), (Reverted, 5.0)]),
            serde_json::json!({"started_at": 1.0, "ended_at": 5.0, "revert_started_at": 5.0, "revert_ended_at": 5.0})
        );
        // A controller decides on the spot: no time between its start and end.
        assert_eq!(
            times(&[(Success, 7.0)]),
            serde_json::json!({"started_at": 7.0, "ended_at": 7.0})
        );
        // Run again: the times of the new try only.
        assert_eq!(
            times(&[
                (Running, 1.0),
                (Success, 2.0),
                (Pending, 3.0),
                (Running, 4.0)
            ]),
            serde_json::json!({"started_at": 4.0})
        );
    }
}
