//! The parallel engine when no journal is kept: workers share the scheduler.
//!
//! Each worker is a tokio task that loops: under one lock it records the jobs
//! it finished, applies suspend and cancel requests, and takes more jobs (its
//! share of the engine's maximum in flight, in one pass over the ready queue
//! while they are plain tasks); then, without the lock, it runs
//! them: synchronous tasks to their end at once, with the run's graph and a
//! context of the worker's own, pointed at each task in turn (no reference
//! count shared with the other workers changes per task); asynchronous ones
//! together. While nobody listens, a plain task to execute
//! ([`Node::is_plain`](crate::compile::Node::is_plain)) is taken in a smaller
//! form than other work, and the worker checks its outputs against its
//! contract before taking the lock again, so that less is done under it. A
//! finished atom's successors are thus started by the worker that finished
//! it, with no hand-off to another thread, and jobs are taken and reported in
//! batches when the maximum allows. There are at most as many workers as the
//! runtime has threads (fewer if the maximum is lower), started as work
//! appears. A worker with room for more waits until another one makes work
//! ready, and the last one to find nothing ready and nothing running ends the
//! run.
//!
//! With a journal the engine keeps one driver instead, because every state
//! change must be written, in order, before the atoms it starts run.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;

use crate::compile::Graph;
use crate::engine::exec;
use crate::engine::machine::{Done, Machine, PlainDone, PlainJob, Step, start_plain, start_step};
use crate::error::RunError;
use crate::task::Context;

struct State {
    /// `None` once the run gave the machine back.
    machine: Option<Machine>,
    /// Live workers, and how many there may be: the runtime's threads, or
    /// the maximum in flight if it is lower.
    workers: usize,
    max_workers: usize,
    /// How many jobs one worker holds at once: the maximum in flight shared
    /// between the workers, so that a worker takes and reports jobs in
    /// batches when the maximum allows it.
    quota: usize,
    /// Workers that could take more jobs and wait to be told of them.
    waiting: usize,
    max: usize,
    /// Set when the run is over: nothing ready, nothing running, or an error.
    over: bool,
    error: Option<RunError>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the workers waiting for jobs: when some become ready, and at the
    /// end.
    ready: Notify,
    /// Wakes the run when the last worker left.
    ended: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The jobs a worker is running: they make progress together, so that an
/// asynchronous one waiting does not hold the others back.
type Running = FuturesUnordered<BoxFuture<'static, Done>>;

/// What a worker holds between two visits to the scheduler.
#[derive(Default)]
struct Batch {
    /// Plain tasks to execute.
    plain: Vec<PlainJob>,
    /// Any other work.
    taken: Vec<Step>,
    /// Plain tasks that succeeded, their outputs checked.
    checked: Vec<(u32, crate::task::Outputs)>,
    /// Other finished jobs.
    done: Vec<Done>,
}

impl Batch {
    fn to_start(&self) -> usize {
        self.plain.len() + self.taken.len()
    }

