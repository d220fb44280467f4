//! `work-stealing`: a global injector, a deque per worker, idle workers steal
//! and then park.
//!
//! This is the scheduler of tokio, rayon-core and Go's runtime, built here on
//! `crossbeam-deque`. The design notes (the sleep protocol, why these
//! choices, what was measured) are in `README.md` beside this file.
//!
//! * **Data structure**: one [`Injector`] (a lock-free FIFO every thread may
//!   push to), one FIFO [`Worker`] deque per worker thread (only its owner
//!   pushes and pops) and a [`Stealer`] for each of those deques (anyone may
//!   take from the front).
//! * **Dispatch**: from a thread that is not one of this pool's workers (the
//!   server's I/O thread: the common case) the job goes into the injector;
//!   from inside one of this pool's workers (a job that fans out) it goes onto
//!   that worker's own deque, with no shared write at all. A thread-local
//!   tells the two apart. Then, if some worker sleeps and none is searching,
//!   one sleeper is woken (see [`WakePolicy`]).
//! * **Worker loop** (crossbeam-deque's recommended one): pop the own deque;
//!   else *search*: take a batch from the injector (`steal_batch_and_pop`, so
//!   one visit feeds several jobs), else steal half of a sibling's deque,
//!   starting with the next sibling. A searching worker keeps looking,
//!   yielding between looks, for up to `idle_spin`
//!   ([`DispatchConfig::idle_spin`](super::DispatchConfig::idle_spin)); then
//!   it joins the sleepers, looks once more, and parks.
//! * **Shutdown**: set `closed` (dispatch refuses from then on, from any
//!   thread) and wake every sleeper. A worker exits when the pool is closed and
//!   no accepted job is left (queued anywhere or running); until then it keeps
//!   draining the injector and every deque. Whoever finishes the last job
//!   wakes the sleepers so that they exit too; then the workers are joined.
//!
//! Jobs are counted as accepted *before* `closed` is read (both `SeqCst`), so
//! a dispatch racing with shutdown is either refused or counted in the
//! outstanding jobs that the workers wait for: never pushed after the last
//! worker left.

mod sleep;

use std::cell::RefCell;
use std::io;
use std::iter;
use std::mem;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::Mutex;

use self::sleep::Sleep;
use super::counters::Counters;
use super::worker::{join_all, spawn_worker};
use super::{DispatchStats, Dispatcher, Job, RejectReason, Rejected, WakePolicy};

const NAME: &str = "work-stealing";

/// Tells pools apart in the thread-local below.
static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// On a worker thread: which pool it belongs to and its own deque.
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// A work-stealing pool. See the [module docs](self).
#[derive(Debug)]
pub struct WorkStealing {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    id: usize,
    injector: Injector<Job>,
    /// One per worker, in worker order.
    stealers: Vec<Stealer<Job>>,
    sleep: Sleep,
    idle_spin: Duration,
    closed: AtomicBool,
    counters: Counters,
}

/// What a worker thread keeps for itself.
struct WorkerState {
    index: usize,
    local: Rc<Worker<Job>>,
    /// Whether this worker is counted in [`Sleep`]'s searchers.
    searching: bool,
}

/// The thread-local record of a worker thread.
struct Current {
    pool: usize,
    local: Rc<Worker<Job>>,
}

/// Clears the thread-local record when the worker loop ends.
struct CurrentGuard;

impl WorkStealing {
    /// Starts `workers` threads that search for up to `idle_spin` before they
    /// park, with the default [`WakePolicy`].
    pub fn new(workers: usize, idle_spin: Duration) -> io::Result<Self> {
        Self::with_wake_policy(workers, idle_spin, WakePolicy::default())
    }

