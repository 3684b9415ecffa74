//! A TCP proxy between a backend and the test server, to cut connections at
//! exact points: just before the server gets a `COMMIT`, just after it
//! committed (its answer dropped), or all of them at once, and to keep the
//! server out of reach (connections closed as they come).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASS: u8 = 0;
const CUT_BEFORE_COMMIT: u8 = 1;
const CUT_AFTER_COMMIT: u8 = 2;

#[derive(Debug, Default)]
struct State {
    mode: AtomicU8,
    down: AtomicBool,
    cuts: AtomicUsize,
    connections: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// The proxy: connect to `127.0.0.1:{port}` instead of the server.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// A proxy to the server of `url`, running on its own thread.
    pub fn start(url: &str) -> Proxy {
        let config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target: SocketAddr = format!("{host}:{port}")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port)));
        let state = Arc::new(State::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let s = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
                tx.send(listener.local_addr().expect("an address").port())
                    .expect("the test waits");
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if s.down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let s2 = s.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(target).await {
                            pipe(client, server, s2).await;
                        }
                    });
                    s.connections
                        .lock()
                        .expect("the list of connections")
                        .push(task.abort_handle());
                }
            });
        });
        let port = rx.recv().expect("the proxy's port");
        Proxy { port, state }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let (auth, rest) = match rest.split_once('@') {
            Some((auth, rest)) => (format!("{auth}@"), rest),
            None => (String::new(), rest),
        };
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        format!("{scheme}://{auth}127.0.0.1:{}{path}", self.port)
    }

    /// The next `COMMIT` sent is dropped, and its connection cut: the
    /// server never commits.
    pub fn cut_before_next_commit(&self) {
        self.state.mode.store(CUT_BEFORE_COMMIT, Ordering::SeqCst);
    }

    /// The next `COMMIT` reaches the server; its answer is dropped, and the
    /// connection cut: the server committed, the client cannot know.
    pub fn cut_after_next_commit(&self) {
        self.state.mode.store(CUT_AFTER_COMMIT, Ordering::SeqCst);
    }

    /// How many connections were cut at a `COMMIT`.
    pub fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Cuts every connection, and closes new ones at once until [`up`].
    pub fn down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for c in self
            .state
            .connections
            .lock()
            .expect("the list of connections")
            .drain(..)
        {
            c.abort();
        }
    }

    /// Lets connections through again.
    pub fn up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }
}

fn has_commit(bytes: &[u8]) -> bool {
    bytes.windows(7).any(|w| w == b"COMMIT\0")
}

async fn pipe(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let doomed = Arc::new(AtomicBool::new(false));
    let d = doomed.clone();
    let s = state.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if has_commit(chunk) {
                // Armed once: the first COMMIT seen disarms the proxy.
                let armed = s.mode.swap(PASS, Ordering::SeqCst);
                if armed == CUT_BEFORE_COMMIT {
                    s.cuts.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if armed == CUT_AFTER_COMMIT {
                    d.store(true, Ordering::SeqCst);
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let s = state;
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            // The server's `CommandComplete` of the doomed COMMIT: it has
            // committed; the client never hears of it.
            if doomed.load(Ordering::SeqCst) && has_commit(chunk) {
                s.cuts.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if client_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends both: the sockets close.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}
