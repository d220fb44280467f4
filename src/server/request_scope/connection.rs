//! One connection owned by an event loop: what it has received, the answers
//! it is waiting for (in request order), and what it still has to write.
//!
//! Requests on one connection may finish out of order on different workers;
//! `pending` holds a slot per dispatched request, in the order the requests
//! arrived, and only the ready prefix moves to the output. So pipelined
//! requests are answered in order whatever the strategy does.
//!
//! What the connection holds (its partial request, the answers waiting for
//! their turn, its encoded output) is charged to the server's budget; see
//! [`LoopConnection::charge`].

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use mio::net::TcpStream;

use crate::http::RequestDecoder;
use crate::server::budget::Budget;
use crate::server::linger::Lingering;
use crate::server::output::{Output, WINDOW};

/// The most requests of one connection in flight at once.
pub(super) const MAX_PIPELINED: usize = 64;

/// A response that is ready, waiting for the responses before it.
#[derive(Debug)]
pub(super) struct Ready {
    pub(super) bytes: Vec<u8>,
    /// A body to stream after `bytes` (see `output`); empty if none.
    pub(super) streamed: &'static [u8],
    pub(super) keep_open: bool,
}

#[derive(Debug)]
pub(super) struct LoopConnection {
    /// Unique within the loop; completions carry it.
    pub(super) id: u64,
    pub(super) socket: TcpStream,
    pub(super) decoder: RequestDecoder,
    /// Bytes received and not decoded yet (a partial request, or requests
    /// held back by back-pressure). Usually empty: requests are decoded
    /// straight out of the loop's read buffer.
    pub(super) leftover: Vec<u8>,
    /// One slot per dispatched request, in request order.
    pub(super) pending: VecDeque<Option<Ready>>,
    /// The sequence number of `pending.front()`.
    pub(super) first_sequence: u64,
    pub(super) output: Output,
    /// What this connection has charged to the server's budget.
    pub(super) charged: usize,
    /// The socket may have unread bytes (an edge was seen, no `WouldBlock` yet).
    pub(super) readable: bool,
    /// The client closed its side (read returned 0).
    pub(super) peer_closed: bool,
    /// Decode no more requests: the last one asked to close, was refused, or
    /// the server is shutting down.
    pub(super) closing: bool,
    /// A response that closes the connection is in the output: discard any
    /// later answers and close once it is written.
    pub(super) close_queued: bool,
    /// A request was refused: the client may still be sending its body.
    pub(super) refused: bool,
    /// Waiting in the loop's list for in-flight capacity.
    pub(super) stalled: bool,
    /// When the request now being received started arriving.
    pub(super) request_started: Option<Instant>,
    /// Last time bytes moved either way.
    pub(super) last_active: Instant,
    /// Since when a write has been waiting for the socket to drain.
    pub(super) write_blocked_since: Option<Instant>,
    /// Bulk output is left that the socket may take, but this turn's bulk
    /// piece went to another connection: it waits for a later turn's.
    pub(super) write_deferred: bool,
    /// Has an entry in the loop's `writers` queue (at most one).
    pub(super) in_writers: bool,
    /// Half-closed, discarding input until the client closes, the linger
    /// time passes or the connection's byte budget is spent.
    pub(super) lingering: Option<Lingering>,
}

impl LoopConnection {
    pub(super) fn new(id: u64, socket: TcpStream, decoder: RequestDecoder, now: Instant) -> Self {
        Self {
            id,
            socket,
            decoder,
            leftover: Vec::new(),
            pending: VecDeque::new(),
            first_sequence: 0,
            output: Output::default(),
            charged: 0,
            readable: false,
            peer_closed: false,
            closing: false,
            close_queued: false,
            refused: false,
            stalled: false,
            request_started: None,
            last_active: now,
            write_blocked_since: None,
            write_deferred: false,
            in_writers: false,
            lingering: None,
        }
    }

    /// The sequence number the next dispatched request gets.
    pub(super) fn next_sequence(&self) -> u64 {
        self.first_sequence + self.pending.len() as u64
    }

