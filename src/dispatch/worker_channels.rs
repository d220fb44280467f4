//! `worker-channels`: every worker owns a channel; the dispatcher picks the
//! worker.
//!
//! This is the design of many actor systems and of "one queue per core"
//! servers: there is no queue that every worker takes from, so workers never
//! contend with each other for jobs; the dispatcher alone decides where a job
//! goes.
//!
//! * **Data structure**: one unbounded `crossbeam_channel` per worker. The
//!   dispatcher holds the senders; worker `i` holds receiver `i`. With
//!   [`Pick::LeastLoaded`] each worker also has a load counter (jobs sent to it
//!   and not yet finished).
//! * **Dispatch**: pick a worker, then send the job on its channel.
//!   [`Pick::RoundRobin`] costs one atomic increment (`next % workers`);
//!   [`Pick::LeastLoaded`] reads every worker's load counter and sends to the
//!   smallest (the first one on ties), then increments it.
//! * **Worker loop**: receive from its own channel, run the job, decrement its
//!   load counter; repeat until the channel is disconnected *and* empty.
//! * **Shutdown**: drop the senders (under a write lock, so no dispatch is
//!   half-way through a send). Each worker drains what is already in its
//!   channel, sees the disconnection and exits; then they are joined.
//!
//! **Head-of-line blocking.** A job waits for the worker it was sent to, even
//! when other workers are idle: with round-robin, a job that lands behind a
//! slow job (a `/sleep`, a long connection) waits for it, while the worker
//! next door has nothing to do. Least-loaded avoids most of that at the price
//! of a scan per dispatch, but it only knows counts, not durations: two jobs
//! queued behind a long job count the same as two short ones. Nothing moves a
//! job once it is sent: that is what `work-stealing` adds.
//!
//! **Cold workers.** On an idle pool, round-robin sends each job to the worker
//! that has been parked the longest, not the one that just finished, so each
//! job pays a full wake-up of a cold thread; least-loaded picks the first idle
//! worker every time and keeps it warm. `benches/dispatch.rs` (`round_trip`)
//! measures the difference; the figures belong in `docs/findings.md`.
//!
//! Dispatch takes the read side of a `RwLock` (one atomic operation when
//! uncontended; dispatchers do not exclude each other), so that shutdown can
//! drop the senders from `&self`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock};

use super::counters::Counters;
use super::worker::{join_all, spawn_worker};
use super::{DispatchStats, Dispatcher, Job, Pick, RejectReason, Rejected};

const NAME: &str = "worker-channels";

/// A pool of workers, each with its own channel. See the [module docs](self).
#[derive(Debug)]
pub struct WorkerChannels {
    /// One sender per worker; `None` once shut down.
    senders: RwLock<Option<Vec<Sender<Job>>>>,
    shared: Arc<Shared>,
    /// Round-robin cursor.
    next: AtomicUsize,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    counters: Counters,
    /// Per worker: jobs sent and not yet finished. Kept only for
    /// [`Pick::LeastLoaded`], so that round-robin stays one increment.
    loads: Option<Vec<AtomicUsize>>,
}

impl WorkerChannels {
    /// Starts `workers` threads, each waiting on its own empty channel.
    pub fn new(workers: usize, pick: Pick) -> io::Result<Self> {
        let loads = (pick == Pick::LeastLoaded).then(|| (0..workers).map(|_| AtomicUsize::new(0)).collect());
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            loads,
        });
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let (sender, receiver) = crossbeam_channel::unbounded();
            let worker_shared = Arc::clone(&shared);
            match spawn_worker(NAME, index, move || worker_shared.work(index, receiver)) {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    // Disconnect the workers already started, then wait for them.
                    drop(senders);
                    join_all(NAME, handles);
                    return Err(err);
                }
            }
            senders.push(sender);
        }
        Ok(Self {
            senders: RwLock::new(Some(senders)),
            shared,
            next: AtomicUsize::new(0),
            workers: Mutex::new(handles),
        })
    }

    /// The worker the next job goes to.
    fn pick_worker(&self, workers: usize) -> usize {
        match &self.shared.loads {
            Some(loads) => least_loaded(loads),
            None => self.next.fetch_add(1, Relaxed) % workers,
        }
    }
}

