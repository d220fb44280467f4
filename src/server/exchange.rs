//! The socket-free half of a connection-scope connection: bytes in, encoded
//! answers out, and the decision to close.
//!
//! [`Exchange`] holds what one connection has received and not decoded, the
//! request decoder, and the answers not yet written. The connection-scope
//! job (`connection_scope::connection`) moves bytes between it and a
//! blocking socket; the fuzz target `connection` (see `fuzz/`) feeds it arbitrary
//! chunks directly, so that the state machine the server runs is the one
//! fuzzed, without sockets.
//!
//! Both buffers are bounded: the input by its capacity (a head that does not
//! fit is refused 431), the output by [`FLUSH_AT`] plus one response, because
//! [`Exchange::answer`] hands control back to be flushed once the output
//! passes it. Without that, one 4 KiB read of pipelined `/bytes?n=1048576`
//! requests (93 of them) would be answered into 93 MiB of memory before the
//! first byte was written.

use std::io::{self, Read};
use std::sync::Arc;

use crate::http::{CONTINUE, Decoded, HttpError, Limits, RequestDecoder};
use crate::workload::Workload;

use super::read_buffer::ReadBuffer;
use super::service::Service;
use super::shutdown::Shutdown;
use super::stats::{ServerStats, StatsSnapshot};

/// Past this many unwritten bytes, [`Exchange::answer`] stops decoding and
/// asks for a flush.
pub const FLUSH_AT: usize = 64 * 1024;

/// Room for the largest head the limits accept plus a little pipelined
/// input after it (the tokio server's buffers are sized the same).
pub(crate) const INPUT_SLACK: usize = 4096;

/// What the connection should do after [`Exchange::answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Every complete request is answered: write the output, then read more.
    NeedMore,
    /// The output passed [`FLUSH_AT`]: write it, then call `answer` again
    /// before reading (complete requests may still be buffered).
    Flush,
    /// Write the output, then close. `linger` says the client may still be
    /// sending (a refused request, or pipelined requests left unanswered):
    /// half-close and discard input for a moment so that the last answer is
    /// not destroyed by a reset.
    Close {
        /// Whether to linger before closing.
        linger: bool,
    },
}

/// One connection's received bytes, decoder and pending output.
#[derive(Debug)]
pub struct Exchange {
    service: Service,
    input: ReadBuffer,
    decoder: RequestDecoder,
    output: Vec<u8>,
    answered: u64,
}

impl Exchange {
    pub(crate) fn new(service: Service, limits: Limits) -> Self {
        Self {
            service,
            input: ReadBuffer::new(limits.max_header_bytes + INPUT_SLACK),
            output: Vec::with_capacity(1024),
            decoder: RequestDecoder::new(limits),
            answered: 0,
        }
    }

    /// An exchange answering with `workload` and counting into counters of
    /// its own, outside any server: for fuzzing and tests.
    pub fn detached(workload: Workload, limits: Limits) -> Self {
        let service = Service {
            workload,
            stats: Arc::new(ServerStats::default()),
            shutdown: Arc::new(Shutdown::default()),
        };
        Self::new(service, limits)
    }

    /// Copies as much of `bytes` as the input buffer has room for, as a read
    /// from a socket would; returns how many were taken (0 when full).
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let mut source = bytes;
        self.input.read_from(&mut source).unwrap_or(0)
    }

    /// Reads once from `source` into the input buffer. `Ok(0)` is end of
    /// stream, or a full buffer ([`is_full`](Self::is_full) tells which).
    pub(crate) fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        self.input.read_from(source)
    }

    /// Decodes and answers complete requests until more bytes are needed,
    /// the output needs a flush or the connection must close.
    pub fn answer(&mut self) -> Turn {
        while self.output.len() < FLUSH_AT {
            match self.decoder.decode(self.input.data()) {
                Ok((used, Decoded::Request(request))) => {
                    self.input.consume(used);
                    let stats = &self.service.stats;
                    stats.request();
                    stats.request_started();
                    let keep_open = self.service.answer(&request, &mut self.output);
                    stats.request_answered();
                    self.answered += 1;
                    if !keep_open {
                        return Turn::Close {
                            linger: !self.is_between_requests(),
                        };
                    }
                }
                Ok((used, Decoded::Continue)) => {
                    self.input.consume(used);
                    self.output.extend_from_slice(CONTINUE);
                }
                Ok((used, Decoded::NeedMore)) => {
                    self.input.consume(used);
                    return Turn::NeedMore;
                }
                Err(error) => return self.refuse(error),
            }
        }
        Turn::Flush
    }

    /// Answers `error` (a timeout, a head too large for the buffer) and says
    /// to close.
    pub fn refuse(&mut self, error: HttpError) -> Turn {
        self.service.refuse(error, &mut self.output);
        Turn::Close { linger: true }
    }

    /// Whether nothing is buffered or half decoded: the connection is idle.
    pub fn is_between_requests(&self) -> bool {
        self.input.is_empty() && self.decoder.at_message_start()
    }

    /// Whether the input buffer is full (a head larger than it can hold).
    pub fn is_full(&self) -> bool {
        self.input.is_full()
    }

    /// Bytes received and not yet decoded.
    pub fn buffered_input(&self) -> usize {
        self.input.data().len()
    }

    /// The most bytes the input buffer holds.
    pub fn input_capacity(&self) -> usize {
        self.input.capacity()
    }

    /// How many requests this exchange has answered.
    pub fn requests_answered(&self) -> u64 {
        self.answered
    }

    /// The answers not yet written.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Forgets the output once it has been written.
    pub fn clear_output(&mut self) {
        self.output.clear();
    }

    /// The counters this exchange's answers updated (those of the server it
    /// belongs to, or its own when [`detached`](Self::detached)).
    pub fn stats(&self) -> StatsSnapshot {
        self.service.stats.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{MAX_BYTES, MetricsSource};

    struct NoMetrics;

    impl MetricsSource for NoMetrics {
        fn render(&self) -> String {
            String::new()
        }
    }

    fn exchange() -> Exchange {
        Exchange::detached(Workload::new(Arc::new(NoMetrics)), Limits::default())
    }

    #[test]
    fn a_buffer_of_large_pipelined_answers_is_flushed_as_it_goes() {
        let mut exchange = exchange();
        let request = b"GET /bytes?n=1048576 HTTP/1.1\r\nHost: x\r\n\r\n";
        let stream = request.repeat(exchange.input_capacity() / request.len());
        let mut received = 0;
        for _ in 0..16 {
            received += exchange.receive(&stream[received..]);
        }
        assert_eq!(received, stream.len(), "the requests fill the input buffer");
        let mut turns = 0;
        while exchange.answer() == Turn::Flush {
            assert!(exchange.output().len() <= FLUSH_AT + MAX_BYTES + 4096);
            exchange.clear_output();
            turns += 1;
        }
        assert_eq!(exchange.requests_answered(), (stream.len() / request.len()) as u64);
        assert_eq!(turns, stream.len() / request.len(), "one flush per megabyte answer");
    }

    #[test]
    fn a_closing_request_with_more_behind_it_lingers() {
        let mut exchange = exchange();
        exchange.receive(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
        assert_eq!(exchange.answer(), Turn::Close { linger: true });
        let mut exchange = self::exchange();
        exchange.receive(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(exchange.answer(), Turn::Close { linger: false });
        assert!(exchange.output().starts_with(b"HTTP/1.1 200"));
    }
}
