//! Response framing: where one response ends and the next begins.
//!
//! The head is parsed with `httparse::Response`; the body is then framed, in
//! the order RFC 9112 §6.3 gives:
//!
//! 1. 1xx (other than 101), 204 and 304 have no body (1xx heads are skipped);
//! 2. `Transfer-Encoding` ending in `chunked`: chunk sizes via
//!    `httparse::parse_chunk_size`, then the data, the CRLF, and at the end
//!    the trailer lines (a bare LF in a chunk-size or trailer line is
//!    refused: httparse would skip it where other readers end the line);
//! 3. `Content-Length`;
//! 4. otherwise the body runs until the server closes the connection.
//!
//! The parser is a streaming state machine: [`ResponseParser::feed`] takes
//! whatever bytes have arrived and says how many it consumed and whether a
//! response completed. Body bytes are only counted, never copied; only an
//! incomplete head or chunk-size line is left for the caller to keep until
//! more bytes arrive.

/// Most headers a response may have.
const MAX_HEADERS: usize = 64;
/// Largest head (or chunk-size line) the parser waits for.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A completed response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Done {
    /// The status code.
    pub status: u16,
    /// The server will close (or has closed) the connection after it.
    pub close: bool,
}

/// What [`ResponseParser::feed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    /// Consumed this many bytes; the response is not complete. When fewer
    /// bytes than given were consumed, the rest is an incomplete line that
    /// must be fed again with more bytes after it.
    Partial(usize),
    /// Consumed this many bytes, which completed a response.
    Complete(usize, Done),
}

/// What the end of the stream meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eof {
    /// It completed a close-delimited response.
    Complete(Done),
    /// It came between responses.
    Idle,
    /// It cut a response short.
    Truncated,
}

/// Why a response could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub &'static str);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a status line and headers.
    Head,
    /// Reading a Content-Length body.
    Body { remaining: u64 },
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// Reading chunk data.
    ChunkData { remaining: u64 },
    /// Reading the CRLF after chunk data; `seen` bytes of it consumed.
    ChunkEnd { seen: u8 },
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// Reading a body that ends when the server closes.
    UntilClose,
}

/// One connection's response parser.
#[derive(Debug)]
pub(crate) struct ResponseParser {
    state: State,
    current: Done,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self {
            state: State::Head,
            current: Done {
                status: 0,
                close: false,
            },
        }
    }
}

impl ResponseParser {
    /// Forgets any response in progress (after a reconnect).
    pub(crate) fn reset(&mut self) {
        self.state = State::Head;
    }

