//! A connection's protocol state, stepped by a driver and never waiting:
//! bytes in, requests out, answers in, encoded bytes out, and when to close.
//!
//! As in hyper's `proto/h1` (`conn.rs` holds the state, `dispatch.rs` drives
//! it), [`Exchange`] decides and its drivers do the I/O and the waiting:
//!
//! * connection scope (`connection_scope::connection`): blocking reads and
//!   writes, a handler's wait spent in [`Reply::wait_blocking`];
//! * the tokio reference server (`tokio_scope::connection`): the same steps
//!   with every wait an `.await`;
//! * the fuzz target `connection` and the tests: no sockets, waits skipped
//!   ([`Exchange::answer_now`]), so the state machine the servers run is the
//!   one fuzzed, `/sleep` included.
//!
//! The driver's loop is [`Exchange::step`]: it returns a [`Step`] — a request
//! to answer (hand the response back with [`Exchange::answered`]), a flush,
//! more bytes needed (wait as [`Exchange::wait`] says, then report the read
//! with `Exchange::received` or its expiry with [`Exchange::expired`]), or
//! close with an [`Ending`]. Keep-alive is decided in one place,
//! [`Exchange::answered`]; the timeouts in one table, [`Exchange::wait`].
//!
//! Both buffers are bounded: the input by its capacity (a head that does not
//! fit is refused 431), the output by its window ([`WINDOW`]): past it
//! [`Exchange::step`] asks for a flush before decoding another request, and
//! a large `/bytes` body is not copied in at all but streamed as the socket
//! drains (see [`output`](super::output)). Without that, one 4 KiB read of
//! pipelined `/bytes?n=1048576` requests (93 of them) would be answered into
//! 93 MiB of memory before the first byte was written. Both are charged to
//! the server's budget (`budget`); once it is spent, a step with unwritten
//! output asks for a flush before decoding more, so a client that does not
//! read is not answered further.
//!
//! Request scope does not use it: see `request_scope`'s module doc.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::{CONTINUE, Decoded, HttpError, Limits, Request, RequestDecoder, Response};
use crate::workload::{Reply, Workload};

use super::Timeouts;
use super::budget::Budget;
use super::keep_alive::KeepAlive;
use super::output::{Output, WINDOW};
use super::read_buffer::ReadBuffer;
use super::service::Service;
use super::shutdown::Shutdown;
use super::stats::{ServerStats, StatsSnapshot};

/// Room for the largest head the limits accept plus a little pipelined
/// input after it.
const INPUT_SLACK: usize = 4096;

/// When shutdown has started, how long to wait for bytes that are already
/// on their way, before treating the connection as idle.
const DRAIN_WAIT: Duration = Duration::from_millis(1);

/// What the driver does next.
#[derive(Debug)]
pub enum Step {
    /// A request to answer: run [`Exchange::reply`], spend its wait as the
    /// driver can, and hand the response back with [`Exchange::answered`].
    Answer(Request),
    /// The output filled its [`WINDOW`], or the server's budget is spent:
    /// write it, then step again (complete requests may still be buffered).
    Flush,
    /// Every complete request is answered: write the output, then wait for
    /// bytes as [`Exchange::wait`] says.
    NeedMore,
    /// Write the output, then close as the ending says.
    Close(Ending),
}

/// How a connection ends, which decides how it closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Clean end at a message boundary: close at once.
    Clean,
    /// Ended while the client may still be sending (a refused request, or
    /// pipelined requests left unanswered): half-close and linger first, so
    /// that the last answer is not destroyed by a reset.
    Linger,
    /// The socket failed: just drop it (decided by the driver).
    Broken,
}

/// The wait that applies now, while the exchange needs more bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// How long to wait for bytes.
    pub within: Duration,
    /// What to do if none come in time; report it with [`Exchange::expired`].
    pub then: Expiry,
    /// Shutdown has started (a short drain wait): a driver that can be
    /// interrupted by shutdown need not be.
    pub draining: bool,
}

/// What an expired [`Wait`] means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The connection was idle (or draining): close it cleanly.
    Close,
    /// A request was half received: refuse it 408, then close.
    Refuse,
}

/// One connection's received bytes, decoder, pending output and clocks.
#[derive(Debug)]
pub struct Exchange {
    service: Service,
    timeouts: Timeouts,
    input: ReadBuffer,
    decoder: RequestDecoder,
    output: Output,
    /// What this exchange has charged to the server's budget.
    charged: usize,
    answered: u64,
    /// When the first byte of the request now being received arrived.
    request_started: Option<Instant>,
    /// Set once the connection must close; [`step`](Self::step) says so.
    ending: Option<Ending>,
}

