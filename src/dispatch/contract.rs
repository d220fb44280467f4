//! The contract every [`Dispatcher`] keeps, as checks a test calls.
//!
//! Each check builds its own dispatchers from a factory (`workers` in, a
//! fresh dispatcher out), drives them from real threads and panics with a
//! message that starts with `label` when the contract is broken:
//!
//! | check | what it holds the strategy to |
//! |---|---|
//! | [`exactly_once`] | jobs sent from several threads at once each run exactly once; the stats count them |
//! | [`panics_keep_capacity`] | panicking jobs are caught and counted; afterwards as many jobs as workers still run at the same time |
//! | [`shutdown_drains`] | shutdown runs every accepted job, then refuses more with the job given back; it is idempotent and leaves no thread |
//! | [`stats_add_up`] | while workers are held, queued + busy account for every job; afterwards they are all completed |
//! | [`idle_pool_wakes`] | a job given to an idle pool always runs (no lost wake-up) |
//! | [`fan_out_during_shutdown`] | jobs dispatched from jobs while shutdown runs: each accepted one runs once, the others come back |
//! | [`all`] | every check above, in that order |
//! | [`runs_on_caller`] | (not a check) whether the checks take the strategy for one that runs jobs on the caller |
//!
//! The crate runs them for each of its own strategies (`tests/dispatch_contract.rs`);
//! a strategy written elsewhere calls them from its own tests:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use dispatchlab::Dispatcher;
//! use dispatchlab::dispatch::{contract, mutex_queue::MutexQueue};
//!
//! let build = |workers| Arc::new(MutexQueue::new(workers).expect("start workers")) as Arc<dyn Dispatcher>;
//! contract::all("mutex-queue", build);
//! ```
//!
//! A strategy that runs jobs on the thread that dispatches them (as `inline`)
//! has no workers to hold or to lose; the checks find that out by running one
//! job on a fresh dispatcher and looking at which thread ran it, and then hold
//! it to what such a strategy can promise (every job finished when `dispatch`
//! returns).
//!
//! Every wait is bounded ([`PATIENCE`]), so a broken strategy fails a check
//! instead of hanging it. Stress sizes shrink tenfold when the `CI`
//! environment variable is set, where the machine is shared.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Dispatcher, Job, RejectReason, Rejected};

/// How long a check waits for something that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Every check, in the order of the table in the [module docs](self).
pub fn all(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    exactly_once(label, &factory);
    panics_keep_capacity(label, &factory);
    shutdown_drains(label, &factory);
    stats_add_up(label, &factory);
    idle_pool_wakes(label, &factory);
    fan_out_during_shutdown(label, &factory);
}

/// Four threads send 10,000 jobs (1,000 under CI) to a 4-worker dispatcher at
/// once; after shutdown each job has run exactly once and the stats say so.
pub fn exactly_once(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    const SENDERS: usize = 4;
    let jobs = scaled(10_000);
    let pool = factory(4);
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..jobs).map(|_| AtomicUsize::new(0)).collect());
    let start = std::sync::Barrier::new(SENDERS);
    thread::scope(|scope| {
        for sender in 0..SENDERS {
            let (pool, runs, start) = (&pool, &runs, &start);
            scope.spawn(move || {
                start.wait();
                for id in (sender..jobs).step_by(SENDERS) {
                    let runs = Arc::clone(runs);
                    pool.dispatch(Box::new(move || {
                        runs[id].fetch_add(1, Ordering::Relaxed);
                    }))
                    .unwrap_or_else(|rejected| panic!("{label} rejected job {id}: {rejected}"));
                }
            });
        }
    });
    pool.shutdown();
    let wrong: Vec<(usize, usize)> = runs
        .iter()
        .enumerate()
        .map(|(id, count)| (id, count.load(Ordering::Relaxed)))
        .filter(|&(_, count)| count != 1)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "{label}: jobs not run exactly once (id, runs): {wrong:?}"
    );
    let stats = pool.stats();
    assert_eq!(stats.completed, jobs as u64, "{label}: {stats:?}");
    assert_eq!(
        (stats.queued, stats.busy, stats.panicked),
        (0, 0, 0),
        "{label}: {stats:?}"
    );
}

/// Six jobs panic on a 2-worker dispatcher; all six are counted, and then two
/// jobs still run at the same time (they meet), so no worker was lost.
pub fn panics_keep_capacity(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    let workers = 2;
    let on_caller = runs_on_caller(label, &factory);
    let pool = factory(workers);
    for _ in 0..workers * 3 {
        dispatch(label, &*pool, Box::new(|| panic!("a job panics on purpose")));
    }
    if on_caller {
        // Every job ran on this thread; there are no workers to lose.
        dispatch(label, &*pool, Box::new(|| {}));
    } else {
        let meeting = Arc::new(Meeting::new(workers));
        for _ in 0..workers {
            let meeting = Arc::clone(&meeting);
            dispatch(label, &*pool, Box::new(move || meeting.arrive()));
        }
        let arrived = meeting.wait_for_all();
        assert_eq!(
            arrived, workers,
            "{label}: lost a worker to a panic: only {arrived} of {workers} jobs ran at the same time"
        );
    }
    wait_until(label, || pool.stats().panicked == (workers * 3) as u64);
    pool.shutdown();
}

