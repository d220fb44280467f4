//! One client connection's state machine.
//!
//! ```text
//!            pump()                 writable, connected            response complete
//!   idle ─────────────► connecting ────────────────────► open ─────────────────────► open (keep-alive: next request)
//!    ▲   (keep-alive:        │ refused / timeout           │ reset / timeout / EOF      │
//!    │    at once; close:    ▼                             ▼ / garbage                  ▼ server closes, or
//!    │    per request)     fail() ─────── retry timer ───► idle ◄───────────────────── connection per request
//! ```
//!
//! *open* means: requests are written (a suffix of the pre-rendered request
//! buffer) and responses read; `in_flight` pairs each response with its
//! request's intended and actual send times, in FIFO order (pipelining).
//! A failure counts every request in flight once, closes the socket, and
//! retries through a timer set to "now" — never by recursion, so a target
//! that refuses every connect cannot blow the stack.
//!
//! Tokens carry a generation next to the connection's index, so that events
//! for a socket already closed are recognised and ignored.
//!
//! # Memory per connection
//!
//! A load of 100,000 connections must not need more than the servers it
//! measures, so a connection owns no buffer of its own: the read buffer is
//! the worker's (one per thread), the request bytes are the plan's. What is
//! left is this struct (a few hundred bytes), the in-flight queue (`depth`
//! entries, allocated once) and `leftover`, empty unless a head arrived in
//! pieces and shrunk back after a long one. The kernel's socket buffers are
//! not in the process's RSS. A connection that waits for the ramp has no
//! socket yet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::ErrorKind;
use super::plan::LoadPlan;
use super::recorder::Recorder;
use super::response::{Eof, Feed, MAX_HEAD, ResponseParser};
use super::source;

/// One worker's mutable state besides its connections.
#[derive(Debug)]
pub(crate) struct WorkerState<'a> {
    pub plan: &'a LoadPlan,
    pub registry: Registry,
    pub rec: Recorder,
    pub timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections that made all their requests.
    pub finished: usize,
}

/// Bits of a token that hold the connection's index.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Most connections one worker can hold (the all-ones index is left to the
/// timer's token).
pub(crate) const MAX_PER_WORKER: usize = INDEX_MASK;

/// The most capacity `leftover` keeps once its bytes are consumed: an
/// incomplete head or chunk line is usually a few hundred bytes, and a
/// connection that once had to keep a long one (up to `MAX_HEAD`) gives the
/// memory back, so that 100,000 connections never hold 64 KiB each.
const LEFTOVER_KEPT: usize = 4096;

/// One request's times.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// When the schedule wanted it sent (the send time in closed loop).
    intended: Instant,
    /// When it was handed to the socket (or the connect started, in a
    /// connection-per-request mode).
    sent: Instant,
}

/// One client connection and its schedule.
#[derive(Debug)]
pub(crate) struct Conn {
    index: usize,
    generation: usize,
    stream: Option<TcpStream>,
    /// The client address it binds to; `None` lets the kernel pick.
    source: Option<IpAddr>,
    /// No connect before this (the ramp).
    opens_at: Instant,
    connecting: bool,
    connect_deadline: Instant,
    /// When the current connection was established.
    open_since: Instant,
    in_flight: VecDeque<Pending>,
    /// Request bytes issued but not yet written.
    unwritten: usize,
    parser: ResponseParser,
    /// An incomplete head or chunk line, kept until more bytes arrive.
    leftover: Vec<u8>,
    /// Open loop: the intended time of the next request.
    next_intended: Instant,
    /// Requests issued (fixed-count mode stops at the limit).
    issued: u64,
    finished: bool,
    /// The pending timer, if any (timers in the heap that differ are stale).
    pub(crate) timer: Option<Instant>,
    /// The server closed the last connection: the next connect is a reconnect.
    server_closed: bool,
    /// Got at least one answer inside the measured window.
    served: bool,
}

/// Splits a token into (index, generation tag).
pub(crate) fn split_token(token: Token) -> (usize, usize) {
    (token.0 & INDEX_MASK, token.0 >> INDEX_BITS)
}

impl Conn {
    /// A connection whose first request is intended at `first_intended`,
    /// which connects from `source` no earlier than `opens_at`.
    pub(crate) fn new(
        index: usize,
        depth: usize,
        first_intended: Instant,
        opens_at: Instant,
        source: Option<IpAddr>,
    ) -> Self {
        Self {
            index,
            generation: 0,
            stream: None,
            source,
            opens_at,
            connecting: false,
            connect_deadline: first_intended,
            open_since: first_intended,
            in_flight: VecDeque::with_capacity(depth),
            unwritten: 0,
            parser: ResponseParser::default(),
            leftover: Vec::new(),
            next_intended: first_intended,
            issued: 0,
            finished: false,
            timer: None,
            server_closed: false,
            served: false,
        }
    }

