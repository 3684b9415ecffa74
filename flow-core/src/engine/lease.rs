//! The claim an engine holds on its run: its owner, the lease it renews
//! and the fencing number its writes carry, and what it does when the
//! lease is lost.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::control::Control;
use crate::storage::{Backend, Lease, StorageError};

/// How an engine holds its run: who it is, and for how long a claim lasts.
#[derive(Clone, Debug)]
pub(crate) struct OwnerConfig {
    pub(crate) owner: String,
    pub(crate) lease: Duration,
    pub(crate) renew_every: Duration,
}

/// The default length of a lease.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// This process's default owner id: `host:pid:xxxxxxxx`.
pub(crate) fn default_owner() -> String {
    let host = gethostname::gethostname();
    let host = host.to_string_lossy();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &tag[..8])
}

/// A held lease, shared with the task that renews it.
#[derive(Debug)]
pub(crate) struct LeaseCell {
    pub(crate) state: Mutex<Held>,
}

#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) lease: Lease,
    /// When the lease ends by this process's clock, unless renewed: the
    /// start of the last successful claim or renewal, plus its length.
    pub(crate) deadline: Instant,
    /// Why the run is no longer ours, once it is not.
    pub(crate) lost: Option<Lost>,
}

#[derive(Clone, Debug)]
pub(crate) enum Lost {
    /// The store refused a renewal or a write: someone claimed the run since.
    Claimed {
        current: u64,
        holder: Option<String>,
    },
    /// No renewal got through before the lease ran out.
    Expired,
}

impl LeaseCell {
    pub(crate) fn new(lease: Lease, deadline: Instant) -> Arc<Self> {
        Arc::new(LeaseCell {
            state: Mutex::new(Held {
                lease,
                deadline,
                lost: None,
            }),
        })
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn lease(&self) -> Lease {
        self.with(|h| h.lease.clone())
    }

    /// Notes what a renewal or write said about ownership.
    pub(crate) fn note(&self, e: &StorageError) {
        if let StorageError::OwnershipLost {
            current, holder, ..
        } = e
        {
            self.with(|h| {
                h.lost = Some(Lost::Claimed {
                    current: *current,
                    holder: holder.clone(),
                });
            });
        }
    }

    /// The error of a run that is no longer ours, if it is not.
    pub(crate) fn check(&self) -> Result<(), StorageError> {
        self.with(|h| {
            if h.lost.is_none() && Instant::now() >= h.deadline {
                h.lost = Some(Lost::Expired);
            }
            match &h.lost {
                None => Ok(()),
                Some(Lost::Claimed { current, holder }) => Err(StorageError::OwnershipLost {
                    run: h.lease.run,
                    fence: h.lease.fence,
                    current: *current,
                    holder: holder.clone(),
                }),
                // Whoever claims the run next raises its fencing number; until
                // a renewal gets through, this engine must act as if it had.
                Some(Lost::Expired) => Err(StorageError::OwnershipLost {
                    run: h.lease.run,
                    fence: h.lease.fence,
                    current: h.lease.fence,
                    holder: None,
                }),
            }
        })
    }

    pub(crate) fn renewed(&self, lease: Lease, started: Instant, length: Duration) {
        self.with(|h| {
            h.lease = lease;
            h.deadline = started + length;
        });
    }
}

/// Renews `cell`'s lease every `every` until it is lost or the task is
/// aborted; passes on a request to cancel the run that it learns from the
/// store.
pub(crate) async fn renew(
    backend: Arc<dyn Backend>,
    cell: Arc<LeaseCell>,
    control: Arc<Control>,
    length: Duration,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let lease = cell.lease();
        let started = Instant::now();
        match backend.renew_lease(&lease, length).await {
            Ok(renewed) => {
                let cancel = renewed.cancel_requested;
                cell.renewed(renewed, started, length);
                if cancel {
                    control.cancel();
                }
            }
            Err(e) if e.is_ownership() => {
                cell.note(&e);
                control.wake.notify_one();
                return;
            }
            Err(e) => {
                tracing::warn!(target: "flow", run = %lease.run, "renewing the lease failed: {e}");
                if cell.check().is_err() {
                    control.wake.notify_one();
                    return;
                }
            }
        }
    }
}

/// A claim held by an engine: the lease and the task renewing it.
pub(crate) struct Holding {
    pub(crate) cell: Arc<LeaseCell>,
    pub(crate) renewer: Option<tokio::task::AbortHandle>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}
