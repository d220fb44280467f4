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
//! reports the count with [`Output::wrote`], and repeats until the output is
//! empty. Each such write is one system call, so a write timeout applies per
//! piece. A driver
//! stops decoding new requests while [`Output::len`] is at least [`WINDOW`]:
//! that is the window of unwritten output per connection.
//!
//! Request scope's event loop, which serves many connections on one
//! thread, takes turns with [bulk](Output::is_bulk) output: it writes one
//! piece of it per turn and lets the other connections go first, so that a
//! flood of large answers cannot keep a reading client's small answer
//! waiting behind them. (Connection scope has a thread per connection, and
//! tokio its scheduler; a tokio task that yielded after every bulk piece
//! was measured and cost readers more than it gained: docs/robustness.md.)

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Unwritten output, encoded or still to be produced, past which a
/// connection decodes no new request, and the most bytes one write is given.
pub const WINDOW: usize = 64 * 1024;

/// The most parts one write takes (a vectored write of up to this many
/// slices).
pub(crate) const SLICES: usize = 4;

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
        self.pieces().0[0]
    }

    /// The next bytes to write, one slice per part for up to [`SLICES`]
    /// parts, at most [`WINDOW`] bytes in all, and how many slices there
    /// are: a head and the start of its streamed body leave in one
    /// vectored write.
    pub(crate) fn pieces(&self) -> ([&[u8]; SLICES], usize) {
        let mut pieces: [&[u8]; SLICES] = [&[]; SLICES];
        let (mut count, mut room, mut skip) = (0, WINDOW, self.written);
        for part in self.parts.iter().take(SLICES) {
            let rest = &part.bytes()[skip..];
            skip = 0;
            let piece = &rest[..rest.len().min(room)];
            if piece.is_empty() {
                continue;
            }
            pieces[count] = piece;
            count += 1;
            room -= piece.len();
            if room == 0 {
                break;
            }
        }
        (pieces, count)
    }

    /// Takes note that the first `count` bytes of [`piece`](Self::piece)
    /// were written.
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

    /// Writes the next pieces to `sink` in one call (a plain `write` for
    /// one slice); `Ok(0)` only when everything is written.
    pub(crate) fn write_to(&mut self, sink: &mut impl Write) -> io::Result<usize> {
        let (pieces, count) = self.pieces();
        let written = match count {
            0 => return Ok(0),
            1 => sink.write(pieces[0])?,
            _ => sink.write_vectored(&pieces.map(IoSlice::new)[..count])?,
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.wrote(written);
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut output = Output::default();
        output.encoded().extend_from_slice(b"head;");
        output.stream(&BODY);
        let (pieces, count) = output.pieces();
        assert_eq!(count, 2);
        assert_eq!((pieces[0], pieces[1].len()), (&b"head;"[..], WINDOW - 5));
        let mut sink = Vec::new();
        assert_eq!(output.write_to(&mut sink).expect("a write"), WINDOW);
        assert_eq!(sink.len(), WINDOW);
        assert_eq!(output.len(), BODY.len() + 5 - WINDOW);
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
    fn write_to_writes_one_piece() {
        let mut output = Output::default();
        output.stream(&BODY);
        let mut sink = Vec::new();
        assert_eq!(output.write_to(&mut sink).expect("a write"), WINDOW);
        assert_eq!(output.len(), 2 * WINDOW);
        output.clear();
        assert!(output.is_empty());
        assert_eq!(output.write_to(&mut sink).expect("nothing to write"), 0);
    }
}
