//! What one connection still has to write, held as a small window of
//! encoded bytes plus the large bodies that are written from where they lie.
//!
//! Every answer's head, and a body of at most [`STREAM_AT`] bytes, is
//! encoded into the connection's memory. A larger body that the workload
//! gives as `'static` bytes (`/bytes?n=N`, a slice of one shared pattern) is
//! not copied: the output keeps a reference and the bytes go from the
//! pattern into the socket a piece at a time, as the socket drains. So a
//! connection that asks for 40 × 1 MiB and reads slowly holds a few hundred
//! bytes of heads, not 40 MiB, and a client that reads gets every byte: no
//! cap cuts it short.
//!
//! A driver writes the next pieces (at most [`WINDOW`] bytes, over up to
//! four parts, so that a head and the start of its body leave together),
//! reports the count with [`Output::wrote`], and repeats until
//! the output is empty. Each such write is one `send` and at most one
//! `sendfile`, so a write timeout applies per piece. A driver stops
//! decoding new requests while [`Output::len`] is at least [`WINDOW`]: that
//! is the window of unwritten output per connection.
//!
//! A streamed body that is a slice of the `/bytes` pattern goes by
//! `sendfile` from `payload_file`'s sealed copy of it, so the kernel keeps
//! references to shared pages instead of copying each piece into memory of
//! its own: the copy was where a flood of never-reading clients spent the
//! event loop's time (docs/robustness.md). Other bodies, and every body
//! where that file cannot be made, are copied by `send`.
//!
//! Request scope's event loop, which serves many connections on one
//! thread, takes turns with [bulk](Output::is_bulk) output: it writes one
//! piece of it per turn and lets the other connections go first, so that a
//! flood of large answers cannot keep a reading client's small answer
//! waiting behind them. (Connection scope has a thread per connection, and
//! tokio its scheduler; a tokio task that yielded after every bulk piece
//! was measured and cost readers more than it gained: docs/robustness.md.)

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};

use socket2::SockRef;

use super::payload_file::PayloadFile;

/// Unwritten output, encoded or still to be produced, past which a
/// connection decodes no new request, and the most bytes one write is given.
pub const WINDOW: usize = 64 * 1024;

/// The most parts one write takes (a vectored write of up to this many
/// slices).
const SLICES: usize = 4;

/// Bodies longer than this that are `'static` are streamed from where they
/// lie instead of being copied into the output.
pub const STREAM_AT: usize = 16 * 1024;

/// Unwritten output longer than this is bulk: written a piece per turn.
pub const BULK_ABOVE: usize = STREAM_AT;

/// Encoded capacity kept for the next answers once written; a buffer that
/// grew larger is released.
const KEEP: usize = 4 * 1024;

#[derive(Debug)]
enum Part {
    /// Encoded bytes (heads, small bodies), in this connection's memory.
    Encoded(Vec<u8>),
    /// A `'static` body, written from where it lies.
    Streamed(&'static [u8]),
}

impl Part {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Encoded(bytes) => bytes,
            Part::Streamed(bytes) => bytes,
        }
    }
}

/// One connection's unwritten answers, in order.
#[derive(Debug, Default)]
pub struct Output {
    parts: VecDeque<Part>,
    /// Bytes of the front part already written.
    written: usize,
    /// An emptied encoding buffer kept for the next answer.
    spare: Vec<u8>,
}

impl Output {
    /// The buffer to encode the next answer's bytes into (after everything
    /// already queued).
    pub(crate) fn encoded(&mut self) -> &mut Vec<u8> {
        if !matches!(self.parts.back(), Some(Part::Encoded(_))) {
            self.parts.push_back(Part::Encoded(std::mem::take(&mut self.spare)));
        }
        match self.parts.back_mut() {
            Some(Part::Encoded(bytes)) => bytes,
            _ => unreachable!("an encoded part was just pushed"),
        }
    }

    /// Queues bytes encoded elsewhere (by a job), moving them in when
    /// nothing is queued before them.
    pub(crate) fn append(&mut self, bytes: Vec<u8>) {
        match self.parts.back_mut() {
            Some(Part::Encoded(last)) => last.extend_from_slice(&bytes),
            _ if !bytes.is_empty() => self.parts.push_back(Part::Encoded(bytes)),
            _ => {}
        }
    }

    /// Queues a body to be written from where it lies.
    pub(crate) fn stream(&mut self, body: &'static [u8]) {
        if !body.is_empty() {
            self.parts.push_back(Part::Streamed(body));
        }
    }

