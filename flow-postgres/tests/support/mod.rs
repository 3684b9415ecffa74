//! What the PostgreSQL tests share: the server's URL, from
//! `FLOW_TEST_POSTGRES` (without it every test passes at once, saying it
//! was skipped), and a fresh schema per test, dropped after it.

#![allow(dead_code, unreachable_pub)]

pub mod proxy;
pub mod runs;

use std::time::Duration;

use flow::postgres::{PostgresBackend, PostgresOptions};

/// The variable naming the test server.
pub const VAR: &str = "FLOW_TEST_POSTGRES";

/// The test server's URL, or `None` after saying why the test is skipped.
pub fn url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Once per test binary, past the test harness's capture (which
            // only takes what the print macros write).
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: {VAR} is not set, so the PostgreSQL tests of this binary pass \
                     without running; set it to a PostgreSQL URL \
                     (postgres://user@127.0.0.1:5432/db) to run them"
                );
            });
            None
        }
    }
}

/// A schema of its own for one test, dropped with the guard.
#[derive(Debug)]
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    pub fn new(url: &str) -> Schema {
        Schema {
            url: url.to_string(),
            name: format!("t_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Runs `sql` on the test server, outside any backend.
    pub fn execute(&self, sql: &str) {
        execute(&self.url, sql);
    }
}

/// Runs `sql` on the server at `url`, on a thread of its own.
pub fn execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("the test server answers");
            let driver = tokio::spawn(conn);
            client
                .batch_execute(&sql)
                .await
                .expect("the statement runs");
            drop(client);
            let _ = driver.await;
        });
    })
    .join()
    .expect("the statement's thread");
}

/// The rows `sql` returns, as text, each row's cells joined by `|`.
pub fn query(url: &str, sql: &str) -> Vec<String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("the test server answers");
            let driver = tokio::spawn(conn);
            let messages = client.simple_query(&sql).await.expect("the query runs");
            drop(client);
            let _ = driver.await;
            messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>()
                            .join("|"),
                    ),
                    _ => None,
                })
                .collect()
        })
    })
    .join()
    .expect("the query's thread")
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    let driver = tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                    drop(client);
                    let _ = driver.await;
                }
            });
        })
        .join();
    }
}

/// Options for a test: a fresh schema, and a server out of reach for 20 s
/// is an error (a test never waits longer).
pub fn options(schema: &Schema) -> PostgresOptions {
    PostgresOptions::new()
        .schema(&schema.name)
        .unavailable_after(Duration::from_secs(20))
}

/// A backend on a fresh schema, or `None` without a test server.
pub async fn fresh() -> Option<(Schema, PostgresBackend)> {
    let url = url()?;
    let schema = Schema::new(&url);
    let backend = PostgresBackend::connect_with(&url, options(&schema))
        .await
        .expect("the test server is there, and the store opens");
    Some((schema, backend))
}
