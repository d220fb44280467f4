//! How idle workers of the [`work-stealing`](super) pool go to sleep and are
//! woken, without losing a wake-up and without a thundering herd.
//!
//! The design notes, with the race this prevents and what was measured, are
//! in `README.md` beside this file. In short:
//!
//! * a worker is *searching* while it looks for work in other queues; at most
//!   half the workers (at least one) search at once;
//! * a worker that found nothing puts itself on the *sleepers* list, then
//!   looks at every queue once more, and only then parks;
//! * a producer that made work visible wakes at most one sleeper, and only
//!   when nobody is searching (with the default [`WakePolicy`]); the woken
//!   worker is counted as searching on its behalf, so that the next producer
//!   of a burst does not wake another.
//!
//! Both sides put a `SeqCst` fence between "make my state visible" and "read
//! the other side's state" (the producer: push the job, then read the counts;
//! the sleeper: join the list and stop searching, then look at the queues), so
//! at least one of them sees the other: the job is found by the sleeper's last
//! look, or the producer sees the sleeper and wakes it.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst, fence};

use parking_lot::{Condvar, Mutex};

use crate::dispatch::WakePolicy;

/// The searching and sleeping state of one pool's workers.
#[derive(Debug)]
pub(super) struct Sleep {
    policy: WakePolicy,
    max_searching: usize,
    /// Workers looking for work in other queues (including the ones woken
    /// for that and not yet running).
    searching: AtomicUsize,
    /// `sleepers.len()`, readable without the lock on the dispatch path.
    sleeping: AtomicUsize,
    /// Indices of the workers that are parked or about to park; the last one
    /// to sleep is the first one woken (its cache is the warmest).
    sleepers: Mutex<Vec<usize>>,
    parkers: Box<[Parker]>,
}

impl Sleep {
    pub(super) fn new(workers: usize, policy: WakePolicy) -> Self {
        Self {
            policy,
            max_searching: (workers / 2).max(1),
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            parkers: (0..workers).map(|_| Parker::default()).collect(),
        }
    }

    /// Counts the caller as searching, unless enough workers search already.
    pub(super) fn try_start_searching(&self) -> bool {
        self.searching
            .fetch_update(SeqCst, SeqCst, |n| (n < self.max_searching).then_some(n + 1))
            .is_ok()
    }

    /// Counts the caller out of the searchers; true if it was the last one.
    /// A producer may have skipped a wake-up because the caller was
    /// searching, so the caller must look at the queues after this (the
    /// fence orders that look after the decrement).
    pub(super) fn stop_searching(&self) -> bool {
        let was_last = self.searching.fetch_sub(1, SeqCst) == 1;
        fence(SeqCst);
        was_last
    }

    /// Puts worker `index` on the sleepers list. The caller must then look at
    /// every queue once more and either [`cancel`](Self::cancel) or
    /// [`park`](Self::park).
    pub(super) fn prepare(&self, index: usize) {
        let mut sleepers = self.sleepers.lock();
        sleepers.push(index);
        self.sleeping.fetch_add(1, SeqCst);
        drop(sleepers);
        fence(SeqCst);
    }

    /// Takes worker `index` off the sleepers list. False if a producer took it
    /// off first: that producer is waking it (and counted it as searching),
    /// so the caller must [`park`](Self::park) to take the wake-up.
    pub(super) fn cancel(&self, index: usize) -> bool {
        let mut sleepers = self.sleepers.lock();
        let Some(position) = sleepers.iter().rposition(|&sleeper| sleeper == index) else {
            return false;
        };
        sleepers.remove(position);
        self.sleeping.fetch_sub(1, SeqCst);
        true
    }

    /// Blocks worker `index` until it is woken. On return the worker counts
    /// as searching.
    pub(super) fn park(&self, index: usize) {
        self.parkers[index].park();
    }

    /// Called after a job became visible in some queue: wakes sleepers as the
    /// [`WakePolicy`] says.
    pub(super) fn notify(&self) {
        fence(SeqCst);
        if self.sleeping.load(SeqCst) == 0 {
            return; // every worker is awake and will look before it sleeps
        }
        match self.policy {
            WakePolicy::OneIfNoneSearching => {
                if self.searching.load(SeqCst) == 0 {
                    self.wake_one(true);
                }
            }
            WakePolicy::OnePerJob => self.wake_one(false),
            WakePolicy::All => self.wake_all(),
        }
    }

    /// Wakes the most recent sleeper, if any; with `only_if_none_searching`,
    /// only if no worker is searching (checked again under the lock, so that
    /// two producers racing here wake one worker, not two).
    fn wake_one(&self, only_if_none_searching: bool) {
        let mut sleepers = self.sleepers.lock();
        if only_if_none_searching && self.searching.load(SeqCst) > 0 {
            return;
        }
        let Some(index) = sleepers.pop() else {
            return;
        };
        // Searching first: a producer never sees the woken worker as neither
        // sleeping nor searching.
        self.searching.fetch_add(1, SeqCst);
        self.sleeping.fetch_sub(1, SeqCst);
        drop(sleepers);
        self.parkers[index].unpark();
    }

    /// Wakes every sleeper (shutdown, or [`WakePolicy::All`]).
    pub(super) fn wake_all(&self) {
        let mut sleepers = self.sleepers.lock();
        self.searching.fetch_add(sleepers.len(), SeqCst);
        self.sleeping.fetch_sub(sleepers.len(), SeqCst);
        for index in sleepers.drain(..) {
            self.parkers[index].unpark();
        }
    }
}

/// One worker's bed: a flag and a condvar, so that a wake-up that arrives
/// before the worker parks is kept, not lost.
#[derive(Debug, Default)]
struct Parker {
    woken: Mutex<bool>,
    wake: Condvar,
}

impl Parker {
    fn park(&self) {
        let mut woken = self.woken.lock();
        while !*woken {
            self.wake.wait(&mut woken);
        }
        *woken = false;
    }

    fn unpark(&self) {
        *self.woken.lock() = true;
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_half_the_workers_search() {
        let sleep = Sleep::new(4, WakePolicy::default());
        assert!(sleep.try_start_searching());
        assert!(sleep.try_start_searching());
        assert!(!sleep.try_start_searching());
        assert!(!sleep.stop_searching());
        assert!(sleep.stop_searching(), "the second one out is the last searcher");
        let single = Sleep::new(1, WakePolicy::default());
        assert!(single.try_start_searching(), "one worker may always search");
    }

    #[test]
    fn a_wake_up_before_park_is_kept() {
        let sleep = Sleep::new(2, WakePolicy::default());
        sleep.prepare(1);
        sleep.notify(); // nobody searching: wakes worker 1 before it parks
        assert!(!sleep.cancel(1), "the producer took it off the list");
        sleep.park(1); // returns at once: the wake-up was kept
        assert!(sleep.stop_searching(), "the woken worker was counted as searching");
    }

    #[test]
    fn no_wake_up_while_someone_searches() {
        let sleep = Sleep::new(2, WakePolicy::OneIfNoneSearching);
        assert!(sleep.try_start_searching());
        sleep.prepare(1);
        sleep.notify();
        assert!(sleep.cancel(1), "the sleeper was left alone for the searcher");
    }

    #[test]
    fn wake_all_policy_wakes_every_sleeper() {
        let sleep = Sleep::new(3, WakePolicy::All);
        sleep.prepare(0);
        sleep.prepare(2);
        sleep.notify();
        assert!(!sleep.cancel(0) && !sleep.cancel(2));
        assert_eq!(sleep.searching.load(SeqCst), 2);
    }
}