/// 200 slow jobs are queued on 2 workers; shutdown runs all of them, then a
/// dispatch is refused as shut down with its job given back, and a second
/// shutdown leaves no thread alive.
pub fn shutdown_drains(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    let pool = factory(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let jobs = 200;
    for _ in 0..jobs {
        let ran = Arc::clone(&ran);
        dispatch(
            label,
            &*pool,
            Box::new(move || {
                thread::sleep(Duration::from_micros(200));
                ran.fetch_add(1, Ordering::Relaxed);
            }),
        );
    }
    pool.shutdown();
    assert_eq!(
        ran.load(Ordering::Relaxed),
        jobs,
        "{label}: shutdown dropped queued jobs"
    );
    let rejected = refused_after_shutdown(label, pool.dispatch(Box::new(|| {})));
    assert!(
        matches!(rejected.reason(), RejectReason::ShutDown),
        "{label}: {rejected}"
    );
    // The job comes back and can still be run by the caller.
    let flag = Arc::new(AtomicUsize::new(0));
    let flag_in_job = Arc::clone(&flag);
    let given_back = pool.dispatch(Box::new(move || {
        flag_in_job.fetch_add(1, Ordering::Relaxed);
    }));
    let job = refused_after_shutdown(label, given_back).into_job();
    job();
    assert_eq!(
        flag.load(Ordering::Relaxed),
        1,
        "{label}: the refused job is not the one given"
    );
    pool.shutdown(); // idempotent
    assert_eq!(pool.stats().threads_alive, 0, "{label}: threads left after shutdown");
}

/// Five jobs that block until released are given to 2 workers: while they are
/// held, at least one is busy and queued + busy is five; after release and
/// shutdown all five are completed. (A strategy that runs jobs on the caller
/// has nothing queued or running when `dispatch` returns: that is checked
/// instead.)
pub fn stats_add_up(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    let workers = 2;
    let jobs = workers + 3;
    if runs_on_caller(label, &factory) {
        let pool = factory(workers);
        for _ in 0..jobs {
            dispatch(label, &*pool, Box::new(|| {}));
        }
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.queued, stats.busy),
            (jobs as u64, 0, 0),
            "{label}: {stats:?}"
        );
        pool.shutdown();
        return;
    }
    let pool = factory(workers);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..jobs {
        let (release_rx, started) = (Arc::clone(&release_rx), Arc::clone(&started));
        let held = move || {
            started.fetch_add(1, Ordering::SeqCst);
            let _ = release_rx.lock().recv_timeout(PATIENCE);
        };
        dispatch(label, &*pool, Box::new(held));
    }
    wait_until(label, || started.load(Ordering::SeqCst) >= 1);
    let stats = pool.stats();
    assert!(stats.busy >= 1, "{label}: {stats:?}");
    assert_eq!(stats.queued + stats.busy, jobs as u64, "{label}: {stats:?}");
    assert!(stats.threads_alive >= 1, "{label}: {stats:?}");
    for _ in 0..jobs {
        release_tx.send(()).expect("the jobs hold the receiver");
    }
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.queued, stats.busy),
        (jobs as u64, 0, 0),
        "{label}: {stats:?}"
    );
}

/// One job is given to a 2-worker dispatcher and waited for, 2,000 times (200
/// under CI): every round finds the workers idle or just going idle, where a
/// lost wake-up would strand the job.
pub fn idle_pool_wakes(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    let rounds = scaled(2_000);
    let pool = factory(2);
    let (done_tx, done_rx) = mpsc::channel();
    for round in 0..rounds {
        let done_tx = done_tx.clone();
        dispatch(
            label,
            &*pool,
            Box::new(move || done_tx.send(round).expect("the check holds the receiver")),
        );
        assert_eq!(
            done_rx.recv_timeout(PATIENCE),
            Ok(round),
            "{label}: job of round {round} never ran"
        );
        if round % 5 == 0 {
            thread::yield_now();
        }
    }
    pool.shutdown();
}

/// Each fan-out job dispatches two children until this depth.
const FAN_OUT_DEPTH: u32 = 8;