    /// Whether everything has been written.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|part| part.bytes().is_empty())
    }

    /// Bytes still to write, encoded or streamed.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|part| part.bytes().len()).sum::<usize>() - self.written
    }

    /// Whether the output is long enough to take turns with other
    /// connections (more than [`BULK_ABOVE`] bytes unwritten).
    pub fn is_bulk(&self) -> bool {
        self.len() > BULK_ABOVE
    }

    /// The memory this output holds: its encoding buffers' capacity
    /// (streamed bodies cost nothing here).
    pub fn held(&self) -> usize {
        let encoded = self.parts.iter().map(|part| match part {
            Part::Encoded(bytes) => bytes.capacity(),
            Part::Streamed(_) => 0,
        });
        encoded.sum::<usize>() + self.spare.capacity()
    }

    /// The next bytes to write, of the front part. Empty when everything
    /// is written.
    pub fn piece(&self) -> &[u8] {
        let rest = self.parts.front().map_or(&[][..], |part| &part.bytes()[self.written..]);
        &rest[..rest.len().min(WINDOW)]
    }

    /// What the next write sends, at most [`WINDOW`] bytes in all: slices
    /// of up to [`SLICES`] parts from memory, then, if the next part lies
    /// in `payload`, a run of it. So a head and the start of its streamed
    /// body leave in one write.
    fn next_write(&self, payload: Option<&PayloadFile>) -> NextWrite<'_> {
        let mut next = NextWrite {
            slices: [&[]; SLICES],
            count: 0,
            file: None,
        };
        let (mut room, mut skip) = (WINDOW, self.written);
        for part in self.parts.iter().take(SLICES) {
            let rest = &part.bytes()[skip..];
            skip = 0;
            let len = rest.len().min(room);
            if let Part::Streamed(_) = part
                && let Some(offset) = payload.and_then(|file| file.offset_of(rest))
            {
                next.file = Some((offset, len));
                break;
            }
            if len == 0 {
                continue;
            }
            next.slices[next.count] = &rest[..len];
            next.count += 1;
            room -= len;
            if room == 0 {
                break;
            }
        }
        next
    }

    /// Sends the next pieces into `socket` without taking note of them (the
    /// caller reports the count with [`wrote`](Self::wrote)): the slices in
    /// memory with one `send`, then the run of the payload file, if any,
    /// with one `sendfile`. `Ok(0)` only when everything is written.
    pub(crate) fn send_to(&self, socket: BorrowedFd<'_>) -> io::Result<usize> {
        // Only output that streams a body needs the file: a server that
        // never answers `/bytes` never makes the pattern.
        let streams = self
            .parts
            .iter()
            .take(SLICES)
            .any(|part| matches!(part, Part::Streamed(_)));
        let payload = if streams { PayloadFile::get() } else { None };
        let next = self.next_write(payload);
        let slices = &next.slices[..next.count];
        let in_memory: usize = slices.iter().map(|slice| slice.len()).sum();
        let socket_ref = SockRef::from(&socket);
        // A head followed by a run of the file is held back for it (MSG_MORE).
        let more = if next.file.is_some() { libc::MSG_MORE } else { 0 };
        let sent = match slices {
            [] => 0,
            [slice] => socket_ref.send_with_flags(slice, libc::MSG_NOSIGNAL | more)?,
            _ => {
                let slices = next.slices.map(IoSlice::new);
                socket_ref.send_vectored_with_flags(&slices[..next.count], libc::MSG_NOSIGNAL | more)?
            }
        };
        let (Some((offset, len)), Some(file)) = (next.file, payload) else {
            return Ok(sent);
        };
        if sent < in_memory {
            return Ok(sent);
        }
        match file.send(socket, offset, len) {
            Ok(streamed) => Ok(sent + streamed),
            // The head went; the error comes again at the next write.
            Err(_) if sent > 0 => Ok(sent),
            Err(err) => Err(err),
        }
    }

    /// Takes note that the next `count` bytes were written.
    pub fn wrote(&mut self, count: usize) {
        self.written += count;
        while let Some(front) = self.parts.front() {
            if self.written < front.bytes().len() {
                return;
            }
            self.written -= front.bytes().len();
            if let Some(Part::Encoded(mut bytes)) = self.parts.pop_front()
                && bytes.capacity() <= KEEP
                && self.spare.capacity() == 0
            {
                bytes.clear();
                self.spare = bytes;
            }
        }
    }

    /// Forgets everything unwritten (for drivers without a socket).
    pub fn clear(&mut self) {
        self.wrote(self.len());
    }

    /// Writes the next pieces into `socket` ([`send_to`](Self::send_to))
    /// and takes note of them; `Ok(0)` only when everything is written.
    pub(crate) fn write_to(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let written = self.send_to(socket.as_fd())?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.wrote(written);
        Ok(written)
    }
}

