//! The journal's narrow trait, implemented once per backend.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;

use super::error::StorageError;
use super::model::{AtomDetail, Claim, Definition, FlowDetail, FlowId, FlowQuery, Lease, LogBook};

/// A journal backend: narrow, asynchronous, fallible.
///
/// # Runs and their owners
///
/// A run has at most one live owner. Whoever creates a run
/// ([`create_flow`](Backend::create_flow)) or takes one up
/// ([`claim_flow`](Backend::claim_flow)) gets a [`Lease`] with a *fencing
/// number*, raised by every claim; it renews the lease while it works and
/// releases it when it stops. Every write of the run's journal
/// ([`save_run`](Backend::save_run)) carries the fencing number, and the
/// backend refuses, in the write's own transaction, a write whose number is
/// not the run's latest ([`StorageError::OwnershipLost`]): whoever lost a run
/// can write nothing more for it. A claim on a run whose lease is live is
/// refused ([`StorageError::Owned`]); a lease that ran out (its owner died, or
/// hung longer than the lease) can be claimed by anyone. A backend measures
/// leases by its own clock: the database server's where there is one.
///
/// # Writes
///
/// Writes are upserts keyed by id (logbooks, runs, definitions) and by
/// `(run, atom name)` (atom details), all or none. A backend must make a write
/// durable, to the degree it promises, before its future resolves: the engine
/// starts an atom only after its `RUNNING` state was written.
///
/// # Records
///
/// Backends that store records outside the process keep a checksum with
/// each ([`flow_checksum`](crate::storage::flow_checksum),
/// [`atom_checksum`](crate::storage::atom_checksum)) and report a record
/// whose checksum does not match as [`StorageError::Corrupt`].
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Creates or updates a logbook.
    fn save_logbook(&self, book: LogBook) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Creates a run with its atoms, claimed by `claim`: the lease it returns
    /// has fencing number 1.
    ///
    /// # Errors
    /// [`StorageError::Exists`] when a run with this id is in the store.
    fn create_flow(
        &self,
        flow: FlowDetail,
        atoms: Vec<AtomDetail>,
        claim: Claim,
    ) -> BoxFuture<'_, Result<Lease, StorageError>>;

    /// Claims a stored run: a new lease, with a fencing number one above the
    /// run's last. A run with no owner, or whose owner's lease ran out, or
    /// held by the same owner id, can be claimed.
    ///
    /// # Errors
    /// [`StorageError::Owned`] while another owner's lease is live;
    /// [`StorageError::NotFound`] for an unknown run.
    fn claim_flow(&self, run: FlowId, claim: Claim) -> BoxFuture<'_, Result<Lease, StorageError>>;

    /// Extends a held lease to `duration` from now; the lease it returns also
    /// says whether someone asked the run to cancel.
    ///
    /// # Errors
    /// [`StorageError::OwnershipLost`] when the run was claimed again since.
    fn renew_lease(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> BoxFuture<'_, Result<Lease, StorageError>>;

    /// Gives a held run back: no owner, so that anyone may claim it at once.
    ///
    /// An engine dropped while it holds its run calls this and polls the
    /// future once, without waiting: a backend must start the release when
    /// it is called (queue it, or spawn it), not only when it is polled.
    ///
    /// # Errors
    /// [`StorageError::OwnershipLost`] when the run was claimed again since
    /// (then it is someone else's to give back).
    fn release_flow(&self, lease: &Lease) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Writes what changed in a run: its record, when given, and atom details,
    /// in one transaction, if `fence` is the run's latest fencing number.
    ///
    /// # Errors
    /// [`StorageError::OwnershipLost`] (and nothing written) when `fence` is
    /// stale; [`StorageError::NotFound`] for an unknown run.
    fn save_run(
        &self,
        run: FlowId,
        fence: u64,
        flow: Option<FlowDetail>,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Asks whoever holds run `run` to cancel it: the owner learns it when it
    /// next renews its lease; a run with no owner is cancelled by whoever
    /// claims it next.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] for an unknown run.
    fn request_cancel(&self, run: FlowId) -> BoxFuture<'_, Result<(), StorageError>>;

    /// A run and its atoms (in no particular order).
    fn load_flow(
        &self,
        run: FlowId,
    ) -> BoxFuture<'_, Result<(FlowDetail, Vec<AtomDetail>), StorageError>>;

    /// The runs `query` asks for, newest first.
    fn list_flows(&self, query: FlowQuery) -> BoxFuture<'_, Result<Vec<FlowDetail>, StorageError>>;

    /// Deletes the runs that ended (`SUCCESS`, `REVERTED`, `FAILURE`) and last
    /// changed before `before` (seconds since the Unix epoch), with their
    /// atoms; returns how many runs it deleted.
    fn prune_flows(&self, before: f64) -> BoxFuture<'_, Result<u64, StorageError>>;

    /// Stores a definition; one with the same id is already there and stays
    /// as it is.
    fn save_definition(&self, definition: Definition) -> BoxFuture<'_, Result<(), StorageError>>;

    /// A stored definition by id.
    fn load_definition(&self, id: &str) -> BoxFuture<'_, Result<Option<Definition>, StorageError>>;

    /// Writes a run's record (see [`save_run`](Backend::save_run)).
    fn save_flow(&self, flow: FlowDetail, fence: u64) -> BoxFuture<'_, Result<(), StorageError>> {
        self.save_run(flow.id, fence, Some(flow), Vec::new())
    }

    /// Writes atom details of a run (see [`save_run`](Backend::save_run)).
    fn save_atoms(
        &self,
        run: FlowId,
        fence: u64,
        atoms: Vec<AtomDetail>,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        self.save_run(run, fence, None, atoms)
    }
}
