//! One event loop: a mio poll over a listener, its connections and a waker.
//!
//! Each turn of the loop:
//! 1. waits for events (or the next timer);
//! 2. accepts new connections;
//! 3. for each connection with an event, reads and decodes, dispatching one
//!    job per complete request, and writes what is ready;
//! 4. takes the responses jobs have finished, puts each in its connection's
//!    queue, and writes the ready prefix;
//! 5. resumes connections that waited for in-flight capacity;
//! 6. gives the turn's one piece of bulk output, if no connection above
//!    took it, to the connection that has waited longest for it;
//! 7. every sweep interval, enforces the timeouts.
//!
//! One piece of bulk output per turn (see `output`): a connection with a
//! large answer to write writes a window of it and queues for the next
//! turn, which polls without waiting. So a thousand clients that each ask
//! for a megabyte are written a window at a time, round-robin, and a reading
//! client's request waits for one window's copy before it is read (and one
//! more before a worker's answer is seen), not for all of theirs.
//!
//! Step 4 can itself produce answers: a connection whose pipeline was held at
//! its limit decodes again once answers leave, and an `inline` job answers
//! at once. The next turn then polls without waiting, so those answers go
//! out at once and other connections' events are still seen in between.
//!
//! Reads land in one buffer shared by the loop's connections and requests
//! are decoded straight out of it; only the bytes of a partial request are
//! copied into the connection. An idle connection holds no buffer.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::dispatch::Dispatcher;
use crate::http::{CONTINUE, Decoded, HttpError, Method, Request, RequestDecoder};
use crate::server::Shared;
use crate::server::accept::{AcceptBackoff, AcceptFailure};
use crate::server::linger::Lingering;
use crate::server::service::Service;

use super::completions::{Completion, Completions};
use super::connection::{LoopConnection, Ready};

pub(super) const LISTENER: Token = Token(0);
pub(super) const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// The loop's read buffer: one read's worth for any connection.
const READ_BUFFER: usize = 64 * 1024;
/// How many times one turn decodes again on a connection whose output was
/// written in full (a client that reads as fast as it is answered); then it
/// waits for the next turn, so that it does not starve the others.
const TURNS_PER_CONNECTION: usize = 4;
/// Longest pause between two timeout sweeps.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// What a job needs to answer a request and hand the answer back.
#[derive(Debug)]
struct RequestJob {
    service: Service,
    completions: Arc<Completions>,
}

impl RequestJob {
    /// The job body: run the handler, encode, charge the answer to the
    /// budget, hand back.
    fn answer(&self, key: usize, connection_id: u64, sequence: u64, request: Request) {
        let mut bytes = Vec::with_capacity(256);
        let encoded = self.service.answer(&request, &mut bytes);
        self.service.budget.charge(bytes.capacity());
        self.completions.push(Completion {
            key,
            connection_id,
            sequence,
            bytes,
            streamed: encoded.streamed,
            keep_open: encoded.keep_open,
        });
    }
}

/// The loop's state apart from its connections, so that both can be
/// borrowed at once.
#[derive(Debug)]
struct Dispatching {
    dispatcher: Arc<dyn Dispatcher>,
    job: Arc<RequestJob>,
    in_flight: usize,
    max_in_flight: usize,
    /// Connections that stopped decoding because `in_flight` hit the bound.
    stalled: VecDeque<usize>,
    read_buffer: Box<[u8]>,
}

/// Why decoding stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// The bytes end inside a request: read more.
    NeedMore,
    /// A limit says wait (in-flight bound, pipelining depth, unread output).
    Held,
    /// No more requests on this connection.
    Closing,
}

#[derive(Debug)]
pub(super) struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    connections: Slab<LoopConnection>,
    dispatching: Dispatching,
    completions: Arc<Completions>,
    finished: Vec<Completion>,
    touched: Vec<usize>,
    /// Connections (key, id) with bulk output waiting for a turn's piece,
    /// oldest first; one entry per connection (`in_writers`).
    writers: VecDeque<(usize, u64)>,
    /// This turn's piece of bulk output is not taken yet.
    bulk_piece_free: bool,
    shared: Shared,
    next_connection_id: u64,
    backoff: AcceptBackoff,
    accept_paused_until: Option<Instant>,
    sweep_interval: Duration,
    next_sweep: Instant,
    draining: bool,
}

