//! The contract every strategy keeps, checked for each compiled-in strategy:
//! each job runs exactly once, a panicking job does not cost capacity,
//! shutdown drains what was accepted, and stats add up.
//!
//! Each test runs over `Strategy::ALL` and names the strategy on failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use dispatchlab::dispatch::{DispatchConfig, RejectReason};
use dispatchlab::{Dispatcher, Strategy};

/// Stress sizes shrink under CI, where the machine is shared.
fn scaled(full: usize) -> usize {
    if std::env::var_os("CI").is_some() {
        full / 10
    } else {
        full
    }
}

fn build(strategy: Strategy, workers: usize) -> Arc<dyn Dispatcher> {
    strategy
        .build(&DispatchConfig::with_workers(workers))
        .unwrap_or_else(|err| panic!("{strategy}: {err}"))
}

/// Generous bound for waits that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn every_job_from_several_threads_runs_exactly_once() {
    const SENDERS: usize = 4;
    let jobs = scaled(10_000);
    for &strategy in Strategy::ALL {
        let pool = build(strategy, 4);
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..jobs).map(|_| AtomicUsize::new(0)).collect());
        let start = Arc::new(Barrier::new(SENDERS));
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let (pool, runs, start) = (Arc::clone(&pool), Arc::clone(&runs), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for id in (sender..jobs).step_by(SENDERS) {
                        let runs = Arc::clone(&runs);
                        pool.dispatch(Box::new(move || {
                            runs[id].fetch_add(1, Ordering::Relaxed);
                        }))
                        .unwrap_or_else(|rejected| panic!("{strategy} rejected job {id}: {rejected}"));
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().expect("sender thread");
        }
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
            "{strategy}: jobs not run exactly once (id, runs): {wrong:?}"
        );
        let stats = pool.stats();
        assert_eq!(stats.completed, jobs as u64, "{strategy}: {stats:?}");
        assert_eq!(
            (stats.queued, stats.busy, stats.panicked),
            (0, 0, 0),
            "{strategy}: {stats:?}"
        );
    }
}

#[test]
fn a_panicking_job_does_not_reduce_capacity() {
    let workers = 2;
    for &strategy in Strategy::ALL {
        let pool = build(strategy, workers);
        for _ in 0..workers * 3 {
            pool.dispatch(Box::new(|| panic!("a job panics on purpose")))
                .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
        }
        if strategy.runs_on_caller() {
            // Inline ran every job on this thread; it has no workers to lose.
            pool.dispatch(Box::new(|| {}))
                .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
        } else {
            // After more panics than workers, as many jobs as there are
            // workers must still run at the same time: they meet at a barrier.
            let meet = Arc::new(Barrier::new(workers + 1));
            let (done_tx, done_rx) = mpsc::channel();
            for _ in 0..workers {
                let (meet, done_tx) = (Arc::clone(&meet), done_tx.clone());
                pool.dispatch(Box::new(move || {
                    meet.wait();
                    done_tx.send(()).expect("test receiver");
                }))
                .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
            }
            meet.wait();
            for _ in 0..workers {
                done_rx
                    .recv_timeout(PATIENCE)
                    .unwrap_or_else(|_| panic!("{strategy}: lost a worker"));
            }
        }
        wait_until(|| pool.stats().panicked == (workers * 3) as u64, strategy);
        pool.shutdown();
    }
}

#[test]
fn shutdown_runs_every_accepted_job_then_refuses_more() {
    for &strategy in Strategy::ALL {
        let pool = build(strategy, 2);
        let ran = Arc::new(AtomicUsize::new(0));
        let jobs = 200;
        for _ in 0..jobs {
            let ran = Arc::clone(&ran);
            pool.dispatch(Box::new(move || {
                thread::sleep(Duration::from_micros(200));
                ran.fetch_add(1, Ordering::Relaxed);
            }))
            .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
        }
        pool.shutdown();
        assert_eq!(
            ran.load(Ordering::Relaxed),
            jobs,
            "{strategy}: shutdown dropped queued jobs"
        );
        let rejected = pool
            .dispatch(Box::new(|| {}))
            .expect_err("dispatch after shutdown must fail");
        assert!(
            matches!(rejected.reason(), RejectReason::ShutDown),
            "{strategy}: {rejected}"
        );
        // The job comes back and can still be run by the caller.
        let flag = Arc::new(AtomicUsize::new(0));
        let flag_in_job = Arc::clone(&flag);
        let job = pool
            .dispatch(Box::new(move || {
                flag_in_job.fetch_add(1, Ordering::Relaxed);
            }))
            .expect_err("still shut down")
            .into_job();
        job();
        assert_eq!(flag.load(Ordering::Relaxed), 1);
        pool.shutdown(); // idempotent
        assert_eq!(pool.stats().threads_alive, 0, "{strategy}: threads left after shutdown");
    }
}

