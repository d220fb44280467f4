//! What can be wrong with a request, and the status each answer carries.

use std::fmt;

use super::Status;

/// A request the server refuses. Every one of these is answered with its
/// status and `Connection: close`, and the connection is closed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl HttpError {
    /// The status the answer carries.
    pub fn status(self) -> Status {
        match self {
            HttpError::BadRequest(_) => Status::BAD_REQUEST,
            HttpError::Timeout => Status::REQUEST_TIMEOUT,
            HttpError::BodyTooLarge => Status::PAYLOAD_TOO_LARGE,
            HttpError::RequestLineTooLong => Status::URI_TOO_LONG,
            HttpError::HeadersTooLarge => Status::HEADER_FIELDS_TOO_LARGE,
            HttpError::UnsupportedTransferEncoding => Status::NOT_IMPLEMENTED,
            HttpError::UnsupportedVersion => Status::VERSION_NOT_SUPPORTED,
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
        }
    }
}

impl std::error::Error for HttpError {}