impl EventLoop {
    pub(super) fn new(
        poll: Poll,
        listener: TcpListener,
        completions: Arc<Completions>,
        shared: Shared,
        max_in_flight: usize,
    ) -> Self {
        let job = Arc::new(RequestJob {
            service: shared.service.clone(),
            completions: Arc::clone(&completions),
        });
        let sweep_interval = (shared.timeouts.header / 4).clamp(Duration::from_millis(10), MAX_SWEEP_INTERVAL);
        shared.service.budget.charge(READ_BUFFER);
        Self {
            poll,
            listener: Some(listener),
            connections: Slab::new(),
            dispatching: Dispatching {
                dispatcher: Arc::clone(&shared.dispatcher),
                job,
                in_flight: 0,
                max_in_flight: max_in_flight.max(1),
                stalled: VecDeque::new(),
                read_buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            },
            completions,
            finished: Vec::new(),
            touched: Vec::new(),
            writers: VecDeque::new(),
            bulk_piece_free: true,
            shared,
            next_connection_id: 0,
            backoff: AcceptBackoff::new(),
            accept_paused_until: None,
            sweep_interval,
            next_sweep: Instant::now() + sweep_interval,
            draining: false,
        }
    }

    /// Runs until shutdown has closed every connection.
    pub(super) fn run(mut self) {
        self.completions.owned_by_this_thread();
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(err) = self.poll.poll(&mut events, Some(self.timeout()))
                && err.kind() != io::ErrorKind::Interrupted
            {
                eprintln!("dispatchlab: event loop poll failed: {err}; loop stopping");
                return;
            }
            let now = Instant::now();
            self.bulk_piece_free = true;
            let mut accept_ready = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => accept_ready = true,
                    WAKER => {}
                    Token(token) => {
                        let key = token - FIRST_CONNECTION;
                        if let Some(connection) = self.connections.get_mut(key) {
                            connection.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
                            self.touched.push(key);
                        }
                    }
                }
            }
            if accept_ready || self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept(now);
            }
            self.advance_touched(now);
            self.apply_completions(now);
            self.resume_stalled(now);
            self.give_bulk_piece(now);
            if now >= self.next_sweep {
                self.sweep(now);
            }
            if self.shared.shutdown.is_started() && !self.draining {
                self.start_draining(now);
            }
            if self.draining && self.connections.is_empty() {
                return;
            }
        }
    }

    /// How long the next poll may wait: until the next sweep or accept
    /// retry, or not at all while answers are queued. Those can only be
    /// answers this thread produced itself after it last drained the queue
    /// (an `inline` job, run while a connection resumed its pipeline): a
    /// push from another thread wakes the loop, a push from the loop's own
    /// thread does not (see `completions`).
    fn timeout(&self) -> Duration {
        if self.completions.has_queued() || !self.touched.is_empty() || !self.writers.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut until = self.next_sweep;
        if let Some(paused) = self.accept_paused_until {
            until = until.min(paused);
        }
        until.saturating_duration_since(now)
    }

    fn accept(&mut self, now: Instant) {
        self.accept_paused_until = None;
        let Some(listener) = self.listener.take() else { return };
        loop {
            match listener.accept() {
                Ok((socket, _peer)) => {
                    self.backoff.succeeded();
                    self.register(socket, now);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => {
                    self.shared.service.stats.accept_failed();
                    if let AcceptFailure::BackOff(pause) = self.backoff.failed(&err) {
                        self.accept_paused_until = Some(now + pause);
                        break;
                    }
                }
            }
        }
        self.listener = Some(listener);
    }

    fn register(&mut self, mut socket: mio::net::TcpStream, now: Instant) {
        if socket.set_nodelay(true).is_err() {
            return;
        }
        let entry = self.connections.vacant_entry();
        let token = Token(entry.key() + FIRST_CONNECTION);
        if self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return;
        }
        self.next_connection_id += 1;
        let decoder = RequestDecoder::new(self.shared.limits);
        entry.insert(LoopConnection::new(self.next_connection_id, socket, decoder, now));
        self.shared.service.stats.connection_opened();
    }

    /// Advances the connections that had events; those that asked for
    /// another turn meanwhile are kept for the next one.
    fn advance_touched(&mut self, now: Instant) {
        let mut touched = std::mem::take(&mut self.touched);
        for &key in &touched {
            self.advance(key, now);
        }
        touched.clear();
        touched.append(&mut self.touched);
        self.touched = touched;
    }

    /// Reads, decodes and dispatches what the connection allows, writes what
    /// is ready, and closes it when it is done.
    fn advance(&mut self, key: usize, now: Instant) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        if let Some(lingering) = &mut connection.lingering {
            if discard_input(&mut connection.socket, lingering, &mut self.dispatching.read_buffer) {
                self.close(key);
            }
            return;
        }
        let service = &self.shared.service;
        let mut turns = 0;
        let healthy = loop {
            let pumped = pump(connection, key, &mut self.dispatching, service, now);
            let healthy = pumped.is_ok() && connection.flush(now, &mut self.bulk_piece_free).is_ok();
            connection.charge(&service.budget);
            // Held by its own output, which is now written: decode again
            // (not when the loop's in-flight bound holds it: `stalled` resumes it).
            let released = pumped.is_ok_and(|stop| stop == Stop::Held)
                && connection.output.is_empty()
                && connection.accepts_more_requests(&service.budget)
                && self.dispatching.in_flight < self.dispatching.max_in_flight;
            if !healthy || !released {
                break healthy;
            }
            turns += 1;
            if turns == TURNS_PER_CONNECTION {
                self.touched.push(key);
                break true;
            }
        };
        if !healthy {
            self.close(key);
        } else if connection.is_done() {
            self.finish(key, now);
        } else if connection.write_deferred && !connection.in_writers {
            connection.in_writers = true;
            self.writers.push_back((key, connection.id));
        }
    }

    /// Advances the connection that has waited longest for a piece of bulk
    /// output, unless a connection took this turn's piece already. An entry
    /// whose connection wrote meanwhile (or closed) is dropped on the way.
    fn give_bulk_piece(&mut self, now: Instant) {
        while self.bulk_piece_free {
            let Some((key, id)) = self.writers.pop_front() else {
                return;
            };
            let Some(connection) = self.connections.get_mut(key).filter(|connection| connection.id == id) else {
                continue;
            };
            connection.in_writers = false;
            if connection.write_deferred {
                self.advance(key, now);
            }
        }
    }

    /// Takes finished responses and queues each on its connection.
    fn apply_completions(&mut self, now: Instant) {
        self.completions.take(&mut self.finished);
        let mut finished = std::mem::take(&mut self.finished);
        for completion in finished.drain(..) {
            self.dispatching.in_flight -= 1;
            self.shared.service.stats.request_answered();
            let ready = Ready {
                bytes: completion.bytes,
                streamed: completion.streamed,
                keep_open: completion.keep_open,
            };
            let Some(connection) = self
                .connections
                .get_mut(completion.key)
                .filter(|connection| connection.id == completion.connection_id)
            else {
                self.shared.service.budget.release(ready.bytes.capacity());
                continue;
            };
            connection.adopt(&ready);
            connection.complete(completion.sequence, ready);
            self.touched.push(completion.key);
        }
        self.finished = finished;
        self.advance_touched(now);
    }

    fn resume_stalled(&mut self, now: Instant) {
        while self.dispatching.in_flight < self.dispatching.max_in_flight {
            let Some(key) = self.dispatching.stalled.pop_front() else {
                return;
            };
            if let Some(connection) = self.connections.get_mut(key) {
                connection.stalled = false;
                self.advance(key, now);
            }
        }
    }

    /// Closes the connection at once, or half-closes and lingers if the
    /// client may still be sending (so that our last answer is not reset).
    fn finish(&mut self, key: usize, now: Instant) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        let may_send_more = !connection.peer_closed
            && (connection.refused || !connection.leftover.is_empty() || has_unread_input(connection));
        if may_send_more && connection.socket.shutdown(std::net::Shutdown::Write).is_ok() {
            connection.lingering = Some(Lingering::start(now));
            connection.leftover = Vec::new();
        } else {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(connection) = self.connections.try_remove(key) {
            self.shared.service.budget.release(connection.charged);
            self.shared.service.stats.connection_closed();
        }
    }

    /// Enforces the header, idle, write and linger timeouts.
    fn sweep(&mut self, now: Instant) {
        self.next_sweep = now + self.sweep_interval;
        let timeouts = self.shared.timeouts;
        let mut expired = Vec::new();
        let mut too_slow = Vec::new();
        for (key, connection) in &self.connections {
            let past = |since: Instant, limit: Duration| now.saturating_duration_since(since) >= limit;
            if connection
                .lingering
                .is_some_and(|lingering| lingering.left(now).is_none())
                || connection
                    .write_stalled_since()
                    .is_some_and(|since| past(since, timeouts.write))
                || (connection.is_idle() && past(connection.last_active, timeouts.idle))
            {
                expired.push(key);
            } else if !connection.closing
                && connection
                    .request_started
                    .is_some_and(|since| past(since, timeouts.header))
            {
                too_slow.push(key);
            }
        }
        for key in expired {
            self.close(key);
        }
        for key in too_slow {
            if let Some(connection) = self.connections.get_mut(key) {
                refuse(connection, HttpError::Timeout, &self.shared.service);
                self.advance(key, now);
            }
        }
    }

    /// Shutdown: stop accepting, close idle connections, let the others
    /// finish what is in flight (answered with `Connection: close`).
    fn start_draining(&mut self, now: Instant) {
        self.draining = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(connection) = self.connections.get_mut(key) {
                connection.closing = true;
                if connection.is_done() && connection.lingering.is_none() {
                    self.close(key);
                }
            }
        }
        self.advance_all(now);
    }

    fn advance_all(&mut self, now: Instant) {
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.advance(key, now);
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let budget = &self.shared.service.budget;
        budget.release(READ_BUFFER);
        for (_, connection) in &self.connections {
            budget.release(connection.charged);
        }
    }
}

