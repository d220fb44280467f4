//! `inline`: no hand-off at all; the job runs on the thread that dispatches it.
//!
//! Under an event loop this is the single-threaded server of nginx or Redis:
//! the loop parses a request, runs the handler and writes the answer without
//! any other thread taking part. It is the baseline that every hand-off is
//! measured against, and it is only meaningful in request scope: in connection
//! scope the acceptor would serve one connection at a time.
//!
//! A job that blocks (`/sleep`) blocks the whole event loop: that is the point
//! of having it in the study.

use std::sync::atomic::{AtomicBool, Ordering};

use super::counters::Counters;
use super::{DispatchStats, Dispatcher, Job, RejectReason, Rejected};

/// Runs each job on the caller's thread. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Inline {
    counters: Counters,
    closed: AtomicBool,
}

impl Inline {
    /// The inline strategy; it owns no threads.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Dispatcher for Inline {
    fn dispatch(&self, job: Job) -> Result<(), Rejected> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Rejected::new(job, RejectReason::ShutDown));
        }
        self.counters.accepted();
        self.counters.run(job);
        Ok(())
    }

    fn stats(&self) -> DispatchStats {
        self.counters.snapshot()
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
