//! The `/bytes` pattern as a sealed in-memory file, so that a streamed body
//! enters the socket by reference instead of by copy.
//!
//! A plain write copies each piece of an answer into fresh kernel memory,
//! which the kernel keeps until the client acknowledges it. For a client
//! that never reads, that memory is never freed or reused, and the copy
//! into it was measured at ≈0.15 ms per 64 KiB piece on the 2-CPU VM
//! (`docs/robustness.md`, issue 14): a thousand such clients kept the one
//! event-loop thread copying for 0.8 s while a reading client waited.
//! `sendfile` from this file hands the socket references to the file's
//! pages instead: nothing is copied, and a socket that is never read holds
//! references to the one shared pattern, not its own copy of it.
//!
//! The file is made once per process from [`crate::workload::payload`] and
//! sealed, so no write can change bytes a socket still refers to. Where it
//! cannot be made (no `memfd_create`), every body is written by copy as
//! before, and a warning says so once.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::sync::OnceLock;

use crate::workload;

/// The sealed file holding the pattern, made on first use.
#[derive(Debug)]
pub(crate) struct PayloadFile {
    file: File,
    pattern: &'static [u8],
}

impl PayloadFile {
    /// The process's payload file, or `None` where it cannot be made.
    pub(crate) fn get() -> Option<&'static PayloadFile> {
        static FILE: OnceLock<Option<PayloadFile>> = OnceLock::new();
        FILE.get_or_init(|| {
            PayloadFile::create(workload::payload())
                .inspect_err(|err| {
                    eprintln!("dispatchlab: no payload file ({err}); /bytes bodies are copied into sockets")
                })
                .ok()
        })
        .as_ref()
    }

    fn create(pattern: &'static [u8]) -> io::Result<PayloadFile> {
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: the name is a NUL-terminated string; the call has no other inputs.
        let fd = unsafe { libc::memfd_create(c"dispatchlab-payload".as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let mut file = unsafe { File::from_raw_fd(fd) };
        file.write_all(pattern)?;
        let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS on an open memfd takes an int argument.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PayloadFile { file, pattern })
    }

    /// Where `bytes` lie in the file, if they are a slice of the pattern.
    pub(crate) fn offset_of(&self, bytes: &[u8]) -> Option<u64> {
        let start = (bytes.as_ptr() as usize).checked_sub(self.pattern.as_ptr() as usize)?;
        (start + bytes.len() <= self.pattern.len()).then_some(start as u64)
    }

    /// Sends `len` bytes of the file from `offset` into `socket` with one
    /// `sendfile`; as a write, it may send fewer, or fail with
    /// `WouldBlock` on a non-blocking socket with no room.
    pub(crate) fn send(&self, socket: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<usize> {
        let mut offset = offset as libc::off_t;
        // SAFETY: both descriptors are open for the call; `offset` is a valid off_t.
        let sent = unsafe { libc::sendfile(socket.as_raw_fd(), self.file.as_raw_fd(), &mut offset, len) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn a_slice_of_the_pattern_is_found_and_sent_from_the_file() {
        let file = PayloadFile::get().expect("memfd_create works on Linux");
        let pattern = workload::payload();
        let slice = &pattern[1000..5000];
        assert_eq!(file.offset_of(slice), Some(1000));
        assert_eq!(file.offset_of(b"elsewhere"), None);
        assert_eq!(
            file.offset_of(&pattern[pattern.len() - 1..]),
            Some(pattern.len() as u64 - 1)
        );

        let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
        let sent = file.send(ours.as_fd(), 1000, slice.len()).expect("sendfile");
        let mut received = vec![0; sent];
        theirs.read_exact(&mut received).expect("the bytes");
        assert_eq!(received, slice[..sent]);
    }

    #[test]
    fn the_file_is_sealed_against_writes() {
        let file = PayloadFile::get().expect("memfd_create works on Linux");
        assert!((&file.file).write_all(b"x").is_err());
    }
}
