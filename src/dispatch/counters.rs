//! The bookkeeping every strategy shares: how many jobs were accepted, started,
//! finished or panicked, and how many threads are alive.
//!
//! Strategies call [`Counters::accepted`] when they take a job (before the job
//! can possibly start) and run every job through [`Counters::run`], which
//! catches a panic so that the worker survives it. [`Counters::snapshot`] is
//! then the whole of [`Dispatcher::stats`](super::Dispatcher::stats).
//!
//! The module is public so that a strategy written outside the crate (see
//! `examples/custom_strategy/`) reports the same counters the same way.
//!
//! The counters a job passes through on its way in and out (`accepted`,
//! `completed`, `panicked`) are updated with `SeqCst`, so that
//! [`Counters::outstanding`] can serve as a drain condition: a strategy that
//! counts a job as accepted and *then* reads its own `SeqCst` "closed" flag is
//! either refused or seen by a shutdown that sets the flag and then reads
//! `outstanding()`. On x86 a `SeqCst` read-modify-write is the same
//! `lock`-prefixed instruction as a `Relaxed` one, so the hot path pays nothing.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use super::{DispatchStats, Job};

/// Lock-free counters; a snapshot is a set of relaxed loads.
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    threads_alive: AtomicU64,
}

impl Counters {
    /// Records that a job was taken. Call before the job becomes visible to a
    /// worker, so that `queued` never goes negative.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, SeqCst);
    }

    /// Takes back an [`accepted`](Self::accepted) job that was then refused.
    pub fn unaccepted(&self) {
        self.accepted.fetch_sub(1, SeqCst);
    }

    /// Runs a job on the current thread, catching and counting a panic.
    pub fn run(&self, job: Job) {
        self.started.fetch_add(1, Relaxed);
        match panic::catch_unwind(AssertUnwindSafe(job)) {
            Ok(()) => self.completed.fetch_add(1, SeqCst),
            Err(_) => self.panicked.fetch_add(1, SeqCst),
        };
    }

    /// Jobs accepted and not yet finished (queued or running).
    ///
    /// The finished counts are read before the accepted count, so the result
    /// can only overstate: zero means that, at the moment `accepted` was read,
    /// every job accepted so far had finished.
    pub fn outstanding(&self) -> u64 {
        let finished = self.completed.load(SeqCst) + self.panicked.load(SeqCst);
        self.accepted.load(SeqCst).saturating_sub(finished)
    }

    /// Counts the current thread as alive until the guard drops.
    pub fn thread_alive(&self) -> AliveGuard<'_> {
        self.threads_alive.fetch_add(1, Relaxed);
        AliveGuard(self)
    }

    /// A snapshot. `threads_alive` is the live-thread gauge kept by
    /// [`thread_alive`](Self::thread_alive) guards.
    pub fn snapshot(&self) -> DispatchStats {
        self.snapshot_with_threads(self.threads_alive.load(Relaxed))
    }

    /// A snapshot with a thread count the strategy reads elsewhere (for pools
    /// whose threads it does not start itself).
    pub fn snapshot_with_threads(&self, threads_alive: u64) -> DispatchStats {
        // Read in the order a job moves, so each difference is non-negative
        // unless a job moved between two loads; saturate in that case.
        let completed = self.completed.load(Relaxed);
        let panicked = self.panicked.load(Relaxed);
        let started = self.started.load(Relaxed);
        let accepted = self.accepted.load(Relaxed);
        DispatchStats {
            queued: accepted.saturating_sub(started),
            busy: started.saturating_sub(completed + panicked),
            threads_alive,
            completed,
            panicked,
        }
    }
}

/// Decrements the live-thread gauge when the thread ends, however it ends.
#[derive(Debug)]
pub struct AliveGuard<'a>(&'a Counters);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.threads_alive.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_is_counted_and_does_not_escape() {
        let counters = Counters::default();
        counters.accepted();
        counters.run(Box::new(|| panic!("job panics on purpose")));
        counters.accepted();
        counters.run(Box::new(|| {}));
        let stats = counters.snapshot();
        assert_eq!(
            (stats.completed, stats.panicked, stats.queued, stats.busy),
            (1, 1, 0, 0)
        );
    }

    #[test]
    fn queued_counts_accepted_jobs_not_yet_started() {
        let counters = Counters::default();
        counters.accepted();
        counters.accepted();
        counters.accepted();
        counters.unaccepted();
        assert_eq!(counters.snapshot().queued, 2);
    }

    #[test]
    fn outstanding_counts_jobs_until_they_finish() {
        let counters = Counters::default();
        counters.accepted();
        counters.accepted();
        assert_eq!(counters.outstanding(), 2);
        counters.run(Box::new(|| {}));
        counters.run(Box::new(|| panic!("job panics on purpose")));
        assert_eq!(counters.outstanding(), 0);
    }

    #[test]
    fn alive_guard_tracks_threads() {
        let counters = Counters::default();
        let guard = counters.thread_alive();
        assert_eq!(counters.snapshot().threads_alive, 1);
        drop(guard);
        assert_eq!(counters.snapshot().threads_alive, 0);
    }
}
