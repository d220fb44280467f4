//! Everything `dispatchlab serve` can be told, with its defaults, as clap
//! arguments that also build a [`ServeConfig`] for in-process use.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use crate::dispatch::{DispatchConfig, Pick, Strategy, WakePolicy, default_workers};
use crate::http::Limits;

use super::listener::ListenSettings;
use super::{Engine, KeepAlive, SchedPolicy, Target};

/// What one job covers ([`Scope::description`] says what each means).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One job = one connection.
    Connection,
    /// One job = one request.
    Request,
}

impl Scope {
    /// Both scopes, in table order.
    pub const ALL: [Scope; 2] = [Scope::Connection, Scope::Request];

    /// The name used on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Connection => "connection",
            Scope::Request => "request",
        }
    }
}

impl Scope {
    /// One line for `--help`.
    pub fn description(self) -> &'static str {
        match self {
            Scope::Connection => {
                "One job = serve one connection until it closes (blocking I/O; the classic design, where keep-alive starves a pool)"
            }
            Scope::Request => "One job = answer one request; event loops own the sockets",
        }
    }
}

impl ValueEnum for Scope {
    fn value_variants<'a>() -> &'a [Self] {
        &Scope::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.description()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long the server waits, for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request to its last (head and body); past it
    /// the request is answered 408 and the connection closed.
    pub header: Duration,
    /// How long a keep-alive connection may sit between requests before the
    /// server closes it.
    pub idle: Duration,
    /// How long a write may block (connection scope) or make no progress
    /// (request scope) before the connection is closed.
    pub write: Duration,
    /// How long graceful shutdown may take before the server gives up.
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(10),
            shutdown: Duration::from_secs(15),
        }
    }
}

/// A server's full configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The dispatch strategy, or a reference server.
    pub engine: Engine,
    /// What a job covers. A reference server has its own and ignores it.
    pub scope: Scope,
    /// How the strategy is sized and tuned.
    pub dispatch: DispatchConfig,
    /// Listen backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: u32,
    /// Bytes of send buffer (`SO_SNDBUF`) asked of the kernel for every
    /// connection; Linux reserves twice that. It bounds what a client that
    /// never reads holds of the kernel's memory, as `buffer_budget` bounds
    /// what it holds of the server's. 0 leaves the size to the kernel's
    /// autotuning, which grows a socket's buffer to `net.ipv4.tcp_wmem`'s
    /// maximum: a thousand such clients then fill
    /// `net.ipv4.tcp_mem`, and the kernel stalls every socket's sends, a
    /// reading client's too, until they leave (docs/robustness.md).
    pub send_buffer: usize,
    /// Connection scope: threads accepting connections.
    pub accept_threads: usize,
    /// Request scope: event-loop threads.
    pub io_threads: usize,
    /// Request scope: requests dispatched and not yet answered, per event
    /// loop; past it the loop stops reading new requests until answers return.
    pub max_in_flight: usize,
    /// Bytes the server may buffer for all its clients together (read
    /// buffers, unwritten output, answers not yet written); once they are
    /// in use, connections with unwritten output wait for their clients to
    /// read (see the `budget` module).
    pub buffer_budget: usize,
    /// Size limits on requests.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Serve `/panic` (a handler that panics), for fault tests.
    pub panic_route: bool,
    /// How the kernel schedules the server's threads.
    pub sched: SchedPolicy,
    /// Whether a connection outlives its answer.
    pub keep_alive: KeepAlive,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            engine: Engine::Dispatch(Strategy::MutexQueue),
            scope: Scope::Connection,
            dispatch: DispatchConfig::default(),
            backlog: Self::DEFAULT_BACKLOG,
            send_buffer: 128 * 1024,
            accept_threads: 1,
            io_threads: 1,
            max_in_flight: 1024,
            buffer_budget: 32 * 1024 * 1024,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            panic_route: false,
            sched: SchedPolicy::default(),
            keep_alive: KeepAlive::default(),
        }
    }
}

impl ServeConfig {
    /// The listen backlog when nothing else is said (also the runner's).
    pub const DEFAULT_BACKLOG: u32 = 1024;

    /// How its listening sockets are set up.
    pub(crate) fn listen_settings(&self) -> ListenSettings {
        ListenSettings {
            backlog: self.backlog,
            send_buffer: self.send_buffer,
        }
    }

