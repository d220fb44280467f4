//! The connections being served right now, so that shutdown can interrupt
//! the ones blocked in `read` waiting for a request that may never come.
//!
//! Shutdown half-closes each one for reading (`shutdown(fd, SHUT_RD)`): a
//! blocked `read` returns end-of-stream at once, a connection in the middle
//! of answering finishes its response (writes are unaffected) and then sees
//! the flag. Entries are removed before their socket is closed, under the
//! same lock, so a descriptor number is never shut down after it was reused.

use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

use parking_lot::Mutex;
use slab::Slab;

#[derive(Debug, Default)]
pub(super) struct Registry {
    open: Mutex<Registered>,
}

#[derive(Debug, Default)]
struct Registered {
    fds: Slab<RawFd>,
    draining: bool,
}

/// Removes the connection from the registry when dropped: drop it before
/// the stream.
#[derive(Debug)]
pub(super) struct Registration<'a> {
    registry: &'a Registry,
    key: usize,
}

impl Registry {
    /// Adds a connection; if shutdown already swept the registry, the
    /// connection is half-closed at once.
    pub(super) fn register(&self, stream: &TcpStream) -> Registration<'_> {
        let mut open = self.open.lock();
        let fd = stream.as_raw_fd();
        if open.draining {
            shut_down_reads(fd);
        }
        let key = open.fds.insert(fd);
        Registration { registry: self, key }
    }

    /// Half-closes every registered connection for reading.
    pub(super) fn shut_down_reads(&self) {
        let mut open = self.open.lock();
        open.draining = true;
        for (_, &fd) in open.fds.iter() {
            shut_down_reads(fd);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.open.lock().fds.remove(self.key);
    }
}

fn shut_down_reads(fd: RawFd) {
    // SAFETY: `fd` is a socket owned by a live, registered TcpStream (entries
    // are removed before the stream closes, under the lock we hold).
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}
