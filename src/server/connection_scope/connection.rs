//! One keep-alive connection served on one thread with blocking I/O: the job
//! of connection scope.
//!
//! The connection is an iterator of requests: decode every complete request
//! in the buffer and answer it, flush the answers, then block for more bytes.
//! It ends on `Connection: close`, HTTP/1.0 without keep-alive, end of
//! stream, a refused request, a timeout or shutdown.
//!
//! While it lasts, the thread that runs it can serve no other connection:
//! with a pool of N workers, connection N + 1 waits in the queue until one of
//! the first N closes. That is the head-of-line blocking this study measures.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::http::HttpError;
use crate::server::exchange::{Exchange, Turn};
use crate::server::{Ending, LINGER, LINGER_BYTES};

use super::Context;

/// When shutdown has started, how long to wait for bytes that are already
/// on their way, before treating the connection as idle.
const DRAIN_WAIT: Duration = Duration::from_millis(1);

/// Serves `stream` until the connection ends.
pub(super) fn serve(stream: TcpStream, ctx: &Context) {
    let registration = ctx.registry.register(&stream);
    let mut connection = Connection::new(stream, ctx);
    let ending = connection.run();
    drop(registration);
    connection.close(ending);
    ctx.core.service.stats.connection_closed();
}

struct Connection<'a> {
    stream: TcpStream,
    exchange: Exchange,
    /// When the first byte of the request now being received arrived.
    request_started: Option<Instant>,
    ctx: &'a Context,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, ctx: &'a Context) -> Self {
        Self {
            stream,
            exchange: Exchange::new(ctx.core.service.clone(), ctx.core.limits),
            request_started: None,
            ctx,
        }
    }

    fn run(&mut self) -> Ending {
        if self
            .stream
            .set_write_timeout(Some(self.ctx.core.timeouts.write))
            .is_err()
        {
            return Ending::Broken;
        }
        loop {
            let step = match self.answer_buffered() {
                Ok(None) => self.read_more(),
                other => other,
            };
            match step {
                Ok(None) => {}
                Ok(Some(ending)) => return ending,
                Err(_) => return Ending::Broken,
            }
        }
    }

    /// Answers every complete request in the buffer, flushing as the
    /// exchange asks. Returns an ending when the connection must close.
    fn answer_buffered(&mut self) -> io::Result<Option<Ending>> {
        loop {
            let answered_before = self.exchange.requests_answered();
            let turn = self.exchange.answer();
            if self.exchange.requests_answered() != answered_before {
                // The next request's clock starts when its bytes are awaited.
                self.request_started = None;
            }
            self.flush()?;
            match turn {
                Turn::Flush => {}
                Turn::NeedMore => return Ok(None),
                Turn::Close { linger: false } => return Ok(Some(Ending::Clean)),
                Turn::Close { linger: true } => return Ok(Some(Ending::Linger)),
            }
        }
    }

    /// Blocks for more bytes within the timeout that applies now.
    fn read_more(&mut self) -> io::Result<Option<Ending>> {
        let idle = self.exchange.is_between_requests();
        let shutting_down = self.ctx.core.shutdown.is_started();
        let timeout = match (idle, shutting_down) {
            (true, false) => self.ctx.core.timeouts.idle,
            (_, true) => DRAIN_WAIT,
            (false, false) => self.request_deadline().saturating_duration_since(Instant::now()),
        };
        if timeout.is_zero() {
            return self.refuse(HttpError::Timeout).map(Some);
        }
        self.stream.set_read_timeout(Some(timeout))?;
        match self.exchange.read_from(&mut self.stream) {
            Ok(0) if self.exchange.is_full() => self.refuse(HttpError::HeadersTooLarge).map(Some),
            Ok(0) => Ok(Some(Ending::Clean)),
            Ok(_) => {
                self.request_started.get_or_insert_with(Instant::now);
                Ok(None)
            }
            Err(err) if is_timeout(&err) && (idle || shutting_down) => Ok(Some(Ending::Clean)),
            Err(err) if is_timeout(&err) => self.refuse(HttpError::Timeout).map(Some),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The time by which the request being received must be complete.
    fn request_deadline(&mut self) -> Instant {
        *self.request_started.get_or_insert_with(Instant::now) + self.ctx.core.timeouts.header
    }

    fn refuse(&mut self, error: HttpError) -> io::Result<Ending> {
        self.exchange.refuse(error);
        self.flush()?;
        Ok(Ending::Linger)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.exchange.output().is_empty() {
            self.stream.write_all(self.exchange.output())?;
            self.exchange.clear_output();
        }
        Ok(())
    }

    /// Closes the connection: after a refusal or unanswered pipelined bytes,
    /// send FIN first and discard what the client still sends for a moment,
    /// so that our last response is not destroyed by a reset.
    fn close(mut self, ending: Ending) {
        if ending != Ending::Linger || self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        let mut sink = [0u8; 4096];
        while discarded < LINGER_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(count) => discarded += count,
            }
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