    /// The server this configuration runs (its engine in its scope).
    pub fn target(&self) -> Target {
        Target {
            engine: self.engine,
            scope: self.scope,
        }
    }

    /// The scope this server really runs: the configured one for a dispatch
    /// strategy, `task` (a task per connection) for a reference server.
    pub fn scope_name(&self) -> &'static str {
        self.target().scope_name()
    }
}

/// `dispatchlab serve` arguments.
#[derive(Clone, Debug, Args)]
#[command(after_long_help = SERVE_EXAMPLES)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one and prints it).
    #[arg(long, default_value_t = ServeConfig::default().addr)]
    pub addr: SocketAddr,
    /// Dispatch strategy, or a reference server (`dispatchlab strategies` lists them).
    ///
    /// `tokio` is not a dispatcher: it serves each connection as a task on
    /// tokio's runtime and takes no --scope; of the tuning flags only
    /// --workers (its worker threads) applies, and the dispatcher-only ones
    /// (--max-threads, --pick, --idle-spin, --wake, --accept-threads,
    /// --io-threads, --max-in-flight) are refused.
    #[arg(long, short = 's', default_value_t = ServeConfig::default().engine, value_parser = crate::dispatch::StrategyParser::<Engine>::default())]
    pub strategy: Engine,
    /// What one job covers: a whole connection, or one request [default:
    /// connection]. Dispatch strategies only: tokio has its own (a task per
    /// connection) and refuses the flag.
    #[arg(long, value_enum)]
    pub scope: Option<Scope>,
    /// Worker threads for the pools, or tokio's runtime [default: one per CPU this process may use].
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
    /// thread-per-task: most live threads; past it connections/requests get 503.
    #[arg(long)]
    pub max_threads: Option<usize>,
    /// worker-channels: how the dispatcher picks a worker [default: round-robin].
    #[arg(long, value_enum)]
    pub pick: Option<Pick>,
    /// work-stealing: how long an idle worker keeps looking for work before it parks (e.g. 0, 20us, 1ms) [default: 0s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_spin: Option<Duration>,
    /// work-stealing: which sleeping workers a new job wakes [default: one-if-none-searching].
    #[arg(long, value_enum)]
    pub wake: Option<WakePolicy>,
    /// Listen backlog: connections the kernel queues before accept (capped by net.core.somaxconn).
    #[arg(long, default_value_t = ServeConfig::DEFAULT_BACKLOG)]
    pub backlog: u32,
    /// Send buffer (SO_SNDBUF) asked of the kernel per connection; Linux
    /// reserves twice this. It caps the kernel memory a client that never
    /// reads can hold; 0 leaves it to the kernel's autotuning (up to
    /// net.ipv4.tcp_wmem's maximum), where a thousand such clients can stall
    /// every other client's answers.
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().send_buffer)]
    pub send_buffer: usize,
    /// Connection scope: threads accepting connections [default: 1].
    #[arg(long)]
    pub accept_threads: Option<usize>,
    /// Request scope: event-loop threads, each with its own SO_REUSEPORT listener [default: 1].
    #[arg(long)]
    pub io_threads: Option<usize>,
    /// Request scope: requests in flight per event loop before it stops reading [default: 1024].
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Bytes buffered for all clients together (read buffers, unwritten output,
    /// answers not yet written) before connections with unwritten output stop
    /// being read until their clients read; clients that read are never held.
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().buffer_budget)]
    pub buffer_budget: usize,
    /// Time allowed from the first byte of a request to its end; then 408.
    #[arg(long, default_value_t = Timeouts::default().header.into())]
    pub header_timeout: humantime::Duration,
    /// Idle keep-alive connections are closed after this long.
    #[arg(long, default_value_t = Timeouts::default().idle.into())]
    pub idle_timeout: humantime::Duration,
    /// A write that makes no progress for this long closes the connection.
    #[arg(long, default_value_t = Timeouts::default().write.into())]
    pub write_timeout: humantime::Duration,
    /// On SIGINT/SIGTERM, how long to finish in-flight requests before giving up (exit 1).
    #[arg(long, default_value_t = Timeouts::default().shutdown.into())]
    pub shutdown_timeout: humantime::Duration,
    /// Print a one-line report (req/s, connections, queue) this often, e.g. 1s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub stats_interval: Option<Duration>,
    /// Largest request body accepted (bytes); larger → 413.
    #[arg(long, default_value_t = Limits::default().max_body)]
    pub max_body: u64,
    /// Kernel scheduling policy for every server thread: `batch` stops a woken
    /// thread from preempting the one that woke it (hand-offs batch up).
    #[arg(long, value_enum, default_value_t = ServeConfig::default().sched)]
    pub sched: SchedPolicy,
    /// Whether a connection outlives its answer: `off` closes after every
    /// answer (the Rust Book's server); `adaptive` closes keep-alive
    /// connections while others wait for a worker (connection scope).
    #[arg(long, value_enum, default_value_t = ServeConfig::default().keep_alive)]
    pub keep_alive: KeepAlive,
    /// Serve /panic, a handler that panics (for fault tests).
    #[arg(long, hide = true)]
    pub panic_route: bool,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  dispatchlab serve --strategy mutex-queue --scope connection --workers 4
  dispatchlab serve --strategy work-stealing --scope request --io-threads 1
  dispatchlab serve --strategy inline --scope request --addr 127.0.0.1:0
  dispatchlab serve --strategy tokio --workers 1
  wrk -t1 -c100 -d10s http://127.0.0.1:8080/