impl Exchange {
    pub(crate) fn new(service: Service, limits: Limits, timeouts: Timeouts) -> Self {
        Self {
            service,
            timeouts,
            input: ReadBuffer::new(limits.max_header_bytes + INPUT_SLACK),
            output: Output::default(),
            charged: 0,
            decoder: RequestDecoder::new(limits),
            answered: 0,
            request_started: None,
            ending: None,
        }
    }

    /// An exchange answering with `workload` and counting into counters of
    /// its own, outside any server: for fuzzing and tests.
    pub fn detached(workload: Workload, limits: Limits) -> Self {
        let service = Service {
            workload,
            stats: Arc::new(ServerStats::default()),
            shutdown: Arc::new(Shutdown::default()),
            keep_alive: KeepAlive::On,
            budget: Arc::new(Budget::new(usize::MAX)),
        };
        Self::new(service, limits, Timeouts::default())
    }

    /// Decodes until there is something for the driver to do.
    pub fn step(&mut self) -> Step {
        loop {
            if let Some(ending) = self.ending {
                return Step::Close(ending);
            }
            if self.output_waits() {
                return Step::Flush;
            }
            match self.decoder.decode(self.input.data()) {
                Ok((used, Decoded::Request(request))) => {
                    self.input.consume(used);
                    // The next request's clock starts when its bytes are awaited.
                    self.request_started = None;
                    self.service.stats.request();
                    self.service.stats.request_started();
                    return Step::Answer(request);
                }
                Ok((used, Decoded::Continue)) => {
                    self.input.consume(used);
                    self.output.encoded().extend_from_slice(CONTINUE);
                }
                Ok((used, Decoded::NeedMore)) => {
                    self.input.consume(used);
                    return Step::NeedMore;
                }
                Err(error) => self.refuse(error),
            }
        }
    }

    /// Whether the output must be written before another request is
    /// decoded: it filled its window, or the budget is spent and some is left.
    fn output_waits(&mut self) -> bool {
        self.charge();
        self.output.len() >= WINDOW || (!self.output.is_empty() && self.service.budget.is_spent())
    }

    /// Charges what the buffers hold now to the server's budget.
    fn charge(&mut self) {
        let held = self.input.allocated() + self.output.held();
        self.service.budget.recharge(&mut self.charged, held);
    }

    /// Runs the handler for `request` (from [`Step::Answer`]), leaving any
    /// wait it asks for to the driver; `None` if it panicked (counted).
    pub fn reply(&self, request: &Request) -> Option<Reply> {
        self.service.reply(request)
    }

    /// Takes the response to `request` (`None`: the handler panicked,
    /// answered 500), encodes it and decides keep-alive: the connection
    /// closes after it when the client asked, the handler panicked or the
    /// server is shutting down.
    pub fn answered(&mut self, request: &Request, response: Option<Response>) {
        let encoded = self.service.encode(request, response, self.output.encoded());
        self.output.stream(encoded.streamed);
        let keep_open = encoded.keep_open;
        self.service.stats.request_answered();
        self.answered += 1;
        if !keep_open {
            let pipelined = !self.is_between_requests();
            self.ending = Some(if pipelined { Ending::Linger } else { Ending::Clean });
        }
    }

    /// Steps without sockets and without waiting: answers every request at
    /// once, skipping the wait the handler asks for. Returns the first other
    /// step. For the fuzz target and tests, which have no time to spend.
    pub fn answer_now(&mut self) -> Step {
        loop {
            match self.step() {
                Step::Answer(request) => {
                    let response = self.reply(&request).map(|reply| match reply {
                        Reply::Now(response) | Reply::After { response, .. } => response,
                    });
                    self.answered(&request, response);
                }
                step => return step,
            }
        }
    }

    /// The wait that applies now (after [`Step::NeedMore`]): the idle timeout
    /// between requests, the header deadline counted from the request's
    /// first byte, or the drain wait once shutdown has started. `None` when
    /// the header deadline has already passed: the request is refused 408
    /// and [`step`](Self::step) says to close.
    pub fn wait(&mut self, now: Instant) -> Option<Wait> {
        let idle = self.is_between_requests();
        let draining = self.service.shutdown.is_started();
        let (within, then) = match (idle, draining) {
            (true, false) => (self.timeouts.idle, Expiry::Close),
            (_, true) => (DRAIN_WAIT, Expiry::Close),
            (false, false) => {
                let started = *self.request_started.get_or_insert(now);
                let deadline = started + self.timeouts.header;
                (deadline.saturating_duration_since(now), Expiry::Refuse)
            }
        };
        if within.is_zero() {
            self.expired(then);
            return None;
        }
        Some(Wait { within, then, draining })
    }