    /// Like [`new`](Self::new), with a chosen [`WakePolicy`] (for measuring
    /// the alternatives).
    pub fn with_wake_policy(workers: usize, idle_spin: Duration, wake: WakePolicy) -> io::Result<Self> {
        let deques: Vec<Worker<Job>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            injector: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            sleep: Sleep::new(workers, wake),
            idle_spin,
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let pool = Self {
            shared,
            workers: Mutex::new(Vec::with_capacity(workers)),
        };
        for (index, deque) in deques.into_iter().enumerate() {
            let shared = Arc::clone(&pool.shared);
            // On failure, dropping `pool` shuts down the workers already started.
            let handle = spawn_worker(NAME, index, move || shared.work(index, deque))?;
            pool.workers.lock().push(handle);
        }
        Ok(pool)
    }
}

impl Shared {
    /// The worker loop: run jobs until the pool is closed and drained.
    fn work(&self, index: usize, deque: Worker<Job>) {
        let _alive = self.counters.thread_alive();
        let local = Rc::new(deque);
        let _current = Current::enter(self.id, Rc::clone(&local));
        let mut me = WorkerState {
            index,
            local,
            searching: false,
        };
        while let Some(job) = self.next_job(&mut me) {
            self.counters.run(job);
            self.wake_all_if_drained();
        }
    }

    /// The next job for this worker: its own deque, else a search, else sleep
    /// and try again. `None` once the pool is closed and drained.
    fn next_job(&self, me: &mut WorkerState) -> Option<Job> {
        loop {
            let job = me.local.pop().or_else(|| self.search(me));
            self.stop_searching(me, job.is_some());
            if job.is_some() {
                return job;
            }
            if self.drained() {
                return None;
            }
            self.sleep(me);
        }
    }

    /// Looks in the injector and the siblings' deques: once if this worker
    /// may not search (enough others do), else until it finds a job or
    /// `idle_spin` has passed, yielding between looks.
    fn search(&self, me: &mut WorkerState) -> Option<Job> {
        if !me.searching {
            me.searching = self.sleep.try_start_searching();
        }
        let deadline = (me.searching && !self.idle_spin.is_zero()).then(|| Instant::now() + self.idle_spin);
        loop {
            if let Some(job) = self.steal(me) {
                return Some(job);
            }
            match deadline {
                Some(deadline) if Instant::now() < deadline => thread::yield_now(),
                _ => return None,
            }
        }
    }

    /// One look: a batch from the injector, else half of a sibling's deque,
    /// starting with the next sibling (crossbeam-deque's recommended order).
    /// `Retry` means another thread raced us on that queue: look again.
    fn steal(&self, me: &WorkerState) -> Option<Job> {
        let workers = self.stealers.len();
        let siblings = (1..workers).map(|offset| &self.stealers[(me.index + offset) % workers]);
        iter::repeat_with(|| {
            self.injector.steal_batch_and_pop(&me.local).or_else(|| {
                siblings
                    .clone()
                    .map(|sibling| sibling.steal_batch_and_pop(&me.local))
                    .collect()
            })
        })
        .find(|steal| !steal.is_retry())
        .and_then(Steal::success)
    }

    /// Leaves the searchers. A producer that saw us searching woke nobody, so
    /// if we were the last searcher and found a job while more work is
    /// visible, a sleeper is woken for it (tokio's hand-off). If we found
    /// nothing, [`sleep`](Self::sleep) looks again after joining the sleepers.
    fn stop_searching(&self, me: &mut WorkerState, found: bool) {
        if mem::take(&mut me.searching) && self.sleep.stop_searching() && found && self.work_visible() {
            self.sleep.notify();
        }
    }

    /// Joins the sleepers, looks at every queue once more, and parks unless
    /// work (or the end) showed up meanwhile.
    fn sleep(&self, me: &mut WorkerState) {
        self.sleep.prepare(me.index);
        if (self.work_visible() || self.drained()) && self.sleep.cancel(me.index) {
            return;
        }
        self.sleep.park(me.index);
        me.searching = true; // whoever woke us counted us as searching
    }