Routes: /  /sleep?ms=N  /spin?us=N  /bytes?n=N  /metrics";

impl ServeArgs {
    /// The dispatcher-only flags that were given (a reference server
    /// refuses them rather than ignoring them).
    pub fn dispatcher_flags_given(&self) -> Vec<&'static str> {
        [
            ("--max-threads", self.max_threads.is_some()),
            ("--pick", self.pick.is_some()),
            ("--idle-spin", self.idle_spin.is_some()),
            ("--wake", self.wake.is_some()),
            ("--accept-threads", self.accept_threads.is_some()),
            ("--io-threads", self.io_threads.is_some()),
            ("--max-in-flight", self.max_in_flight.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The configuration these arguments describe.
    pub fn config(&self) -> ServeConfig {
        let defaults = ServeConfig::default();
        ServeConfig {
            addr: self.addr,
            engine: self.strategy,
            scope: self.scope.unwrap_or(defaults.scope),
            dispatch: DispatchConfig {
                workers: self.workers.unwrap_or_else(default_workers),
                max_threads: self.max_threads,
                pick: self.pick.unwrap_or(defaults.dispatch.pick),
                idle_spin: self.idle_spin.unwrap_or(defaults.dispatch.idle_spin),
                wake: self.wake.unwrap_or(defaults.dispatch.wake),
            },
            backlog: self.backlog,
            send_buffer: self.send_buffer,
            accept_threads: self.accept_threads.unwrap_or(defaults.accept_threads),
            io_threads: self.io_threads.unwrap_or(defaults.io_threads),
            max_in_flight: self.max_in_flight.unwrap_or(defaults.max_in_flight),
            buffer_budget: self.buffer_budget,
            limits: Limits {
                max_body: self.max_body,
                ..Limits::default()
            },
            timeouts: Timeouts {
                header: self.header_timeout.into(),
                idle: self.idle_timeout.into(),
                write: self.write_timeout.into(),
                shutdown: self.shutdown_timeout.into(),
            },
            panic_route: self.panic_route,
            sched: self.sched,
            keep_alive: self.keep_alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn no_flags_give_the_default_config() {
        let args = Serve::try_parse_from(["serve"]).expect("no flags parse").args;
        let defaults = ServeConfig::default();
        let expected = ServeConfig {
            dispatch: DispatchConfig {
                workers: default_workers(),
                ..defaults.dispatch
            },
            ..defaults
        };
        assert_eq!(args.config(), expected);
    }

    #[test]
    fn flags_override_the_defaults() {
        let given = [
            "serve",
            "--idle-timeout",
            "3s",
            "--backlog",
            "7",
            "--strategy",
            "inline",
            "--send-buffer",
            "0",
        ];
        let config = Serve::try_parse_from(given).expect("flags parse").args.config();
        assert_eq!(config.timeouts.idle, Duration::from_secs(3));
        assert_eq!(config.backlog, 7);
        assert_eq!(config.send_buffer, 0);
        assert_eq!(config.engine, Engine::Dispatch(Strategy::Inline));
    }
}
