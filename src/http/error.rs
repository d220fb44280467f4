//! What can be wrong with a request, and the status each answer carries.
//!
//! An answer to `HEAD` never has a body (RFC 9110 §9.3.2), refusals
//! included: once the method of a refused request is known, the refusal is
//! wrapped in [`HttpError::ToHead`] and the server sends the head alone.

use std::fmt;

use super::{Method, Status};

/// A request the server refuses. Every one of these is answered with its
/// status and `Connection: close`, and the connection is closed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Syntax error, conflicting framing, missing or repeated `Host` → 400.
    BadRequest(&'static str),
    /// The request head did not arrive within the header timeout → 408.
    Timeout,
    /// Declared or chunked body larger than the limit → 413.
    BodyTooLarge,
    /// Request line longer than the limit → 414.
    RequestLineTooLong,
    /// Head larger than the limit, or too many header fields → 431.
    HeadersTooLarge,
    /// A transfer coding other than `chunked` → 501.
    UnsupportedTransferEncoding,
    /// An HTTP version other than 1.0 or 1.1 → 505.
    UnsupportedVersion,
    /// One of the refusals above, of a `HEAD` request: the same status and
    /// `Content-Length`, without the body.
    ToHead(Box<HttpError>),
}

impl HttpError {
    /// The status the answer carries.
    pub fn status(&self) -> Status {
        match self {
            HttpError::BadRequest(_) => Status::BAD_REQUEST,
            HttpError::Timeout => Status::REQUEST_TIMEOUT,
            HttpError::BodyTooLarge => Status::PAYLOAD_TOO_LARGE,
            HttpError::RequestLineTooLong => Status::URI_TOO_LONG,
            HttpError::HeadersTooLarge => Status::HEADER_FIELDS_TOO_LARGE,
            HttpError::UnsupportedTransferEncoding => Status::NOT_IMPLEMENTED,
            HttpError::UnsupportedVersion => Status::VERSION_NOT_SUPPORTED,
            HttpError::ToHead(refusal) => refusal.status(),
        }
    }

    /// Whether the answer is the head alone (the refused request was `HEAD`).
    pub fn head_only(&self) -> bool {
        matches!(self, HttpError::ToHead(_))
    }

    /// This refusal as the answer to a request with `method`.
    pub(crate) fn of(self, method: Method) -> Self {
        match (method, self) {
            (Method::Head, refusal @ HttpError::ToHead(_)) => refusal,
            (Method::Head, refusal) => HttpError::ToHead(Box::new(refusal)),
            (_, refusal) => refusal,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadRequest(why) => write!(f, "bad request: {why}"),
            HttpError::Timeout => f.write_str("the request head did not arrive in time"),
            HttpError::BodyTooLarge => f.write_str("the request body is larger than the server accepts"),
            HttpError::RequestLineTooLong => f.write_str("the request line is longer than the server accepts"),
            HttpError::HeadersTooLarge => f.write_str("the request head is larger than the server accepts"),
            HttpError::UnsupportedTransferEncoding => f.write_str("only the chunked transfer coding is supported"),
            HttpError::UnsupportedVersion => f.write_str("only HTTP/1.0 and HTTP/1.1 are supported"),
            HttpError::ToHead(refusal) => refusal.fmt(f),
        }
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_refusal_keeps_its_status_and_message() {
        let refusal = HttpError::BadRequest("no Host").of(Method::Head);
        assert!(refusal.head_only());
        assert_eq!(refusal.status(), Status::BAD_REQUEST);
        assert_eq!(refusal.to_string(), "bad request: no Host");
        assert_eq!(refusal.clone().of(Method::Head), refusal, "wrapped once");
        assert!(!HttpError::Timeout.of(Method::Get).head_only());
    }
}
