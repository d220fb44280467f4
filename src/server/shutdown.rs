//! Graceful shutdown, shared by both scopes: one flag that every thread
//! checks at its next decision point, and the wakers of the threads that may
//! be asleep in `poll` when it is raised.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// The shutdown flag and who to wake when it is raised.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    started: AtomicBool,
    wakers: Mutex<Vec<Arc<mio::Waker>>>,
}

impl Shutdown {
    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Raises the flag and wakes every registered poller. Idempotent.
    pub(crate) fn start(&self) {
        if !self.started.swap(true, Ordering::AcqRel) {
            for waker in self.wakers.lock().iter() {
                // A failed wake leaves that thread to notice at its next timeout.
                let _ = waker.wake();
            }
        }
    }

    /// Registers a poller to wake at shutdown (woken at once if it has started).
    pub(crate) fn wake_on_start(&self, waker: Arc<mio::Waker>) {
        let mut wakers = self.wakers.lock();
        if self.is_started() {
            let _ = waker.wake();
        }
        wakers.push(waker);
    }
}
