//! The bytes received on one blocking connection and not yet decoded.

use std::io::{self, Read};

/// The first allocation: enough for any ordinary request head, small enough
/// that thousands of mostly idle connections stay cheap.
const INITIAL: usize = 4096;

/// A receive buffer with a consumed prefix that grows, when a request head
/// needs it, up to a fixed capacity.
///
/// Nothing is allocated until the first read.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    capacity: usize,
}

impl ReadBuffer {
    /// A buffer that holds up to `capacity` unconsumed bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            capacity,
        }
    }

    /// The unconsumed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes allocated now (what the buffer costs in memory).
    pub(crate) fn allocated(&self) -> usize {
        self.bytes.len()
    }

    /// The most unconsumed bytes it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn is_full(&self) -> bool {
        self.end - self.start == self.capacity
    }

    /// Frees the allocation if nothing is buffered, so that a connection
    /// waiting for its next request holds no buffer (the next read
    /// allocates again). For servers where idle connections are cheap
    /// otherwise: the tokio task, unlike a blocked thread, has no stack.
    #[cfg(feature = "tokio")]
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.bytes = Vec::new();
        }
    }

    pub(crate) fn consume(&mut self, count: usize) {
        self.start += count;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `source` into the free space, first moving unconsumed
    /// bytes to the front or growing if there is none. `Ok(0)` means end of
    /// stream — or a full buffer, which [`is_full`](Self::is_full) tells apart.
    pub(crate) fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        self.make_room();
        if self.end == self.bytes.len() {
            return Ok(0);
        }
        let count = source.read(&mut self.bytes[self.end..])?;
        self.end += count;
        Ok(count)
    }

    fn make_room(&mut self) {
        if self.end < self.bytes.len() {
            return;
        }
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else if self.bytes.len() < self.capacity {
            let grown = (self.bytes.len() * 2).clamp(INITIAL.min(self.capacity), self.capacity);
            self.bytes.resize(grown, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_consumes_compacts_and_grows_to_capacity() {
        let mut buffer = ReadBuffer::new(INITIAL * 2);
        let data = vec![7u8; INITIAL * 3];
        let mut source: &[u8] = &data;
        assert_eq!(buffer.read_from(&mut source).unwrap(), INITIAL, "first allocation");
        assert_eq!(buffer.read_from(&mut source).unwrap(), INITIAL, "grown once");
        assert!(buffer.is_full());
        assert_eq!(buffer.read_from(&mut source).unwrap(), 0, "full: no room to read");
        buffer.consume(INITIAL + 10);
        assert_eq!(buffer.data().len(), INITIAL - 10);
        assert_eq!(
            buffer.read_from(&mut source).unwrap(),
            INITIAL,
            "compacted, then read the rest"
        );
        buffer.consume(INITIAL * 2 - 10);
        assert!(buffer.is_empty());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn release_frees_only_an_empty_buffer() {
        let mut buffer = ReadBuffer::new(INITIAL);
        let mut source: &[u8] = b"abc";
        buffer.read_from(&mut source).unwrap();
        buffer.release_if_empty();
        assert_eq!(buffer.data(), b"abc", "bytes not yet decoded stay");
        buffer.consume(3);
        buffer.release_if_empty();
        assert_eq!(buffer.bytes.capacity(), 0);
        let mut more: &[u8] = b"de";
        assert_eq!(buffer.read_from(&mut more).unwrap(), 2, "reads again after a release");
    }
}
