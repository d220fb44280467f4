//! Request scope: one job = answer one request.
//!
//! `--io-threads` event loops (mio) own the sockets. Each reads and parses,
//! dispatches one job per complete request to the strategy, and writes the
//! answers the jobs hand back (see [`completions`]). A connection costs no
//! thread, so any strategy serves any number of connections; this is the
//! design answer to "why was my pool slower than a thread per request?".
//!
//! With several loops, each binds its own listener on the same port with
//! `SO_REUSEPORT` and the kernel spreads new connections across them by a
//! hash of the addresses, so no loop contends with another for accepts. (The
//! alternative, one listener polled by every loop, wakes every loop for each
//! connection and lets one of them win.)
//!
//! Per loop, requests in flight are bounded (`--max-in-flight`): past the
//! bound the loop stops decoding and reading until answers come back, so a
//! flood meets back-pressure (TCP windows fill) instead of growing memory.
//! Per connection, at most 64 requests are in flight and unwritten output
//! is held to a window (`output`): past it the connection decodes no new
//! request until the client reads, and a large `/bytes` body is streamed
//! from where it lies rather than copied. Across connections, what they
//! hold is charged to the server's budget (`budget`): once it is spent, a
//! connection that is behind (answers in flight or unwritten) waits for its
//! client, while one that is not is served as always.
//!
//! ## Why it does not step an `Exchange`
//!
//! Connection scope and the tokio server step one
//! [`Exchange`](super::exchange::Exchange) per connection: one request out,
//! its answer in, then the next. Request scope cannot, for three reasons:
//!
//! * **Answers come back out of order, from other threads.** Several
//!   requests of one connection are in flight at once on different workers;
//!   `pending` restores request order and decides keep-alive from the answer
//!   that reaches the front of it, long after the decoder moved on. The
//!   exchange decides keep-alive as each answer comes in, in order, on the
//!   connection's own thread.
//! * **Input is read into the loop's one buffer**, shared by every
//!   connection and decoded in place; a connection keeps only a partial
//!   request. An exchange owns an input buffer per connection (up to a head's
//!   size), which at 10,000 connections is the memory this scope avoids.
//! * **Timeouts are a periodic sweep**, not a wait: nothing here blocks on
//!   one connection, so the loop checks every connection's clocks (idle,
//!   header, write, linger) every sweep interval rather than asking each what
//!   it waits for.
//!
//! What it shares with the other two: the request → response path and the
//! counters (`Service`), the codec's decoder, and the lingering close with
//! its per-connection byte budget (`linger::Lingering`).

mod completions;
mod connection;
mod event_loop;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use super::listener::{self, ListenSettings};
use super::{ServeError, Shared};
use completions::Completions;
use event_loop::{EventLoop, LISTENER, WAKER};

/// The running event loops.
#[derive(Debug)]
pub(super) struct RequestFront {
    loops: Vec<JoinHandle<()>>,
}

impl RequestFront {
    /// Starts `io_threads` loops, the first on `first_listener`, the others on
    /// listeners of their own bound to the same address with SO_REUSEPORT.
    pub(super) fn start(
        first_listener: std::net::TcpListener,
        io_threads: usize,
        listen: ListenSettings,
        max_in_flight: usize,
        shared: Shared,
    ) -> Result<Self, ServeError> {
        let addr: SocketAddr = first_listener.local_addr().map_err(ServeError::Setup)?;
        let mut front = Self { loops: Vec::new() };
        let mut listener = Some(first_listener);
        for index in 0..io_threads.max(1) {
            let std_listener = match listener.take() {
                Some(first) => first,
                None => listener::bind(addr, listen, true).map_err(|source| ServeError::Bind { addr, source })?,
            };
            let event_loop = build_loop(TcpListener::from_std(std_listener), shared.clone(), max_in_flight)?;
            let handle = thread::Builder::new()
                .name(format!("dispatchlab-io-{index}"))
                .spawn(move || event_loop.run())
                .map_err(ServeError::Setup)?;
            front.loops.push(handle);
        }
        Ok(front)
    }

    /// Waits for the loops to finish draining (shutdown has been raised).
    pub(super) fn stop(self) {
        for event_loop in self.loops {
            let _ = event_loop.join();
        }
    }
}

fn build_loop(mut listener: TcpListener, shared: Shared, max_in_flight: usize) -> Result<EventLoop, ServeError> {
    let poll = Poll::new().map_err(ServeError::Setup)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(ServeError::Setup)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServeError::Setup)?);
    shared.shutdown.wake_on_start(Arc::clone(&waker));
    let completions = Completions::new(waker);
    Ok(EventLoop::new(poll, listener, completions, shared, max_in_flight))
}
