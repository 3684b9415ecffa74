//! `flow serve`: the web page, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use flow_cli::ops::{self, Access, OpsError, RunOptions};
use flow_cli::serve::{ServeError, ServeOptions, Server, new_token};
use tokio::signal::unix::{SignalKind, signal};

use super::{StoreArgs, exit, note, out};

/// `flow serve [--bind ADDR] [--token T] [--pipelines DIR|FILE...] [--public]`.
pub(crate) async fn serve(
    store: &StoreArgs,
    bind: SocketAddr,
    token: Option<String>,
    paths: &[PathBuf],
    public: bool,
    jobs: usize,
) -> Result<u8, OpsError> {
    let pipelines = if paths.is_empty() {
        Vec::new()
    } else {
        ops::read_pipelines(paths)?
    };
    let store = store.open(Access::Create).await?;
    let location = store.location().to_string();
    let given = token.is_some();
    let token = token.unwrap_or_else(new_token);
    let names: Vec<String> = pipelines.iter().map(|p| p.name().to_string()).collect();
    let options = ServeOptions::new(bind, token.clone())
        .pipelines(pipelines)
        .public(public)
        .run_options(RunOptions::default().jobs(jobs));
    let server = match Server::bind(store, options).await {
        Ok(s) => s,
        Err(e) => {
            note!("flow serve: {e}");
            return Ok(match e {
                ServeError::Bind { .. } | ServeError::Serve(_) => exit::FAILED,
                _ => exit::BAD_INPUT,
            });
        }
    };
    let addr = server.local_addr();
    out!("flow serve: listening on http://{addr}/ (store {location})");
    if names.is_empty() {
        out!("pipelines: none (give --pipelines DIR|FILE to start runs from the page)");
    } else {
        out!("pipelines: {}", names.join(", "));
    }
    if given {
        out!("token: the one given (--token or FLOW_TOKEN)");
    } else {
        out!("token: {token}");
        out!("sign in: http://{addr}/#token={token}");
    }
    let shutdown = async {
        let mut term = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { term.as_mut()?.recv().await } => {}
        }
        out!("flow serve: stopping; runs still going are left for `flow resume`");
    };
    match server.run(shutdown).await {
        Ok(()) => Ok(exit::OK),
        Err(e) => {
            note!("flow serve: {e}");
            Ok(exit::FAILED)
        }
    }
}
