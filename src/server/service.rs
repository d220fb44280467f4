//! One request in, one encoded response out: the code path every strategy
//! runs for every request, in both scopes.
//!
//! A handler that panics is answered 500 with `Connection: close` and
//! counted; the thread that ran it carries on.

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::http::{Connection, HttpError, Method, Request, Response, Status};
use crate::workload::{Reply, Workload};

use super::budget::Budget;
use super::keep_alive::KeepAlive;
use super::output::STREAM_AT;
use super::shutdown::Shutdown;
use super::stats::ServerStats;

/// The workload, the counters every answer updates, the shutdown flag
/// every answer consults and the budget every buffered byte is charged to.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) workload: Workload,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) shutdown: Arc<Shutdown>,
    pub(crate) keep_alive: KeepAlive,
    pub(crate) budget: Arc<Budget>,
}

/// An answer encoded: the bytes went to the caller's buffer, a large
/// `'static` body is left to stream.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// Whether the connection stays open after this answer.
    pub(crate) keep_open: bool,
    /// The body still to send after the encoded bytes, written from where
    /// it lies (see `output`); empty when the body was encoded.
    pub(crate) streamed: &'static [u8],
}

impl Service {
    /// Runs the handler for `request` and appends the encoded response to
    /// `out`, as [`encode`](Self::encode) does.
    ///
    /// A wait the handler asks for blocks this thread.
    pub(crate) fn answer(&self, request: &Request, out: &mut Vec<u8>) -> Encoded {
        let response = self.reply(request).map(Reply::wait_blocking);
        self.encode(request, response, out)
    }

    /// Runs the handler for `request`, leaving any wait it asks for to the
    /// caller; `None` if it panicked (counted).
    pub(crate) fn reply(&self, request: &Request) -> Option<Reply> {
        let handled = panic::catch_unwind(AssertUnwindSafe(|| self.workload.reply(request)));
        handled.map_err(|_| self.stats.handler_panicked()).ok()
    }

    /// Appends the encoded `response` to `request` (`None`: the handler
    /// panicked, answered 500) and says whether the connection stays open:
    /// not when the client asked to close, the handler panicked or the server
    /// has started shutting down (checked after the handler, which may have
    /// taken a while). A `'static` body longer than [`STREAM_AT`] is not
    /// copied but left to stream.
    pub(crate) fn encode(&self, request: &Request, response: Option<Response>, out: &mut Vec<u8>) -> Encoded {
        let (response, connection) = match response {
            Some(response) if self.shutdown.is_started() || self.closes_kept_connections() => {
                (response, Connection::Close)
            }
            Some(response) => (response, request.response_connection()),
            None => (
                Response::error(Status::INTERNAL_SERVER_ERROR, "the handler panicked"),
                Connection::Close,
            ),
        };
        let head_only = request.method == Method::Head;
        let streamed = match response.body {
            Cow::Borrowed(body) if !head_only && body.len() > STREAM_AT => body,
            _ => &[],
        };
        if streamed.is_empty() {
            response.encode(connection, head_only, out);
        } else {
            response.encode_head(connection, out);
        }
        self.stats.response(response.status);
        Encoded {
            keep_open: connection != Connection::Close,
            streamed,
        }
    }

    /// Whether the keep-alive policy closes a connection the client would
    /// keep (see [`KeepAlive`]).
    fn closes_kept_connections(&self) -> bool {
        self.keep_alive.closes(self.stats.connections_waiting())
    }

    /// Appends the answer to a request that cannot be served; the connection
    /// must close after it.
    pub(crate) fn refuse(&self, error: HttpError, out: &mut Vec<u8>) {
        let (status, head_only) = (error.status(), error.head_only());
        Response::error(status, error).encode(Connection::Close, head_only, out);
        self.stats.response(status);
    }

    /// Appends a 503 for a request (or connection) the strategy refused;
    /// `head_only` when the refused request is `HEAD` (a refused connection
    /// has sent nothing yet, so its answer carries the body).
    pub(crate) fn unavailable(&self, why: impl std::fmt::Display, head_only: bool, out: &mut Vec<u8>) {
        self.stats.rejected();
        Response::error(Status::SERVICE_UNAVAILABLE, why).encode(Connection::Close, head_only, out);
        self.stats.response(Status::SERVICE_UNAVAILABLE);
    }
}
