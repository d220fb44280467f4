//! One parsed request head and the rules read from its headers: framing
//! (`Content-Length`, `Transfer-Encoding`), keep-alive, `Host`, `Expect`.

use std::mem::MaybeUninit;

use super::{Connection, HttpError, Limits};

/// The request method, as far as the workload cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`: answered like GET, without the body.
    Head,
    /// `POST`: the body is read and discarded.
    Post,
    /// Anything else: answered 405 by the workload.
    Other,
}

/// The protocol version of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: closes after each response unless the client asks otherwise.
    Http10,
    /// HTTP/1.1: persistent unless the client says `Connection: close`.
    Http11,
}

/// A request whose head has been parsed and whose body has been discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The target in origin form (`/path?query`), absolute form reduced to it.
    pub target: String,
    /// The protocol version.
    pub version: Version,
    /// Whether the client wants the connection kept after the response.
    pub keep_alive: bool,
    /// Body bytes that were read and discarded.
    pub body_len: u64,
}

impl Request {
    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(path, _)| path)
    }

    /// The `Connection` header for the response to this request, when the
    /// server itself has no reason to close.
    pub fn response_connection(&self) -> Connection {
        match (self.keep_alive, self.version) {
            (false, _) => Connection::Close,
            (true, Version::Http10) => Connection::KeepAlive,
            (true, Version::Http11) => Connection::Implicit,
        }
    }

    /// The value of a query parameter, if present (`?ms=40` → `Some("40")`).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find_map(|(key, value)| (key == name).then_some(value))
    }
}

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed head: the request plus what the decoder needs to read the body.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) request: Request,
    pub(crate) framing: BodyFraming,
    pub(crate) expects_continue: bool,
    /// Bytes of the head, terminating blank line included.
    pub(crate) len: usize,
}

/// Parses a head from the start of `input`: `Ok(None)` when it is not complete
/// yet (and still within the limits). A refusal of a request whose method
/// was read as `HEAD` is answered without a body.
pub(crate) fn parse_head(input: &[u8], limits: &Limits) -> Result<Option<Head>, HttpError> {
    // Uninitialised slots: zeroing 128 headers (4 KiB) per parse showed in profiles.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; Limits::HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.min(Limits::HEADER_SLOTS)];
    let mut parsed = httparse::Request::new(&mut []);
    let status = parsed.parse_with_uninit_headers(input, slots);
    let method = method_of(parsed.method.unwrap_or_default());
    read_head(&parsed, status, input, limits).map_err(|err| err.of(method))
}

/// Checks what httparse made of `input` and builds the head from it.
fn read_head(
    parsed: &httparse::Request<'_, '_>,
    status: httparse::Result<usize>,
    input: &[u8],
    limits: &Limits,
) -> Result<Option<Head>, HttpError> {
    let status = status.map_err(|err| classify_parse_error(err, input))?;
    check_request_line_length(input, limits)?;
    let len = match status {
        httparse::Status::Partial if input.len() > limits.max_header_bytes => return Err(HttpError::HeadersTooLarge),
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(len) if len > limits.max_header_bytes => return Err(HttpError::HeadersTooLarge),
        httparse::Status::Complete(len) => len,
    };
    check_field_bytes(&input[..len])?;
    let version = match parsed.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(HttpError::UnsupportedVersion),
    };
    let fields = HeaderFields::read(parsed.headers, version)?;
    let framing = fields.framing(version, limits)?;
    let request = Request {
        method: method_of(parsed.method.unwrap_or_default()),
        target: origin_form(parsed.path.unwrap_or_default())?,
        version,
        keep_alive: fields.keep_alive(version),
        body_len: 0,
    };
    let has_body = framing != BodyFraming::Length(0);
    Ok(Some(Head {
        request,
        framing,
        expects_continue: fields.expect_continue && has_body,
        len,
    }))
}

/// Reads the trailer section after the last chunk, blank line included:
/// `Ok(None)` until it is complete, else its length. Its fields follow the
/// head's rules and limits; none is acted on.
pub(crate) fn parse_trailers(input: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; Limits::HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.min(Limits::HEADER_SLOTS)];
    let len = match httparse::parse_headers(input, slots).map_err(|err| classify_parse_error(err, input))? {
        httparse::Status::Partial if input.len() > limits.max_header_bytes => return Err(HttpError::HeadersTooLarge),
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete((len, _)) if len > limits.max_header_bytes => {
            return Err(HttpError::HeadersTooLarge);
        }
        httparse::Status::Complete((len, _)) => len,
    };
    check_field_bytes(&input[..len])?;
    Ok(Some(len))
}

