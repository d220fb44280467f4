//! One keep-alive connection as one tokio task: the connection-scope loop
//! (decode every buffered request and answer it, flush, read more) with every
//! wait an `.await`, so a waiting connection holds no thread.
//!
//! A connection waiting for its next request holds no read buffer (it is
//! released, and allocated again when bytes arrive) and no thread: at 10,000
//! idle connections the cost is the task, its socket and its small output
//! buffer.
//!
//! The timeouts are those of connection scope: the idle timeout between
//! requests, the header timeout from a request's first byte to its end
//! (then 408), the write timeout per write that makes no progress, and a
//! short drain wait once shutdown has started. A refused request is answered
//! and the connection closed after a lingering read, as in both scopes.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use crate::http::{CONTINUE, Decoded, HttpError, Request, RequestDecoder};
use crate::server::exchange::{FLUSH_AT, INPUT_SLACK};
use crate::server::read_buffer::ReadBuffer;
use crate::server::{Ending, LINGER, LINGER_BYTES};
use crate::workload::Reply;

use super::Context;

/// When shutdown has started, how long to wait for bytes that are already
/// on their way, before treating the connection as idle.
const DRAIN_WAIT: Duration = Duration::from_millis(1);

/// Serves `stream` until the connection ends. `_alive` tells the front the
/// task still runs.
pub(super) async fn serve(
    stream: TcpStream,
    ctx: Arc<Context>,
    stopped: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let mut connection = Connection::new(stream, &ctx, stopped);
    let ending = connection.run().await;
    connection.close(ending).await;
    ctx.service.stats.connection_closed();
}