/// One write's worth of output: slices from memory, then a run of the
/// payload file as (offset, length).
struct NextWrite<'a> {
    slices: [&'a [u8]; SLICES],
    count: usize,
    file: Option<(u64, usize)>,
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::workload;

    /// A `'static` body that is not the payload: written by copy.
    static BODY: [u8; 3 * WINDOW] = [b'x'; 3 * WINDOW];

    fn drain(output: &mut Output, chunk: usize) -> Vec<u8> {
        let mut sent = Vec::new();
        while !output.is_empty() {
            let piece = output.piece();
            assert!(!piece.is_empty() && piece.len() <= WINDOW);
            let count = piece.len().min(chunk);
            sent.extend_from_slice(&piece[..count]);
            output.wrote(count);
        }
        sent
    }

    /// Writes `output` into a socket pair one `write_to` at a time, reading
    /// each write's bytes back; gives every write's count and the bytes.
    fn written_through_a_socket(output: &mut Output) -> (Vec<usize>, Vec<u8>) {
        let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
        let (mut counts, mut received) = (Vec::new(), Vec::new());
        loop {
            let count = output.write_to(&ours).expect("a write");
            if count == 0 {
                return (counts, received);
            }
            let start = received.len();
            received.resize(start + count, 0);
            theirs.read_exact(&mut received[start..]).expect("the written bytes");
            counts.push(count);
        }
    }

    #[test]
    fn answers_leave_in_order_and_a_streamed_body_is_never_copied() {
        let mut output = Output::default();
        output.encoded().extend_from_slice(b"head1;");
        output.stream(&BODY);
        output.append(b"head2;".to_vec());
        output.encoded().extend_from_slice(b"body2");
        assert_eq!(output.len(), 6 + BODY.len() + 11);
        assert!(output.held() < 1024, "the streamed body is not held");
        let sent = drain(&mut output, 1000);
        assert_eq!(sent, [&b"head1;"[..], &BODY, b"head2;body2"].concat());
        assert_eq!(output.len(), 0);
    }

    #[test]
    fn a_head_and_its_streamed_body_leave_in_one_write_of_at_most_a_window() {
        let payload = &workload::payload()[..3 * WINDOW];
        // A run of the payload file ends a write: what follows it goes next.
        let by_copy: &[usize] = &[WINDOW, WINDOW, WINDOW, 5 + 4];
        let from_file: &[usize] = &[WINDOW, WINDOW, WINDOW, 5, 4];
        for (body, expected) in [(&BODY[..], by_copy), (payload, from_file)] {
            let mut output = Output::default();
            output.encoded().extend_from_slice(b"head;");
            output.stream(body);
            output.append(b"next".to_vec());
            let (counts, received) = written_through_a_socket(&mut output);
            assert_eq!(counts, expected);
            assert_eq!(received, [&b"head;"[..], body, b"next"].concat());
        }
    }

    #[test]
    fn the_payload_is_sent_from_its_file_and_other_bodies_by_copy() {
        let file = PayloadFile::get().expect("memfd_create works on Linux");
        let payload = &workload::payload()[100..100 + 2 * WINDOW];
        let mut output = Output::default();
        output.stream(payload);
        output.stream(&BODY);
        let from_file = output.next_write(Some(file));
        assert_eq!((from_file.count, from_file.file), (0, Some((100, WINDOW))));
        output.wrote(2 * WINDOW);
        let by_copy = output.next_write(Some(file));
        assert_eq!((by_copy.count, by_copy.file), (1, None));
        assert_eq!(by_copy.slices[0].len(), WINDOW);
    }

    #[test]
    fn a_written_buffer_is_kept_for_the_next_answer() {
        let mut output = Output::default();
        output.encoded().extend_from_slice(b"hello");
        drain(&mut output, usize::MAX);
        let kept = output.held();
        assert!(kept >= 5, "the buffer is kept");
        output.encoded().extend_from_slice(b"again");
        assert_eq!(output.held(), kept, "and reused");
    }

    #[test]
    fn nothing_left_to_write_is_a_write_of_zero() {
        let mut output = Output::default();
        output.stream(&BODY);
        output.clear();
        assert!(output.is_empty());
        let (ours, _theirs) = UnixStream::pair().expect("a socket pair");
        assert_eq!(output.write_to(&ours).expect("nothing to write"), 0);
    }
}
