//! Server-sent events: a run's state as it changes, and the runs list.
//!
//! One watcher per run, whoever looks: it reads the run from the store
//! when the store says it changed (`RunWatch`, which sees runs of any
//! process), and keeps only the latest state for its clients (a `watch`
//! channel). A slow client misses intermediate states, never receives a
//! backlog: what a client costs is bounded, however fast the run goes. The
//! watcher stops when its last client leaves, or when the run has ended and
//! said so. Streams are counted: past the limit, a new one is refused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flow::FlowId;
use flow::storage::RunWatch;
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::api::{ListQuery, TAIL, resolve};
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::ops::{self, OpsError, Store};

/// How often a watcher looks at the store for a change, with few runs
/// watched; each watched run adds `LOOK_MORE`, up to `LOOK_MOST`, so that
/// many pages on many runs do not keep the store busy answering them.
const LOOK_EVERY: Duration = Duration::from_millis(250);
const LOOK_MORE: Duration = Duration::from_millis(5);
const LOOK_MOST: Duration = Duration::from_secs(1);
/// How often the runs list is looked at.
const LIST_EVERY: Duration = Duration::from_secs(1);

/// The watchers of runs, by run.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    runs: Mutex<HashMap<FlowId, watch::Receiver<Arc<str>>>>,
    /// How many watchers run.
    watched: Arc<AtomicU32>,
}

/// Counts a watcher out when it stops.
struct Watched(Arc<AtomicU32>);

impl Drop for Watched {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    /// The latest state of run `run` (its `GET /api/runs/{run}` JSON), and
    /// each change of it.
    async fn subscribe(
        &self,
        store: &Store,
        run: FlowId,
    ) -> Result<watch::Receiver<Arc<str>>, OpsError> {
        if let Ok(runs) = self.runs.lock()
            && let Some(rx) = runs.get(&run)
            && rx.has_changed().is_ok()
        {
            return Ok(rx.clone());
        }
        let mut watch = RunWatch::new(store.backend().clone(), run);
        watch.poll().await.map_err(OpsError::Store)?;
        let first = snapshot(store, run).await?;
        let ended = watch.ended();
        let (tx, rx) = watch::channel(first);
        if ended {
            return Ok(rx);
        }
        if let Ok(mut runs) = self.runs.lock() {
            runs.retain(|_, rx| rx.has_changed().is_ok());
            runs.insert(run, rx.clone());
        }
        let store = store.clone();
        let watched = self.watched.clone();
        watched.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _count = Watched(watched.clone());
            loop {
                let every =
                    (LOOK_EVERY + LOOK_MORE * watched.load(Ordering::Relaxed)).min(LOOK_MOST);
                let changed = tokio::select! {
                    changed = watch.next(every) => changed,
                    () = tx.closed() => return,
                };
                if changed.is_err() {
                    // The store could not be read this time: look again.
                    tokio::time::sleep(LOOK_EVERY).await;
                    continue;
                }
                match snapshot(&store, run).await {
                    Ok(json) => {
                        if tx.send(json).is_err() {
                            return;
                        }
                    }
                    Err(_) => continue,
                }
                if watch.ended() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

async fn snapshot(store: &Store, run: FlowId) -> Result<Arc<str>, OpsError> {
    let view = ops::show_run(store, run, TAIL).await?;
    Ok(serde_json::to_string(&view).unwrap_or_default().into())
}

fn permit(state: &AppState) -> ApiResult<OwnedSemaphorePermit> {
    state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many pages are following runs now: close some, or try again later",
        )
    })
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /api/runs/{run}/events`: `run` events, each the run's JSON (as
/// `GET /api/runs/{run}`), the first at once, then one per change; the
/// stream ends after the run has ended.
pub(crate) async fn run_events(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> ApiResult<Response> {
    let id = resolve(&state, &run).await?;
    let permit = permit(&state)?;
    let rx = state.hub.subscribe(&state.store, id).await?;
    let stream =
        futures::stream::unfold((rx, permit, true), |(mut rx, permit, first)| async move {
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let data = rx.borrow_and_update().clone();
            let event = Event::default().event("run").data(&*data);
            Some((Ok(event), (rx, permit, false)))
        });
    Ok(sse(stream.take_until(state.stopping())))
}

/// `GET /api/runs/events?state=&flow=&since=&limit=`: `runs` events, each
/// the JSON of `GET /api/runs` with the same filters, the first at once,
/// then whenever the list changes.
pub(crate) async fn runs_events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let filter = query.filter()?;
    let permit = permit(&state)?;
    let store = state.store.clone();
    let stream = futures::stream::unfold(
        (store, filter, permit, String::new(), true),
        |(store, filter, permit, last, first)| async move {
            let mut first = first;
            loop {
                if !first {
                    tokio::time::sleep(LIST_EVERY).await;
                }
                first = false;
                let Ok(runs) = ops::list_runs(&store, filter.clone()).await else {
                    continue;
                };
                // What changes by itself (durations) is left to the page.
                let shown: Vec<_> = runs
                    .iter()
                    .map(|r| (r.id, r.state, &r.updated_at, r.held, r.cancel_requested))
                    .collect();
                let key = format!("{shown:?}");
                if key == last {
                    continue;
                }
                let data = serde_json::to_string(&runs).unwrap_or_default();
                let event = Event::default().event("runs").data(data);
                return Some((Ok(event), (store, filter, permit, key, false)));
            }
        },
    );
    Ok(sse(stream.take_until(state.stopping())))
}
