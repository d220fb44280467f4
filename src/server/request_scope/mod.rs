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
//! Per connection, at most 64 requests are in flight and unread output is
//! capped (see [`connection`]).

mod completions;
mod connection;
mod event_loop;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use super::{Core, ServeError, listener};
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
        backlog: u32,
        max_in_flight: usize,
        core: Core,
    ) -> Result<Self, ServeError> {
        let addr: SocketAddr = first_listener.local_addr().map_err(ServeError::Setup)?;
        let mut front = Self { loops: Vec::new() };
        let mut listener = Some(first_listener);
        for index in 0..io_threads.max(1) {
            let std_listener = match listener.take() {
                Some(first) => first,
                None => listener::bind(addr, backlog, true).map_err(|source| ServeError::Bind { addr, source })?,
            };
            let event_loop = build_loop(TcpListener::from_std(std_listener), core.clone(), max_in_flight)?;
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

fn build_loop(mut listener: TcpListener, core: Core, max_in_flight: usize) -> Result<EventLoop, ServeError> {
    let poll = Poll::new().map_err(ServeError::Setup)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(ServeError::Setup)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServeError::Setup)?);
    core.shutdown.wake_on_start(Arc::clone(&waker));
    let completions = Completions::new(waker);
    Ok(EventLoop::new(poll, listener, completions, core, max_in_flight))
}