    fn work_visible(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|stealer| !stealer.is_empty())
    }

    /// Closed, and every accepted job has finished: workers may exit.
    fn drained(&self) -> bool {
        self.closed.load(Ordering::SeqCst) && self.counters.outstanding() == 0
    }

    /// Called by whoever may have finished (or refused) the last job: the
    /// sleepers must wake to see that they can exit.
    fn wake_all_if_drained(&self) {
        if self.drained() {
            self.sleep.wake_all();
        }
    }

    /// Onto the calling worker's own deque if it is one of ours, else into
    /// the injector.
    fn push(&self, job: Job) {
        if let Err(job) = Current::push_local(self.id, job) {
            self.injector.push(job);
        }
    }
}

impl Current {
    fn enter(pool: usize, local: Rc<Worker<Job>>) -> CurrentGuard {
        CURRENT.set(Some(Current { pool, local }));
        CurrentGuard
    }

    /// Pushes onto the current thread's deque if it is a worker of `pool`;
    /// gives the job back otherwise.
    fn push_local(pool: usize, job: Job) -> Result<(), Job> {
        let mut job = Some(job);
        // `try_with` fails only while the thread-locals are being destroyed:
        // not a worker of ours then, so the job goes to the injector.
        let _ = CURRENT.try_with(|current| {
            if let Some(current) = current.borrow().as_ref().filter(|current| current.pool == pool) {
                current.local.push(job.take().expect("the job is still here"));
            }
        });
        job.map_or(Ok(()), Err)
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(RefCell::take);
    }
}

impl Dispatcher for WorkStealing {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        let shared = &self.shared;
        shared.counters.accepted();
        if shared.closed.load(Ordering::SeqCst) {
            shared.counters.unaccepted();
            shared.wake_all_if_drained();
            return Err(Rejected::new(job, RejectReason::ShutDown));
        }
        shared.push(job);
        shared.sleep.notify();
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        self.shared.counters.snapshot()
    }

    fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.sleep.wake_all();
        // Joining under the lock makes a second caller wait for the first.
        let mut workers = self.workers.lock();
        join_all(NAME, workers.drain(..));
    }
}

impl Drop for WorkStealing {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(30);

    /// Stress sizes shrink under CI, where the machine is shared.
    fn scaled(full: usize) -> usize {
        if std::env::var_os("CI").is_some() {
            full / 10
        } else {
            full
        }
    }

    fn pool(workers: usize, idle_spin: Duration) -> Arc<WorkStealing> {
        Arc::new(WorkStealing::new(workers, idle_spin).expect("build"))
    }