/// Decodes what the connection holds and reads more while it may, dispatching
/// a job per complete request; says why it stopped.
fn pump(
    connection: &mut LoopConnection,
    key: usize,
    dispatching: &mut Dispatching,
    service: &Service,
    now: Instant,
) -> io::Result<Stop> {
    let mut stop = decode_leftover(connection, key, dispatching, service);
    while stop == Stop::NeedMore && connection.readable && !connection.peer_closed {
        stop = read_and_decode(connection, key, dispatching, service, now)?;
    }
    if stop == Stop::Held && !connection.stalled && dispatching.in_flight >= dispatching.max_in_flight {
        connection.stalled = true;
        dispatching.stalled.push_back(key);
    }
    connection.track_request_start(now, stop == Stop::NeedMore);
    Ok(stop)
}

fn decode_leftover(
    connection: &mut LoopConnection,
    key: usize,
    dispatching: &mut Dispatching,
    service: &Service,
) -> Stop {
    let leftover = std::mem::take(&mut connection.leftover);
    let (used, stop) = decode(connection, &leftover, key, dispatching, service);
    connection.keep_leftover(&leftover[used..]);
    stop
}

/// One read into the loop's buffer (after the connection's partial request),
/// then decoding; what is left over is kept by the connection.
fn read_and_decode(
    connection: &mut LoopConnection,
    key: usize,
    dispatching: &mut Dispatching,
    service: &Service,
    now: Instant,
) -> io::Result<Stop> {
    let kept = connection.leftover.len();
    if kept >= dispatching.read_buffer.len() {
        // Unreachable with the decoder's limits (a partial request is at most
        // one head), but never index past the buffer.
        refuse(connection, HttpError::HeadersTooLarge, service);
        return Ok(Stop::Closing);
    }
    let mut buffer = std::mem::take(&mut dispatching.read_buffer);
    buffer[..kept].copy_from_slice(&connection.leftover);
    let result = connection.socket.read(&mut buffer[kept..]);
    let stop = match result {
        Ok(0) => {
            connection.peer_closed = true;
            connection.readable = false;
            Stop::NeedMore
        }
        Ok(count) => {
            connection.last_active = now;
            // A read that did not fill the buffer took everything the socket
            // had; with edge-triggered polling, bytes arriving later raise a
            // new event. This saves the `read` that would return WouldBlock
            // (one system call per request, as nginx does).
            connection.readable = kept + count == buffer.len();
            let received = &buffer[..kept + count];
            let (used, stop) = decode(connection, received, key, dispatching, service);
            connection.keep_leftover(&received[used..]);
            stop
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
            connection.readable = false;
            Stop::NeedMore
        }
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Stop::NeedMore,
        Err(err) => {
            dispatching.read_buffer = buffer;
            return Err(err);
        }
    };
    dispatching.read_buffer = buffer;
    Ok(stop)
}