struct Connection<'a> {
    stream: TcpStream,
    input: ReadBuffer,
    output: Vec<u8>,
    decoder: RequestDecoder,
    /// When the first byte of the request now being received arrived.
    request_started: Option<Instant>,
    stopped: watch::Receiver<bool>,
    ctx: &'a Context,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, ctx: &'a Context, stopped: watch::Receiver<bool>) -> Self {
        Self {
            stream,
            input: ReadBuffer::new(ctx.limits.max_header_bytes + INPUT_SLACK),
            output: Vec::new(),
            decoder: RequestDecoder::new(ctx.limits),
            request_started: None,
            stopped,
            ctx,
        }
    }

    async fn run(&mut self) -> Ending {
        loop {
            match self.answer_buffered().await {
                Ok(None) => {}
                Ok(Some(ending)) => return ending,
                Err(_) => return Ending::Broken,
            }
            match self.read_more().await {
                Ok(None) => {}
                Ok(Some(ending)) => return ending,
                Err(_) => return Ending::Broken,
            }
        }
    }

    /// Answers every complete request in the buffer, flushing whenever the
    /// output passes [`FLUSH_AT`] and at the end. Returns an ending when the
    /// connection must close.
    async fn answer_buffered(&mut self) -> io::Result<Option<Ending>> {
        let stats = &self.ctx.service.stats;
        loop {
            match self.decoder.decode(self.input.data()) {
                Ok((used, Decoded::Request(request))) => {
                    self.input.consume(used);
                    self.request_started = None;
                    stats.request();
                    stats.request_started();
                    let keep_open = self.answer(&request).await;
                    stats.request_answered();
                    if !keep_open {
                        self.flush().await?;
                        return Ok(Some(self.ending_after_close()));
                    }
                    // As connection scope does: a buffer of pipelined large
                    // answers is written as it grows, not held whole.
                    if self.output.len() >= FLUSH_AT {
                        self.flush().await?;
                    }
                }
                Ok((used, Decoded::Continue)) => {
                    self.input.consume(used);
                    self.output.extend_from_slice(CONTINUE);
                }
                Ok((used, Decoded::NeedMore)) => {
                    self.input.consume(used);
                    self.flush().await?;
                    return Ok(None);
                }
                Err(error) => return self.refuse(error).await.map(Some),
            }
        }
    }

    /// Runs the handler on this worker and awaits the wait it asks for (the
    /// timer, not a blocked thread); returns whether the connection stays open.
    async fn answer(&mut self, request: &Request) -> bool {
        let service = &self.ctx.service;
        let response = match service.reply(request) {
            Some(Reply::Now(response)) => Some(response),
            Some(Reply::After { wait, response }) => {
                tokio::time::sleep(wait).await;
                Some(response)
            }
            None => None,
        };
        service.encode(request, response, &mut self.output)
    }

    /// Waits for more bytes within the timeout that applies now; shutdown
    /// interrupts the wait.
    async fn read_more(&mut self) -> io::Result<Option<Ending>> {
        let idle = self.input.is_empty() && self.decoder.at_message_start();
        let shutting_down = self.ctx.service.shutdown.is_started();
        let limit = match (idle, shutting_down) {
            (true, false) => self.ctx.timeouts.idle,
            (_, true) => DRAIN_WAIT,
            (false, false) => self.request_deadline().saturating_duration_since(Instant::now()),
        };
        if limit.is_zero() {
            return self.refuse(HttpError::Timeout).await.map(Some);
        }
        let read = timeout(limit, read_into(&self.stream, &mut self.input));
        let outcome = if shutting_down {
            read.await
        } else {
            tokio::select! {
                outcome = read => outcome,
                // Look again, now with the drain wait.
                _ = self.stopped.changed() => return Ok(None),
            }
        };
        match outcome {
            Err(_elapsed) if idle || shutting_down => Ok(Some(Ending::Clean)),
            Err(_elapsed) => self.refuse(HttpError::Timeout).await.map(Some),
            Ok(Ok(0)) if self.input.is_full() => self.refuse(HttpError::HeadersTooLarge).await.map(Some),
            Ok(Ok(0)) => Ok(Some(Ending::Clean)),
            Ok(Ok(_)) => {
                self.request_started.get_or_insert_with(Instant::now);
                Ok(None)
            }
            Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => Ok(None),
            Ok(Err(err)) => Err(err),
        }
    }

    /// The time by which the request being received must be complete.
    fn request_deadline(&mut self) -> Instant {
        *self.request_started.get_or_insert_with(Instant::now) + self.ctx.timeouts.header
    }

    async fn refuse(&mut self, error: HttpError) -> io::Result<Ending> {
        self.ctx.service.refuse(error, &mut self.output);
        self.flush().await?;
        Ok(Ending::Linger)
    }

    /// After a response that closes: linger only if the client already sent
    /// more (pipelined requests we will not answer).
    fn ending_after_close(&self) -> Ending {
        if self.input.is_empty() && self.decoder.at_message_start() {
            Ending::Clean
        } else {
            Ending::Linger
        }
    }

    /// Writes the output; a write that makes no progress within the write
    /// timeout fails the connection.
    async fn flush(&mut self) -> io::Result<()> {
        let mut written = 0;
        while written < self.output.len() {
            match timeout(self.ctx.timeouts.write, self.stream.write(&self.output[written..])).await {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(count)) => written += count,
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(err)) => return Err(err),
                Err(_elapsed) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
        self.output.clear();
        Ok(())
    }

    /// Closes the connection: after a refusal or unanswered pipelined bytes,
    /// send FIN first and discard what the client still sends for a moment,
    /// so that our last response is not destroyed by a reset.
    async fn close(mut self, ending: Ending) {
        if ending != Ending::Linger || self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut discarded = 0;
        // On the heap: an array here would make every connection's task
        // (whose size is its largest state) 4 KiB larger.
        let mut sink = vec![0u8; 4096];
        while discarded < LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
                Ok(Ok(count)) if count > 0 => discarded += count,
                _ => return,
            }
        }
    }
}

/// Reads once into `input` when the socket has bytes. `Ok(0)`: end of
/// stream, or a full buffer (told apart by [`ReadBuffer::is_full`]), which
/// is reported at once rather than after waiting for bytes it has no room for.
///
/// The read is tried first (readiness is often already there); when the
/// socket has nothing, an empty buffer is released before the wait.
async fn read_into(stream: &TcpStream, input: &mut ReadBuffer) -> io::Result<usize> {
    loop {
        if input.is_full() {
            return Ok(0);
        }
        match input.read_from(&mut TryRead(stream)) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                input.release_if_empty();
                stream.readable().await?;
            }
            read => return read,
        }
    }
}

/// A non-blocking read of a tokio socket as `std::io::Read`, so that the
/// scopes' [`ReadBuffer`] serves it unchanged.
struct TryRead<'a>(&'a TcpStream);

impl Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}
