//! One keep-alive connection served on one thread with blocking I/O: the job
//! of connection scope.
//!
//! The connection is an iterator of requests, stepped by the
//! [`Exchange`]: answer each complete request in the buffer, spending the
//! handler's wait blocked on this thread; flush the answers; then block for
//! more bytes within the wait the exchange says applies. It ends on
//! `Connection: close`, HTTP/1.0 without keep-alive, end of stream, a
//! refused request, a timeout or shutdown. This file only does the I/O.
//!
//! Answers are written in pieces of at most a window (`output`), each within
//! the write timeout, so a client that never reads holds this thread for
//! the write timeout at most, and its connection is then closed.
//!
//! While it lasts, the thread that runs it can serve no other connection:
//! with a pool of N workers, connection N + 1 waits in the queue until one of
//! the first N closes. That is the head-of-line blocking this study measures.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use crate::server::exchange::{Ending, Exchange, Step};
use crate::server::linger::{LINGER_READ, Lingering};
use crate::workload::Reply;

use super::ConnectionJobs;

/// Serves `stream` until the connection ends.
pub(super) fn serve(stream: TcpStream, jobs: &ConnectionJobs) {
    let registration = jobs.registry.register(&stream);
    let shared = &jobs.shared;
    let mut connection = BlockingConnection {
        stream,
        exchange: Exchange::new(shared.service.clone(), shared.limits, shared.timeouts),
    };
    let ending = connection.run(jobs).unwrap_or(Ending::Broken);
    drop(registration);
    connection.close(ending);
    shared.service.stats.connection_closed();
}

struct BlockingConnection {
    stream: TcpStream,
    exchange: Exchange,
}

impl BlockingConnection {
    fn run(&mut self, jobs: &ConnectionJobs) -> io::Result<Ending> {
        self.stream.set_write_timeout(Some(jobs.shared.timeouts.write))?;
        loop {
            match self.exchange.step() {
                Step::Answer(request) => {
                    let response = self.exchange.reply(&request).map(Reply::wait_blocking);
                    self.exchange.answered(&request, response);
                }
                Step::Flush => self.flush()?,
                Step::NeedMore => {
                    self.flush()?;
                    self.read_more()?;
                }
                Step::Close(ending) => {
                    self.flush()?;
                    return Ok(ending);
                }
            }
        }
    }

    /// Blocks for more bytes within the wait that applies now.
    fn read_more(&mut self) -> io::Result<()> {
        let Some(wait) = self.exchange.wait(Instant::now()) else {
            return Ok(());
        };
        self.stream.set_read_timeout(Some(wait.within))?;
        match self.exchange.read_from(&mut self.stream) {
            Ok(count) => self.exchange.received(count, Instant::now()),
            Err(err) if is_timeout(&err) => self.exchange.expired(wait.then),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// Writes the output in pieces of at most a window each, every piece
    /// within the write timeout (the socket's `SO_SNDTIMEO`): a client that
    /// stops reading frees this worker at the timeout, and is closed.
    fn flush(&mut self) -> io::Result<()> {
        while !self.exchange.output().is_empty() {
            match self.exchange.write_to(&self.stream) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Closes the connection, after a lingering close when the ending asks.
    fn close(mut self, ending: Ending) {
        if ending != Ending::Linger || self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let mut lingering = Lingering::start(Instant::now());
        let mut sink = [0u8; LINGER_READ];
        while let Some(left) = lingering.left(Instant::now()) {
            if self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut sink) {
                Ok(count) if lingering.discarded(count) => {}
                _ => return,
            }
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
