//! The load generator behind `dispatchlab load`: many HTTP/1.x connections per
//! thread on a mio event loop, closed loop (as `wrk`) or open loop at a
//! constant rate (as `wrk2`), with HdrHistogram latencies.
//!
//! ```no_run
//! use dispatchlab::load::{self, Config, Target};
//! use std::time::Duration;
//!
//! let mut config = Config::new(Target::parse("http://127.0.0.1:8080/")?);
//! config.connections = 100;
//! config.duration = Duration::from_secs(10);
//! let report = load::run(&config)?;
//! println!("{report}");
//! # Ok::<(), dispatchlab::load::LoadError>(())
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | `config` | [`Config`], [`LoadArgs`] (the command line) and the checks between them |
//! | `target` | [`Target`]: `http://host:port/path` parsed and resolved once |
//! | `request` | the request bytes, rendered once per run so the hot path never allocates |
//! | `response` | response framing: `Content-Length`, chunked, or delimited by the server's close |
//! | `plan` | `LoadPlan`: what every worker of a run shares, read-only |
//! | `source` | [`SourceAddrs`]: which loopback (or listed) client addresses the connections are bound to, past one address's ephemeral ports |
//! | `connection` | one client connection's state machine (idle → connecting → writing/reading) and the worker state it updates |
//! | `worker` | one thread: a mio `Poll` over its share of the connections, timers, timeouts |
//! | `timer` | a `timerfd` that wakes the poll on time for open-loop sends (Linux) |
//! | `recorder` | what a worker counts: histograms, errors, bytes, the per-second timeline |
//! | `report` | [`Report`]: merged results, the table, JSON, the CSV row, the `.hgrm` file |
//! | `netstat` | `/proc/net/netstat` TcpExt counters, read before and after the run |
//! | `progress` | the live line on a terminal |
//!
//! # How a run works
//!
//! [`run`] splits the connections over `threads` workers (as evenly as
//! possible; the rate is split in proportion). Every worker owns its sockets
//! and never blocks except in `Poll::poll`.
//!
//! *Closed loop* (no rate): each connection keeps `pipeline` requests in
//! flight and sends the next one as soon as a response completes. Latency is
//! response complete − send time.
//!
//! *Open loop* (`rate`): connection *g* of *C* has the schedule
//! `start + g/rate + k·C/rate`, k = 0, 1, 2, … Each request has an *intended*
//! send time from that schedule; a connection that is behind (its previous
//! response came late) sends at once, as wrk2 does. The corrected latency is
//! response complete − intended time, so a server that stalls for a second is
//! charged for every request that should have been sent during the stall
//! (coordinated omission). The uncorrected histogram (from the actual send
//! time) is kept beside it so the size of the correction is visible. On Linux
//! a `timerfd` wakes the worker at the intended time (mio's poll timeout has
//! millisecond granularity, and the client's own lateness would otherwise be
//! charged to the server); a worker that is descheduled still sends late, and
//! that lateness is in the corrected figures, as in wrk2.
//!
//! Connection modes: `keepalive` reuses connections (connect time is not part
//! of latency; a server's `Connection: close` or close-delimited response is
//! followed by a reconnect, counted); `close` opens a new TCP connection for
//! every request, sends `Connection: close`, and includes the connect in the
//! latency; `http10` sends `HTTP/1.0` requests without `Connection:
//! keep-alive`, as a plain HTTP/1.0 client does, so the server closes after
//! each response and, as in `close`, every request has its own connection
//! (connect included in the latency). Pipelining (`pipeline` > 1) needs
//! `keepalive`; when a server closes a pipelined connection, the requests it
//! left unanswered are counted as `reset` errors, not re-sent.
//!
//! Responses are framed by `Content-Length`, by chunked transfer encoding, or
//! by the server closing the connection (wrk counts the last as read errors;
//! here they are successes, followed by a counted reconnect). Successful
//! means status 1xx–3xx; only successful responses enter the latency
//! histograms. A response that completes after the end of a timed run is not
//! counted, like one still in flight.
//!
//! # Every offered request, accounted for
//!
//! A request is *offered* when its intended send time falls in the measured
//! window (after the warm-up, before the end or the stop); in closed loop,
//! when a connection issues it in the window. Each offered request ends in
//! exactly one bucket: answered (`requests`), failed by kind (`errors`),
//! `unsent` (never written: due while its connection waited, connected or
//! retried) or `unanswered` (written, no outcome when the window ended), so
//! `offered = requests + errors + unsent + unanswered`. Warm-up requests are
//! not offered, even when answered after the boundary. A failed request is
//! not re-sent: the failure is its bucket; a failed keep-alive connect costs
//! the schedule's next request (in open loop the retry then waits for the
//! following intended time), and in closed loop the next request a
//! connection issues is a new offered one. An outcome after the window's end
//! counts as unanswered.
//!
//! The headline latency covers every offered request: answered ones at their
//! latency, the others at a lower bound, their age from the intended send
//! time when they failed or when the window ended (a second, *censored*
//! histogram holds those). The value at percentile p is exact when at least
//! ⌈p·N⌉ answered latencies lie at or below it; otherwise a lower bound may
//! have decided it and it prints as `≥ 2.00s`. The answered-only
//! distribution is kept beside it.
//!
//! The connect timeout (default 10 s) is deliberately long: when a listen
//! queue overflows, Linux drops the SYN and the client retransmits it after
//! about 1 s, then 3 s, 7 s. Those connects succeed late and must show up as
//! slow requests, not as errors.
//!
//! One client address has about 28,000 ephemeral ports towards one server
//! port (`net.ipv4.ip_local_port_range`). For an IPv4 loopback target the
//! load generator spreads the connections over 127.0.0.1, 127.0.0.2, … when
//! the count needs it ([`SourceAddrs`], `--source-addrs`), so 100,000
//! keep-alive connections to one port work without any setting. With many
//! connections in `close` mode, TIME_WAIT sockets still hold ports
//! (`net.ipv4.tcp_tw_reuse`); connects that find none fail with
//! `EADDRNOTAVAIL` and are counted as `other` errors. The load generator
//! does not change sysctls.
//!
//! Many connections at once overrun the server's listen queue (SYNs dropped,
//! retransmitted after 1 s, 3 s): [`Config::ramp`] (`--ramp`) opens them
//! evenly over a time instead.

pub mod cli;
mod config;
mod connection;
mod error;
mod netstat;
mod plan;
mod progress;
mod recorder;
mod report;
mod request;
mod response;
mod source;
mod target;
mod timer;
mod worker;

pub(crate) use config::parse_duration;
pub use config::{Config, ConnectionMode, LoadArgs};
pub use error::{ErrorCounts, ErrorKind, LoadError};
pub use netstat::{Netstat, NetstatDelta};
pub use report::{FixedCount, LatencySummary, Report};
pub use response::{ResponseHead, first_response, response_head};
pub use source::{SourceAddrs, connections_per_source, ephemeral_ports};
pub use target::Target;

/// Runs the load described by `config` and returns what it measured.
///
/// Does not print anything, except the live progress line on standard error
/// when [`Config::progress`] is set. Errors of the target (refused, reset,
/// timeouts, bad statuses) are counted in the [`Report`]; an `Err` means the
/// run could not be carried out at all (invalid configuration, no threads, no
/// event loop).
pub fn run(config: &Config) -> Result<Report, LoadError> {
    config.validate()?;
    worker::run_all(config)
}