#[test]
fn stats_show_queued_and_busy_jobs_while_workers_are_held() {
    for &strategy in Strategy::ALL {
        if strategy.runs_on_caller() {
            continue; // nothing is ever queued or running when dispatch returns
        }
        let workers = 2;
        let pool = build(strategy, workers);
        let (release_tx, release_rx) = shared_receiver_channel();
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..workers + 3 {
            let (release_rx, started) = (Arc::clone(&release_rx), Arc::clone(&started));
            pool.dispatch(Box::new(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.lock().expect("release lock").recv_timeout(PATIENCE);
            }))
            .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
        }
        wait_until(|| started.load(Ordering::SeqCst) >= 1, strategy);
        let stats = pool.stats();
        assert!(stats.busy >= 1, "{strategy}: {stats:?}");
        assert_eq!(stats.queued + stats.busy, (workers + 3) as u64, "{strategy}: {stats:?}");
        assert!(stats.threads_alive >= 1, "{strategy}: {stats:?}");
        for _ in 0..workers + 3 {
            release_tx.send(()).expect("release");
        }
        pool.shutdown();
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.queued, stats.busy),
            ((workers + 3) as u64, 0, 0),
            "{strategy}"
        );
    }
}

#[test]
fn a_job_given_to_an_idle_pool_always_runs() {
    // Dispatch one job, wait for it, repeat: every round finds the workers
    // idle or just going idle, where a lost wake-up would strand the job.
    let rounds = scaled(2_000);
    for &strategy in Strategy::ALL {
        let pool = build(strategy, 2);
        let (done_tx, done_rx) = mpsc::channel();
        for round in 0..rounds {
            let done_tx = done_tx.clone();
            pool.dispatch(Box::new(move || done_tx.send(round).expect("test receiver")))
                .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
            assert_eq!(
                done_rx.recv_timeout(PATIENCE),
                Ok(round),
                "{strategy}: job of round {round} never ran"
            );
            if round % 5 == 0 {
                thread::yield_now();
            }
        }
        pool.shutdown();
    }
}

/// Each fan-out job dispatches two children until this depth.
const DEPTH: u32 = 8;

#[test]
fn jobs_dispatched_from_jobs_during_shutdown_run_once_or_come_back() {
    const ROOTS: usize = 8;
    for &strategy in Strategy::ALL {
        let pool = build(strategy, 2);
        let tally = Arc::new(Tally::default());
        for _ in 0..ROOTS {
            tally.accepted.fetch_add(1, Ordering::SeqCst);
            pool.dispatch(fan_out_job(Arc::clone(&pool), Arc::clone(&tally), 0))
                .unwrap_or_else(|rejected| panic!("{strategy}: {rejected}"));
        }
        // Shut down while the trees are still growing: children dispatched
        // from here on are refused and given back.
        pool.shutdown();
        let (accepted, ran) = (tally.accepted.load(Ordering::SeqCst), tally.ran.load(Ordering::SeqCst));
        assert_eq!(ran, accepted, "{strategy}: accepted jobs must run exactly once");
        let stats = pool.stats();
        assert_eq!(stats.completed, accepted as u64, "{strategy}: {stats:?}");
        assert_eq!(stats.threads_alive, 0, "{strategy}: {stats:?}");
    }
}

/// Counts of the fan-out test: jobs a dispatcher accepted, jobs that ran.
#[derive(Default)]
struct Tally {
    accepted: AtomicUsize,
    ran: AtomicUsize,
}

fn fan_out_job(pool: Arc<dyn Dispatcher>, tally: Arc<Tally>, depth: u32) -> dispatchlab::Job {
    Box::new(move || {
        tally.ran.fetch_add(1, Ordering::SeqCst);
        if depth == DEPTH {
            return;
        }
        for _ in 0..2 {
            // Count first: the child may run before `dispatch` returns.
            tally.accepted.fetch_add(1, Ordering::SeqCst);
            let child = fan_out_job(Arc::clone(&pool), Arc::clone(&tally), depth + 1);
            if let Err(rejected) = pool.dispatch(child) {
                assert!(matches!(rejected.reason(), RejectReason::ShutDown), "{rejected}");
                tally.accepted.fetch_sub(1, Ordering::SeqCst);
            }
        }
    })
}

#[test]
fn thread_per_task_cap_rejects_with_at_capacity_and_recovers() {
    let config = DispatchConfig {
        max_threads: Some(2),
        ..DispatchConfig::default()
    };
    let pool = Strategy::ThreadPerTask.build(&config).expect("build");
    let hold = Arc::new(Barrier::new(3));
    for _ in 0..2 {
        let hold = Arc::clone(&hold);
        pool.dispatch(Box::new(move || {
            hold.wait();
        }))
        .expect("under the cap");
    }
    let rejected = pool
        .dispatch(Box::new(|| {}))
        .expect_err("third live thread is over the cap");
    assert!(
        matches!(rejected.reason(), RejectReason::AtCapacity { limit: 2 }),
        "{rejected}"
    );
    hold.wait();
    wait_until(|| pool.stats().threads_alive == 0, Strategy::ThreadPerTask);
    // Capacity comes back once the threads end.
    let mut accepted = false;
    for _ in 0..1000 {
        if pool.dispatch(Box::new(|| {})).is_ok() {
            accepted = true;
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert!(accepted, "the cap never freed up");
    pool.shutdown();
}

/// A std channel whose receiver several jobs can share.
fn shared_receiver_channel() -> (mpsc::Sender<()>, Arc<std::sync::Mutex<mpsc::Receiver<()>>>) {
    let (tx, rx) = mpsc::channel();
    (tx, Arc::new(std::sync::Mutex::new(rx)))
}

fn wait_until(mut condition: impl FnMut() -> bool, strategy: Strategy) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "{strategy}: condition not met in {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}
