//! How much a client may send before the server refuses it.

/// Size limits on one request. Timeouts live with the server, which owns the
/// clock; these are the limits the codec enforces on bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version) in bytes; longer → 414.
    pub max_request_line: usize,
    /// Largest request head (request line and headers) in bytes; larger → 431.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more → 431.
    pub max_headers: usize,
    /// Largest request body that is read and discarded; larger → 413.
    pub max_body: u64,
}

impl Limits {
    /// The most header fields the parser can hold, whatever `max_headers` says.
    pub const HEADER_SLOTS: usize = 128;
}

impl Default for Limits {
    /// 8 KiB request line, 16 KiB head, 64 headers, 1 MiB body: roomy for real
    /// clients (nginx allows an 8 KiB line and 32 KiB of headers) and small
    /// enough that a flood of heads cannot exhaust memory.
    fn default() -> Self {
        Self {
            max_request_line: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
        }
    }
}
