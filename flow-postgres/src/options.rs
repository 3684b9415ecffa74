//! How to connect: the options, the URL as errors show it, the connection
//! manager (with or without TLS), and what makes a URL unusable.

use std::time::Duration;

use flow_core::{Operation, StorageError};

/// How to connect a [`PostgresBackend`](crate::PostgresBackend).
///
/// ```
/// use std::time::Duration;
/// use flow::postgres::PostgresOptions;
/// let options = PostgresOptions::new()
///     .schema("deployments")
///     .pool_size(8)
///     .unavailable_after(Duration::from_secs(60));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct PostgresOptions {
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) max_batch: usize,
    pub(crate) in_flight: usize,
    pub(crate) unavailable_after: Duration,
    pub(crate) attempt_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) ca_file: Option<std::path::PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "flow".into(),
            pool_size: 4,
            max_batch: 4096,
            in_flight: 2,
            unavailable_after: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            ca_file: None,
        }
    }
}

impl PostgresOptions {
    /// The defaults: schema `flow`, 4 connections, a server out of reach for
    /// 30 s is an error.
    pub fn new() -> Self {
        PostgresOptions::default()
    }

    /// The schema holding the store's tables (default `flow`), created if
    /// missing: a plain identifier (letters, digits, `_`, not starting with a
    /// digit, at most 63 bytes). Several stores can share a database, each in
    /// its schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// At most this many connections (default 4, at least one more than
    /// [`in_flight`](PostgresOptions::in_flight)): the writer's, and the
    /// others for reads.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(2);
        self
    }

    /// At most this many writes in one transaction (default 4096, at least 1).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// How many batches may be committing at once (default 2, at least 1):
    /// while one waits for the server to flush it to disk, the writes that
    /// came meanwhile go out in the next. Each takes a connection of the
    /// pool.
    pub fn in_flight(mut self, batches: usize) -> Self {
        self.in_flight = batches.max(1);
        self
    }

    /// How long the backend keeps trying a server it cannot reach before the
    /// operation fails with [`StorageError::Unavailable`] (default 30 s).
    /// Tries are 10 ms apart at first, doubling up to 1 s.
    pub fn unavailable_after(mut self, time: Duration) -> Self {
        self.unavailable_after = time;
        self
    }

    /// How long one try may take (default 10 s, at most
    /// [`unavailable_after`](PostgresOptions::unavailable_after)) before the
    /// connection is given up as lost: a server that hangs is treated as one
    /// that went away.
    pub fn attempt_timeout(mut self, time: Duration) -> Self {
        self.attempt_timeout = time.max(Duration::from_millis(1));
        self
    }

    /// With the `tls` feature: a PEM file of certificate authorities to
    /// trust, besides the system's, for connections whose URL says
    /// `sslmode=require`.
    #[cfg(feature = "tls")]
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
}

/// A PostgreSQL URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not a URL or key-value string PostgreSQL understands.
    #[error(
        "`{url}` is not a PostgreSQL connection string ({source}): write it as postgres://user@host:5432/database"
    )]
    Url {
        /// The string, without its password.
        url: String,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The schema's name is not a plain identifier.
    #[error(
        "`{0}` cannot name the store's schema: use letters, digits and `_`, not starting with a digit, at most 63 bytes"
    )]
    Schema(String),
    /// The URL asks for TLS and this build has none.
    #[error(
        "the URL asks for TLS (sslmode=require): build flow with the `postgres-tls` feature \
         (flow-postgres: `tls`), or connect without TLS"
    )]
    TlsNotBuilt,
    /// The TLS set-up failed (a CA file that cannot be read, say).
    #[error("TLS: {0}")]
    Tls(String),
}

pub(crate) fn config_error(e: ConfigError) -> StorageError {
    StorageError::Backend {
        op: Operation::Open,
        source: Box::new(e),
    }
}

/// The URL as errors show it: no password.
pub(crate) fn address(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{host}:{port}/{db}")
}

pub(crate) fn manager(
    config: tokio_postgres::Config,
    options: &PostgresOptions,
) -> Result<deadpool_postgres::Manager, StorageError> {
    let manager_config = deadpool_postgres::ManagerConfig {
        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
    };
    let wants_tls = config.get_ssl_mode() == tokio_postgres::config::SslMode::Require;
    if wants_tls {
        #[cfg(feature = "tls")]
        {
            let tls = crate::tls::connector(options.ca_file.as_deref()).map_err(config_error)?;
            return Ok(deadpool_postgres::Manager::from_config(
                config,
                tls,
                manager_config,
            ));
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = options;
            return Err(config_error(ConfigError::TlsNotBuilt));
        }
    }
    let _ = options;
    Ok(deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        manager_config,
    ))
}

/// `url` with its password replaced by `***`.
pub(crate) fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}