/// Refuses what httparse lets through in a head or trailer section: a bare
/// LF taken as a line end (it accepts one, and a front end that does not
/// reads different fields: the classic desync), a bare CR, and any control
/// byte other than HTAB (which httparse keeps out of names, not of every line).
fn check_field_bytes(section: &[u8]) -> Result<(), HttpError> {
    // Only control bytes need a look; in an ordinary head they are its CRLFs.
    let controls = section.iter().enumerate().filter(|&(_, &b)| b < 0x20 || b == 0x7f);
    for (at, &byte) in controls {
        match byte {
            b'\t' => {}
            b'\r' if section.get(at + 1) == Some(&b'\n') => {}
            b'\n' if at > 0 && section[at - 1] == b'\r' => {}
            b'\r' => return Err(HttpError::BadRequest("bare CR in the head")),
            b'\n' => return Err(HttpError::BadRequest("bare LF in the head")),
            _ => return Err(HttpError::BadRequest("control character in the head")),
        }
    }
    Ok(())
}

/// Tells a version we do not speak (505) from a line that is not HTTP (400).
fn classify_parse_error(err: httparse::Error, input: &[u8]) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::HeadersTooLarge,
        httparse::Error::Version if looks_like_other_http_version(input) => HttpError::UnsupportedVersion,
        httparse::Error::Version => HttpError::BadRequest("malformed HTTP version"),
        httparse::Error::Token => HttpError::BadRequest("malformed request line"),
        httparse::Error::NewLine => HttpError::BadRequest("malformed line ending"),
        httparse::Error::HeaderName => HttpError::BadRequest("malformed header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("malformed header value"),
        httparse::Error::Status => HttpError::BadRequest("malformed request"),
    }
}

/// A well-formed request line, `method SP target SP HTTP/<digit>.<digit>`,
/// whose version is one we do not speak (`HTTP/2`, without its minor digit,
/// is not a well-formed version). `GET /a b HTTP/1.1`
/// has three spaces, and a line that ends in a bare LF is no line: both are
/// malformed, not of another version.
fn looks_like_other_http_version(input: &[u8]) -> bool {
    let line = match input.iter().position(|&b| b == b'\n') {
        Some(lf) => match input[..lf].strip_suffix(b"\r") {
            Some(line) => line,
            None => return false,
        },
        None => input.strip_suffix(b"\r").unwrap_or(input),
    };
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if method.is_empty() || target.is_empty() {
        return false;
    }
    match version.strip_prefix(b"HTTP/") {
        Some([major, b'.', minor]) => major.is_ascii_digit() && minor.is_ascii_digit(),
        _ => false,
    }
}

fn check_request_line_length(input: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let line_len = input.iter().position(|&b| b == b'\n').unwrap_or(input.len());
    if line_len > limits.max_request_line {
        Err(HttpError::RequestLineTooLong)
    } else {
        Ok(())
    }
}

pub(super) fn method_of(method: &str) -> Method {
    match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    }
}

