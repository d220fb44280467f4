//! `threadpool`: the [`threadpool`] crate's `ThreadPool::execute`.
//!
//! The crate is the Rust Book's pool grown up: one `std::sync::mpsc` channel
//! whose receiver sits behind a mutex that every worker locks to take a job.
//! It is here as the widely used off-the-shelf answer, measured as it is.
//!
//! * **Data structure**: a `threadpool::ThreadPool` (an `mpsc::Sender` and an
//!   `Arc` of shared state: the receiver behind a `Mutex`, job counts, a
//!   condvar for `join`), kept in a `RwLock<Option<_>>` so that shutdown can
//!   drop it from `&self`.
//! * **Dispatch**: take the read lock, count the job as accepted, `execute`
//!   it wrapped in `Counters::run` (so a panic is caught and counted, and
//!   the crate never has to replace a thread).
//! * **Worker loop** (the crate's): lock the receiver, `recv` a job, unlock,
//!   run it, repeat until the sender is dropped.
//! * **Shutdown**: take the pool out under the write lock (new jobs are
//!   refused from then on), `join()` (waits until queued and running jobs are
//!   done), drop it (the channel disconnects and the threads leave their
//!   loop), then wait until every thread has exited.
//!
//! **Sharing.** `threadpool::ThreadPool` is `Send + Sync` (its sender is a
//! `std::sync::mpsc::Sender`, `Sync` since Rust 1.72; a compile-time check
//! below keeps that honest), so dispatchers share it without a mutex: the
//! read lock costs one atomic operation per dispatch.
//!
//! **`threads_alive`.** The crate starts its threads itself and neither
//! names them one by one nor gives out join handles. At build time this
//! strategy sends one *registration* task per thread, each waiting at a
//! barrier, so every thread runs exactly one and registers a thread-local
//! guard; the guard is dropped when the thread exits. `threads_alive` is
//! therefore the number of pool threads that have started and not yet exited,
//! observed, not configured (the registration tasks are not counted as jobs).
//! All threads share the name `dispatchlab-threadpool`: the crate gives every
//! thread the same name.
//!
//! **Spawn failure.** The crate `unwrap`s `thread::Builder::spawn`, so when
//! the OS refuses a thread its `build()` panics. [`ThreadpoolCrate::new`]
//! catches that panic and reports it as an [`io::Error`]; the threads already
//! started see their channel disconnect and exit.

use std::cell::RefCell;
use std::io;
use std::panic;
use std::sync::{Arc, Barrier};

use parking_lot::{Condvar, Mutex, RwLock};
use threadpool::ThreadPool;

use super::counters::Counters;
use super::{DispatchStats, Dispatcher, Job, RejectReason, Rejected};

/// The `threadpool` crate behind the [`Dispatcher`] trait. See the
/// [module docs](self).
#[derive(Debug)]
pub struct ThreadpoolCrate {
    /// `None` once shut down.
    pool: RwLock<Option<ThreadPool>>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    /// Pool threads that registered and have not exited.
    live: Mutex<u64>,
    all_exited: Condvar,
}

// Dispatchers share the pool through `&self`; this fails to compile if the
// crate's `ThreadPool` ever stops being `Sync`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ThreadPool>();
};

thread_local! {
    /// Set on each pool thread by its registration task; dropped, and so
    /// counted out, when the thread exits.
    static REGISTERED: RefCell<Option<LiveThread>> = const { RefCell::new(None) };
}

/// Counts one pool thread as alive until it is dropped with the thread.
#[derive(Debug)]
struct LiveThread(Arc<Shared>);

impl Drop for LiveThread {
    fn drop(&mut self) {
        let mut live = self.0.live.lock();
        *live -= 1;
        self.0.all_exited.notify_all();
    }
}

impl ThreadpoolCrate {
    /// Starts a `threadpool::ThreadPool` of `workers` threads and waits until
    /// each has registered itself as alive.
    pub fn new(workers: usize) -> io::Result<Self> {
        let build = || {
            threadpool::Builder::new()
                .num_threads(workers)
                .thread_name("dispatchlab-threadpool".to_owned())
                .build()
        };
        let pool = panic::catch_unwind(build)
            .map_err(|_| io::Error::other("the threadpool crate could not spawn its threads"))?;
        let shared = Arc::new(Shared::default());
        register_threads(&pool, &shared, workers);
        Ok(Self {
            pool: RwLock::new(Some(pool)),
            shared,
        })
    }
}

/// Runs one registration task on each of the pool's `workers` threads: each
/// task waits at a barrier until all have started, so no thread takes two.
fn register_threads(pool: &ThreadPool, shared: &Arc<Shared>, workers: usize) {
    let all_started = Arc::new(Barrier::new(workers + 1));
    for _ in 0..workers {
        let (shared, all_started) = (Arc::clone(shared), Arc::clone(&all_started));
        pool.execute(move || {
            *shared.live.lock() += 1;
            REGISTERED.set(Some(LiveThread(shared)));
            all_started.wait();
        });
    }
    all_started.wait();
}

impl Shared {
    fn wait_until_threads_exited(&self) {
        let mut live = self.live.lock();
        while *live > 0 {
            self.all_exited.wait(&mut live);
        }
    }
}

impl Dispatcher for ThreadpoolCrate {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        let pool = self.pool.read();
        let Some(pool) = pool.as_ref() else {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        };
        self.shared.counters.accepted();
        let shared = Arc::clone(&self.shared);
        pool.execute(move || shared.counters.run(job));
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        self.shared.counters.snapshot_with_threads(*self.shared.live.lock())
    }

    fn shutdown(&self) {
        // Taking the pool out refuses new jobs; a second caller finds `None`
        // and waits for the threads like the first.
        let pool = self.pool.write().take();
        if let Some(pool) = pool {
            pool.join();
            drop(pool);
        }
        self.shared.wait_until_threads_exited();
    }
}

impl Drop for ThreadpoolCrate {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_is_counted_alive_from_the_start_and_out_after_shutdown() {
        let pool = ThreadpoolCrate::new(3).expect("build");
        assert_eq!(pool.stats().threads_alive, 3);
        assert_eq!(pool.stats().completed, 0, "registration tasks are not jobs");
        pool.shutdown();
        assert_eq!(pool.stats().threads_alive, 0);
    }
}