    /// The generation tag that events for the current socket carry.
    pub(crate) fn generation_tag(&self) -> usize {
        self.generation & (usize::MAX >> INDEX_BITS)
    }

    fn token(&self) -> Token {
        Token(self.index | (self.generation_tag() << INDEX_BITS))
    }

    /// Issues whatever is allowed now: connects, sends due requests, or sets
    /// the timer for the next intended send.
    pub(crate) fn pump(&mut self, ctx: &mut WorkerState<'_>, now: Instant) {
        let plan = ctx.plan;
        if self.finished || now >= plan.end {
            return;
        }
        let exhausted = plan.limit.is_some_and(|limit| self.issued >= limit);
        if exhausted && self.in_flight.is_empty() {
            self.finish(ctx, now);
            return;
        }
        if self.stream.is_none() && now < self.opens_at {
            self.set_timer(ctx, self.opens_at);
            return;
        }
        if plan.mode.connection_per_request() {
            if self.stream.is_some() || exhausted {
                return;
            }
            let Some(intended) = self.next_send(ctx, now) else {
                return;
            };
            self.issue(ctx, intended, now);
            self.unwritten = plan.request_len;
            self.connect(ctx, now);
            return;
        }
        if self.stream.is_none() {
            self.connect(ctx, now);
            return;
        }
        if self.connecting {
            return;
        }
        let mut issued = 0;
        while self.in_flight.len() < plan.depth && plan.limit.is_none_or(|limit| self.issued < limit) {
            let Some(intended) = self.next_send(ctx, now) else {
                break;
            };
            self.issue(ctx, intended, now);
            issued += 1;
        }
        if issued > 0 {
            self.unwritten += issued * plan.request_len;
            self.flush(ctx, now);
        }
    }

    /// Puts a request intended at `intended` in flight (its bytes are written
    /// by the caller) and counts it as offered.
    fn issue(&mut self, ctx: &mut WorkerState<'_>, intended: Instant, now: Instant) {
        self.in_flight.push_back(Pending { intended, sent: now });
        self.issued += 1;
        ctx.rec.offer(intended);
    }

    /// The intended time of the next request if it is due, else sets the
    /// timer for it and returns `None`.
    fn next_send(&mut self, ctx: &mut WorkerState<'_>, now: Instant) -> Option<Instant> {
        let Some(period) = ctx.plan.period else {
            return Some(now);
        };
        if self.next_intended > now {
            self.set_timer(ctx, self.next_intended);
            return None;
        }
        let intended = self.next_intended;
        self.next_intended += period;
        Some(intended)
    }

    fn set_timer(&mut self, ctx: &mut WorkerState<'_>, at: Instant) {
        if self.timer != Some(at) {
            self.timer = Some(at);
            ctx.timers.push(Reverse((at, self.index)));
        }
    }

    /// This connection has made all its requests (fixed-count mode).
    fn finish(&mut self, ctx: &mut WorkerState<'_>, now: Instant) {
        self.close();
        self.finished = true;
        ctx.finished += 1;
        ctx.rec.finished_at = ctx.rec.finished_at.max(Some(now));
    }

