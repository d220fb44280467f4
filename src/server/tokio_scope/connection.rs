//! One keep-alive connection as one tokio task: the steps of the
//! [`Exchange`] that connection scope drives with blocking I/O, driven here
//! with every wait an `.await`, so a waiting connection holds no thread.
//!
//! A connection waiting for its next request holds no read buffer (it is
//! released, and allocated again when bytes arrive) and no thread: at 10,000
//! idle connections the cost is the task, its socket and its exchange.
//!
//! The timeouts, keep-alive and the lingering close are the exchange's and
//! `linger`'s, as in connection scope; this file adds the write timeout per
//! piece of output (at most a window, see `output`) that makes no progress,
//! and lets shutdown interrupt a wait.

use std::io::{self, IoSlice, Read};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use crate::server::exchange::{Ending, Exchange, Step};
use crate::server::linger::{LINGER_READ, Lingering};
use crate::workload::Reply;

use super::TaskShared;

/// Serves `stream` until the connection ends. `_alive` tells the front the
/// task still runs.
pub(super) async fn serve(
    stream: TcpStream,
    shared: Arc<TaskShared>,
    stopped: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let mut connection = TokioConnection {
        stream,
        exchange: Exchange::new(shared.service.clone(), shared.limits, shared.timeouts),
        stopped,
        shared: &shared,
    };
    let ending = connection.run().await.unwrap_or(Ending::Broken);
    connection.close(ending).await;
    shared.service.stats.connection_closed();
}

struct TokioConnection<'a> {
    stream: TcpStream,
    exchange: Exchange,
    stopped: watch::Receiver<bool>,
    shared: &'a TaskShared,
}

impl TokioConnection<'_> {
    async fn run(&mut self) -> io::Result<Ending> {
        loop {
            match self.exchange.step() {
                Step::Answer(request) => {
                    // The handler runs on this worker; its wait is the timer,
                    // not a blocked thread.
                    let response = match self.exchange.reply(&request) {
                        Some(Reply::Now(response)) => Some(response),
                        Some(Reply::After { wait, response }) => {
                            tokio::time::sleep(wait).await;
                            Some(response)
                        }
                        None => None,
                    };
                    self.exchange.answered(&request, response);
                }
                Step::Flush => self.flush().await?,
                Step::NeedMore => {
                    self.flush().await?;
                    self.read_more().await?;
                }
                Step::Close(ending) => {
                    self.flush().await?;
                    return Ok(ending);
                }
            }
        }
    }

    /// Waits for more bytes within the wait that applies now; shutdown
    /// interrupts it (the exchange then says the drain wait applies).
    async fn read_more(&mut self) -> io::Result<()> {
        let Some(wait) = self.exchange.wait(Instant::now()) else {
            return Ok(());
        };
        let read = timeout(wait.within, read_into(&self.stream, &mut self.exchange));
        let outcome = if wait.draining {
            read.await
        } else {
            tokio::select! {
                outcome = read => outcome,
                _ = self.stopped.changed() => return Ok(()),
            }
        };
        match outcome {
            Err(_elapsed) => self.exchange.expired(wait.then),
            Ok(Ok(count)) => self.exchange.received(count, Instant::now()),
            Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(err)) => return Err(err),
        }
        Ok(())
    }

    /// Writes the output a piece at a time; a piece that makes no progress
    /// within the write timeout fails the connection.
    async fn flush(&mut self) -> io::Result<()> {
        while !self.exchange.output().is_empty() {
            let (pieces, count) = self.exchange.output().pieces();
            let slices = pieces.map(IoSlice::new);
            // As `Output::write_to`: a plain write for one slice.
            let written = match count {
                1 => timeout(self.shared.timeouts.write, self.stream.write(pieces[0])).await,
                _ => timeout(self.shared.timeouts.write, self.stream.write_vectored(&slices[..count])).await,
            };
            match written {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(count)) => self.exchange.wrote(count),
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(err)) => return Err(err),
                Err(_elapsed) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
        Ok(())
    }

    /// Closes the connection, after a lingering close when the ending asks.
    async fn close(mut self, ending: Ending) {
        if ending != Ending::Linger || self.stream.shutdown().await.is_err() {
            return;
        }
        let mut lingering = Lingering::start(Instant::now());
        // On the heap: an array here would make every connection's task
        // (whose size is its largest state) 4 KiB larger.
        let mut sink = vec![0u8; LINGER_READ];
        while let Some(left) = lingering.left(Instant::now()) {
            match timeout(left, self.stream.read(&mut sink)).await {
                Ok(Ok(count)) if lingering.discarded(count) => {}
                _ => return,
            }
        }
    }
}

/// Reads once into the exchange's input when the socket has bytes. `Ok(0)`:
/// end of stream, or a full buffer (told apart by [`Exchange::is_full`]), which
/// is reported at once rather than after waiting for bytes it has no room for.
///
/// The read is tried first (readiness is often already there); when the
/// socket has nothing, an empty buffer is released before the wait.
async fn read_into(stream: &TcpStream, exchange: &mut Exchange) -> io::Result<usize> {
    loop {
        if exchange.is_full() {
            return Ok(0);
        }
        match exchange.read_from(&mut TryRead(stream)) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                exchange.release_input_if_empty();
                stream.readable().await?;
            }
            read => return read,
        }
    }
}

/// A non-blocking read of a tokio socket as `std::io::Read`, so that the
/// exchange's input buffer serves it unchanged.
struct TryRead<'a>(&'a TcpStream);

impl Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}