    /// Whether this connection's limits let it decode another request: its
    /// pipeline depth, its output window, and, once the budget is spent,
    /// whether it is behind (answers in flight or unwritten).
    pub(super) fn accepts_more_requests(&self, budget: &Budget) -> bool {
        let behind = !self.pending.is_empty() || !self.output.is_empty();
        !self.closing
            && self.pending.len() < MAX_PIPELINED
            && self.output.len() < WINDOW
            && !(behind && budget.is_spent())
    }

    /// Charges what the connection holds now to the budget. Answers handed
    /// over by jobs were charged by the job; [`adopt`](Self::adopt) moves
    /// that charge here first.
    pub(super) fn charge(&mut self, budget: &Budget) {
        let waiting: usize = self.pending.iter().flatten().map(|ready| ready.bytes.capacity()).sum();
        let held = self.leftover.capacity() + self.output.held() + waiting;
        budget.recharge(&mut self.charged, held);
    }

    /// Keeps `rest` (a partial request, or requests held back) to decode
    /// later; an empty leftover holds no memory.
    pub(super) fn keep_leftover(&mut self, rest: &[u8]) {
        if rest.is_empty() {
            self.leftover = Vec::new();
        } else {
            self.leftover.clear();
            self.leftover.extend_from_slice(rest);
        }
    }

    /// Takes over the charge of an answer's bytes, made by the job that
    /// encoded them.
    pub(super) fn adopt(&mut self, ready: &Ready) {
        self.charged += ready.bytes.capacity();
    }

    /// Fills the slot of `sequence` and moves every ready answer at the front
    /// to the output. Answers after one that closes are dropped.
    pub(super) fn complete(&mut self, sequence: u64, ready: Ready) {
        if self.close_queued {
            return;
        }
        let Some(slot) = sequence
            .checked_sub(self.first_sequence)
            .and_then(|i| self.pending.get_mut(i as usize))
        else {
            return;
        };
        *slot = Some(ready);
        while let Some(Some(_)) = self.pending.front() {
            let Some(Some(ready)) = self.pending.pop_front() else {
                break;
            };
            self.first_sequence += 1;
            let keep_open = ready.keep_open;
            self.append_output(ready);
            if !keep_open {
                self.close_queued = true;
                self.closing = true;
                self.pending.clear();
                break;
            }
        }
    }

    fn append_output(&mut self, ready: Ready) {
        self.output.append(ready.bytes);
        self.output.stream(ready.streamed);
    }

    pub(super) fn unwritten(&self) -> usize {
        self.output.len()
    }