    fn finished(&self) -> bool {
        !self.checked.is_empty() || !self.done.is_empty()
    }
}

/// One scheduling step, under the lock: records what finished, then takes
/// work while the worker's quota and the maximum in flight allow.
fn step(m: &mut Machine, b: &mut Batch, room: usize, max: usize) -> Result<(), RunError> {
    m.accept(&mut b.checked)?;
    for d in b.done.drain(..) {
        m.complete(d)?;
    }
    m.apply_requests()?;
    while b.to_start() < room && m.in_flight < max {
        let n = (room - b.to_start()).min(max - m.in_flight);
        if !m.take_into(&mut b.plain, &mut b.taken, n)? {
            break;
        }
    }
    Ok(())
}

/// Ends the run (under the lock): every worker leaves.
fn end(shared: &Shared, st: &mut State, error: Option<RunError>) {
    st.over = true;
    if st.error.is_none() {
        st.error = error;
    }
    shared.ready.notify_waiters();
}

/// A worker leaves (under the lock); the last one wakes the run.
fn leave(shared: &Shared, st: &mut State) {
    st.workers -= 1;
    if st.workers == 0 {
        shared.ended.notify_one();
    }
}

/// Wakes a sleeping worker, or starts a new one, if more work may be ready.
/// Returns whether it did.
fn spread(shared: &Arc<Shared>, st: &mut State) -> bool {
    let Some(m) = st.machine.as_ref().filter(|m| m.may_have_work()) else {
        return false;
    };
    if st.workers < st.max_workers {
        st.workers += 1;
        tokio::spawn(tracing::Instrument::in_current_span(worker(
            shared.clone(),
            m.lender(),
        )));
        true
    } else if st.waiting > 0 {
        // There are few workers (no more than threads): wake them all.
        shared.ready.notify_waiters();
        true
    } else {
        false
    }
}

/// A worker. `lender` is its own copy of the run's graph and a context to
/// lend: the steps it runs touch no reference count that the other workers
/// touch.
async fn worker(shared: Arc<Shared>, lender: (Arc<Graph>, Context)) {
    work(&shared, lender).await;
    // Only now, with its graph and context dropped: the run may end (and the
    // engine drop the flow) as soon as the last worker has left, and a
    // worker still holding the graph then would free it on its thread.
    leave(&shared, &mut shared.lock());
}

/// A worker's loop; it returns when the worker must leave.
async fn work(shared: &Arc<Shared>, lender: (Arc<Graph>, Context)) {
    let (g, mut lent) = lender;
    let mut b = Batch::default();
    let mut running = Running::new();
    let mut registered = false;
    loop {
        let notified = shared.ready.notified();
        tokio::pin!(notified);
        let woke = {
            let mut st = shared.lock();
            if std::mem::take(&mut registered) {
                st.waiting -= 1;
            }
            if st.over {
                return;
            }
            let (room, max) = (st.quota.saturating_sub(running.len()), st.max);
            let Some(m) = st.machine.as_mut() else {
                // The run was dropped and took the machine back.
                return;
            };
            if let Err(e) = step(m, &mut b, room, max) {
                end(shared, &mut st, Some(e));
                return;
            }
            if b.to_start() == 0 && running.is_empty() {
                if m.in_flight == 0 {
                    end(shared, &mut st, None);
                    return;
                }
                // Registered before the lock is released: no wake-up is lost.
                notified.as_mut().enable();
                st.waiting += 1;
                registered = true;
                None
            } else {
                let woke = spread(shared, &mut st);
                if running.len() + b.to_start() < st.quota {
                    // Room for more: be told when other workers make some ready.
                    notified.as_mut().enable();
                    st.waiting += 1;
                    registered = true;
                }
                Some(woke)
            }
        };
        let Some(woke) = woke else {
            notified.await;
            continue;
        };
        if woke {
            Requeue(false).await;
        }
        // Synchronous tasks run to their end here; the others join `running`.
        for job in b.plain.drain(..) {
            match start_plain(&g, &mut lent, job) {
                PlainDone::Checked(i, out) => b.checked.push((i, out)),
                PlainDone::Other(exec::Started::Now(d)) => b.done.push(d),
                PlainDone::Other(exec::Started::Later(f)) => running.push(f),
            }
        }
        for next in b.taken.drain(..) {
            match start_step(&g, &mut lent, next) {
                exec::Started::Now(d) => b.done.push(d),
                exec::Started::Later(f) => running.push(f),
            }
        }
        if !b.finished() {
            // Wait until a job ends, or there is more to take.
            let first = if registered {
                tokio::select! {
                    d = running.next() => d,
                    () = &mut notified => None,
                }
            } else {
                running.next().await
            };
            b.done.extend(first);
        }
        // Every other job that can end without waiting is reported at once.
        while let Some(Some(d)) = running.next().now_or_never() {
            b.done.push(d);
        }
    }
}

/// Puts the current task at the back of its thread's queue, where another
/// thread may take it.
///
/// tokio runs a task woken (or spawned) from one of its worker threads next on
/// that same thread, and lets no other thread take it; a worker that just woke
/// another and kept going would hold it back until it slept. Waking itself
/// while running makes tokio queue it behind the one it woke, and tell an idle
/// thread, which then takes one of the two. (`tokio::task::yield_now` defers
/// the wake until the thread runs out of work, which does not help here.)
struct Requeue(bool);

impl std::future::Future for Requeue {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Gives the machine back to the engine when the run ends or is dropped.
struct Guard<'a> {
    slot: &'a mut Machine,
    shared: Arc<Shared>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(m) = st.machine.take() {
            *self.slot = m;
        }
        // Workers still running a job find no machine and leave; their atoms
        // stay `Running` and run again if the engine runs again.
        st.over = true;
        self.shared.ready.notify_waiters();
    }
}

/// Runs the machine with up to `max` workers until nothing is ready or
/// running, or an error stops it.
pub(crate) async fn drive(slot: &mut Machine, max: usize) -> Result<(), RunError> {
    let control = slot.control.clone();
    let machine = std::mem::replace(slot, Machine::vacant(slot));
    let lender = machine.lender();
    let max = max.max(1);
    let threads = tokio::runtime::Handle::try_current()
        .map_or(1, |h| h.metrics().num_workers())
        .max(1);
    let max_workers = max.min(threads);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            machine: Some(machine),
            workers: 0,
            waiting: 0,
            max,
            max_workers,
            quota: max.div_ceil(max_workers),
            over: false,
            error: None,
        }),
        ready: Notify::new(),
        ended: Notify::new(),
    });
    let guard = Guard {
        slot,
        shared: shared.clone(),
    };
    // The first worker is a tokio task of its own, not run in this one: a
    // worker runs a synchronous atom to its end without yielding, and this
    // task must stay free meanwhile to act on suspend and cancel requests
    // (and wake an idle worker to start the reverts).
    {
        let mut st = shared.lock();
        st.workers = 1;
        tokio::spawn(tracing::Instrument::in_current_span(worker(
            shared.clone(),
            lender,
        )));
    }
    loop {
        let ended = shared.ended.notified();
        let wake = control.wake.notified();
        tokio::pin!(ended, wake);
        ended.as_mut().enable();
        {
            let st = shared.lock();
            if st.workers == 0 {
                break;
            }
        }
        tokio::select! {
            () = &mut ended => {}
            () = &mut wake => {
                // A suspend or cancel request: act on it now, so that a revert
                // can start while long tasks are still running.
                let mut st = shared.lock();
                if st.over {
                    continue;
                }
                if let Some(m) = st.machine.as_mut()
                    && let Err(e) = m.apply_requests() {
                        end(&shared, &mut st, Some(e.into()));
                        continue;
                    }
                spread(&shared, &mut st);
            }
        }
    }
    let error = shared.lock().error.take();
    drop(guard);
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
