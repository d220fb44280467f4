//! The contract every strategy keeps, checked for each compiled-in strategy
//! with the public checks of `dispatchlab::dispatch::contract` (the same ones a
//! strategy written outside the crate calls): each job runs exactly once, a
//! panicking job does not cost capacity, shutdown drains what was accepted,
//! and stats add up. Then what only one strategy promises (the
//! thread-per-task cap).
//!
//! Each check names the strategy on failure.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use dispatchlab::dispatch::{DispatchConfig, RejectReason, contract};
use dispatchlab::{Dispatcher, Strategy};

/// Runs one contract check for every compiled-in strategy.
fn for_every_strategy(check: fn(&str, &dyn Fn(usize) -> Arc<dyn Dispatcher>)) {
    for &strategy in Strategy::ALL {
        check(strategy.name(), &|workers| build(strategy, workers));
    }
}

fn build(strategy: Strategy, workers: usize) -> Arc<dyn Dispatcher> {
    strategy
        .build(&DispatchConfig::with_workers(workers))
        .unwrap_or_else(|err| panic!("{strategy}: {err}"))
}

#[test]
fn every_job_from_several_threads_runs_exactly_once() {
    for_every_strategy(|label, factory| contract::exactly_once(label, factory));
}

#[test]
fn a_panicking_job_does_not_reduce_capacity() {
    for_every_strategy(|label, factory| contract::panics_keep_capacity(label, factory));
}

#[test]
fn shutdown_runs_every_accepted_job_then_refuses_more() {
    for_every_strategy(|label, factory| contract::shutdown_drains(label, factory));
}

#[test]
fn stats_show_queued_and_busy_jobs_while_workers_are_held() {
    for_every_strategy(|label, factory| contract::stats_add_up(label, factory));
}

#[test]
fn a_job_given_to_an_idle_pool_always_runs() {
    for_every_strategy(|label, factory| contract::idle_pool_wakes(label, factory));
}

#[test]
fn jobs_dispatched_from_jobs_during_shutdown_run_once_or_come_back() {
    for_every_strategy(|label, factory| contract::fan_out_during_shutdown(label, factory));
}

#[test]
fn the_checks_tell_a_strategy_that_runs_jobs_on_the_caller_from_a_pool() {
    // Taken for a pool, `inline` would fail the capacity check; taken for
    // `inline`, a pool would only get the caller's weaker checks.
    for &strategy in Strategy::ALL {
        let seen = contract::runs_on_caller(strategy.name(), |workers| build(strategy, workers));
        assert_eq!(seen, strategy.runs_on_caller(), "{strategy}");
    }
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

fn wait_until(mut condition: impl FnMut() -> bool, strategy: Strategy) {
    let deadline = Instant::now() + contract::PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{strategy}: condition not met in {:?}",
            contract::PATIENCE
        );
        thread::sleep(Duration::from_millis(1));
    }
}