/// Eight trees of jobs grow by dispatching two children from each job, and
/// shutdown is called while they grow: every job the dispatcher accepted ran
/// exactly once, every refused one came back as shut down, the stats count
/// the accepted ones and no thread is left.
pub fn fan_out_during_shutdown(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) {
    const ROOTS: usize = 8;
    let pool = factory(2);
    let tally = Arc::new(Tally::default());
    for _ in 0..ROOTS {
        tally.accepted.fetch_add(1, Ordering::SeqCst);
        let root = fan_out_job(Arc::clone(&pool), Arc::clone(&tally), 0);
        dispatch(label, &*pool, root);
    }
    // Shut down while the trees are still growing: children dispatched from
    // here on are refused and given back.
    pool.shutdown();
    let (accepted, ran) = (tally.accepted.load(Ordering::SeqCst), tally.ran.load(Ordering::SeqCst));
    assert_eq!(ran, accepted, "{label}: accepted jobs must run exactly once");
    let refused_wrongly = tally.refused_wrongly.load(Ordering::SeqCst);
    assert_eq!(
        refused_wrongly, 0,
        "{label}: children refused for a reason other than shutdown"
    );
    let stats = pool.stats();
    assert_eq!(stats.completed, accepted as u64, "{label}: {stats:?}");
    assert_eq!(stats.threads_alive, 0, "{label}: {stats:?}");
}

/// Counts of the fan-out check.
#[derive(Debug, Default)]
struct Tally {
    /// Jobs the dispatcher accepted (counted before dispatch, taken back on refusal).
    accepted: AtomicUsize,
    /// Jobs that ran.
    ran: AtomicUsize,
    /// Children refused for another reason than shutdown.
    refused_wrongly: AtomicUsize,
}

fn fan_out_job(pool: Arc<dyn Dispatcher>, tally: Arc<Tally>, depth: u32) -> Job {
    Box::new(move || {
        tally.ran.fetch_add(1, Ordering::SeqCst);
        if depth == FAN_OUT_DEPTH {
            return;
        }
        for _ in 0..2 {
            // Count first: the child may run before `dispatch` returns.
            tally.accepted.fetch_add(1, Ordering::SeqCst);
            let child = fan_out_job(Arc::clone(&pool), Arc::clone(&tally), depth + 1);
            if let Err(rejected) = pool.dispatch(child) {
                if !matches!(rejected.reason(), RejectReason::ShutDown) {
                    tally.refused_wrongly.fetch_add(1, Ordering::SeqCst);
                }
                tally.accepted.fetch_sub(1, Ordering::SeqCst);
            }
        }
    })
}

/// Dispatches a job the check expects to be accepted.
fn dispatch(label: &str, pool: &dyn Dispatcher, job: Job) {
    pool.dispatch(job)
        .unwrap_or_else(|rejected| panic!("{label}: {rejected}"));
}

/// The refusal of a dispatch made after shutdown.
fn refused_after_shutdown(label: &str, dispatched: Result<(), Rejected>) -> Rejected {
    match dispatched {
        Err(rejected) => rejected,
        Ok(()) => panic!("{label}: accepted a job after shutdown"),
    }
}

/// Whether the factory's dispatchers run jobs on the thread that dispatches
/// them, as the checks see it: one job on a fresh 1-worker dispatcher tells.
pub fn runs_on_caller(label: &str, factory: impl Fn(usize) -> Arc<dyn Dispatcher>) -> bool {
    let pool = factory(1);
    let (ran_on, ran_on_rx) = mpsc::channel();
    dispatch(
        label,
        &*pool,
        Box::new(move || {
            let _ = ran_on.send(thread::current().id());
        }),
    );
    let ran_on = ran_on_rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{label}: a job given to a fresh dispatcher never ran"));
    pool.shutdown();
    ran_on == thread::current().id()
}

/// A meeting point with a deadline: jobs [`arrive`](Self::arrive) and stay
/// until `expected` are there (or [`PATIENCE`] runs out), so that reaching the
/// count proves they ran at the same time.
#[derive(Debug)]
struct Meeting {
    arrived: Mutex<usize>,
    changed: Condvar,
    expected: usize,
}

impl Meeting {
    fn new(expected: usize) -> Self {
        Self {
            arrived: Mutex::new(0),
            changed: Condvar::new(),
            expected,
        }
    }

    fn arrive(&self) {
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        self.changed.notify_all();
        self.changed
            .wait_while_for(&mut arrived, |arrived| *arrived < self.expected, PATIENCE);
    }

    /// How many arrived before `expected` did or [`PATIENCE`] ran out.
    fn wait_for_all(&self) -> usize {
        let mut arrived = self.arrived.lock();
        self.changed
            .wait_while_for(&mut arrived, |arrived| *arrived < self.expected, PATIENCE);
        *arrived
    }
}

/// Stress sizes shrink under CI, where the machine is shared.
fn scaled(full: usize) -> usize {
    if std::env::var_os("CI").is_some() {
        full / 10
    } else {
        full
    }
}

fn wait_until(label: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{label}: condition not met in {PATIENCE:?}");
        thread::sleep(Duration::from_millis(1));
    }
}
