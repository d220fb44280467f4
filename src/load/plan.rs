//! [`LoadPlan`]: what every worker of a run shares, read-only, computed once
//! from the [`Config`](super::Config) by the worker module and read by the
//! connections and the report. It lives apart from both so that neither
//! imports the other.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::ConnectionMode;

/// What every worker of a run shares, read-only.
#[derive(Debug)]
pub(crate) struct LoadPlan {
    pub addr: SocketAddr,
    /// Client addresses, connection *g* on `sources[g % len]`; empty when
    /// the kernel picks.
    pub sources: Vec<IpAddr>,
    /// Connection *g* of *C* connects first at `start + ramp · g / C`.
    pub ramp: Duration,
    pub mode: ConnectionMode,
    /// Connections of the whole run.
    pub connections: usize,
    /// Requests in flight per connection.
    pub depth: usize,
    pub request_len: usize,
    /// `depth` copies of the request.
    pub requests: Vec<u8>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Open loop: time between two requests of one connection.
    pub period: Option<Duration>,
    /// Open loop: total rate, for staggering the connections.
    pub rate: Option<f64>,
    /// Fixed-count mode: requests per connection.
    pub limit: Option<u64>,
    pub start: Instant,
    pub measure_start: Instant,
    pub end: Instant,
    /// Ends the run early when set.
    pub stop: Option<Arc<AtomicBool>>,
}