/// Reduces the target to origin form: `/path?query`. Absolute form
/// (`http://host/path`) is accepted as RFC 9112 requires; `*` and anything
/// else not starting with `/` is refused. The target must follow the
/// RFC 3986 grammar (httparse lets through any byte above a space but DEL):
/// no fragment, no quotes or braces, no bytes >= 0x80 (RFC 9112 §3.2 says
/// 400), `%` only before two hex digits; in absolute form a non-empty host
/// and no userinfo (RFC 9110 §4.2.1, §4.2.4).
fn origin_form(target: &str) -> Result<String, HttpError> {
    let path = match strip_scheme(target) {
        None if target.starts_with('/') => target,
        None => return Err(HttpError::BadRequest("the request target must start with '/'")),
        Some(after_scheme) => {
            let (authority, path) = after_scheme.split_at(after_scheme.find(['/', '?']).unwrap_or(after_scheme.len()));
            let authority_byte = |b: u8| b == b'[' || b == b']' || (b != b'@' && is_pchar(b));
            if authority.is_empty() || !follows_uri_grammar(authority.as_bytes(), authority_byte) {
                return Err(HttpError::BadRequest("the request target has a malformed authority"));
            }
            path
        }
    };
    if !follows_uri_grammar(path.as_bytes(), |b| b == b'/' || b == b'?' || is_pchar(b)) {
        return Err(HttpError::BadRequest("the request target has a byte outside RFC 3986"));
    }
    Ok(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

/// A `Host` value is `uri-host [ ":" port ]` or empty; anything else is
/// refused, as RFC 9112 §3.2 requires.
fn check_host(value: &[u8]) -> Result<(), HttpError> {
    let host = value.trim_ascii();
    let (name, port) = match host.strip_prefix(b"[") {
        Some(literal) => {
            let close = literal.iter().position(|&b| b == b']').unwrap_or(literal.len());
            let after = literal.get(close + 1..).unwrap_or_default();
            let literal_byte = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
            let valid = close < literal.len() && literal[..close].iter().all(|&b| literal_byte(b));
            (valid.then_some(&b""[..]), after)
        }
        None => {
            let colon = host.iter().rposition(|&b| b == b':').unwrap_or(host.len());
            (Some(&host[..colon]), &host[colon..])
        }
    };
    let name_ok = name.is_some_and(|name| follows_uri_grammar(name, |b| b != b':' && b != b'@' && is_pchar(b)));
    let port_ok = port.is_empty()
        || port
            .strip_prefix(b":")
            .is_some_and(|digits| digits.iter().all(u8::is_ascii_digit));
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(HttpError::BadRequest("the Host header is not a host and port"))
    }
}

/// The rest of an `http://` or `https://` target (any case), else `None`.
fn strip_scheme(target: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let prefix = target.as_bytes().get(..scheme.len())?;
        // The prefix is ASCII, so its end is a char boundary.
        prefix
            .eq_ignore_ascii_case(scheme.as_bytes())
            .then(|| &target[scheme.len()..])
    })
}

/// Whether every byte of `part` is `allowed` or starts a `%HH` escape.
fn follows_uri_grammar(mut part: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    while let Some((&byte, rest)) = part.split_first() {
        part = match (byte, rest) {
            (b'%', [high, low, after @ ..]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => after,
            (b'%', _) => return false,
            (byte, after) if allowed(byte) => after,
            _ => return false,
        };
    }
    true
}

/// `pchar` without its `pct-encoded`: unreserved, sub-delims, `:` and `@`
/// (a table: the checks run on every byte of every request target).
fn is_pchar(byte: u8) -> bool {
    PCHAR[usize::from(byte)]
}

const PCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\''..=b',' | b';' | b'=' | b':' | b'@'
            );
        byte += 1;
    }
    table
};

