//! The lingering close, once for every server: its deadline, its byte
//! budget and the count against it, kept per connection.
//!
//! A connection that closes while the client may still be sending (a
//! refused request, pipelined requests left unanswered) first sends FIN and
//! then reads and discards what arrives for a moment. Closing at once with
//! unread bytes would make the kernel answer with a reset, which can destroy
//! the last response before the client has read it (the "lingering close"
//! of Apache and nginx).
//!
//! The drivers do the I/O (a blocking read, an `.await`, a non-blocking read
//! on each wake-up of an event loop); [`Lingering`] decides when to stop. The
//! budget counts the whole connection, not one wake-up: a client that keeps
//! sending is cut off after [`LINGER_BYTES`] in total.

use std::time::{Duration, Instant};

/// How long a closing connection keeps discarding what the client sends.
pub(crate) const LINGER: Duration = Duration::from_millis(500);
/// The most bytes one connection discards while lingering.
pub(crate) const LINGER_BYTES: usize = 256 * 1024;
/// A read's worth of discarded bytes, for drivers that need a buffer.
pub(crate) const LINGER_READ: usize = 4096;

/// One connection's lingering close: until when, and how much was discarded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lingering {
    until: Instant,
    discarded: usize,
}

impl Lingering {
    /// A lingering close starting `now` (after the write side is shut).
    pub(crate) fn start(now: Instant) -> Self {
        Self {
            until: now + LINGER,
            discarded: 0,
        }
    }

    /// How long it may still wait for bytes to discard; `None` once it is
    /// over (time up or budget spent): close.
    pub(crate) fn left(&self, now: Instant) -> Option<Duration> {
        let left = self.until.saturating_duration_since(now);
        (!left.is_zero() && self.discarded < LINGER_BYTES).then_some(left)
    }

    /// Counts `count` discarded bytes (0 is the client's end of stream);
    /// returns whether to keep lingering.
    pub(crate) fn discarded(&mut self, count: usize) -> bool {
        self.discarded += count;
        count > 0 && self.discarded < LINGER_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_every_read_of_the_connection() {
        let now = Instant::now();
        let mut lingering = Lingering::start(now);
        let read = LINGER_BYTES / 4;
        for _ in 0..3 {
            assert!(
                lingering.discarded(read),
                "a quarter of the budget per read keeps lingering"
            );
        }
        assert!(!lingering.discarded(read), "the fourth quarter spends the budget");
        assert_eq!(lingering.left(now), None);
    }

    #[test]
    fn it_ends_at_its_deadline_or_at_end_of_stream() {
        let now = Instant::now();
        let mut lingering = Lingering::start(now);
        assert_eq!(lingering.left(now), Some(LINGER));
        assert_eq!(lingering.left(now + LINGER), None);
        assert!(!lingering.discarded(0), "the client closed: stop");
    }
}
