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
    ///
    /// A first-size buffer goes to this thread's [`spare`] list, so that the
    /// next connection to receive bytes here takes it instead of allocating
    /// and zero-filling 4 KiB again.
    #[cfg(feature = "tokio")]
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() {
            spare::put(std::mem::take(&mut self.bytes));
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
            self.grow(grown);
        }
    }

    /// Grows to `len` bytes, taking a spare buffer for the first allocation
    /// when this thread has one.
    fn grow(&mut self, len: usize) {
        #[cfg(feature = "tokio")]
        let spare = if self.bytes.is_empty() { spare::take(len) } else { None };
        #[cfg(not(feature = "tokio"))]
        let spare = None;
        match spare {
            Some(bytes) => self.bytes = bytes,
            None => self.bytes.resize(len, 0),
        }
    }
}

/// First-size buffers released by idle connections (tokio's), kept per
/// thread for the next connection that receives bytes there: their old bytes
/// are initialized memory that is never read (only `start..end` is), so they
/// need no zero-fill. At most [`spare::KEPT`] per thread, so what an idle
/// server holds stays bounded (and small) whatever the number of connections.
#[cfg(feature = "tokio")]
mod spare {
    use std::cell::RefCell;

    use super::INITIAL;

    /// The most buffers one thread keeps.
    pub(super) const KEPT: usize = 8;

    thread_local! {
        static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// Keeps `bytes` if it is a first-size buffer and there is room; drops
    /// it otherwise.
    pub(super) fn put(bytes: Vec<u8>) {
        if bytes.len() == INITIAL {
            SPARE.with_borrow_mut(|spare| {
                if spare.len() < KEPT {
                    spare.push(bytes);
                }
            });
        }
    }

    /// A kept buffer of `len` bytes, if `len` is the first size and one is
    /// kept.
    pub(super) fn take(len: usize) -> Option<Vec<u8>> {
        if len != INITIAL {
            return None;
        }
        SPARE.with_borrow_mut(Vec::pop)
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
        assert_eq!(buffer.data(), b"de", "a reused spare shows only the new bytes");
        assert_eq!(buffer.allocated(), INITIAL);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_thread_keeps_at_most_kept_spares() {
        let mut buffers: Vec<ReadBuffer> = (0..spare::KEPT + 2).map(|_| ReadBuffer::new(INITIAL)).collect();
        for buffer in &mut buffers {
            buffer.read_from(&mut &b"x"[..]).unwrap();
            buffer.consume(1);
        }
        buffers.iter_mut().for_each(ReadBuffer::release_if_empty);
        let kept = std::iter::from_fn(|| spare::take(INITIAL)).count();
        assert_eq!(kept, spare::KEPT);
    }
}