    fn thread_name() -> String {
        thread::current().name().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_job_dispatched_from_a_worker_goes_onto_its_own_deque() {
        let pool = pool(1, Duration::ZERO);
        let (tx, rx) = mpsc::channel();
        let inner = Arc::clone(&pool);
        pool.dispatch(Box::new(move || {
            let child_tx = tx.clone();
            inner
                .dispatch(Box::new(move || child_tx.send("child ran").expect("test waits")))
                .expect("dispatch from a worker");
            // One worker, busy here: nobody can have taken the child yet.
            let placed = CURRENT.with_borrow(|current| current.as_ref().map(|current| current.local.len()));
            tx.send(if placed == Some(1) && inner.shared.injector.is_empty() {
                "child on the local deque"
            } else {
                "child elsewhere"
            })
            .expect("test waits");
        }))
        .expect("dispatch");
        assert_eq!(rx.recv_timeout(PATIENCE), Ok("child on the local deque"));
        assert_eq!(rx.recv_timeout(PATIENCE), Ok("child ran"));
        pool.shutdown();
    }

    #[test]
    fn an_idle_worker_steals_from_a_busy_siblings_deque() {
        let pool = pool(2, Duration::ZERO);
        let (tx, rx) = mpsc::channel();
        let inner = Arc::clone(&pool);
        pool.dispatch(Box::new(move || {
            let (child_tx, child_rx) = mpsc::channel();
            inner
                .dispatch(Box::new(move || child_tx.send(thread_name()).expect("parent waits")))
                .expect("dispatch from a worker");
            // The child sits on this worker's deque and this worker is held
            // here, so only the sibling can run it: by stealing.
            let child = child_rx.recv_timeout(PATIENCE);
            tx.send((thread_name(), child)).expect("test waits");
        }))
        .expect("dispatch");
        let (parent, child) = rx.recv_timeout(PATIENCE).expect("parent finished");
        let child = child.expect("the child was stolen while its worker was busy");
        assert_ne!(parent, child);
        pool.shutdown();
        assert_eq!(pool.stats().completed, 2);
    }

    /// Dispatch, then wait for the job, many times, with gaps of varying
    /// length so that dispatches land just as workers go idle. A lost
    /// wake-up shows as a job that never runs (bounded by `PATIENCE`).
    fn dispatch_then_wait(pool: &Arc<WorkStealing>, rounds: usize, fan_out: bool) {
        let (tx, rx) = mpsc::channel();
        for round in 0..rounds {
            let tx = tx.clone();
            let inner = Arc::clone(pool);
            let job: Job = if fan_out {
                Box::new(move || {
                    let child: Job = Box::new(move || tx.send(round).expect("test waits"));
                    if let Err(rejected) = inner.dispatch(child) {
                        rejected.into_job()();
                    }
                })
            } else {
                Box::new(move || tx.send(round).expect("test waits"))
            };
            pool.dispatch(job).expect("dispatch");
            assert_eq!(rx.recv_timeout(PATIENCE), Ok(round), "lost wake-up in round {round}");
            let gap = Instant::now() + Duration::from_micros((round % 7) as u64 * 3);
            while Instant::now() < gap {
                std::hint::spin_loop();
            }
        }
    }

    #[test]
    fn no_wake_up_is_lost_when_workers_just_went_idle() {
        for idle_spin in [Duration::ZERO, Duration::from_micros(5)] {
            let pool = pool(2, idle_spin);
            dispatch_then_wait(&pool, scaled(3_000), false);
            dispatch_then_wait(&pool, scaled(1_000), true);
            pool.shutdown();
        }
    }

    #[test]
    fn no_wake_up_is_lost_with_several_dispatchers() {
        let pool = pool(3, Duration::ZERO);
        let dispatchers: Vec<_> = (0..3)
            .map(|_| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || dispatch_then_wait(&pool, scaled(1_000), false))
            })
            .collect();
        for dispatcher in dispatchers {
            dispatcher.join().expect("dispatcher");
        }
        pool.shutdown();
    }

    #[test]
    fn a_worker_of_another_pool_dispatches_through_the_injector() {
        let (a, b) = (pool(1, Duration::ZERO), pool(1, Duration::ZERO));
        let (tx, rx) = mpsc::channel();
        let b_inner = Arc::clone(&b);
        a.dispatch(Box::new(move || {
            b_inner
                .dispatch(Box::new(move || tx.send(thread_name()).expect("test waits")))
                .expect("dispatch to the other pool");
        }))
        .expect("dispatch");
        let ran_on = rx.recv_timeout(PATIENCE).expect("job on the other pool ran");
        assert_eq!(ran_on, "dispatchlab-work-stealing-0");
        a.shutdown();
        b.shutdown();
        assert_eq!((a.stats().completed, b.stats().completed), (1, 1));
    }

    #[test]
    fn wake_policies_all_run_every_job() {
        for wake in [WakePolicy::OneIfNoneSearching, WakePolicy::OnePerJob, WakePolicy::All] {
            let pool = Arc::new(WorkStealing::with_wake_policy(3, Duration::ZERO, wake).expect("build"));
            dispatch_then_wait(&pool, scaled(500), false);
            let jobs = scaled(5_000);
            for _ in 0..jobs {
                pool.dispatch(Box::new(|| {})).expect("dispatch");
            }
            pool.shutdown();
            assert_eq!(pool.stats().completed, (scaled(500) + jobs) as u64, "{wake:?}");
        }
    }
}
