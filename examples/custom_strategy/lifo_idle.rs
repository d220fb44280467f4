//! `lifo-idle`: a pool that hands each job to the worker that went idle last.
//!
//! * **Data structure**: one lock over a stack of idle workers, a one-job
//!   slot per worker and an overflow FIFO; a condition variable per worker.
//! * **Dispatch**: pop the most recently idle worker, put the job in its
//!   slot and wake that worker alone; when no worker is idle, queue the job.
//! * **Worker loop**: take the job in my slot, else the oldest queued one,
//!   else push myself onto the idle stack and sleep on my own condvar.
//! * **Shutdown**: mark the pool closed and wake every worker; a worker exits
//!   only when its slot and the queue are empty, so accepted jobs still run.
//!
//! Why it differs from `mutex-queue`: there a push wakes whichever waiter the
//! condvar picks. Here the worker that slept the shortest is reused (its
//! stack and caches are warm), and under light load the same few threads do
//! all the work while the others stay asleep. Whether that pays is for
//! `compare` to measure.
//!
//! The crate's plumbing keeps the counters (`Counters`: accepted, running,
//! completed, panicked, threads alive) and names and joins the threads
//! (`spawn_worker`, `join_all`), so the stats read as every strategy's do.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use dispatchlab::dispatch::counters::Counters;
use dispatchlab::dispatch::worker::{join_all, spawn_worker};
use dispatchlab::dispatch::{DispatchStats, Dispatcher, Job, RejectReason, Rejected};

/// The strategy's name in the announce line, `/metrics` and thread names.
pub const NAME: &str = "lifo-idle";

/// A pool whose idle workers form a stack. See the module docs.
pub struct LifoIdle {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    /// One per worker, so that a dispatch wakes exactly the worker it chose.
    wake: Vec<Condvar>,
    counters: Counters,
}

struct State {
    /// Idle workers; the last one to go idle is on top.
    idle: Vec<usize>,
    /// A job handed to worker `i` and not yet taken.
    slots: Vec<Option<Job>>,
    /// Jobs that found no worker idle, oldest first.
    overflow: VecDeque<Job>,
    closed: bool,
}

impl LifoIdle {
    /// Starts `workers` threads (at least one), all idle.
    pub fn new(workers: usize) -> io::Result<Self> {
        if workers == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "lifo-idle needs --workers 1 or more",
            ));
        }
        let state = State {
            idle: Vec::with_capacity(workers),
            slots: (0..workers).map(|_| None).collect(),
            overflow: VecDeque::new(),
            closed: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: (0..workers).map(|_| Condvar::new()).collect(),
            counters: Counters::default(),
        });
        let pool = Self {
            shared,
            workers: Mutex::new(Vec::with_capacity(workers)),
        };
        for me in 0..workers {
            let shared = Arc::clone(&pool.shared);
            // On failure, dropping `pool` shuts down the workers started so far.
            let handle = spawn_worker(NAME, me, move || shared.work(me))?;
            lock(&pool.workers).push(handle);
        }
        Ok(pool)
    }
}

impl Shared {
    /// The worker loop: run what I am given, until closed and empty.
    fn work(&self, me: usize) {
        let _alive = self.counters.thread_alive();
        while let Some(job) = self.next_job(me) {
            self.counters.run(job);
        }
    }

    fn next_job(&self, me: usize) -> Option<Job> {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.slots[me].take() {
                return Some(job);
            }
            if let Some(job) = state.overflow.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            // Still on the stack after a spurious wake-up: do not push twice.
            if !state.idle.contains(&me) {
                state.idle.push(me);
            }
            state = self.wake[me].wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Dispatcher for LifoIdle {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        let mut state = lock(&self.shared.state);
        if state.closed {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        }
        self.shared.counters.accepted();
        match state.idle.pop() {
            Some(worker) => {
                state.slots[worker] = Some(job);
                drop(state);
                self.shared.wake[worker].notify_one();
            }
            None => state.overflow.push_back(job),
        }
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        self.shared.counters.snapshot()
    }

    fn shutdown(&self) {
        lock(&self.shared.state).closed = true;
        for wake in &self.shared.wake {
            wake.notify_one(); // each condvar has one sleeper at most
        }
        // Joining under the lock makes a second caller wait for the first.
        join_all(NAME, lock(&self.workers).drain(..));
    }
}

impl Drop for LifoIdle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for LifoIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LifoIdle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Jobs run outside the locks, so a poisoned lock can only come from a bug in
/// the few lines above; the data is still consistent, so carry on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
