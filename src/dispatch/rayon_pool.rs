//! `rayon`: `rayon::ThreadPool::spawn` on a dedicated pool.
//!
//! rayon-core is a work-stealing scheduler built for fork-join parallelism:
//! each worker keeps a deque, pops its own work LIFO, steals from a random
//! sibling, then takes from the global injector; an idle worker yields for a
//! while (32 rounds) before it sleeps. Here it is used the way a server would
//! use it: fire-and-forget `spawn`, one job at a time, mostly from a thread
//! outside the pool (so every job enters through the injector).
//!
//! * **Data structure**: a `rayon::ThreadPool` of `workers` threads, built
//!   with names (`dispatchlab-rayon-<i>`) and start/exit handlers that keep a
//!   live-thread count; kept in a `RwLock<Option<_>>` so that shutdown can
//!   drop it from `&self`.
//! * **Dispatch**: take the read lock, count the job as accepted, `spawn` it
//!   wrapped in `Counters::run`. The wrapper matters: rayon *aborts the
//!   process* when a spawned closure panics and the pool has no panic handler,
//!   so the panic must be caught (and counted) inside the closure.
//! * **Worker loop**: rayon's own.
//! * **Shutdown**: take the pool out under the write lock (new jobs are
//!   refused from then on), wait until every accepted job has finished, drop
//!   the pool (rayon tells its threads to terminate), then wait until the exit
//!   handler has counted every thread out.
//!
//! `threads_alive` is the number of pool threads between rayon's start
//! handler and its exit handler: right after `new` returns it can still be
//! below `workers` while the threads start.
//!
//! The read lock costs one atomic operation per dispatch; dispatchers do not
//! exclude each other (rayon's injector is the shared point they contend on
//! anyway).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use parking_lot::{Condvar, Mutex, RwLock};
use rayon::{ThreadPool, ThreadPoolBuildError, ThreadPoolBuilder};

use super::counters::Counters;
use super::{DispatchStats, Dispatcher, Job, RejectReason, Rejected};

/// A dedicated rayon pool behind the [`Dispatcher`] trait. See the
/// [module docs](self).
#[derive(Debug)]
pub struct RayonPool {
    /// `None` once shut down.
    pool: RwLock<Option<ThreadPool>>,
    workers: u64,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    /// Set by shutdown; from then on every job that ends signals `changed`.
    closing: AtomicBool,
    threads: Mutex<Threads>,
    /// Signalled when a thread exits and, while closing, when a job ends.
    changed: Condvar,
}

/// Pool threads seen by rayon's start and exit handlers.
#[derive(Debug, Default)]
struct Threads {
    started: u64,
    exited: u64,
}

impl RayonPool {
    /// Builds a rayon pool of `workers` named threads.
    pub fn new(workers: usize) -> Result<Self, ThreadPoolBuildError> {
        let shared = Arc::new(Shared::default());
        let (started, exited) = (Arc::clone(&shared), Arc::clone(&shared));
        let pool = ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|index| format!("dispatchlab-rayon-{index}"))
            .start_handler(move |_| started.threads.lock().started += 1)
            .exit_handler(move |_| exited.thread_exited())
            .build()?;
        Ok(Self {
            pool: RwLock::new(Some(pool)),
            workers: workers as u64,
            shared,
        })
    }
}

impl Shared {
    /// The wrapper every job runs in: catch and count a panic, and, once
    /// shutdown waits for the last jobs, tell it that one more has ended.
    fn run(&self, job: Job) {
        self.counters.run(job);
        // `run` counted the job out with SeqCst before this SeqCst load:
        // either shutdown's wait sees the count, or we see `closing`.
        if self.closing.load(SeqCst) {
            let _threads = self.threads.lock();
            self.changed.notify_all();
        }
    }

    fn thread_exited(&self) {
        self.threads.lock().exited += 1;
        self.changed.notify_all();
    }

    /// Waits on `changed` until `done` holds; `done` is checked under the
    /// lock that every notifier takes, so no notification is missed.
    fn wait_until(&self, mut done: impl FnMut(&Threads) -> bool) {
        let mut threads = self.threads.lock();
        while !done(&threads) {
            self.changed.wait(&mut threads);
        }
    }
}

impl Dispatcher for RayonPool {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        let pool = self.pool.read();
        let Some(pool) = pool.as_ref() else {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        };
        self.shared.counters.accepted();
        let shared = Arc::clone(&self.shared);
        pool.spawn(move || shared.run(job));
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        let threads = self.shared.threads.lock();
        let alive = threads.started - threads.exited;
        drop(threads);
        self.shared.counters.snapshot_with_threads(alive)
    }

    fn shutdown(&self) {
        // Taking the pool out refuses new jobs; no dispatch is half-way
        // through a spawn once we hold the write lock.
        let pool = self.pool.write().take();
        self.shared.closing.store(true, SeqCst);
        self.shared.wait_until(|_| self.shared.counters.outstanding() == 0);
        drop(pool);
        self.shared.wait_until(|threads| threads.exited == self.workers);
    }
}

impl Drop for RayonPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_named_and_counted_out_after_shutdown() {
        let pool = RayonPool::new(2).expect("build");
        let (tx, rx) = std::sync::mpsc::channel();
        pool.dispatch(Box::new(move || {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        }))
        .expect("dispatch");
        let name = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("job ran");
        assert!(name.is_some_and(|name| name.starts_with("dispatchlab-rayon-")));
        pool.shutdown();
        assert_eq!(pool.stats().threads_alive, 0);
    }
}
