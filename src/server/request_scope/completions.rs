//! How a finished job hands its encoded response back to the event loop that
//! owns the connection: a locked queue plus a `mio::Waker`.
//!
//! Waking the loop is a `write` to an eventfd (a system call) and, if the loop
//! sleeps, a thread wake-up. Two rules keep that cost off most responses:
//!
//! * **Coalescing**: only the push that finds the queue empty wakes the loop.
//!   Until the loop drains the queue, later pushes know it will see them.
//! * **Own thread**: a job that ran on the loop's own thread (the `inline`
//!   strategy, or any strategy that happens to run a job on the caller) does
//!   not wake it: the loop drains the queue after every batch of events,
//!   and does not wait in its next poll while anything is still queued.
//!
//! Both rules hold for every strategy alike; neither is a special case.

use std::cell::Cell;
use std::sync::Arc;

use parking_lot::Mutex;

/// A response ready to be written on a connection.
#[derive(Debug)]
pub(super) struct Completion {
    /// The connection's slot in the loop's slab.
    pub(super) key: usize,
    /// The connection's unique id: a completion for a connection that has
    /// closed (and whose slot was reused) is dropped.
    pub(super) connection_id: u64,
    /// The request's position on its connection.
    pub(super) sequence: u64,
    /// The encoded response (charged to the budget by the job).
    pub(super) bytes: Vec<u8>,
    /// A body to stream after `bytes`; empty if none.
    pub(super) streamed: &'static [u8],
    /// Whether the connection stays open after this response.
    pub(super) keep_open: bool,
}

thread_local! {
    /// The queue of the event loop running on this thread, if any.
    static LOOP_ON_THIS_THREAD: Cell<*const Completions> = const { Cell::new(std::ptr::null()) };
}

/// One event loop's queue of finished responses.
#[derive(Debug)]
pub(super) struct Completions {
    queue: Mutex<Vec<Completion>>,
    waker: Arc<mio::Waker>,
}

impl Completions {
    pub(super) fn new(waker: Arc<mio::Waker>) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Vec::new()),
            waker,
        })
    }

    /// Marks the current thread as this queue's event loop.
    pub(super) fn owned_by_this_thread(self: &Arc<Self>) {
        LOOP_ON_THIS_THREAD.with(|owner| owner.set(Arc::as_ptr(self)));
    }

    /// Queues a finished response, waking the loop only if it may be asleep
    /// without knowing.
    pub(super) fn push(&self, completion: Completion) {
        let first = {
            let mut queue = self.queue.lock();
            queue.push(completion);
            queue.len() == 1
        };
        let on_loop_thread = LOOP_ON_THIS_THREAD.with(|owner| std::ptr::eq(owner.get(), self));
        if first && !on_loop_thread {
            // A failed wake (eventfd full) still leaves the loop readable.
            let _ = self.waker.wake();
        }
    }

    /// Whether completions are waiting to be taken.
    pub(super) fn has_queued(&self) -> bool {
        !self.queue.lock().is_empty()
    }

    /// Takes every queued completion, leaving `spare` (an empty vector with
    /// capacity) in the queue so that neither side allocates in steady state.
    pub(super) fn take(&self, spare: &mut Vec<Completion>) {
        debug_assert!(spare.is_empty());
        std::mem::swap(&mut *self.queue.lock(), spare);
    }
}