/// Decodes requests from `input` while the limits allow; returns the bytes
/// consumed and why it stopped.
fn decode(
    connection: &mut LoopConnection,
    input: &[u8],
    key: usize,
    dispatching: &mut Dispatching,
    service: &Service,
) -> (usize, Stop) {
    let mut used = 0;
    loop {
        if connection.closing {
            return (used, Stop::Closing);
        }
        if !connection.accepts_more_requests(&service.budget) || dispatching.in_flight >= dispatching.max_in_flight {
            return (used, Stop::Held);
        }
        match connection.decoder.decode(&input[used..]) {
            Ok((count, Decoded::Request(request))) => {
                used += count;
                connection.closing |= !request.keep_alive;
                dispatching.dispatch(connection, key, request);
            }
            Ok((count, Decoded::Continue)) => {
                used += count;
                let sequence = connection.next_sequence();
                connection.pending.push_back(None);
                connection.complete(
                    sequence,
                    Ready {
                        bytes: CONTINUE.to_vec(),
                        streamed: &[],
                        keep_open: true,
                    },
                );
            }
            Ok((count, Decoded::NeedMore)) => return (used + count, Stop::NeedMore),
            Err(error) => {
                refuse(connection, error, service);
                return (used, Stop::Closing);
            }
        }
    }
}