    /// Consumes bytes from `buf`, at most up to the end of one response.
    pub(crate) fn feed(&mut self, buf: &[u8]) -> Result<Feed, ProtocolError> {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match self.state {
                State::Head => {
                    if rest.is_empty() {
                        return Ok(Feed::Partial(pos));
                    }
                    match self.head(rest)? {
                        None if rest.len() > MAX_HEAD => return Err(ProtocolError("response head too large")),
                        None => return Ok(Feed::Partial(pos)),
                        Some(n) => {
                            pos += n;
                            if self.state == State::Head && self.current.status >= 200 {
                                return Ok(Feed::Complete(pos, self.current));
                            }
                        }
                    }
                }
                State::Body { remaining } => {
                    let take = remaining.min(rest.len() as u64);
                    pos += take as usize;
                    if take == remaining {
                        self.state = State::Head;
                        return Ok(Feed::Complete(pos, self.current));
                    }
                    self.state = State::Body {
                        remaining: remaining - take,
                    };
                    return Ok(Feed::Partial(pos));
                }
                // httparse skips a bare LF inside an extension; a reader that
                // ends the line there frames the body differently.
                State::ChunkSize if has_bare_lf_in_first_line(rest) => {
                    return Err(ProtocolError("bare LF in a chunk-size line"));
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, 0))) => {
                        pos += n;
                        self.state = State::Trailers;
                    }
                    Ok(httparse::Status::Complete((n, size))) => {
                        pos += n;
                        self.state = State::ChunkData { remaining: size };
                    }
                    Ok(httparse::Status::Partial) if rest.len() > MAX_HEAD => {
                        return Err(ProtocolError("chunk-size line too long"));
                    }
                    Ok(httparse::Status::Partial) => return Ok(Feed::Partial(pos)),
                    Err(_) => return Err(ProtocolError("bad chunk size")),
                },
                State::ChunkData { remaining } => {
                    let take = remaining.min(rest.len() as u64);
                    pos += take as usize;
                    if take < remaining {
                        self.state = State::ChunkData {
                            remaining: remaining - take,
                        };
                        return Ok(Feed::Partial(pos));
                    }
                    self.state = State::ChunkEnd { seen: 0 };
                }
                State::ChunkEnd { seen } => {
                    let expected = &b"\r\n"[usize::from(seen)..];
                    let take = expected.len().min(rest.len());
                    if rest[..take] != expected[..take] {
                        return Err(ProtocolError("chunk data not followed by CRLF"));
                    }
                    pos += take;
                    if take < expected.len() {
                        self.state = State::ChunkEnd {
                            seen: seen + take as u8,
                        };
                        return Ok(Feed::Partial(pos));
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // Either the final CRLF, or one trailer line to skip.
                    match rest.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            pos += 2;
                            self.state = State::Head;
                            return Ok(Feed::Complete(pos, self.current));
                        }
                        Some(line) if rest[..line].contains(&b'\n') => {
                            return Err(ProtocolError("bare LF in a trailer line"));
                        }
                        Some(line) => pos += line + 2,
                        None if has_bare_lf_in_first_line(rest) => {
                            return Err(ProtocolError("bare LF in a trailer line"));
                        }
                        None if rest.len() > MAX_HEAD => return Err(ProtocolError("trailer too large")),
                        None => return Ok(Feed::Partial(pos)),
                    }
                }
                State::UntilClose => return Ok(Feed::Partial(buf.len())),
            }
        }
    }

    /// The server closed the connection (read returned 0).
    pub(crate) fn eof(&mut self) -> Eof {
        let state = std::mem::replace(&mut self.state, State::Head);
        match state {
            State::UntilClose => Eof::Complete(self.current),
            State::Head => Eof::Idle,
            _ => Eof::Truncated,
        }
    }

    /// Parses a head at the start of `buf`: `None` when incomplete, else the
    /// head's length, with the state set for the body.
    fn head(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Some((len, response)) = parse_head(buf, &mut headers)? else {
            return Ok(None);
        };
        let status = response.code.unwrap_or(0);
        let http10 = response.version == Some(0);
        let mut close = http10;
        let mut chunked = false;
        let mut length: Option<u64> = None;
        for header in response.headers.iter() {
            let value = header.value;
            if header.name.eq_ignore_ascii_case("content-length") {
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or(ProtocolError("bad Content-Length"))?;
                if length.is_some_and(|l| l != parsed) {
                    return Err(ProtocolError("conflicting Content-Length headers"));
                }
                length = Some(parsed);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
                if !chunked {
                    // A non-chunked transfer coding is delimited by the close.
                    close = true;
                }
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                        close = false;
                    }
                }
            }
        }
        self.current = Done { status, close };
        self.state = match status {
            101 => return Err(ProtocolError("unexpected 101 Switching Protocols")),
            100..=199 | 204 | 304 => State::Head,
            _ if chunked => State::ChunkSize,
            _ if close && length.is_none() => State::UntilClose,
            _ => match length {
                Some(0) => State::Head,
                Some(remaining) => State::Body { remaining },
                None => {
                    self.current.close = true;
                    State::UntilClose
                }
            },
        };
        Ok(Some(len))
    }
}

/// The status line and headers at the start of `buf` (`None` while
/// incomplete) and the head's length.
fn parse_head<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Option<(usize, httparse::Response<'h, 'b>)>, ProtocolError> {
    let mut response = httparse::Response::new(headers);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((len, response))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ProtocolError("too many response headers")),
        Err(_) => Err(ProtocolError("malformed response head")),
    }
}

/// Whether the first line of `bytes` ends in an LF without a CR before it.
fn has_bare_lf_in_first_line(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|lf| lf == 0 || bytes[lf - 1] != b'\r')
}

