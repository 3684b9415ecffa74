//! `flow serve`: a web page over a store, to watch runs and start pipelines.
//!
//! The pages are plain HTML written on the server (every value from a run is
//! escaped by the templates), with a small script, embedded in the binary,
//! that follows the server-sent events of the JSON API to colour the graph
//! and fill the tables as the runs go. Nothing is fetched from elsewhere.
//!
//! Safe by default:
//! - it binds to a loopback address unless told `public`;
//! - a request that changes anything (a POST) needs the token, in an
//!   `Authorization: Bearer` header (which a page of another site cannot
//!   send without this server's consent, which it never gives), and is
//!   refused when it comes from another origin;
//! - on a loopback address, requests naming another host are refused (a
//!   page of another site cannot reach it by renaming itself);
//! - logs are named by run and step, never by path, and a log file that
//!   leads outside its run's directory is refused;
//! - events and logs are streamed: a step that prints megabytes per second
//!   costs a page the last state of its run, not the whole of its output.
//!
//! The JSON API is described in the crate's README (`flow serve`).

mod api;
mod error;
mod guard;
mod hub;
mod layout;
mod pages;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use flow_pipeline::Pipeline;
use tokio::net::TcpListener;

use crate::ops::{RunOptions, Store};

use state::AppState;
pub use state::ServeError;

/// How `flow serve` serves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The address to listen on.
    pub bind: SocketAddr,
    /// Whether an address other than a loopback one may be bound.
    pub public: bool,
    /// The token that actions need.
    pub token: String,
    /// The pipelines that may be started from the page.
    pub pipelines: Vec<Pipeline>,
    /// How the runs started here are run.
    pub run_options: RunOptions,
    /// At most this many event streams at once (further ones are refused
    /// with 503 until one closes).
    pub max_streams: usize,
}

impl ServeOptions {
    /// Serves on `bind` with `token`, no pipeline to start, runs run with
    /// the defaults, at most 512 event streams.
    pub fn new(bind: SocketAddr, token: impl Into<String>) -> Self {
        ServeOptions {
            bind,
            public: false,
            token: token.into(),
            pipelines: Vec::new(),
            run_options: RunOptions::default(),
            max_streams: 512,
        }
    }

    /// Also serves these pipelines.
    pub fn pipelines(mut self, pipelines: Vec<Pipeline>) -> Self {
        self.pipelines = pipelines;
        self
    }

    /// Lets an address other than loopback be bound.
    pub fn public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// Sets how the runs started here are run.
    pub fn run_options(mut self, options: RunOptions) -> Self {
        self.run_options = options;
        self
    }
}

/// A new token: 32 random hexadecimal digits.
///
/// ```
/// let token = flow_cli::serve::new_token();
/// assert_eq!(token.len(), 32);
/// assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
/// assert_ne!(token, flow_cli::serve::new_token());
/// ```
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A bound server, not serving yet.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use flow_cli::ops::{Access, Store, StoreLocation};
/// use flow_cli::serve::{ServeError, ServeOptions, Server, new_token};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(&StoreLocation::parse(&dir.path().join("flow.db").display().to_string()), None, Access::Create).await.unwrap();
///
/// // Anything but loopback needs `public`.
/// let open = ServeOptions::new("0.0.0.0:0".parse().unwrap(), new_token());
/// assert!(matches!(Server::bind(store.clone(), open).await, Err(ServeError::NotLoopback { .. })));
///
/// let server = Server::bind(store, ServeOptions::new("127.0.0.1:0".parse().unwrap(), new_token())).await.unwrap();
/// assert!(server.local_addr().ip().is_loopback());
/// // Serves until the future given completes (here: at once).
/// server.run(async {}).await.unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds `options.bind` over `store`.
    ///
    /// # Errors
    /// [`ServeError::NotLoopback`] for an address that is not loopback
    /// without `public`; [`ServeError::EmptyToken`]; [`ServeError::SameName`]
    /// for two pipelines of one name; [`ServeError::Bind`].
    pub async fn bind(store: Store, options: ServeOptions) -> Result<Server, ServeError> {
        if !options.public && !options.bind.ip().is_loopback() {
            return Err(ServeError::NotLoopback { addr: options.bind });
        }
        if options.token.trim().is_empty() {
            return Err(ServeError::EmptyToken);
        }
        let listener =
            TcpListener::bind(options.bind)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: options.bind,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: options.bind,
            source,
        })?;
        let state = Arc::new(AppState::new(store, options, addr)?);
        Ok(Server { listener, state })
    }

    /// The address it listens on (with the port chosen, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// Serves until `shutdown` completes; then the runs started here that
    /// are still going are left as they are, for `flow resume`.
    ///
    /// # Errors
    /// When accepting connections fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = router(self.state.clone());
        let state = self.state.clone();
        // Event streams and followed logs end when asked to stop, so that
        // the open pages do not keep the server up.
        let shutdown = async move {
            shutdown.await;
            state.stop();
        };
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        self.state.stop_runs().await;
        served.map_err(ServeError::Serve)
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::runs_page))
        .route("/runs/{run}", get(pages::run_page))
        .route("/pipelines/{name}", get(pages::pipeline_page))
        .route("/login", get(pages::login_page))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/style.css", get(pages::style))
        .route("/api/session", post(api::session))
        .route("/api/runs", get(api::list))
        .route("/api/runs/events", get(hub::runs_events))
        .route("/api/runs/{run}", get(api::show))
        .route("/api/runs/{run}/events", get(hub::run_events))
        .route("/api/runs/{run}/graph", get(api::graph))
        .route("/api/runs/{run}/steps/{step}/log", get(api::log))
        .route("/api/runs/{run}/cancel", post(api::cancel))
        .route("/api/runs/{run}/resume", post(api::resume))
        .route("/api/runs/{run}/rerun", post(api::rerun))
        .route("/api/pipelines", get(api::pipelines))
        .route("/api/pipelines/{name}", get(api::pipeline))
        .route("/api/pipelines/{name}/runs", post(api::start))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