    /// Writes as much output as the socket takes, but of
    /// [bulk](Output::is_bulk) output one piece per turn of the loop, and
    /// only if `bulk_piece_free` (this connection then takes it). Left with
    /// bulk output the socket would take, it is `write_deferred`.
    pub(super) fn flush(&mut self, now: Instant, bulk_piece_free: &mut bool) -> io::Result<()> {
        self.write_deferred = false;
        loop {
            let bulk = self.output.is_bulk();
            if bulk && !*bulk_piece_free {
                self.write_deferred = true;
                return Ok(());
            }
            match self.output.write_to(&self.socket) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    self.last_active = now;
                    self.write_blocked_since = None;
                    *bulk_piece_free &= !bulk;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked_since.get_or_insert(now);
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Since when the client has left this connection's output unread: not
    /// while the connection only waits for its turn at a bulk piece (then
    /// the loop, not the client, is what holds the output back).
    pub(super) fn write_stalled_since(&self) -> Option<Instant> {
        self.write_blocked_since.filter(|_| !self.write_deferred)
    }

    /// Whether everything is answered and written and the connection should
    /// now close: after a closing answer, or once the client has closed (or
    /// the server is draining) with nothing left in flight.
    pub(super) fn is_done(&self) -> bool {
        self.unwritten() == 0 && (self.close_queued || (self.pending.is_empty() && (self.peer_closed || self.closing)))
    }

    /// Whether nothing is in flight, buffered or half received.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.unwritten() == 0 && self.leftover.is_empty() && self.decoder.at_message_start()
    }

    /// Starts or stops the request clock after decoding: it runs while the
    /// connection waits for the rest of a partial request (`waiting_for_bytes`),
    /// not while complete requests wait for capacity.
    pub(super) fn track_request_start(&mut self, now: Instant, waiting_for_bytes: bool) {
        let partial = !self.leftover.is_empty() || !self.decoder.at_message_start();
        if waiting_for_bytes && partial {
            self.request_started.get_or_insert(now);
        } else {
            self.request_started = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(text: &str, keep_open: bool) -> Ready {
        Ready {
            bytes: text.as_bytes().to_vec(),
            streamed: &[],
            keep_open,
        }
    }

    /// A connection over a real socket, and its peer (which never reads).
    fn connected() -> (LoopConnection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        client.set_nonblocking(true).expect("nonblocking");
        let (peer, _) = listener.accept().expect("accept");
        let decoder = RequestDecoder::new(Default::default());
        (
            LoopConnection::new(1, TcpStream::from_std(client), decoder, Instant::now()),
            peer,
        )
    }

    fn connection() -> LoopConnection {
        connected().0
    }

    fn dispatch(connection: &mut LoopConnection) -> u64 {
        let sequence = connection.next_sequence();
        connection.pending.push_back(None);
        sequence
    }

    #[test]
    fn answers_leave_in_request_order_whatever_order_they_finish_in() {
        let mut c = connection();
        let (a, b, d) = (dispatch(&mut c), dispatch(&mut c), dispatch(&mut c));
        c.complete(d, ready("3", true));
        c.complete(b, ready("2", true));
        assert_eq!(c.unwritten(), 0, "nothing may leave before the first answer");
        c.complete(a, ready("1", true));
        assert_eq!(c.output.piece(), b"123");
        assert!(c.pending.is_empty());
    }

    #[test]
    fn answers_after_a_closing_one_are_dropped() {
        let mut c = connection();
        let (a, b) = (dispatch(&mut c), dispatch(&mut c));
        c.complete(a, ready("bye", false));
        c.complete(b, ready("late", true));
        assert_eq!(c.output.piece(), b"bye");
        assert!(c.close_queued && c.closing);
    }

    static BULK: [u8; 4 * WINDOW] = [b'x'; 4 * WINDOW];

    fn answered(streamed: &'static [u8]) -> (LoopConnection, std::net::TcpStream) {
        let (mut c, peer) = connected();
        let sequence = dispatch(&mut c);
        c.complete(
            sequence,
            Ready {
                streamed,
                ..ready("head;", true)
            },
        );
        (c, peer)
    }

    #[test]
    fn a_turn_writes_one_piece_of_bulk_output_but_every_small_answer() {
        let now = Instant::now();
        let ((mut first, _a), (mut second, _b), (mut small, _c)) = (answered(&BULK), answered(&BULK), answered(&[]));
        let whole = BULK.len() + "head;".len();
        let mut piece_free = true;
        first.flush(now, &mut piece_free).expect("flush");
        assert!(!piece_free && first.write_deferred);
        assert!(
            (whole - WINDOW..whole).contains(&first.unwritten()),
            "one piece, at most a window"
        );
        second.write_blocked_since = Some(now); // as if its socket had been full
        second.flush(now, &mut piece_free).expect("flush");
        assert!(
            second.write_deferred && second.unwritten() == whole,
            "the turn's piece is taken"
        );
        assert_eq!(
            second.write_stalled_since(),
            None,
            "waiting for a turn is not the client's stall"
        );
        small.flush(now, &mut piece_free).expect("flush");
        assert!(
            !small.write_deferred && small.unwritten() == 0,
            "a small answer never waits for a turn"
        );
        let mut next_turn = true;
        second.flush(now, &mut next_turn).expect("flush");
        assert!(!next_turn && second.unwritten() < whole, "the next turn's piece");
        assert_eq!(second.write_blocked_since, None, "a piece was written");
    }
}
