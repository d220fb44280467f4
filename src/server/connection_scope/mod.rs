//! Connection scope: one job = serve one connection until it closes.
//!
//! Acceptor threads (`--accept-threads`) accept connections and hand each to
//! the strategy as a job; the job serves the connection with blocking reads
//! and writes (see [`connection`]). This is what the classic examples do —
//! the Rust Book's server among them — and where keep-alive starves a pool:
//! a pool of N workers serves N connections at a time, the others wait.
//!
//! A connection the strategy refuses is answered 503 by the acceptor and
//! closed.

mod connection;
mod registry;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;

use crate::dispatch::Rejected;
use crate::http::{Method, RequestDecoder};

use super::accept::{AcceptBackoff, AcceptFailure};
use super::listener::configure_accepted;
use super::{ServeError, Shared};
use registry::Registry;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// What every connection job shares: the server's shared parts and the
/// registry of open connections.
#[derive(Debug)]
pub(super) struct ConnectionJobs {
    shared: Shared,
    registry: Registry,
}

/// The running acceptors.
#[derive(Debug)]
pub(super) struct ConnectionFront {
    acceptors: Vec<JoinHandle<()>>,
    jobs: Arc<ConnectionJobs>,
}

impl ConnectionFront {
    /// Starts `accept_threads` acceptors sharing `listener`.
    pub(super) fn start(
        listener: std::net::TcpListener,
        accept_threads: usize,
        shared: Shared,
    ) -> Result<Self, ServeError> {
        let jobs = Arc::new(ConnectionJobs {
            shared,
            registry: Registry::default(),
        });
        let mut front = Self {
            acceptors: Vec::new(),
            jobs,
        };
        for index in 0..accept_threads.max(1) {
            let listener = listener.try_clone().map_err(ServeError::Setup)?;
            let acceptor = Acceptor::new(TcpListener::from_std(listener), Arc::clone(&front.jobs))?;
            let handle = thread::Builder::new()
                .name(format!("dispatchlab-acceptor-{index}"))
                .spawn(move || acceptor.run())
                .map_err(ServeError::Setup)?;
            front.acceptors.push(handle);
        }
        Ok(front)
    }

    /// Stops accepting and interrupts connections waiting for a request.
    /// Connections in the middle of a request finish it (answered with
    /// `Connection: close`); the dispatcher's shutdown then waits for them.
    pub(super) fn stop(self) {
        for acceptor in self.acceptors {
            let _ = acceptor.join();
        }
        self.jobs.registry.shut_down_reads();
    }
}

/// One accept loop: a mio poll over the shared listener and a shutdown waker.
struct Acceptor {
    listener: TcpListener,
    poll: Poll,
    jobs: Arc<ConnectionJobs>,
}

impl Acceptor {
    fn new(mut listener: TcpListener, jobs: Arc<ConnectionJobs>) -> Result<Self, ServeError> {
        let poll = Poll::new().map_err(ServeError::Setup)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ServeError::Setup)?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(ServeError::Setup)?;
        jobs.shared.shutdown.wake_on_start(Arc::new(waker));
        Ok(Self { listener, poll, jobs })
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(16);
        let mut backoff = AcceptBackoff::new();
        let mut paused_until: Option<Instant> = None;
        loop {
            let timeout = paused_until.map(|until| until.saturating_duration_since(Instant::now()));
            if let Err(err) = self.poll.poll(&mut events, timeout)
                && err.kind() != io::ErrorKind::Interrupted
            {
                eprintln!("dispatchlab: acceptor poll failed: {err}; acceptor stopping");
                return;
            }
            if self.jobs.shared.shutdown.is_started() {
                return;
            }
            if paused_until.is_some_and(|until| Instant::now() < until) {
                continue;
            }
            paused_until = self.accept_pending(&mut backoff).map(|pause| Instant::now() + pause);
        }
    }

    /// Accepts until the queue is empty; returns a pause when a resource is
    /// exhausted.
    fn accept_pending(&mut self, backoff: &mut AcceptBackoff) -> Option<Duration> {
        loop {
            match self.listener.accept() {
                Ok((stream, _peer)) => {
                    backoff.succeeded();
                    self.hand_off(stream);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return None,
                Err(err) => {
                    self.jobs.shared.service.stats.accept_failed();
                    if let AcceptFailure::BackOff(pause) = backoff.failed(&err) {
                        return Some(pause);
                    }
                }
            }
        }
    }

    /// Gives the connection to the strategy, or answers 503 if it refuses.
    fn hand_off(&self, stream: mio::net::TcpStream) {
        // SAFETY: the descriptor moves from mio's stream to std's; nothing
        // else owns it.
        let stream = unsafe { TcpStream::from_raw_fd(stream.into_raw_fd()) };
        if stream
            .set_nonblocking(false)
            .and_then(|()| configure_accepted(&stream))
            .is_err()
        {
            return;
        }
        self.jobs.shared.service.stats.connection_opened();
        // The stream travels through a slot so that a refused job can be
        // answered: the closure that would have served it comes back opaque.
        let slot = Arc::new(Mutex::new(Some(stream)));
        let (job_slot, jobs) = (Arc::clone(&slot), Arc::clone(&self.jobs));
        let stats = &self.jobs.shared.service.stats;
        stats.connection_queued();
        let job = Box::new(move || {
            if let Some(stream) = job_slot.lock().take() {
                jobs.shared.service.stats.connection_dequeued();
                connection::serve(stream, &jobs);
            }
        });
        if let Err(rejected) = self.jobs.shared.dispatcher.dispatch(job)
            && let Some(stream) = slot.lock().take()
        {
            stats.connection_dequeued();
            self.refuse(stream, &rejected);
        }
    }

    /// Answers 503 without blocking the acceptor (the head alone if the
    /// request already in is `HEAD`), then closes.
    fn refuse(&self, mut stream: TcpStream, rejected: &Rejected) {
        let writable = stream.set_nonblocking(true).is_ok();
        let method = if writable {
            self.discard_request(&mut stream)
        } else {
            Method::Other
        };
        let mut response = Vec::new();
        let head_only = method == Method::Head;
        self.jobs.shared.service.unavailable(rejected, head_only, &mut response);
        if writable {
            let _ = stream.write_all(&response);
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        self.jobs.shared.service.stats.connection_closed();
    }

    /// Discards what the client has sent so far (closing with unread bytes
    /// would reset the connection and lose the 503); returns the method of
    /// the request it began with.
    fn discard_request(&self, stream: &mut TcpStream) -> Method {
        let mut sink = [0u8; 4096];
        let mut method = Method::Other;
        for read in 0..16 {
            let Ok(n @ 1..) = stream.read(&mut sink) else {
                break;
            };
            if read == 0 {
                method = RequestDecoder::new(self.jobs.shared.limits).pending_method(&sink[..n]);
            }
        }
        method
    }
}
