//! One HTTP/1.1 server, two dispatch scopes.
//!
//! * **Connection scope** ([`Scope::Connection`]): acceptor threads hand each
//!   connection to the strategy as one job, which serves it with blocking I/O
//!   until it closes.
//! * **Request scope** ([`Scope::Request`]): event loops own the sockets,
//!   parse requests and hand each *request* to the strategy as one job; the
//!   job hands the encoded response back to its loop, which writes it.
//!
//! Both share everything else: the listener ([`listener`](self) built with
//! socket2), the HTTP codec ([`crate::http`]), the routes
//! ([`crate::workload`]), the request → response path (`service`), the
//! counters ([`stats`]), accept back-off and graceful shutdown. So the
//! strategies differ only in how a job reaches a thread.
//!
//! Use [`Server::start`] in-process (tests, benches) or [`run`] for the
//! command line (signals, periodic report).

mod accept;
mod cli;
mod config;
mod connection_scope;
pub mod exchange;
mod listener;
mod read_buffer;
mod request_scope;
mod sched;
mod service;
mod shutdown;
pub mod stats;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use crate::dispatch::{BuildError, DispatchStats, Dispatcher};
use crate::http::Limits;
use crate::workload::Workload;

pub use cli::run;
pub use config::{Scope, ServeArgs, ServeConfig, Timeouts};
pub use sched::SchedPolicy;
pub use stats::{ServerStats, StatsSnapshot};

use connection_scope::ConnectionFront;
use request_scope::RequestFront;
use service::Service;
use shutdown::Shutdown;
use stats::ServerMetrics;

/// The parts of a server every front end and every job shares.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub(crate) service: Service,
    pub(crate) dispatcher: Arc<dyn Dispatcher>,
    pub(crate) shutdown: Arc<Shutdown>,
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
}

/// The threads that own the listener and the sockets, per scope.
#[derive(Debug)]
enum Front {
    Connection(ConnectionFront),
    Request(RequestFront),
}

impl Front {
    fn stop(self) {
        match self {
            Front::Connection(front) => front.stop(),
            Front::Request(front) => front.stop(),
        }
    }
}

/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that closing does not reset the connection and
/// destroy the last response before the client has read it (the "lingering
/// close" of Apache and nginx). Both scopes use it after refusing a request
/// or when unanswered pipelined bytes remain.
pub(crate) const LINGER: Duration = Duration::from_millis(500);
/// The most bytes discarded while lingering.
pub(crate) const LINGER_BYTES: usize = 256 * 1024;

/// A running server. Dropping it shuts it down gracefully.
#[derive(Debug)]
pub struct Server {
    config: ServeConfig,
    local_addr: SocketAddr,
    core: Core,
    front: Option<Front>,
}

impl Server {
    /// Builds the strategy, binds the listener and starts serving. Every
    /// thread the server starts runs under `config.sched`.
    pub fn start(config: ServeConfig) -> Result<Self, ServeError> {
        if config.strategy.runs_on_caller() && config.scope == Scope::Connection {
            return Err(ServeError::NeedsRequestScope(config.strategy.name()));
        }
        sched::with_policy(config.sched, || Self::start_threads(config)).map_err(ServeError::Setup)?
    }

    fn start_threads(config: ServeConfig) -> Result<Self, ServeError> {
        let dispatcher = config.strategy.build(&config.dispatch).map_err(ServeError::Build)?;
        let stats = Arc::new(ServerStats::default());
        let metrics = ServerMetrics {
            stats: Arc::clone(&stats),
            dispatcher: Arc::downgrade(&dispatcher),
            strategy: config.strategy.name(),
            scope: config.scope.name(),
            workers: config.dispatch.workers,
        };
        let workload = Workload::new(Arc::new(metrics)).with_panic_route(config.panic_route);
        let shutdown = Arc::new(Shutdown::default());
        let core = Core {
            service: Service {
                workload,
                stats,
                shutdown: Arc::clone(&shutdown),
            },
            dispatcher,
            shutdown,
            limits: config.limits,
            timeouts: config.timeouts,
        };
        let bind_error = |source| ServeError::Bind {
            addr: config.addr,
            source,
        };
        let several_loops = config.scope == Scope::Request && config.io_threads > 1;
        let listener = listener::bind(config.addr, config.backlog, several_loops).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let front = match config.scope {
            Scope::Connection => {
                Front::Connection(ConnectionFront::start(listener, config.accept_threads, core.clone())?)
            }
            Scope::Request => Front::Request(RequestFront::start(
                listener,
                config.io_threads,
                config.backlog,
                config.max_in_flight,
                core.clone(),
            )?),
        };
        Ok(Self {
            config,
            local_addr,
            core,
            front: Some(front),
        })
    }

    /// The address the server listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// The server's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.core.service.stats.snapshot()
    }

    /// The strategy's counters.
    pub fn dispatch_stats(&self) -> DispatchStats {
        self.core.dispatcher.stats()
    }

    /// Stops accepting, finishes the requests in flight (answered with
    /// `Connection: close`), closes idle connections and joins every thread,
    /// within the configured shutdown timeout.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ServeError> {
        let Some(front) = self.front.take() else {
            return Ok(());
        };
        self.core.shutdown.start();
        let dispatcher = Arc::clone(&self.core.dispatcher);
        let (done_tx, done_rx) = mpsc::channel();
        let stopper = thread::Builder::new()
            .name("dispatchlab-shutdown".into())
            .spawn(move || {
                front.stop();
                dispatcher.shutdown();
                let _ = done_tx.send(());
            });
        if let Err(err) = stopper {
            return Err(ServeError::Setup(err));
        }
        done_rx
            .recv_timeout(self.config.timeouts.shutdown)
            .map_err(|_| ServeError::ShutdownTimedOut {
                after: self.config.timeouts.shutdown,
                open_connections: self.stats().connections_open,
            })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Why a server could not start or stop cleanly.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The strategy could not be built.
    Build(BuildError),
    /// The listener could not be bound.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The strategy only works in request scope.
    NeedsRequestScope(&'static str),
    /// A thread, poller or signal handler could not be set up.
    Setup(io::Error),
    /// Graceful shutdown did not finish in time.
    ShutdownTimedOut {
        /// The shutdown timeout.
        after: Duration,
        /// Connections still open when it expired.
        open_connections: u64,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Build(err) => err.fmt(f),
            ServeError::Bind { addr, source } if source.kind() == io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr}: the address is in use (another server? pick another --addr, or port 0 for a free one)"
            ),
            ServeError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServeError::NeedsRequestScope(what) => write!(
                f,
                "{what} runs jobs on the event-loop thread and only works with --scope request \
                 (in connection scope it would serve one connection at a time)"
            ),
            ServeError::Setup(err) => write!(f, "cannot set up the server: {err}"),
            ServeError::ShutdownTimedOut {
                after,
                open_connections,
            } => write!(
                f,
                "graceful shutdown did not finish within {after:?} ({open_connections} connections still open); \
                 raise --shutdown-timeout if requests legitimately take longer"
            ),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Build(err) => Some(err),
            ServeError::Bind { source, .. } | ServeError::Setup(source) => Some(source),
            _ => None,
        }
    }
}
