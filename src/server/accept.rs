//! What to do when `accept` fails.
//!
//! Some failures concern one connection only (the peer reset it while it
//! waited in the queue): accept the next one. Others mean the process is out
//! of a resource — descriptors (EMFILE, ENFILE), socket buffers, memory —
//! and retrying at once would spin a CPU at 100 % without accepting anything,
//! because the pending connection stays in the queue and keeps the listener
//! readable. Those back off: 5 ms, doubling to 1 s, reset by the next success.

use std::io;
use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// At most one message per this long, however often accept fails.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Whether to retry at once or wait.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptFailure {
    /// Only that connection failed; accept the next.
    ConnectionOnly,
    /// A resource is exhausted; wait before accepting again.
    BackOff(Duration),
}

/// The backoff state of one accept loop.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
}

impl AcceptBackoff {
    pub(crate) fn new() -> Self {
        Self {
            delay: Duration::ZERO,
            last_log: None,
        }
    }

    /// A connection was accepted: the next failure starts from the shortest delay.
    pub(crate) fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// Classifies a failed accept and, when it is worth waiting, says how long.
    pub(crate) fn failed(&mut self, err: &io::Error) -> AcceptFailure {
        if is_connection_only(err) {
            return AcceptFailure::ConnectionOnly;
        }
        self.delay = (self.delay * 2).clamp(FIRST_DELAY, MAX_DELAY);
        if self.last_log.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            self.last_log = Some(Instant::now());
            eprintln!(
                "dispatchlab: accept failed: {err}; pausing accepts for {:?} (raise `ulimit -n` if this is EMFILE)",
                self.delay
            );
        }
        AcceptFailure::BackOff(self.delay)
    }
}

fn is_connection_only(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    ) || err.raw_os_error() == Some(libc::EPROTO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_backs_off_exponentially_and_success_resets() {
        let mut backoff = AcceptBackoff::new();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let delays: Vec<_> = (0..10).map(|_| backoff.failed(&emfile)).collect();
        assert_eq!(delays[0], AcceptFailure::BackOff(FIRST_DELAY));
        assert_eq!(delays[1], AcceptFailure::BackOff(FIRST_DELAY * 2));
        assert_eq!(delays[9], AcceptFailure::BackOff(MAX_DELAY));
        backoff.succeeded();
        assert_eq!(backoff.failed(&emfile), AcceptFailure::BackOff(FIRST_DELAY));
    }

    #[test]
    fn a_reset_peer_does_not_back_off() {
        let mut backoff = AcceptBackoff::new();
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&aborted), AcceptFailure::ConnectionOnly);
    }
}