/// The header fields the server acts on, checked for conflicts.
#[derive(Debug, Default)]
struct HeaderFields {
    content_length: Option<u64>,
    /// A `Content-Length` too large to represent: refused as too large.
    content_length_overflows: bool,
    chunked: bool,
    has_transfer_encoding: bool,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl HeaderFields {
    fn read(headers: &[httparse::Header<'_>], version: Version) -> Result<Self, HttpError> {
        let mut fields = HeaderFields::default();
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                fields.add_content_length(header.value)?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                fields.add_transfer_encoding(header.value)?;
            } else if name.eq_ignore_ascii_case("host") {
                check_host(header.value)?;
                fields.hosts += 1;
            } else if name.eq_ignore_ascii_case("connection") {
                fields.add_connection_options(header.value);
            } else if name.eq_ignore_ascii_case("expect") {
                fields.expect_continue |= header.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
        }
        if version == Version::Http11 && fields.hosts != 1 {
            return Err(HttpError::BadRequest(
                "an HTTP/1.1 request needs exactly one Host header",
            ));
        }
        if fields.hosts > 1 {
            return Err(HttpError::BadRequest("more than one Host header"));
        }
        Ok(fields)
    }

    /// `Content-Length: 5`: one field with one value. A repeated field or a
    /// list, even of equal values (`5, 5`), is refused: RFC 9110 §8.6 allows
    /// merging equal ones, but a front end that takes one of several lengths
    /// is the classic desync, and no client sends more than one.
    fn add_content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
        if self.content_length.is_some() || self.content_length_overflows {
            return Err(HttpError::BadRequest("more than one Content-Length"));
        }
        let digits = value.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::BadRequest("Content-Length is not one non-negative integer"));
        }
        let length = digits
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
        match length {
            Some(length) => self.content_length = Some(length),
            None => self.content_length_overflows = true,
        }
        Ok(())
    }

    /// Only a final `chunked` coding is understood; anything else is 501.
    fn add_transfer_encoding(&mut self, value: &[u8]) -> Result<(), HttpError> {
        self.has_transfer_encoding = true;
        for coding in value
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty())
        {
            if self.chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            self.chunked = true;
        }
        Ok(())
    }

    fn add_connection_options(&mut self, value: &[u8]) {
        for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            self.close |= option.eq_ignore_ascii_case(b"close");
            self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    }

    fn keep_alive(&self, version: Version) -> bool {
        match version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive && !self.close,
        }
    }

    fn framing(&self, version: Version, limits: &Limits) -> Result<BodyFraming, HttpError> {
        if self.has_transfer_encoding {
            if self.content_length.is_some() || self.content_length_overflows {
                return Err(HttpError::BadRequest("both Content-Length and Transfer-Encoding"));
            }
            if version == Version::Http10 {
                return Err(HttpError::BadRequest("Transfer-Encoding in an HTTP/1.0 request"));
            }
            if !self.chunked {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            return Ok(BodyFraming::Chunked);
        }
        if self.content_length_overflows {
            return Err(HttpError::BodyTooLarge);
        }
        match self.content_length {
            Some(length) if length > limits.max_body => Err(HttpError::BodyTooLarge),
            Some(length) => Ok(BodyFraming::Length(length)),
            None => Ok(BodyFraming::Length(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, HttpError> {
        parse_head(text.as_bytes(), &Limits::default())
    }

    fn request(text: &str) -> Request {
        head(text).expect("valid").expect("complete").request
    }

    #[test]
    fn keep_alive_rules_by_version() {
        assert!(request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
        assert!(!request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!request("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!request("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
    }

    #[test]
    fn incomplete_head_asks_for_more() {
        assert!(head("GET / HTTP/1.1\r\nHost: a\r\n").expect("valid so far").is_none());
        assert!(head("GE").expect("valid so far").is_none());
    }

    #[test]
    fn bad_heads_get_their_documented_status() {
        let cases = [
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
            ("GET / FOO/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400),
            ("GET / HTTP/2\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                501,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                501,
            ),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n", 413),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999999999\r\n\r\n",
                413,
            ),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
            ("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /foo bar/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /foo bar/ HTTP/2.0\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/2.0\nHost: a\r\n\r\n", 400),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
            ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET http://a/\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a|b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a<b> HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a^`b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a[b] HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a%4 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
            ("GET / HTTP/1.0\r\nHost: a?\r\n\r\n", 400),
        ];
        for (text, status) in cases {
            let err = head(text).expect_err(text);
            assert_eq!(err.status().code, status, "{text:?} → {err}");
        }
    }

    /// Each line-ending or control-byte trick, which httparse alone would
    /// read one way and a stricter front end another.
    #[test]
    fn bare_line_ends_and_control_bytes_are_refused() {
        let cases: [&[u8]; 18] = [
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nDummy: x\nContent-Length: 35\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nx:x\nTransfer-Encoding: chunked\r\nHost: a\r\n\r\n",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\rHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n",
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for bytes in cases {
            let err = parse_head(bytes, &Limits::default()).expect_err(&bytes.escape_ascii().to_string());
            assert_eq!(err.status().code, 400, "{} → {err}", bytes.escape_ascii());
        }
    }

    /// Strictness must refuse nothing valid.
    #[test]
    fn valid_edge_cases_are_accepted() {
        let cases: [&[u8]; 11] = [
            b"GET / HTTP/1.1\r\nHost: a\r\nX: tab\there\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX:\tleading and trailing\t \r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: obs-text \x80\xff\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: Xn--a-b.Example.%41:\r\n\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a%20b?q=%22x%22&y=~!$'()*+,;:@/? HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET HTTP://a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for bytes in cases {
            let parsed = parse_head(bytes, &Limits::default());
            assert!(matches!(parsed, Ok(Some(_))), "{} → {parsed:?}", bytes.escape_ascii());
        }
    }

    #[test]
    fn refusals_of_head_requests_say_so() {
        let cases = [
            ("HEAD / HTTP/1.1\r\n\r\n", 400),
            ("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400),
            ("HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            ("HEAD / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            ("HEAD /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("HEAD / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
        ];
        for (text, status) in cases {
            let err = head(text).expect_err(text);
            assert_eq!((err.status().code, err.head_only()), (status, true), "{text:?}");
            let as_get = text.replacen("HEAD", "GET", 1);
            assert!(!head(&as_get).expect_err(&as_get).head_only(), "{as_get:?}");
        }
        let long_head = format!("HEAD /{} HTTP/1.1\r\n", "a".repeat(9000));
        let err = head(&long_head).expect_err("long");
        assert_eq!((err.status().code, err.head_only()), (414, true));
        let unknown = head("HEA").map(|head| head.is_none());
        assert_eq!(unknown, Ok(true), "no method yet, nothing to refuse");
    }

    #[test]
    fn trailers_follow_the_head_rules() {
        let limits = Limits::default();
        assert_eq!(parse_trailers(b"\r\n", &limits), Ok(Some(2)));
        assert_eq!(parse_trailers(b"\r\nGET", &limits), Ok(Some(2)));
        let two = b"X: a\tb\r\nY: \x80\r\n\r\nGET";
        assert_eq!(parse_trailers(two, &limits), Ok(Some(two.len() - 3)));
        for partial in [&b""[..], b"\r", b"X: a\r\n", b"X: a\r\n\r"] {
            assert_eq!(parse_trailers(partial, &limits), Ok(None), "{}", partial.escape_ascii());
        }
        let bad: [&[u8]; 8] = [
            b"\n",
            b"X: a\n\r\n",
            b"X: a\r\n\n",
            b"X: a\rb\r\n\r\n",
            b"X : a\r\n\r\n",
            b"X: a\r\n folded\r\n\r\n",
            b"X: a\0\r\n\r\n",
            b"no colon\r\n\r\n",
        ];
        for bytes in bad {
            let err = parse_trailers(bytes, &limits).expect_err(&bytes.escape_ascii().to_string());
            assert_eq!(err.status().code, 400, "{} → {err}", bytes.escape_ascii());
        }
        let big = format!("X: {}\r\n", "b".repeat(limits.max_header_bytes));
        assert_eq!(parse_trailers(big.as_bytes(), &limits), Err(HttpError::HeadersTooLarge));
    }

    #[test]
    fn oversized_lines_and_heads() {
        let long_line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
        assert_eq!(head(&long_line).expect_err("long").status().code, 414);
        let unfinished_long_line = format!("GET /{}", "a".repeat(9000));
        assert_eq!(head(&unfinished_long_line).expect_err("long").status().code, 414);
        let big_head = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "b".repeat(17_000));
        assert_eq!(head(&big_head).expect_err("big").status().code, 431);
        let many: String = (0..65).map(|i| format!("X-{i}: y\r\n")).collect();
        let many_headers = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(head(&many_headers).expect_err("many").status().code, 431);
    }

    #[test]
    fn framing_and_expect() {
        let parsed = head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.framing, BodyFraming::Length(5));
        let parsed = head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.framing, BodyFraming::Chunked);
        assert!(parsed.expects_continue);
        let parsed = head("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!parsed.expects_continue, "no body, nothing to continue");
    }

    #[test]
    fn targets_and_queries() {
        let r = request("GET http://example.com:8080/sleep?ms=5&x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.target, "/sleep?ms=5&x");
        assert_eq!(r.path(), "/sleep");
        assert_eq!(r.query_param("ms"), Some("5"));
        assert_eq!(r.query_param("x"), Some(""));
        assert_eq!(r.query_param("y"), None);
        assert_eq!(
            request("GET http://example.com HTTP/1.1\r\nHost: a\r\n\r\n").target,
            "/"
        );
        assert_eq!(request("OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n").method, Method::Other);
        assert_eq!(
            request("GET https://[::1]:8080?q=%2F HTTP/1.1\r\nHost: a\r\n\r\n").target,
            "/?q=%2F"
        );
        let every_allowed = "/azAZ09-._~!$&'()*+,;=:@%2f/?/?";
        assert_eq!(
            request(&format!("GET {every_allowed} HTTP/1.1\r\nHost: a\r\n\r\n")).target,
            every_allowed
        );
    }
}
