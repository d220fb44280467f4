//! `mutex-queue`: one FIFO behind a lock, N workers waiting on it.
//!
//! This is the design of the Rust Book's final-chapter `ThreadPool`. The Book
//! spells the queue as an `mpsc::Receiver` inside `Arc<Mutex<_>>`; here the
//! queue is an explicit `VecDeque` with a condition variable, which is the same
//! design with its parts visible (so that the queue depth can be read).
//!
//! * **Data structure**: `Mutex<VecDeque<Job>>` plus a `Condvar`.
//! * **Dispatch**: lock, push to the back, unlock, wake one waiting worker.
//! * **Worker loop**: lock, pop from the front or wait on the condvar, unlock,
//!   run the job.
//! * **Shutdown**: mark the queue closed and wake everyone; a worker exits only
//!   when the queue is closed *and* empty, so accepted jobs still run.
//!
//! Every dispatch and every pop takes the same lock, and a worker that finds
//! the queue empty sleeps at once: each job given to an idle pool costs a
//! wake-up.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::counters::Counters;
use super::worker::{join_all, spawn_worker};
use super::{DispatchStats, Dispatcher, Job, RejectReason, Rejected};

/// A pool of workers sharing one locked FIFO. See the [module docs](self).
#[derive(Debug)]
pub struct MutexQueue {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    counters: Counters,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("jobs", &self.jobs.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl MutexQueue {
    /// Starts `workers` threads waiting on an empty queue.
    pub fn new(workers: usize) -> io::Result<Self> {
        let pool = Self {
            shared: Arc::new(Shared::default()),
            workers: Mutex::new(Vec::with_capacity(workers)),
        };
        for index in 0..workers {
            let shared = Arc::clone(&pool.shared);
            let handle = spawn_worker("mutex-queue", index, move || shared.work())?;
            pool.workers.lock().push(handle);
        }
        Ok(pool)
    }
}

impl Shared {
    /// The worker loop: take the oldest job, run it, repeat until closed and
    /// empty.
    fn work(&self) {
        let _alive = self.counters.thread_alive();
        while let Some(job) = self.next_job() {
            self.counters.run(job);
        }
    }

    fn next_job(&self) -> Option<Job> {
        let mut queue = self.queue.lock();
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            self.job_ready.wait(&mut queue);
        }
    }
}

impl Dispatcher for MutexQueue {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        let mut queue = self.shared.queue.lock();
        if queue.closed {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        }
        self.shared.counters.accepted();
        queue.jobs.push_back(job);
        drop(queue);
        self.shared.job_ready.notify_one();
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        self.shared.counters.snapshot()
    }

    fn shutdown(&self) {
        self.shared.queue.lock().closed = true;
        self.shared.job_ready.notify_all();
        // Joining under the lock makes a second caller wait for the first.
        let mut workers = self.workers.lock();
        join_all("mutex-queue", workers.drain(..));
    }
}

impl Drop for MutexQueue {
    fn drop(&mut self) {
        self.shutdown();
    }
}