/// The first complete response at the start of `bytes`, framed by the load
/// generator's own parser (RFC 9112 §6.3: bodiless statuses, chunked,
/// `Content-Length`; interim 1xx heads skipped), for clients
/// that hold whole responses in a buffer (tests, benches): its length in
/// bytes (interim 1xx heads included) and its final status. `None` while it
/// is incomplete, and for a close-delimited body (which only the end of the
/// stream completes); an error for a response the parser rejects.
pub fn first_response(bytes: &[u8]) -> std::io::Result<Option<(usize, u16)>> {
    match ResponseParser::default().feed(bytes) {
        Ok(Feed::Complete(len, done)) => Ok(Some((len, done.status))),
        Ok(Feed::Partial(_)) => Ok(None),
        Err(ProtocolError(what)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, what)),
    }
}

/// A response head as a client that holds whole responses sees it (tests,
/// benches): see [`response_head`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The header fields in order, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The head's length in bytes, the blank line included.
    pub len: usize,
}

/// The head of the response at the start of `bytes`, parsed as the load
/// generator parses it: `None` while incomplete, an error for a head it
/// rejects. Where the response ends is [`first_response`]'s answer.
pub fn response_head(bytes: &[u8]) -> std::io::Result<Option<ResponseHead>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let parsed = parse_head(bytes, &mut headers)
        .map_err(|ProtocolError(what)| std::io::Error::new(std::io::ErrorKind::InvalidData, what))?;
    Ok(parsed.map(|(len, response)| ResponseHead {
        status: response.code.unwrap_or_default(),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` cut into pieces at `cuts`, keeping unconsumed bytes as
    /// the worker does; returns the completed responses and the EOF outcome.
    fn run(input: &[u8], cuts: &[usize], eof: bool) -> Result<(Vec<Done>, Option<Eof>), ProtocolError> {
        let mut parser = ResponseParser::default();
        let mut done = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            pending.extend_from_slice(&input[start..end]);
            start = end;
            let mut off = 0;
            loop {
                match parser.feed(&pending[off..])? {
                    Feed::Complete(n, d) => {
                        off += n;
                        done.push(d);
                    }
                    Feed::Partial(n) => {
                        off += n;
                        break;
                    }
                }
            }
            pending.drain(..off);
        }
        let eof = eof.then(|| {
            if pending.is_empty() {
                parser.eof()
            } else {
                Eof::Truncated
            }
        });
        Ok((done, eof))
    }

    fn every_split(input: &[u8], eof: bool) -> (Vec<Done>, Option<Eof>) {
        let whole = run(input, &[], eof).expect("parses whole");
        for cut in 1..input.len() {
            assert_eq!(run(input, &[cut], eof).expect("parses split"), whole, "cut at {cut}");
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(input, &bytewise, eof).expect("parses bytewise"), whole);
        whole
    }

    const OK: Done = Done {
        status: 200,
        close: false,
    };

    #[test]
    fn content_length_responses_pipelined() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        let (done, _) = every_split(input, false);
        assert_eq!(
            done,
            vec![
                OK,
                Done {
                    status: 404,
                    close: false
                }
            ]
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nHello\r\n8\r\n, World!\r\n0\r\nX-Trailer: yes\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
        let (done, _) = every_split(input, false);
        assert_eq!(done, vec![OK, OK]);
    }

    #[test]
    fn close_delimited_completes_at_eof() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nHello, World!";
        let (done, eof) = every_split(input, true);
        assert!(done.is_empty());
        assert_eq!(
            eof,
            Some(Eof::Complete(Done {
                status: 200,
                close: true
            }))
        );
    }

    #[test]
    fn connection_close_and_http10_are_noticed() {
        let (done, _) = every_split(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            false,
        );
        assert_eq!(
            done,
            vec![Done {
                status: 200,
                close: true
            }]
        );
        let (done, _) = every_split(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
        assert_eq!(
            done,
            vec![Done {
                status: 200,
                close: true
            }]
        );
        let (done, _) = every_split(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            false,
        );
        assert_eq!(done, vec![OK]);
    }

    #[test]
    fn informational_and_bodiless_statuses() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
        let (done, _) = every_split(input, false);
        assert_eq!(
            done,
            vec![
                Done {
                    status: 204,
                    close: false
                },
                Done {
                    status: 304,
                    close: false
                }
            ]
        );
    }

    #[test]
    fn truncation_and_idle_eof_are_told_apart() {
        let (_, eof) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &[], true).unwrap();
        assert_eq!(eof, Some(Eof::Truncated));
        let (_, eof) = run(b"HTTP/1.1 200 OK\r\nContent-Len", &[], true).unwrap();
        assert_eq!(eof, Some(Eof::Truncated));
        let (_, eof) = run(b"", &[], true).unwrap();
        assert_eq!(eof, Some(Eof::Idle));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for input in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX",
        ] {
            assert!(run(input, &[], false).is_err(), "{}", String::from_utf8_lossy(input));
        }
    }

    // Chunked framing against the strict reading: the server's own decoder,
    // which refuses every chunk line and trailer outside RFC 9112's grammar.

    const CHUNKED_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    /// Where the strict reading ends a chunked `body` (its length), or `None`
    /// if it refuses it.
    fn strict_body_end(body: &[u8]) -> Option<usize> {
        use crate::http::{Decoded, Limits, RequestDecoder};
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let stream = [&head[..], body, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
        match RequestDecoder::new(Limits::default()).decode(&stream) {
            Ok((used, Decoded::Request(_))) => Some(used - head.len()),
            _ => None,
        }
    }

    /// Where the client ends the chunked `body` with a response behind it, in
    /// every split: `Err` if it refuses it.
    fn client_body_end(body: &[u8]) -> Result<usize, ProtocolError> {
        let input = [CHUNKED_RESPONSE, body, b"HTTP/1.1 204 No Content\r\n\r\n"].concat();
        let (done, _) = run(&input, &[], false)?;
        for cut in 1..input.len() {
            assert_eq!(
                run(&input, &[cut], false).map(|(d, _)| d),
                Ok(done.clone()),
                "cut at {cut}"
            );
        }
        assert_eq!(done.len(), 2, "{}: both responses", body.escape_ascii());
        let mut parser = ResponseParser::default();
        match parser.feed(&input)? {
            Feed::Complete(used, _) => Ok(used - CHUNKED_RESPONSE.len()),
            Feed::Partial(_) => Err(ProtocolError("incomplete")),
        }
    }

    #[test]
    fn valid_chunked_bodies_end_where_the_strict_reading_ends_them() {
        let bodies: [&[u8]; 7] = [
            b"5;ext\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x;y\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"q\\\";5\\\\\";b=c\r\nhello\r\n0;last=\";\"\r\n\r\n",
            b"5 ; a = b\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\tz\r\n\r\n",
            b"0005\r\nhello\r\n00\r\n\r\n",
            b"0\r\n\r\n",
        ];
        for body in bodies {
            let strict = strict_body_end(body);
            assert_eq!(strict, Some(body.len()), "{}: valid", body.escape_ascii());
            assert_eq!(client_body_end(body).ok(), strict, "{}", body.escape_ascii());
        }
    }

    /// A bare LF where a line ends: httparse would skip it inside an
    /// extension or a trailer line, a reader that ends lines there would not.
    /// The client refuses rather than pick one.
    #[test]
    fn ambiguous_chunk_lines_are_refused_not_misframed() {
        let bodies: [&[u8]; 5] = [
            b"2;a\nAB\r\nCD\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"0\r\nX: y\n\r\n\r\n",
            b"0\r\nX: y\nZ: w\r\n\r\n",
            b"0\r\n\n",
        ];
        for body in bodies {
            assert_eq!(
                strict_body_end(body),
                None,
                "{}: refused by the server",
                body.escape_ascii()
            );
            assert!(client_body_end(body).is_err(), "{}", body.escape_ascii());
        }
    }

    /// A CRLF inside a quoted extension value: the strict reading refuses
    /// the line; the client ends it at that CRLF, so the data that follows
    /// is not followed by a CRLF and the response is refused, never framed
    /// past the quote.
    #[test]
    fn a_crlf_inside_quotes_is_refused() {
        let body = b"5;a=\"x\r\nhello\"\r\n0\r\n\r\n";
        assert_eq!(strict_body_end(body), None);
        assert!(client_body_end(body).is_err());
    }

    /// Where the client is more lenient than the server (whitespace after a
    /// size, an extension outside its grammar but without a bare LF) it still
    /// ends each line at its CRLF, where any reader that accepts it would.
    #[test]
    fn lenient_chunk_lines_still_end_at_their_crlf() {
        let bodies: [&[u8]; 3] = [
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
        ];
        for body in bodies {
            assert_eq!(
                strict_body_end(body),
                None,
                "{}: the server refuses it",
                body.escape_ascii()
            );
            assert_eq!(client_body_end(body), Ok(body.len()), "{}", body.escape_ascii());
        }
    }
}