    /// The wait ran out without bytes.
    pub fn expired(&mut self, then: Expiry) {
        match then {
            Expiry::Close => self.ending = Some(Ending::Clean),
            Expiry::Refuse => self.refuse(HttpError::Timeout),
        }
    }

    /// Copies as much of `bytes` as the input buffer has room for, as a read
    /// from a socket would; returns how many were taken (0 when full).
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let mut source = bytes;
        self.input.read_from(&mut source).unwrap_or(0)
    }

    /// Reads once from `source` into the input buffer; report the count
    /// with [`received`](Self::received).
    pub(crate) fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        self.input.read_from(source)
    }

    /// Takes note of a read of `count` bytes at `now`: 0 is the end of the
    /// stream, or a full buffer (a head too large, refused 431).
    pub(crate) fn received(&mut self, count: usize, now: Instant) {
        if count > 0 {
            self.request_started.get_or_insert(now);
        } else if self.input.is_full() {
            self.refuse(HttpError::HeadersTooLarge);
        } else {
            self.ending = Some(Ending::Clean);
        }
    }

    /// Answers `error` (a timeout, a head too large for the buffer) to the
    /// request half received (the head alone if it is `HEAD`); the
    /// connection then closes, lingering.
    pub fn refuse(&mut self, error: HttpError) {
        let method = self.decoder.pending_method(self.input.data());
        self.service.refuse(error.of(method), self.output.encoded());
        self.ending = Some(Ending::Linger);
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

    /// Releases the input buffer's memory while it holds nothing (a
    /// connection waiting for its next request).
    #[cfg(feature = "tokio")]
    pub(crate) fn release_input_if_empty(&mut self) {
        self.input.release_if_empty();
        self.charge();
    }

    /// How many requests this exchange has answered.
    pub fn requests_answered(&self) -> u64 {
        self.answered
    }

    /// The answers not yet written.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// Writes one piece of the output into `socket` (see
    /// [`Output::write_to`]); the charge follows.
    pub(crate) fn write_to(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        let written = self.output.write_to(socket);
        self.charge();
        written
    }

    /// Takes note that `count` bytes of [`Output::piece`] were written.
    #[cfg(feature = "tokio")]
    pub(crate) fn wrote(&mut self, count: usize) {
        self.output.wrote(count);
        self.charge();
    }

    /// Forgets the output as if it had been written.
    pub fn clear_output(&mut self) {
        self.output.clear();
        self.charge();
    }

    /// The counters this exchange's answers updated (those of the server it
    /// belongs to, or its own when [`detached`](Self::detached)).
    pub fn stats(&self) -> StatsSnapshot {
        self.service.stats.snapshot()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.service.budget.release(self.charged);
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
    fn large_pipelined_answers_are_streamed_one_at_a_time() {
        let mut exchange = exchange();
        let request = b"GET /bytes?n=1048576 HTTP/1.1\r\nHost: x\r\n\r\n";
        let stream = request.repeat(exchange.input_capacity() / request.len());
        let mut received = 0;
        for _ in 0..16 {
            received += exchange.receive(&stream[received..]);
        }
        assert_eq!(received, stream.len(), "the requests fill the input buffer");
        let mut turns = 0;
        while matches!(exchange.answer_now(), Step::Flush) {
            assert_eq!(exchange.output().len(), MAX_BYTES + exchange.output().piece().len());
            assert!(exchange.output().held() <= 4096, "the body is streamed, not copied");
            exchange.clear_output();
            turns += 1;
        }
        assert_eq!(exchange.requests_answered(), (stream.len() / request.len()) as u64);
        assert_eq!(turns, stream.len() / request.len(), "one flush per megabyte answer");
    }

    #[test]
    fn once_the_budget_is_spent_unwritten_output_is_flushed_before_more_is_decoded() {
        let mut exchange = exchange();
        exchange.service.budget = Arc::new(Budget::new(1));
        exchange.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(exchange.answer_now(), Step::Flush));
        assert_eq!(exchange.requests_answered(), 1, "one answer, then the flush");
        assert!(exchange.service.budget.in_use() >= exchange.output().len());
        exchange.clear_output();
        assert!(matches!(exchange.answer_now(), Step::Flush | Step::NeedMore));
        assert_eq!(
            exchange.requests_answered(),
            2,
            "an exchange with nothing unwritten goes on"
        );
    }

    #[test]
    fn a_closing_request_with_more_behind_it_lingers() {
        let mut exchange = exchange();
        exchange.receive(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
        assert!(matches!(exchange.answer_now(), Step::Close(Ending::Linger)));
        let mut exchange = self::exchange();
        exchange.receive(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(matches!(exchange.answer_now(), Step::Close(Ending::Clean)));
        assert!(exchange.output().piece().starts_with(b"HTTP/1.1 200"));
    }

    #[test]
    fn a_request_is_handed_out_and_its_answer_taken_back() {
        let mut exchange = exchange();
        exchange.receive(b"GET /sleep?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n");
        let Step::Answer(request) = exchange.step() else {
            panic!("a complete request is handed to the driver");
        };
        assert_eq!(exchange.stats().requests_in_flight, 1, "handed out, not answered");
        let Some(Reply::After { wait, response }) = exchange.reply(&request) else {
            panic!("/sleep leaves its wait to the driver");
        };
        assert_eq!(wait, Duration::from_secs(10));
        exchange.answered(&request, Some(response));
        assert_eq!(exchange.stats().requests_in_flight, 0);
        assert!(exchange.output().piece().starts_with(b"HTTP/1.1 200"));
        assert!(matches!(exchange.step(), Step::NeedMore), "kept alive");
    }

    #[test]
    fn the_wait_is_idle_between_requests_and_the_header_deadline_inside_one() {
        let timeouts = Timeouts::default();
        let mut exchange = exchange();
        let start = Instant::now();
        let idle = exchange.wait(start).expect("idle");
        assert_eq!(
            (idle.within, idle.then, idle.draining),
            (timeouts.idle, Expiry::Close, false)
        );
        exchange.receive(b"GET / HT");
        exchange.received(8, start);
        assert!(matches!(exchange.step(), Step::NeedMore));
        let later = start + timeouts.header / 2;
        let header = exchange.wait(later).expect("within the deadline");
        assert_eq!((header.within, header.then), (timeouts.header / 2, Expiry::Refuse));
        assert_eq!(exchange.wait(start + timeouts.header), None, "the deadline passed");
        assert!(matches!(exchange.step(), Step::Close(Ending::Linger)));
        assert!(exchange.output().piece().starts_with(b"HTTP/1.1 408"));
    }

    #[test]
    fn once_shutdown_has_started_every_wait_is_the_drain_wait() {
        for partial in [&b""[..], b"GET / HT"] {
            let mut exchange = exchange();
            exchange.receive(partial);
            exchange.service.shutdown.start();
            let wait = exchange.wait(Instant::now()).expect("a drain wait");
            assert_eq!(
                (wait.within, wait.then, wait.draining),
                (DRAIN_WAIT, Expiry::Close, true)
            );
            exchange.expired(wait.then);
            assert!(matches!(exchange.step(), Step::Close(Ending::Clean)));
        }
    }

    #[test]
    fn an_idle_wait_that_expires_closes_and_a_header_wait_refuses() {
        let mut exchange = exchange();
        exchange.expired(Expiry::Close);
        assert!(matches!(exchange.step(), Step::Close(Ending::Clean)));
        assert!(exchange.output().is_empty());
        let mut exchange = self::exchange();
        exchange.expired(Expiry::Refuse);
        assert!(matches!(exchange.step(), Step::Close(Ending::Linger)));
        assert!(exchange.output().piece().starts_with(b"HTTP/1.1 408"));
    }

    #[test]
    fn a_half_received_head_request_is_refused_408_without_a_body() {
        for (sent, body_expected) in [(b"HEAD /sleep HT".as_slice(), false), (b"GET /sleep HT", true)] {
            let mut exchange = exchange();
            exchange.receive(sent);
            exchange.received(sent.len(), Instant::now());
            assert!(matches!(exchange.step(), Step::NeedMore));
            exchange.expired(Expiry::Refuse);
            assert!(matches!(exchange.step(), Step::Close(Ending::Linger)));
            let answer = String::from_utf8_lossy(exchange.output().piece()).into_owned();
            let (head, body) = answer.split_once("\r\n\r\n").expect("a complete head");
            assert!(head.starts_with("HTTP/1.1 408"), "{answer}");
            assert!(
                head.contains("Content-Length: ") && !head.contains("Content-Length: 0"),
                "{answer}"
            );
            assert_eq!(!body.is_empty(), body_expected, "{answer}");
        }
    }

    #[test]
    fn end_of_stream_closes_and_a_full_buffer_is_refused() {
        let mut exchange = exchange();
        exchange.received(0, Instant::now());
        assert!(matches!(exchange.step(), Step::Close(Ending::Clean)));
        let mut exchange = self::exchange();
        let head = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 1 << 20]].concat();
        let mut taken = 0;
        while !exchange.is_full() {
            taken += exchange.receive(&head[taken..]);
        }
        exchange.received(0, Instant::now());
        assert!(matches!(exchange.answer_now(), Step::Close(Ending::Linger)));
        assert!(exchange.output().piece().starts_with(b"HTTP/1.1 431"));
    }
}