/// The index of the smallest load; the first one on ties.
fn least_loaded(loads: &[AtomicUsize]) -> usize {
    loads
        .iter()
        .enumerate()
        .min_by_key(|(_, load)| load.load(Relaxed))
        .map_or(0, |(index, _)| index)
}

impl Shared {
    /// The worker loop: run what arrives on our channel until it is
    /// disconnected and empty.
    fn work(&self, index: usize, jobs: Receiver<Job>) {
        let _alive = self.counters.thread_alive();
        for job in jobs {
            self.counters.run(job);
            if let Some(loads) = &self.loads {
                loads[index].fetch_sub(1, Relaxed);
            }
        }
    }
}

impl Dispatcher for WorkerChannels {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        let senders = self.senders.read();
        let Some(senders) = senders.as_ref() else {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        };
        let index = self.pick_worker(senders.len());
        if let Some(loads) = &self.shared.loads {
            loads[index].fetch_add(1, Relaxed);
        }
        self.shared.counters.accepted();
        // The receiver lives as long as its worker, and the worker lives until
        // the senders are dropped, which needs the write lock we exclude.
        senders[index]
            .send(job)
            .expect("a worker's receiver outlives the senders");
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        self.shared.counters.snapshot()
    }

    fn shutdown(&self) {
        // Dropping the senders disconnects every channel; workers drain theirs.
        drop(self.senders.write().take());
        // Joining under the lock makes a second caller wait for the first.
        let mut workers = self.workers.lock();
        join_all(NAME, workers.drain(..));
    }
}

impl Drop for WorkerChannels {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(30);

    /// Dispatches a job that holds its worker until `release` is dropped or
    /// sent to, and waits until it has started.
    fn hold_a_worker(pool: &WorkerChannels) -> mpsc::Sender<()> {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        pool.dispatch(Box::new(move || {
            started_tx.send(()).expect("test waits for the start");
            let _ = release_rx.recv_timeout(PATIENCE);
        }))
        .expect("dispatch");
        started_rx.recv_timeout(PATIENCE).expect("the holding job started");
        release_tx
    }

    /// Dispatches `count` jobs that report the name of the thread they ran on.
    fn report_threads(pool: &WorkerChannels, count: usize) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        for _ in 0..count {
            let tx = tx.clone();
            pool.dispatch(Box::new(move || {
                let name = thread::current().name().unwrap_or_default().to_owned();
                let _ = tx.send(name);
            }))
            .expect("dispatch");
        }
        rx
    }

    #[test]
    fn least_loaded_sends_each_job_to_the_idle_worker() {
        let pool = WorkerChannels::new(2, Pick::LeastLoaded).expect("build");
        let release = hold_a_worker(&pool); // worker 0: the first pick on a tie
        let loads = pool.shared.loads.as_ref().expect("least-loaded keeps loads");
        for _ in 0..10 {
            // One at a time, so that the loads are 1 (held) and 0 (idle).
            let names = report_threads(&pool, 1);
            let name = names.recv_timeout(PATIENCE).expect("a job past the busy worker");
            assert_eq!(name, "dispatchlab-worker-channels-1");
            let deadline = std::time::Instant::now() + PATIENCE;
            while loads[1].load(Relaxed) != 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "worker 1 never counted its job out"
                );
                thread::yield_now();
            }
        }
        drop(release);
        pool.shutdown();
        assert_eq!(pool.stats().completed, 11);
    }

    #[test]
    fn round_robin_queues_jobs_behind_a_busy_worker() {
        let pool = WorkerChannels::new(2, Pick::RoundRobin).expect("build");
        let release = hold_a_worker(&pool); // worker 0
        let names = report_threads(&pool, 10); // 1, 0, 1, 0, ...
        for _ in 0..5 {
            let name = names.recv_timeout(PATIENCE).expect("the idle worker's share");
            assert_eq!(name, "dispatchlab-worker-channels-1");
        }
        // The other five wait behind the held job although worker 1 is idle.
        assert!(names.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(pool.stats().queued, 5);
        drop(release);
        for _ in 0..5 {
            let name = names.recv_timeout(PATIENCE).expect("released");
            assert_eq!(name, "dispatchlab-worker-channels-0");
        }
        pool.shutdown();
    }

    #[test]
    fn least_loaded_picks_the_first_minimum() {
        let loads: Vec<AtomicUsize> = [3, 1, 4, 1].into_iter().map(AtomicUsize::new).collect();
        assert_eq!(least_loaded(&loads), 1);
    }
}
