//! Wake-ups of idle conductors: one connection of the backend `LISTEN`s on
//! the board's channel, to which posts and hand-backs `NOTIFY` in their
//! transactions. A notification wakes every conductor of this backend
//! waiting for jobs. The connection is made when a conductor first waits,
//! and made again (with backoff) when it is lost; meanwhile idle conductors
//! poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, Connection};

use crate::fault::Backoff;
use crate::schema::quoted;
use crate::writer::Shared;

/// How to open the listening connection.
#[derive(Clone)]
pub(crate) enum Connector {
    Plain,
    #[cfg(feature = "tls")]
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connector::Plain => "Plain",
            #[cfg(feature = "tls")]
            Connector::Tls(_) => "Tls",
        })
    }
}

/// The connector of the listening connection: TLS when the URL asks for it
/// (as [`crate::options`] makes the pool's).
pub(crate) fn connector(
    config: &tokio_postgres::Config,
    options: &crate::PostgresOptions,
) -> Result<Connector, flow_core::StorageError> {
    if config.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
        let _ = options;
        return Ok(Connector::Plain);
    }
    #[cfg(feature = "tls")]
    {
        crate::tls::connector(options.ca_file.as_deref())
            .map(Connector::Tls)
            .map_err(crate::options::config_error)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        Err(crate::options::config_error(
            crate::ConfigError::TlsNotBuilt,
        ))
    }
}

/// The listening side of a backend.
#[derive(Debug)]
pub(crate) struct Listener {
    /// Told of posts and hand-backs (by the server, and by this backend).
    pub(crate) posted: Notify,
    started: AtomicBool,
    listening: AtomicBool,
    config: tokio_postgres::Config,
    connector: Connector,
}

impl Listener {
    pub(crate) fn new(config: tokio_postgres::Config, connector: Connector) -> Self {
        Listener {
            posted: Notify::new(),
            started: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            config,
            connector,
        }
    }

    /// Wakes every conductor waiting, and the next one to wait.
    pub(crate) fn wake(&self) {
        self.posted.notify_waiters();
        self.posted.notify_one();
    }

    /// Whether the connection is listening now.
    pub(crate) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Starts listening on `runtime` (once).
    pub(crate) fn start(shared: &Arc<Shared>, runtime: &tokio::runtime::Handle) {
        if shared.listener.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::downgrade(shared);
        runtime.spawn(async move {
            let mut backoff = Backoff::new();
            loop {
                let Some(s) = shared.upgrade() else { return };
                let l = &s.listener;
                let channel = quoted(&s.sql.jobs.channel);
                let ended = match &l.connector {
                    Connector::Plain => match l.config.connect(tokio_postgres::NoTls).await {
                        Ok((client, conn)) => serve(l, &channel, client, conn).await,
                        Err(e) => Err(e),
                    },
                    #[cfg(feature = "tls")]
                    Connector::Tls(tls) => match l.config.connect(tls.clone()).await {
                        Ok((client, conn)) => serve(l, &channel, client, conn).await,
                        Err(e) => Err(e),
                    },
                };
                l.listening.store(false, Ordering::Release);
                match ended {
                    // It listened for a while: try again at once.
                    Ok(()) => backoff = Backoff::new(),
                    Err(e) => {
                        tracing::debug!(target: "flow", "listening for jobs: {e}");
                    }
                }
                let wait = backoff.step(std::time::Duration::from_secs(1));
                drop(s);
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// Listens on `conn` until it is lost: `Ok` once it had listened.
async fn serve<S, T>(
    l: &Listener,
    channel: &str,
    client: Client,
    mut conn: Connection<S, T>,
) -> Result<(), tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
    let statement = format!("LISTEN {channel}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    loop {
        tokio::select! {
            r = &mut listen => {
                r?;
                break;
            }
            m = messages.next() => match m {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
    l.listening.store(true, Ordering::Release);
    // Jobs posted while nobody listened.
    l.wake();
    while let Some(m) = messages.next().await {
        match m {
            Ok(AsyncMessage::Notification(_)) => l.wake(),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(target: "flow", "the connection listening for jobs: {e}");
                break;
            }
        }
    }
    Ok(())
}
