//! The server-wide budget for bytes buffered on behalf of clients
//! (`--buffer-budget`): read buffers, unwritten output, and answers computed
//! but not yet written.
//!
//! No client behaviour may grow the server without limit. Each connection is
//! already bounded (its read buffer, its output [`WINDOW`](super::output::WINDOW),
//! its pipeline depth), but a thousand bounded connections are still a
//! thousand times the bound. The budget bounds their sum: every connection
//! charges what it holds, and once the total reaches the budget each
//! server applies back-pressure to the connections that are *behind*:
//!
//! * a connection with unwritten output decodes no new request and reads no
//!   more, until its output has been written (its client reads);
//! * a connection without unwritten output is served as always, so a client
//!   that reads its answers is never refused or stalled;
//! * a connection whose output makes no progress for the write timeout is
//!   closed (as it always is), which returns its charge.
//!
//! Bytes are charged when they come to exist (a job charges the answer it
//! encoded before handing it back) and returned when written or dropped.
//! The budget is checked between answers, so while it is being reached a
//! connection may go past it by one answer and its read buffer, or in
//! request scope by the answers it already has in flight (bounded per
//! connection and by `--max-in-flight` per loop).
//! Buffers inside the kernel (socket buffers) are not the process's memory
//! and not charged. The charge is a few atomic additions per answer, on one
//! shared counter: no allocation, no system call.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The budget and what is charged against it now.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    in_use: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            in_use: AtomicUsize::new(0),
        }
    }

    /// The configured budget in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Relaxed)
    }

    /// Whether the budget is spent: connections with unwritten output wait.
    pub(crate) fn is_spent(&self) -> bool {
        self.in_use() >= self.limit
    }

    /// Charges `bytes` that have just come to exist.
    pub(crate) fn charge(&self, bytes: usize) {
        if bytes > 0 {
            self.in_use.fetch_add(bytes, Relaxed);
        }
    }

    /// Returns `bytes` charged earlier.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.in_use.fetch_sub(bytes, Relaxed);
        }
    }

    /// Moves a holder's charge from `*charged` to `now`, its current holding.
    pub(crate) fn recharge(&self, charged: &mut usize, now: usize) {
        if now > *charged {
            self.charge(now - *charged);
        } else {
            self.release(*charged - now);
        }
        *charged = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_return() {
        let budget = Budget::new(100);
        let mut held = 0;
        budget.recharge(&mut held, 60);
        budget.charge(40);
        assert!(budget.is_spent());
        budget.recharge(&mut held, 10);
        assert_eq!(budget.in_use(), 50);
        budget.release(40);
        budget.recharge(&mut held, 0);
        assert_eq!((budget.in_use(), budget.is_spent()), (0, false));
    }
}