    fn connect(&mut self, ctx: &mut WorkerState<'_>, now: Instant) {
        ctx.rec.connects += 1;
        if std::mem::take(&mut self.server_closed) {
            ctx.rec.reconnects += 1;
        }
        let mut stream = match source::connect(ctx.plan.addr, self.source) {
            Ok(stream) => stream,
            Err(err) => return self.fail(ctx, ErrorKind::of_connect(&err), now),
        };
        let token = self.token();
        if let Err(err) = ctx
            .registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            return self.fail(ctx, ErrorKind::of_connect(&err), now);
        }
        self.stream = Some(stream);
        self.connecting = true;
        self.connect_deadline = now + ctx.plan.connect_timeout;
    }

    /// Drops the socket and whatever was in progress on it.
    fn close(&mut self) {
        // Closing the descriptor removes it from the epoll set; the new
        // generation makes any event already harvested for it stale.
        self.stream = None;
        self.generation = self.generation.wrapping_add(1);
        self.connecting = false;
        self.unwritten = 0;
        self.parser.reset();
        self.leftover.clear();
    }

    /// Counts the requests in flight (at least one) as `kind`, closes, and
    /// retries from the timer.
    ///
    /// A failed keep-alive connect has nothing in flight: it costs the
    /// request it was for, the next one of the schedule (in closed loop, one
    /// issued now). That request's turn is used up, so it is not sent again;
    /// in open loop the retry waits for the next intended time, so that a
    /// refusing server sees connects at the schedule's rate.
    fn fail(&mut self, ctx: &mut WorkerState<'_>, kind: ErrorKind, now: Instant) {
        let mut retry = now;
        if self.in_flight.is_empty() {
            let intended = match ctx.plan.period {
                Some(period) => {
                    let intended = self.next_intended;
                    self.next_intended += period;
                    retry = now.max(self.next_intended);
                    intended
                }
                None => now,
            };
            self.issued += 1;
            ctx.rec.offer(intended);
            ctx.rec.fail(kind, intended, now);
        } else {
            for request in self.in_flight.drain(..) {
                ctx.rec.fail(kind, request.intended, now);
            }
        }
        self.close();
        self.set_timer(ctx, retry);
    }

    /// The window ended at `end`: hands every request of this connection
    /// that was offered and is still open to the recorder (written ones as
    /// unanswered, the rest as unsent), and in open loop the schedule's turns
    /// that came before `end` and were never issued, as unsent.
    pub(crate) fn account_end(&self, ctx: &mut WorkerState<'_>, end: Instant) {
        let plan = ctx.plan;
        let unwritten = self.unwritten.div_ceil(plan.request_len.max(1));
        let written = self.in_flight.len().saturating_sub(unwritten);
        for (index, request) in self.in_flight.iter().enumerate() {
            ctx.rec.unfinished(request.intended, index < written, end);
        }
        let Some(period) = plan.period.filter(|p| !p.is_zero()) else {
            return;
        };
        if self.finished {
            return;
        }
        let mut left = plan.limit.map_or(u64::MAX, |limit| limit.saturating_sub(self.issued));
        let mut intended = self.next_intended;
        if intended < plan.measure_start {
            // Turns inside the warm-up are not offered: skip to the window.
            let behind = (plan.measure_start - intended).as_secs_f64() / period.as_secs_f64();
            intended += period.mul_f64(behind.floor());
        }
        while intended < end && left > 0 {
            ctx.rec.offer(intended);
            ctx.rec.unfinished(intended, false, end);
            intended += period;
            left -= 1;
        }
    }

    /// Whether this connection got an answer inside the window.
    pub(crate) fn served(&self) -> bool {
        self.served
    }

    /// Fails the connection if its connect or its oldest request is overdue.
    pub(crate) fn check_timeout(&mut self, ctx: &mut WorkerState<'_>, now: Instant) {
        if self.stream.is_none() {
            return;
        }
        if self.connecting {
            if now >= self.connect_deadline {
                self.fail(ctx, ErrorKind::ConnectTimeout, now);
            }
        } else if let Some(oldest) = self.in_flight.front()
            && now >= oldest.sent.max(self.open_since) + ctx.plan.timeout
        {
            self.fail(ctx, ErrorKind::ReadTimeout, now);
        }
    }

    /// The timer fired.
    pub(crate) fn on_timer(&mut self, ctx: &mut WorkerState<'_>, now: Instant) {
        self.timer = None;
        self.pump(ctx, now);
    }

    /// Handles readiness of the socket.
    pub(crate) fn on_event(&mut self, ctx: &mut WorkerState<'_>, scratch: &mut [u8], event: &Event) {
        let Some(stream) = &self.stream else { return };
        if self.connecting {
            let now = Instant::now();
            match stream.take_error() {
                Ok(Some(err)) | Err(err) => return self.fail(ctx, ErrorKind::of_connect(&err), now),
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotConnected => return,
                Err(err) => return self.fail(ctx, ErrorKind::of_connect(&err), now),
            }
            self.connecting = false;
            self.open_since = now;
            // Best effort: a socket without TCP_NODELAY still works.
            let _ = stream.set_nodelay(true);
            if ctx.plan.mode.connection_per_request() {
                self.flush(ctx, now);
            } else {
                self.pump(ctx, now);
            }
            return;
        }
        if event.is_writable() && self.unwritten > 0 && !self.flush(ctx, Instant::now()) {
            return;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(ctx, scratch, event.is_read_closed() || event.is_error());
        }
    }

    /// Writes issued requests; `false` when the connection failed.
    fn flush(&mut self, ctx: &mut WorkerState<'_>, now: Instant) -> bool {
        let plan = ctx.plan;
        let requests = &plan.requests;
        while self.unwritten > 0 {
            let Some(stream) = &mut self.stream else { return false };
            match stream.write(&requests[requests.len() - self.unwritten..]) {
                Ok(0) => {
                    self.fail(ctx, ErrorKind::Reset, now);
                    return false;
                }
                Ok(n) => self.unwritten -= n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.fail(ctx, ErrorKind::of_io(&err), now);
                    return false;
                }
            }
        }
        true
    }

    /// Reads until the socket is drained (edge-triggered), handing the bytes
    /// to the parser. A short read means drained, unless the peer closed
    /// (`drain_all`): then read on to the EOF, which no further event would
    /// announce.
    fn read(&mut self, ctx: &mut WorkerState<'_>, scratch: &mut [u8], drain_all: bool) {
        let mut now = None;
        loop {
            let Some(stream) = &mut self.stream else { return };
            let kept = self.leftover.len();
            scratch[..kept].copy_from_slice(&self.leftover);
            if self.leftover.capacity() > LEFTOVER_KEPT {
                self.leftover = Vec::new();
            } else {
                self.leftover.clear();
            }
            let space = scratch.len() - kept;
            match stream.read(&mut scratch[kept..]) {
                Ok(0) => return self.on_eof(ctx, kept > 0),
                Ok(n) => {
                    ctx.rec.bytes += n as u64;
                    let at = Instant::now();
                    now = Some(at);
                    if !self.on_bytes(ctx, &scratch[..kept + n], at) {
                        return;
                    }
                    if n < space && !drain_all {
                        break;
                    }
                }
                Err(err) => {
                    self.leftover.extend_from_slice(&scratch[..kept]);
                    match err.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => continue,
                        // A reset between responses ends an idle keep-alive
                        // connection; no request was lost.
                        _ if self.in_flight.is_empty() && kept == 0 => return self.on_eof(ctx, false),
                        _ => return self.fail(ctx, ErrorKind::of_io(&err), Instant::now()),
                    }
                }
            }
        }
        if let Some(now) = now {
            self.pump(ctx, now);
        }
    }

    /// Parses the bytes read; `false` when the socket was closed meanwhile.
    fn on_bytes(&mut self, ctx: &mut WorkerState<'_>, buf: &[u8], now: Instant) -> bool {
        let mut off = 0;
        while off < buf.len() {
            if self.in_flight.is_empty() {
                self.fail(ctx, ErrorKind::Protocol, now);
                return false;
            }
            match self.parser.feed(&buf[off..]) {
                Ok(Feed::Partial(n)) => {
                    off += n;
                    if off < buf.len() {
                        // An incomplete line (at most MAX_HEAD, or the parser
                        // would have refused it): keep it for the next read.
                        debug_assert!(buf.len() - off <= MAX_HEAD + 1);
                        self.leftover.extend_from_slice(&buf[off..]);
                    }
                    return true;
                }
                Ok(Feed::Complete(n, done)) => {
                    off += n;
                    if !self.complete(ctx, done.status, done.close, now) {
                        return false;
                    }
                }
                Err(_) => {
                    self.fail(ctx, ErrorKind::Protocol, now);
                    return false;
                }
            }
        }
        true
    }

    /// A response completed; `false` when that closed the socket.
    fn complete(&mut self, ctx: &mut WorkerState<'_>, status: u16, close: bool, now: Instant) -> bool {
        let Some(request) = self.in_flight.pop_front() else {
            return true;
        };
        if status >= 400 {
            ctx.rec.fail(ErrorKind::BadStatus, request.intended, now);
        } else if ctx.rec.success(now, request.intended, request.sent) {
            self.served = true;
        }
        if !(close || ctx.plan.mode.connection_per_request()) {
            return true;
        }
        if !self.in_flight.is_empty() {
            // Pipelined requests the server will not answer.
            for request in self.in_flight.drain(..) {
                ctx.rec.fail(ErrorKind::Reset, request.intended, now);
            }
        }
        self.server_closed = !ctx.plan.mode.connection_per_request();
        self.close();
        self.pump(ctx, now);
        false
    }

    /// The server closed the connection.
    fn on_eof(&mut self, ctx: &mut WorkerState<'_>, partial_line: bool) {
        let now = Instant::now();
        match self.parser.eof() {
            Eof::Complete(done) if !partial_line => {
                self.complete(ctx, done.status, true, now);
            }
            Eof::Idle if !partial_line && self.in_flight.is_empty() => {
                // An idle keep-alive connection closed by the server.
                self.server_closed = !ctx.plan.mode.connection_per_request();
                self.close();
                self.pump(ctx, now);
            }
            _ => self.fail(ctx, ErrorKind::Reset, now),
        }
    }
}
