//! One HTTP/1.1 server, two dispatch scopes.
//!
//! * **Connection scope** ([`Scope::Connection`]): acceptor threads hand each
//!   connection to the strategy as one job, which serves it with blocking I/O
//!   until it closes.
//! * **Request scope** ([`Scope::Request`]): event loops own the sockets,
//!   parse requests and hand each *request* to the strategy as one job; the
//!   job hands the encoded response back to its loop, which writes it.
//!
//! * **The tokio reference server** ([`Engine::Tokio`], feature `tokio`): not
//!   a dispatch scope but a yardstick: one task per connection on tokio's
//!   runtime, which owns the sockets and the threads (`tokio_scope`).
//!
//! All share everything else: the listener ([`listener`](self) built with
//! socket2), the HTTP codec ([`crate::http`]), the routes
//! ([`crate::workload`]), the request → response path (`service`), the
//! counters ([`stats`]), accept back-off and graceful shutdown. So the
//! strategies differ only in how a job reaches a thread.
//!
//! Use [`Server::start`] in-process (tests, benches) or [`run`] for the
//! command line (signals, periodic report); [`Server::start_with`] and
//! [`serve_with`] do the same over a dispatcher built outside the crate.

mod accept;
mod announce;
mod budget;
mod cli;
mod config;
mod connection_scope;
mod custom;
mod engine;
pub mod exchange;
mod keep_alive;
mod linger;
mod listener;
pub mod output;
mod payload_file;
mod read_buffer;
mod request_scope;
mod sched;
mod service;
mod shutdown;
pub mod stats;
mod target;
#[cfg(feature = "tokio")]
mod tokio_scope;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use crate::dispatch::{BuildError, DispatchStats, Dispatcher, Strategy};
use crate::http::Limits;
use crate::workload::Workload;

pub use announce::{Announce, NotAnnounce};
pub use cli::run;
pub use config::{Scope, ServeArgs, ServeConfig, Timeouts};
pub use custom::{ServeWithError, serve_with};
pub use engine::Engine;
pub use keep_alive::KeepAlive;
pub use sched::SchedPolicy;
pub use stats::{ServerStats, StatsSnapshot};
pub use target::{Target, UnknownTarget};

use budget::Budget;
use connection_scope::ConnectionFront;
use request_scope::RequestFront;
use service::Service;
use shutdown::Shutdown;
use stats::{DispatchSource, ServerMetrics};

/// The parts of a server every front end and every job shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
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
    #[cfg(feature = "tokio")]
    Tokio(tokio_scope::TokioFront),
}

impl Front {
    fn stop(self) {
        match self {
            Front::Connection(front) => front.stop(),
            Front::Request(front) => front.stop(),
            #[cfg(feature = "tokio")]
            Front::Tokio(front) => front.stop(),
        }
    }
}

/// A running server. Dropping it shuts it down gracefully.
#[derive(Debug)]
pub struct Server {
    config: ServeConfig,
    local_addr: SocketAddr,
    /// The name of what answers: the strategy's, a reference server's, or
    /// the one given to [`start_with`](Self::start_with).
    strategy: &'static str,
    service: Service,
    /// `None` for a reference server, which hands no jobs to a strategy.
    dispatcher: Option<Arc<dyn Dispatcher>>,
    /// Where the strategy's counters come from.
    dispatch: DispatchSource,
    front: Option<Front>,
}

impl Server {
    /// Builds the strategy, binds the listener and starts serving. Every
    /// thread the server starts runs under `config.sched`.
    pub fn start(config: ServeConfig) -> Result<Self, ServeError> {
        if let Engine::Dispatch(strategy) = config.engine
            && strategy.runs_on_caller()
            && config.scope == Scope::Connection
        {
            return Err(ServeError::NeedsRequestScope(strategy.name()));
        }
        sched::with_policy(config.sched, || Self::start_threads(config)).map_err(ServeError::Setup)?
    }

    fn start_threads(config: ServeConfig) -> Result<Self, ServeError> {
        match config.engine {
            Engine::Dispatch(strategy) => Self::start_dispatch(strategy, config),
            #[cfg(feature = "tokio")]
            Engine::Tokio => Self::start_tokio(config),
        }
    }

    fn start_dispatch(strategy: Strategy, config: ServeConfig) -> Result<Self, ServeError> {
        let dispatcher = strategy.build(&config.dispatch).map_err(ServeError::Build)?;
        Self::serve_dispatcher(config, strategy.name(), dispatcher)
    }

    /// Serves with a dispatcher built elsewhere (a strategy outside the
    /// crate, say), in `config.scope`, with everything else as
    /// [`start`](Self::start) does: the same routes, stats, `/metrics` and
    /// graceful shutdown, which also shuts the dispatcher down.
    ///
    /// `name` stands where a strategy's name stands: in `/metrics`
    /// (`dispatchlab_info{strategy=…}`) and [`strategy_name`](Self::strategy_name)
    /// (the announce line of [`serve_with`]). `config.engine` does not
    /// choose anything here; leave it a dispatch strategy (the default), as
    /// the reported scope name follows it ([`ServeConfig::scope_name`]).
    /// `config.dispatch` is read only for the `workers` label: build the
    /// dispatcher from it. Threads the dispatcher started before this call
    /// keep their own scheduling policy; build it under `config.sched` if that
    /// matters, as [`serve_with`] does.
    pub fn start_with(
        config: ServeConfig,
        name: &'static str,
        dispatcher: Arc<dyn Dispatcher>,
    ) -> Result<Self, ServeError> {
        sched::with_policy(config.sched, || Self::serve_dispatcher(config, name, dispatcher))
            .map_err(ServeError::Setup)?
    }