/// Queues the answer to a refused request (after the answers before it),
/// the head alone if the request half received is `HEAD`.
fn refuse(connection: &mut LoopConnection, error: HttpError, service: &Service) {
    let mut bytes = Vec::new();
    let method = connection.decoder.pending_method(&connection.leftover);
    service.refuse(error.of(method), &mut bytes);
    let sequence = connection.next_sequence();
    connection.pending.push_back(None);
    connection.complete(
        sequence,
        Ready {
            bytes,
            streamed: &[],
            keep_open: false,
        },
    );
    connection.closing = true;
    connection.refused = true;
}

impl Dispatching {
    fn dispatch(&mut self, connection: &mut LoopConnection, key: usize, request: Request) {
        let sequence = connection.next_sequence();
        connection.pending.push_back(None);
        self.in_flight += 1;
        let stats = &self.job.service.stats;
        stats.request();
        stats.request_started();
        let job = Arc::clone(&self.job);
        let connection_id = connection.id;
        let head_only = request.method == Method::Head;
        let outcome = self
            .dispatcher
            .dispatch(Box::new(move || job.answer(key, connection_id, sequence, request)));
        if let Err(rejected) = outcome {
            self.in_flight -= 1;
            self.job.service.stats.request_answered();
            let mut bytes = Vec::new();
            self.job.service.unavailable(&rejected, head_only, &mut bytes);
            connection.complete(
                sequence,
                Ready {
                    bytes,
                    streamed: &[],
                    keep_open: false,
                },
            );
            connection.refused = true;
        }
    }
}

/// Whether bytes are waiting to be read (one non-blocking peek).
fn has_unread_input(connection: &LoopConnection) -> bool {
    let mut byte = [0u8; 1];
    matches!(connection.socket.peek(&mut byte), Ok(count) if count > 0)
}

/// Reads and drops input while lingering, counting it against the
/// connection's budget; true when the connection can go (client closed,
/// error, or the budget spent).
fn discard_input(socket: &mut mio::net::TcpStream, lingering: &mut Lingering, buffer: &mut [u8]) -> bool {
    loop {
        match socket.read(buffer) {
            Ok(count) if lingering.discarded(count) => {}
            Ok(_) => return true,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}
