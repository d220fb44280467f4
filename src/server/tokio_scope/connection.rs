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
//!
//! A read or write is tried at once first, and the wait's machinery (the
//! timer, the shutdown watch) is set up only when the socket cannot proceed:
//! under load most reads find their bytes there and most writes fit, and a
//! timer and watch per call was a fifth of a request's instructions. The
//! buffer released for a wait comes back from `read_buffer`'s per-thread
//! spares, so the wait costs no 4 KiB zero-fill either.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use crate::server::exchange::{Ending, Exchange, Step};
use crate::server::linger::{LINGER_READ, Lingering};
use crate::server::output::Output;
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
    ///
    /// Bytes already there are read at once, with no timer and no shutdown
    /// watch set up: under load that is most reads.
    async fn read_more(&mut self) -> io::Result<()> {
        let Some(wait) = self.exchange.wait(Instant::now()) else {
            return Ok(());
        };
        match try_read_into(&self.stream, &mut self.exchange) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            read => return self.took(read),
        }
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
            Err(_elapsed) => {
                self.exchange.expired(wait.then);
                Ok(())
            }
            Ok(read) => self.took(read),
        }
    }

    /// Reports a read's outcome to the exchange.
    fn took(&mut self, read: io::Result<usize>) -> io::Result<()> {
        match read {
            Ok(count) => self.exchange.received(count, Instant::now()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// Writes the output a piece at a time; a piece that makes no progress
    /// within the write timeout fails the connection. A piece the socket
    /// takes at once is written with no timer set up.
    async fn flush(&mut self) -> io::Result<()> {
        while !self.exchange.output().is_empty() {
            let written = match try_write(&self.stream, self.exchange.output()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let write = write(&self.stream, self.exchange.output());
                    timeout(self.shared.timeouts.write, write)
                        .await
                        .unwrap_or_else(|_elapsed| Err(io::ErrorKind::TimedOut.into()))
                }
                written => written,
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => self.exchange.wrote(count),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
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

/// Waits for the socket to have bytes (a read found none), then reads once
/// into the exchange's input; an empty buffer is released for the wait.
async fn read_into(stream: &TcpStream, exchange: &mut Exchange) -> io::Result<usize> {
    loop {
        exchange.release_input_if_empty();
        stream.readable().await?;
        match try_read_into(stream, exchange) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            read => return read,
        }
    }
}

/// Reads once without waiting: `WouldBlock` when the socket has nothing
/// yet. `Ok(0)`: end of stream, or a full buffer (told apart by
/// [`Exchange::is_full`]), which is reported at once rather than after
/// waiting for bytes it has no room for.
fn try_read_into(stream: &TcpStream, exchange: &mut Exchange) -> io::Result<usize> {
    if exchange.is_full() {
        return Ok(0);
    }
    exchange.read_from(&mut TryRead(stream))
}

/// Writes the next piece of `output` without waiting (`WouldBlock` when the
/// socket has no room), through tokio so that it knows the socket is full.
fn try_write(stream: &TcpStream, output: &Output) -> io::Result<usize> {
    stream.try_io(Interest::WRITABLE, || output.send_to(stream.as_fd()))
}

/// Waits for room in the socket, then writes the next piece of `output`.
async fn write(stream: &TcpStream, output: &Output) -> io::Result<usize> {
    loop {
        stream.writable().await?;
        match try_write(stream, output) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            written => return written,
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