    fn serve_dispatcher(
        config: ServeConfig,
        name: &'static str,
        dispatcher: Arc<dyn Dispatcher>,
    ) -> Result<Self, ServeError> {
        let dispatch = DispatchSource::Dispatcher(Arc::downgrade(&dispatcher));
        let service = Self::service(&config, name, dispatch.clone());
        let shared = Shared {
            service: service.clone(),
            dispatcher: Arc::clone(&dispatcher),
            shutdown: Arc::clone(&service.shutdown),
            limits: config.limits,
            timeouts: config.timeouts,
        };
        let several_loops = config.scope == Scope::Request && config.io_threads > 1;
        let (listener, local_addr) = Self::bind(&config, several_loops)?;
        let front = match config.scope {
            Scope::Connection => Front::Connection(ConnectionFront::start(listener, config.accept_threads, shared)?),
            Scope::Request => Front::Request(RequestFront::start(
                listener,
                config.io_threads,
                config.listen_settings(),
                config.max_in_flight,
                shared,
            )?),
        };
        Ok(Self {
            config,
            local_addr,
            strategy: name,
            service,
            dispatch,
            dispatcher: Some(dispatcher),
            front: Some(front),
        })
    }

    #[cfg(feature = "tokio")]
    fn start_tokio(config: ServeConfig) -> Result<Self, ServeError> {
        let (runtime, threads_alive) = tokio_scope::runtime(config.dispatch.workers)?;
        let dispatch = DispatchSource::Tokio {
            handle: runtime.handle().clone(),
            threads_alive,
        };
        let service = Self::service(&config, config.engine.name(), dispatch.clone());
        let (listener, local_addr) = Self::bind(&config, false)?;
        let front = tokio_scope::TokioFront::start(runtime, listener, service.clone(), config.limits, config.timeouts)?;
        Ok(Self {
            strategy: config.engine.name(),
            config,
            local_addr,
            service,
            dispatch,
            dispatcher: None,
            front: Some(Front::Tokio(front)),
        })
    }

    /// The workload, counters and shutdown flag of a server that reads the
    /// counters of its strategy, called `strategy`, from `dispatch`.
    fn service(config: &ServeConfig, strategy: &'static str, dispatch: DispatchSource) -> Service {
        let stats = Arc::new(ServerStats::default());
        let budget = Arc::new(Budget::new(config.buffer_budget));
        let metrics = ServerMetrics {
            stats: Arc::clone(&stats),
            budget: Arc::clone(&budget),
            dispatch,
            strategy,
            scope: config.scope_name(),
            workers: config.dispatch.workers,
        };
        Service {
            workload: Workload::new(Arc::new(metrics)).with_panic_route(config.panic_route),
            stats,
            shutdown: Arc::new(Shutdown::default()),
            keep_alive: config.keep_alive,
            budget,
        }
    }

    fn bind(config: &ServeConfig, reuse_port: bool) -> Result<(std::net::TcpListener, SocketAddr), ServeError> {
        let bind_error = |source| ServeError::Bind {
            addr: config.addr,
            source,
        };
        let listener = listener::bind(config.addr, config.listen_settings(), reuse_port).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok((listener, local_addr))
    }

    /// The address the server listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The name of the strategy that answers (as `/metrics` and the announce
    /// line show it): the configured one's, or the name given to
    /// [`start_with`](Self::start_with).
    pub fn strategy_name(&self) -> &'static str {
        self.strategy
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// The server's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.service.stats.snapshot()
    }

    /// Bytes buffered for clients now, charged to `--buffer-budget`.
    pub fn buffered_bytes(&self) -> usize {
        self.service.budget.in_use()
    }

    /// The strategy's counters (a reference server's where they apply, as
    /// `/metrics` shows them).
    pub fn dispatch_stats(&self) -> DispatchStats {
        self.dispatch.stats()
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
        self.service.shutdown.start();
        let dispatcher = self.dispatcher.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let stopper = thread::Builder::new()
            .name("dispatchlab-shutdown".into())
            .spawn(move || {
                front.stop();
                if let Some(dispatcher) = dispatcher {
                    dispatcher.shutdown();
                }
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
    /// A reference server was given a `--scope` (it has its own) or flags
    /// that only tune dispatch strategies.
    NotForReference {
        /// The reference server.
        server: &'static str,
        /// The flags it refuses, as given.
        flags: Vec<&'static str>,
    },
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
            ServeError::NotForReference { server, flags } => write!(
                f,
                "{server} is a reference server, not a dispatcher: it serves each connection as a task on its \
                 own runtime and takes no {} (leave {} out; --workers sets its threads)",
                flags.join(", "),
                if flags.len() == 1 { "the flag" } else { "them" }
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
