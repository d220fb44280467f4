//! Response encoding: status line, the usual headers, `Content-Length`
//! always, and the `Connection` header the keep-alive rules call for.

use std::borrow::Cow;

use super::date;

/// An HTTP status code with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    /// The numeric code.
    pub code: u16,
    /// The reason phrase sent on the status line.
    pub reason: &'static str,
}

#[allow(missing_docs)]
impl Status {
    pub const CONTINUE: Status = Status::new(100, "Continue");
    pub const OK: Status = Status::new(200, "OK");
    pub const BAD_REQUEST: Status = Status::new(400, "Bad Request");
    pub const NOT_FOUND: Status = Status::new(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Status = Status::new(405, "Method Not Allowed");
    pub const REQUEST_TIMEOUT: Status = Status::new(408, "Request Timeout");
    pub const PAYLOAD_TOO_LARGE: Status = Status::new(413, "Content Too Large");
    pub const URI_TOO_LONG: Status = Status::new(414, "URI Too Long");
    pub const HEADER_FIELDS_TOO_LARGE: Status = Status::new(431, "Request Header Fields Too Large");
    pub const INTERNAL_SERVER_ERROR: Status = Status::new(500, "Internal Server Error");
    pub const NOT_IMPLEMENTED: Status = Status::new(501, "Not Implemented");
    pub const SERVICE_UNAVAILABLE: Status = Status::new(503, "Service Unavailable");
    pub const VERSION_NOT_SUPPORTED: Status = Status::new(505, "HTTP Version Not Supported");
}

impl Status {
    const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// The class digit: 1 for 1xx … 5 for 5xx.
    pub fn class(self) -> u16 {
        self.code / 100
    }
}

/// What the `Connection` header of a response says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// HTTP/1.1 and staying open: no header needed.
    Implicit,
    /// HTTP/1.0 client that asked for keep-alive: `Connection: keep-alive`.
    KeepAlive,
    /// The server closes after this response: `Connection: close`.
    Close,
}

/// A response ready to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status line.
    pub status: Status,
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// Extra header lines, each ending in CRLF (e.g. `Allow: GET\r\n`).
    pub extra_headers: &'static str,
    /// The body; its length is the `Content-Length`.
    pub body: Cow<'static, [u8]>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: Status, body: impl Into<Cow<'static, [u8]>>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_headers: "",
            body: body.into(),
        }
    }

    /// The answer to a refused request: the status and a line saying why.
    pub fn error(status: Status, why: impl std::fmt::Display) -> Self {
        Self::text(
            status,
            format!("{} {}: {why}\n", status.code, status.reason).into_bytes(),
        )
    }

    /// Appends the encoded response to `out`. With `head_only` (a HEAD
    /// request) the body is left out but `Content-Length` still gives its size.
    pub fn encode(&self, connection: Connection, head_only: bool, out: &mut Vec<u8>) {
        self.encode_head(connection, out);
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }

    /// Appends the head alone, its `Content-Length` the body's size: for a
    /// writer that sends the body from where it lies.
    pub fn encode_head(&self, connection: Connection, out: &mut Vec<u8>) {
        let mut code = itoa::Buffer::new();
        let mut length = itoa::Buffer::new();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(code.format(self.status.code).as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.reason.as_bytes());
        out.extend_from_slice(b"\r\nServer: dispatchlab\r\nDate: ");
        date::append_now(out);
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(length.format(self.body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.extra_headers.as_bytes());
        out.extend_from_slice(match connection {
            Connection::Implicit => b"" as &[u8],
            Connection::KeepAlive => b"Connection: keep-alive\r\n",
            Connection::Close => b"Connection: close\r\n",
        });
        out.extend_from_slice(b"\r\n");
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(response: &Response, connection: Connection, head_only: bool) -> String {
        let mut out = Vec::new();
        response.encode(connection, head_only, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn every_response_has_length_server_and_date() {
        let text = encoded(
            &Response::text(Status::OK, &b"Hello, World!"[..]),
            Connection::Implicit,
            false,
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 13\r\n"), "{text}");
        assert!(text.contains("\r\nServer: dispatchlab\r\n"), "{text}");
        assert!(text.contains("\r\nDate: ") && text.contains(" GMT\r\n"), "{text}");
        assert!(!text.contains("Connection:"), "{text}");
        assert!(text.ends_with("\r\n\r\nHello, World!"), "{text}");
    }

    #[test]
    fn connection_header_follows_the_choice() {
        let response = Response::text(Status::OK, &b"x"[..]);
        assert!(encoded(&response, Connection::Close, false).contains("\r\nConnection: close\r\n"));
        assert!(encoded(&response, Connection::KeepAlive, false).contains("\r\nConnection: keep-alive\r\n"));
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let text = encoded(&Response::text(Status::OK, &b"Hello"[..]), Connection::Implicit, true);
        assert!(
            text.contains("Content-Length: 5\r\n") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn error_body_names_status_and_reason() {
        let text = encoded(
            &Response::error(Status::URI_TOO_LONG, "line too long"),
            Connection::Close,
            false,
        );
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(text.ends_with("414 URI Too Long: line too long\n"), "{text}");
    }
}
