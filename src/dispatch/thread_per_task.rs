//! `thread-per-task`: a new OS thread for every job.
//!
//! The simplest strategy and the one the Rust Book starts from. Nothing is
//! queued, so nothing waits behind a slow job; the price is a thread creation
//! and exit per job (a `clone`, a stack mapping, a join; `docs/findings.md`
//! has what that costs per request) and a stack per concurrent job.
//!
//! Threads are created with [`std::thread::Builder`], so when the OS refuses
//! (RLIMIT_NPROC, memory) the job comes back as [`RejectReason::SpawnFailed`]
//! instead of a panic; an optional cap of our own rejects with
//! [`RejectReason::AtCapacity`] before asking the OS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

use super::counters::Counters;
use super::worker::spawn_worker;
use super::{DispatchStats, Dispatcher, Job, RejectReason, Rejected};

/// Spawns a thread per job. See the [module docs](self).
#[derive(Debug)]
pub struct ThreadPerTask {
    shared: Arc<Shared>,
    max_threads: Option<usize>,
    closed: AtomicBool,
    /// Numbers the threads' names, so that `top -H` tells them apart.
    spawned: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    /// Live job threads; shutdown waits on `all_done` until it reaches zero.
    live: Mutex<usize>,
    all_done: Condvar,
}

impl ThreadPerTask {
    /// A strategy that keeps at most `max_threads` job threads alive (no cap
    /// of its own when `None`).
    pub fn new(max_threads: Option<usize>) -> Self {
        Self {
            shared: Arc::new(Shared::default()),
            max_threads,
            closed: AtomicBool::new(false),
            spawned: AtomicUsize::new(0),
        }
    }

    /// Reserves a slot for one more live thread, or says why not.
    fn reserve_thread(&self) -> Result<(), RejectReason> {
        let mut live = self.shared.live.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(RejectReason::ShutDown);
        }
        if let Some(limit) = self.max_threads.filter(|&limit| *live >= limit) {
            return Err(RejectReason::AtCapacity { limit });
        }
        *live += 1;
        Ok(())
    }
}

impl Shared {
    fn release_thread(&self) {
        let mut live = self.live.lock();
        *live -= 1;
        if *live == 0 {
            self.all_done.notify_all();
        }
    }
}

impl Dispatcher for ThreadPerTask {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        if let Err(reason) = self.reserve_thread() {
            return Err(Rejected::new(job, reason));
        }
        self.shared.counters.accepted();
        // The job travels through a slot so that it can be taken back if the
        // OS refuses the thread (the closure is dropped unrun in that case).
        let slot = Arc::new(Mutex::new(Some(job)));
        let shared = Arc::clone(&self.shared);
        let thread_slot = Arc::clone(&slot);
        let index = self.spawned.fetch_add(1, Ordering::Relaxed);
        let spawned = spawn_worker("thread-per-task", index, move || {
            let alive = shared.counters.thread_alive();
            if let Some(job) = thread_slot.lock().take() {
                shared.counters.run(job);
            }
            drop(alive);
            shared.release_thread();
        });
        match spawned {
            Ok(_detached) => Ok(()),
            Err(err) => {
                self.shared.counters.unaccepted();
                self.shared.release_thread();
                match slot.lock().take() {
                    Some(job) => Err(Rejected::new(job, RejectReason::SpawnFailed(err))),
                    None => unreachable!("a thread that failed to spawn cannot have taken its job"),
                }
            }
        }
    }

    fn stats(&self) -> DispatchStats {
        self.shared.counters.snapshot()
    }

    fn shutdown(&self) {
        let mut live = self.shared.live.lock();
        self.closed.store(true, Ordering::Release);
        while *live > 0 {
            self.shared.all_done.wait(&mut live);
        }
    }
}

impl Drop for ThreadPerTask {
    fn drop(&mut self) {
        self.shutdown();
    }
}
