//! What the server holds: the store, the pipelines it may start, the token,
//! and the runs it is running.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow::FlowId;
use flow_pipeline::Pipeline;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::ServeOptions;
use super::hub::Hub;
use crate::ops::{ActiveRun, RunOptions, Store};

/// Why `flow serve` cannot serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// An address that is not loopback, without `--public`.
    #[error(
        "`{addr}` is not a loopback address: the page would be open to the network; give \
         --public to mean it (and keep the token secret), or bind 127.0.0.1"
    )]
    NotLoopback {
        /// The address given.
        addr: SocketAddr,
    },
    /// An empty token.
    #[error(
        "the token is empty: give --token (or FLOW_TOKEN) a value, or leave it out for a new one"
    )]
    EmptyToken,
    /// Two pipelines have the same name.
    #[error(
        "two pipelines are named `{name}` (`{first}` and `{second}`): a run names its pipeline, \
         so serve only one of them"
    )]
    SameName {
        /// The name.
        name: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on `{addr}`: {source} (is another server on that port? --bind another)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The threads that run the runs could not be started.
    #[error("cannot start the threads that run the runs: {0}")]
    Runtime(#[source] std::io::Error),
    /// Serving failed.
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// The state every request sees.
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) pipelines: Vec<Pipeline>,
    pub(crate) token: String,
    pub(crate) public: bool,
    pub(crate) addr: SocketAddr,
    pub(crate) run_options: RunOptions,
    pub(crate) hub: Hub,
    /// One permit per open event stream.
    pub(crate) streams: Arc<Semaphore>,
    running: Mutex<JoinSet<()>>,
    /// Where the runs run: threads of their own, so that pages are not
    /// answered after the steps of a hundred runs (taken out to stop it).
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for AppState {
    /// A runtime may not be dropped where blocking is not allowed (in a
    /// task): it is let go of without waiting.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.get_mut().ok().and_then(Option::take) {
            runtime.shutdown_background();
        }
    }
}

impl AppState {
    pub(crate) fn new(
        store: Store,
        options: ServeOptions,
        addr: SocketAddr,
    ) -> Result<AppState, ServeError> {
        let mut seen: HashMap<&str, &Pipeline> = HashMap::new();
        for p in &options.pipelines {
            if let Some(first) = seen.insert(p.name(), p) {
                return Err(ServeError::SameName {
                    name: p.name().to_string(),
                    first: first.file().to_string(),
                    second: p.file().to_string(),
                });
            }
        }
        Ok(AppState {
            store,
            pipelines: options.pipelines,
            token: options.token,
            public: options.public,
            addr,
            run_options: options.run_options,
            hub: Hub::default(),
            streams: Arc::new(Semaphore::new(options.max_streams.max(1))),
            running: Mutex::new(JoinSet::new()),
            runtime: Mutex::new(Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("flow-serve-runs")
                    .enable_all()
                    .build()
                    .map_err(ServeError::Runtime)?,
            )),
            stop: watch::channel(false).0,
        })
    }

    /// The served pipeline named `name`.
    pub(crate) fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name() == name)
    }

    /// Runs `active` in the background until it ends (or the server stops:
    /// then it is left for `flow resume`). Returns once the run is in the
    /// store, so that its page can be shown at once.
    pub(crate) async fn spawn(&self, mut active: ActiveRun) -> FlowId {
        let id = active.id();
        let mut events = active.take_events();
        let mut stop = self.stop.subscribe();
        let task = async move {
            let result = tokio::select! {
                result = active.run() => Some(result),
                _ = stop.wait_for(|s| *s) => None,
            };
            if result.is_none() {
                active.abandon().await;
            }
        };
        let runtime = self
            .runtime
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.handle().clone()));
        if let (Ok(mut running), Some(runtime)) = (self.running.lock(), runtime) {
            // Finished runs are let go of as new ones come.
            while running.try_join_next().is_some() {}
            running.spawn_on(task, &runtime);
        }
        // The run's first event comes once the engine has written it.
        if let Some(events) = events.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.store.backend().load_flow(id).await.is_err()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        id
    }

    /// Asks the runs started here and the open streams to stop.
    pub(crate) fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Completes once the server is stopping.
    pub(crate) fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }

    /// Stops driving the runs started here: each is given back to the store
    /// as it is, for `flow resume`.
    pub(crate) async fn stop_runs(&self) {
        self.stop();
        let mut running = match self.running.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        while running.join_next().await.is_some() {}
        let runtime = self.runtime.lock().ok().and_then(|mut r| r.take());
        if let Some(runtime) = runtime {
            // What is left (a step's process being stopped) is not waited for.
            runtime.shutdown_background();
        }
    }
}
