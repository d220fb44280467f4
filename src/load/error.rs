//! What can go wrong: per-request errors, counted by kind ([`ErrorKind`],
//! [`ErrorCounts`]), and the errors that stop a run before it starts
//! ([`LoadError`]).

use std::fmt;
use std::io;

use serde::Serialize;

/// Why a request failed. Each failed request is counted once, under one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The connect was refused (`ECONNREFUSED`: nothing listens, or a full
    /// accept queue answered with a RST).
    ConnectRefused,
    /// The connect did not complete within the connect timeout.
    ConnectTimeout,
    /// The connection was reset (`ECONNRESET`, `EPIPE`) or closed by the
    /// server before the response was complete.
    Reset,
    /// The response did not complete within the request timeout.
    ReadTimeout,
    /// The response had a 4xx or 5xx status.
    BadStatus,
    /// The response could not be parsed as HTTP/1.x.
    Protocol,
    /// A local failure: no ephemeral port (`EADDRNOTAVAIL`), no descriptor
    /// (`EMFILE`), or another I/O error that is none of the above.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order the reports list them.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Reset,
        ErrorKind::ReadTimeout,
        ErrorKind::BadStatus,
        ErrorKind::Protocol,
        ErrorKind::Other,
    ];

    /// The name used in the table and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect refused",
            ErrorKind::ConnectTimeout => "connect timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::ReadTimeout => "read timeout",
            ErrorKind::BadStatus => "bad status",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
        }
    }

    /// Classifies an error from a non-blocking connect.
    pub(crate) fn of_connect(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            _ => ErrorKind::Other,
        }
    }

    /// Classifies an error from reading or writing an established connection.
    pub(crate) fn of_io(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected => ErrorKind::Reset,
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::TimedOut => ErrorKind::ReadTimeout,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Failed requests by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// See [`ErrorKind::ConnectRefused`].
    pub connect_refused: u64,
    /// See [`ErrorKind::ConnectTimeout`].
    pub connect_timeout: u64,
    /// See [`ErrorKind::Reset`].
    pub reset: u64,
    /// See [`ErrorKind::ReadTimeout`].
    pub read_timeout: u64,
    /// See [`ErrorKind::BadStatus`].
    pub bad_status: u64,
    /// See [`ErrorKind::Protocol`].
    pub protocol: u64,
    /// See [`ErrorKind::Other`].
    pub other: u64,
}

impl ErrorCounts {
    /// Adds `n` errors of `kind`.
    pub fn add(&mut self, kind: ErrorKind, n: u64) {
        *self.slot(kind) += n;
    }

    /// The count of one kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::ConnectRefused => self.connect_refused,
            ErrorKind::ConnectTimeout => self.connect_timeout,
            ErrorKind::Reset => self.reset,
            ErrorKind::ReadTimeout => self.read_timeout,
            ErrorKind::BadStatus => self.bad_status,
            ErrorKind::Protocol => self.protocol,
            ErrorKind::Other => self.other,
        }
    }

    /// All errors together.
    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|&kind| self.get(kind)).sum()
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for kind in ErrorKind::ALL {
            self.add(kind, other.get(kind));
        }
    }

    fn slot(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::ConnectRefused => &mut self.connect_refused,
            ErrorKind::ConnectTimeout => &mut self.connect_timeout,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::ReadTimeout => &mut self.read_timeout,
            ErrorKind::BadStatus => &mut self.bad_status,
            ErrorKind::Protocol => &mut self.protocol,
            ErrorKind::Other => &mut self.other,
        }
    }
}

/// Why a run could not be carried out (as opposed to requests that failed,
/// which are counted in the report).
#[derive(Debug)]
pub enum LoadError {
    /// The configuration is inconsistent; the message says which setting to change.
    InvalidConfig(String),
    /// The URL could not be parsed or is not `http://`.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name did not resolve.
    Resolve {
        /// `host:port` as given.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The operating system refused a thread or an event loop.
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// A worker thread panicked (a bug: please report it).
    WorkerPanicked,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::InvalidConfig(message) => write!(f, "invalid load configuration: {message}"),
            LoadError::InvalidUrl { url, reason } => {
                write!(f, "invalid URL {url:?}: {reason} (expected http://host[:port][/path])")
            }
            LoadError::Resolve { host, source } => {
                write!(f, "cannot resolve {host}: {source} (check the host name)")
            }
            LoadError::Setup { what, source } => write!(f, "cannot {what}: {source}"),
            LoadError::WorkerPanicked => f.write_str("a load worker thread panicked (this is a bug)"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Resolve { source, .. } | LoadError::Setup { source, .. } => Some(source),
            _ => None,
        }
    }
}
