//! The parallel engine when no journal is kept: workers share the scheduler.
//!
//! Each worker is a tokio task that loops: under one lock it records the job it
//! just finished, applies suspend and cancel requests, and takes the next job;
//! then it runs that job without the lock. A finished atom's successors are
//! thus started by the worker that finished it, with no hand-off to another
//! thread. Workers are started as work appears, up to the engine's maximum,
//! so at most that many atoms run at once; a worker with nothing to do sleeps
//! until another one makes work ready, and the last one to find nothing ready
//! and nothing running ends the run.
//!
//! With a journal the engine keeps one driver instead, because every state
//! change must be written, in order, before the atoms it starts run.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::engine::control::Control;
use crate::engine::exec;
use crate::engine::machine::{Done, Job, Machine};
use crate::error::RunError;

struct State {
    /// `None` once the run gave the machine back.
    machine: Option<Machine>,
    /// Live workers.
    workers: usize,
    /// Workers asleep, waiting for work.
    idle: usize,
    max: usize,
    /// Set when the run is over: nothing ready, nothing running, or an error.
    over: bool,
    error: Option<RunError>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes one sleeping worker per job made ready; all of them at the end.
    ready: Notify,
    /// Wakes the run when the last worker left.
    ended: Notify,
    control: Arc<Control>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies suspend and cancel requests to the machine.
fn apply_control(control: &Control, m: &mut Machine) -> Result<(), RunError> {
    if control.cancel_requested() {
        m.cancel();
    }
    if control.suspend_requested() {
        m.suspend()?;
    }
    Ok(())
}

/// One scheduling step: records `done`, then takes the next job.
fn step(control: &Control, m: &mut Machine, done: Option<Done>) -> Result<Option<Job>, RunError> {
    if let Some(done) = done {
        m.complete(done)?;
    }
    apply_control(control, m)?;
    Ok(m.next_job()?)
}

/// Ends the run (under the lock): every worker leaves.
fn end(shared: &Shared, st: &mut State, error: Option<RunError>) {
    st.over = true;
    if st.error.is_none() {
        st.error = error;
    }
    st.idle = 0;
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
fn spread(shared: &Arc<Shared>, st: &mut State) {
    let more = st.machine.as_ref().is_some_and(Machine::may_have_work);
    if !more {
        return;
    }
    if st.idle > 0 {
        st.idle -= 1;
        shared.ready.notify_one();
    } else if st.workers < st.max {
        st.workers += 1;
        tokio::spawn(worker(shared.clone()));
    }
}

async fn worker(shared: Arc<Shared>) {
    let mut done: Option<Done> = None;
    loop {
        let notified = shared.ready.notified();
        tokio::pin!(notified);
        let next = {
            let mut st = shared.lock();
            if st.over {
                leave(&shared, &mut st);
                return;
            }
            let Some(m) = st.machine.as_mut() else {
                // The run was dropped and took the machine back.
                leave(&shared, &mut st);
                return;
            };
            match step(&shared.control, m, done.take()) {
                Err(e) => {
                    end(&shared, &mut st, Some(e));
                    leave(&shared, &mut st);
                    return;
                }
                Ok(Some(job)) => {
                    spread(&shared, &mut st);
                    Some(job)
                }
                Ok(None) if m.in_flight == 0 => {
                    end(&shared, &mut st, None);
                    leave(&shared, &mut st);
                    return;
                }
                Ok(None) => {
                    // Registered before the lock is released: no wake-up is lost.
                    notified.as_mut().enable();
                    st.idle += 1;
                    None
                }
            }
        };
        match next {
            Some(job) => done = Some(exec::run_job(job).await),
            None => notified.await,
        }
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
        st.idle = 0;
        self.shared.ready.notify_waiters();
    }
}

/// Runs the machine with up to `max` workers until nothing is ready or
/// running, or an error stops it.
pub(crate) async fn drive(slot: &mut Machine, max: usize) -> Result<(), RunError> {
    let control = slot.control.clone();
    let machine = std::mem::replace(slot, Machine::vacant(slot));
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            machine: Some(machine),
            workers: 0,
            idle: 0,
            max: max.max(1),
            over: false,
            error: None,
        }),
        ready: Notify::new(),
        ended: Notify::new(),
        control: control.clone(),
    });
    let guard = Guard {
        slot,
        shared: shared.clone(),
    };
    {
        let mut st = shared.lock();
        st.workers = 1;
        tokio::spawn(worker(shared.clone()));
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
                if let Some(m) = st.machine.as_mut() {
                    if let Err(e) = apply_control(&control, m) {
                        end(&shared, &mut st, Some(e));
                        continue;
                    }
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
