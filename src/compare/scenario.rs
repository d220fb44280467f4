//! The named scenarios, each a [`Plan`]: the cells it measures, what it
//! varies and what it shows. They reproduce the seed experiments (see
//! `docs/findings.md`); the default run (no scenario) is here too.
//!
//! Every scenario that compares strategies iterates [`Strategy::ALL`] (the
//! compiled-in strategies, narrowed by `--strategies`), so a strategy added
//! to the crate joins every table without a change here. The tokio reference
//! server joins the default run and the plaintext, io-bound, c10k and c100k
//! scenarios, with the workers the strategies get: the three questions an
//! async runtime answers differently (hand-off cost, waiting without a
//! thread, memory per connection).

use std::time::Duration;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::Strategy;
use crate::load::{Config, ConnectionMode, SourceAddrs};
use crate::server::{KeepAlive, Scope, Target};

use super::matrix::{Cell, DEFAULT_BACKLOG, MatrixSpec, ServerKind, ServerSpec, closed_load, planned};
use super::reference::Reference;

/// A named experiment ([`Scenario::about`] says what each compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Keep-alive connections against a pool, per scope.
    KeepaliveStarvation,
    /// A connection per request against a small and a large backlog.
    Backlog,
    /// A blocking handler at rising concurrency.
    IoBound,
    /// CPU-bound work at rising concurrency.
    CpuBound,
    /// Ten thousand connections.
    C10k,
    /// Up to a hundred thousand connections: memory per connection.
    C100k,
    /// Hello, pipelined and not, against nginx.
    Plaintext,
    /// The seed log's run against the Rust Book's server: one request per connection vs keep-alive.
    RustBook,
}

impl ValueEnum for Scenario {
    fn value_variants<'a>() -> &'a [Self] {
        &Scenario::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.about()))
    }
}

/// What a run measures: its cells and what to say about them.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `default`, `custom`, or the scenario's name (the `scenario` column).
    pub name: String,
    /// One line.
    pub title: String,
    /// What the plan varies.
    pub varies: String,
    /// What it shows.
    pub shows: String,
    /// The cells, in the order they run.
    pub cells: Vec<Cell>,
}

/// What shapes a plan besides its definition.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanOptions {
    /// Shorter runs and fewer points, for smoke tests.
    pub quick: bool,
    /// Overrides the measured time of timed cells.
    pub duration: Option<Duration>,
    /// Overrides the warm-up of timed cells.
    pub warmup: Option<Duration>,
    /// The strategies to compare (default: all compiled in).
    pub strategies: Vec<Strategy>,
    /// The scopes to compare (default: both).
    pub scopes: Vec<Scope>,
    /// CPUs the server may use: the core cap of CPU-bound work.
    pub server_cpus: u32,
    /// Reference servers to add to the hello scenarios.
    pub references: Vec<Reference>,
    /// Add the tokio reference server where the scenario has it.
    pub tokio: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            quick: false,
            duration: None,
            warmup: None,
            strategies: Strategy::ALL.to_vec(),
            scopes: Scope::ALL.to_vec(),
            server_cpus: 1,
            references: Vec::new(),
            tokio: Target::tokio().is_some(),
        }
    }
}

impl PlanOptions {
    /// The (full, quick) default, overridden by `--duration`.
    fn duration(&self, full: Duration, quick: Duration) -> Duration {
        self.duration.unwrap_or(if self.quick { quick } else { full })
    }

    /// The (full, quick) default, overridden by `--warmup`.
    fn warmup(&self, full: Duration, quick: Duration) -> Duration {
        self.warmup.unwrap_or(if self.quick { quick } else { full })
    }

    fn pick<T: Clone>(&self, full: &[T], quick: &[T]) -> Vec<T> {
        if self.quick { quick } else { full }.to_vec()
    }

    fn pairs(&self) -> Vec<Target> {
        Target::pairs(&self.strategies, &self.scopes)
    }

    /// The tokio server with `workers`, if it is compiled in and asked for.
    fn tokio(&self, workers: Option<u32>, backlog: u32) -> Option<ServerSpec> {
        let target = Target::tokio().filter(|_| self.tokio)?;
        Some(dispatchlab(target, workers, backlog))
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The default run's measured time per cell. With the warm-up it spans the
/// load's 2 s request timeout, so that connections a connection-scope pool
/// never serves show up as read timeouts inside the measurement.
pub const DEFAULT_DURATION: Duration = ms(2000);
/// The default run's warm-up per cell.
pub const DEFAULT_WARMUP: Duration = ms(300);
/// The default run's connection counts: fewer and more than a pool's workers.
pub const DEFAULT_CONNECTIONS: [u32; 2] = [16, 256];

/// The default run's matrix: every compiled-in strategy in both scopes at
/// 16 and 256 keep-alive connections on the hello workload, plus the
/// reference servers. A custom matrix starts from it.
pub fn default_matrix(options: &PlanOptions) -> MatrixSpec {
    MatrixSpec {
        strategies: options.strategies.clone(),
        scopes: options.scopes.clone(),
        connections: DEFAULT_CONNECTIONS.to_vec(),
        workloads: vec![planned("/")],
        workers: None,
        backlog: DEFAULT_BACKLOG,
        pipeline: 1,
        rate: None,
        mode: ConnectionMode::KeepAlive,
        duration: options.duration(DEFAULT_DURATION, ms(500)),
        warmup: options.warmup(DEFAULT_WARMUP, ms(200)),
        timeout: Config::DEFAULT_TIMEOUT,
        references: options.references.clone(),
        tokio: options.tokio,
    }
}

/// The default run: the cells of `default_matrix`.
pub fn default_plan(options: &PlanOptions) -> Plan {
    let spec = default_matrix(options);
    Plan {
        name: "default".into(),
        title: "Every strategy in both scopes, hello, 16 and 256 keep-alive connections".into(),
        varies: "strategy x scope x connections (16: fewer than 256; pools and tokio get the server's default workers, one per server CPU)".into(),
        shows: "what each hand-off costs on tiny jobs, and that a connection-scope pool serves only as many keep-alive connections as it has workers (the rest time out)".into(),
        cells: spec.expand(),
    }
}

impl Scenario {
    /// The name on the command line and in the `scenario` column.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::KeepaliveStarvation => "keepalive-starvation",
            Scenario::Backlog => "backlog",
            Scenario::IoBound => "io-bound",
            Scenario::CpuBound => "cpu-bound",
            Scenario::C10k => "c10k",
            Scenario::C100k => "c100k",
            Scenario::Plaintext => "plaintext",
            Scenario::RustBook => "rust-book",
        }
    }

    /// Every scenario, in the order `--help` lists them.
    pub const ALL: [Scenario; 8] = [
        Scenario::KeepaliveStarvation,
        Scenario::Backlog,
        Scenario::IoBound,
        Scenario::CpuBound,
        Scenario::C10k,
        Scenario::C100k,
        Scenario::Plaintext,
        Scenario::RustBook,
    ];

    /// The short line beside the name in `--scenario`'s possible values.
    pub fn about(self) -> &'static str {
        match self {
            Scenario::KeepaliveStarvation => {
                "400 keep-alive connections at 1,000 req/s, 4 workers: connection scope vs request scope"
            }
            Scenario::Backlog => {
                "A 40 ms handler, a new connection per request, 160 requests as P clients x 160/P: backlog 5 vs 1,024"
            }
            Scenario::IoBound => "A 40 ms blocking handler at concurrency 1-16: throughput against the linear ideal",
            Scenario::CpuBound => "/spin?us=100 at concurrency 1-64: throughput capped by cores, not threads",
            Scenario::C10k => "10,000 connections at a low rate: peak RSS, threads and errors per strategy and scope",
            Scenario::C100k => {
                "1,000-100,000 idle keep-alive connections, a request each every 10 s: memory per connection, request scope and tokio"
            }
            Scenario::Plaintext => {
                "Hello at 16-1,024 connections, with and without pipelining (depth 16), against nginx"
            }
            Scenario::RustBook => {
                "The seed's wrk2 run against the Rust Book's server: a request per connection, then keep-alive and its fixes"
            }
        }
    }

    /// One line for `--help`.
    pub fn summary(self) -> &'static str {
        match self {
            Scenario::KeepaliveStarvation => {
                "400 keep-alive connections at 1,000 req/s, 4 workers, every strategy, connection vs request scope (wrk2 -t12 -c400 -R1000)"
            }
            Scenario::Backlog => {
                "40 ms handler, a connection per request, P clients x 160/P requests, backlog 5 vs 1,024: SYN drops and 1 s retransmits"
            }
            Scenario::IoBound => {
                "40 ms blocking handler at concurrency 1-16, 4 workers (tokio: 4 runtime threads, awaiting): throughput vs the linear ideal"
            }
            Scenario::CpuBound => {
                "/spin?us=100 at concurrency 1-64, 64 workers: throughput capped by cores, not threads"
            }
            Scenario::C10k => {
                "10,000 keep-alive connections at 4,000 req/s: peak RSS, threads and errors per strategy and scope, and tokio"
            }
            Scenario::C100k => {
                "1,000, 10,000, 30,000 and 100,000 keep-alive connections, each sending a request every 10 s, opened at 10,000/s: peak RSS per connection for every request-scope strategy, tokio and thread-per-task/connection (needs RLIMIT_NOFILE > 100,000: README, c100k)"
            }
            Scenario::Plaintext => {
                "hello, 16-1,024 connections, pipelining 1 and 16, every strategy, with tokio and nginx as references"
            }
            Scenario::RustBook => {
                "400 connections at 1,000 req/s (wrk2 -t12 -c400 -R1000): thread-per-task, mutex-queue and worker-channels with --keep-alive off, mutex-queue with on (4 and 400 workers) and adaptive, mutex-queue/request"
            }
        }
    }

    /// The plan the scenario expands to.
    pub fn plan(self, options: &PlanOptions) -> Plan {
        let (title, varies, shows, cells) = match self {
            Scenario::KeepaliveStarvation => (
                "Keep-alive starvation: 400 connections at 1,000 req/s, 4 workers",
                "strategy x scope, at a constant 1,000 requests/s over 400 keep-alive connections (open loop, latency corrected for coordinated omission)",
                "a connection-scope pool of 4 serves 4 connections; the other 396 wait (read timeouts, reconnects) while a thread per connection or any request-scope strategy answers all 1,000 req/s",
                keepalive_starvation(options),
            ),
            Scenario::Backlog => (
                "Listen backlog under connection storms: 40 ms handler, 160 requests, a connection each",
                "P concurrent clients x 160/P requests (P = 1 ... 160), listen backlog 5 vs 1,024, thread-per-task vs a 4-worker pool vs request scope with a 160-worker pool",
                "a full accept queue drops the SYN and the client retransmits it after ~1 s: time used far above the theoretical minimum, listen overflows and SYN retransmits; a 4-worker pool caps parallelism at 4",
                backlog(options),
            ),
            Scenario::IoBound => (
                "I/O-bound scaling: a 40 ms blocking handler at concurrency 1-16",
                "strategy x scope x concurrency (1, 2, 4, 8, 16 keep-alive connections, closed loop); pools have 4 workers, tokio 4 runtime threads",
                "a blocking handler needs a thread per concurrent request: throughput follows concurrency / 40 ms until the threads run out (4 workers: 100 req/s; inline: 25 req/s); tokio awaits the wait and follows the ideal with any number of threads",
                io_bound(options),
            ),
            Scenario::CpuBound => (
                "CPU-bound work: /spin?us=100 at concurrency 1-64",
                "strategy x scope x concurrency (1 ... 64 keep-alive connections, closed loop); pools have 64 workers so that none starves",
                "throughput stops at cores x 10,000 req/s whatever the number of threads; more threads only add latency",
                cpu_bound(options),
            ),
            Scenario::C10k => (
                "10,000 connections at a low rate",
                "strategy x scope with 10,000 keep-alive connections sending 4,000 req/s in all (one request per connection every 2.5 s); pools have 4 workers, tokio 4 runtime threads",
                "memory per connection: a thread stack each in connection scope (thread-per-task), a buffer each in request scope; a connection-scope pool leaves all but 4 connections unserved",
                c10k(options),
            ),
            Scenario::C100k => (
                "100,000 connections: memory per connection",
                "connections (1,000, 10,000, 30,000, 100,000 keep-alive, each sending one request every 10 s, open loop, opened at 10,000 per second) x server: every request-scope strategy and tokio with their default workers, and thread-per-task/connection",
                "the server's peak RSS at each count and per connection: a buffer per connection in request scope and tokio (0 errors), a thread stack per connection in thread-per-task/connection until a system limit on threads stops it (its outcome names the limit)",
                c100k(options),
            ),
            Scenario::Plaintext => (
                "Plaintext: hello at 16-1,024 connections, pipelining 1 and 16",
                "strategy x scope x connections (16, 64, 256, 1,024) x pipeline depth (1, 16), closed loop, as the TechEmpower plaintext test; tokio and nginx on the same CPUs as references",
                "the cost of each hand-off on the smallest job, against tokio and nginx; pipelining amortises the system calls of request scope",
                plaintext(options),
            ),
            Scenario::RustBook => (
                "The Rust Book's server under the seed's load: 400 connections at 1,000 req/s, 4 workers",
                "the server design at a constant 1,000 requests/s from 400 connections (open loop, latency from each request's intended send time): a request per connection (--keep-alive off) for a thread per connection, the mutex-queue pool and per-worker channels; keep-alive on for the pool with 4 and with 400 workers, and adaptive; the pool in request scope. When a server closes, the load generator reconnects at once and sends that connection's next request at its intended time, as wrk2 does",
                "answering one request per connection and closing gives a pool's worker back after every answer, so a 4-worker pool serves all 400 clients (the seed's servers); with keep-alive on it serves 4 and starves the rest; a worker per connection, adaptive keep-alive and request scope are the three fixes",
                rust_book(options),
            ),
        };
        Plan {
            name: self.name().into(),
            title: title.into(),
            varies: varies.into(),
            shows: shows.into(),
            cells,
        }
    }
}

fn dispatchlab(target: Target, workers: Option<u32>, backlog: u32) -> ServerSpec {
    ServerSpec::new(ServerKind::Dispatchlab(target), workers, backlog)
}

fn cell(group: String, server: ServerSpec, load: Config) -> Cell {
    Cell {
        group,
        server,
        load,
        ideal_rps: None,
    }
}

/// The seed's `wrk2 -t12 -c400 -R1000`: 400 keep-alive connections at
/// 1,000 requests/s in all, and the group it forms.
fn seed_load(options: &PlanOptions) -> (Config, String) {
    let mut load = closed_load(
        &planned("/"),
        400,
        options.duration(secs(10), secs(2)),
        options.warmup(secs(1), ms(500)),
    );
    load.rate = Some(1000.0);
    let group = format!("/ {}", load.label());
    (load, group)
}

fn keepalive_starvation(options: &PlanOptions) -> Vec<Cell> {
    let (load, group) = seed_load(options);
    options
        .pairs()
        .into_iter()
        .map(|target| {
            cell(
                group.clone(),
                dispatchlab(target, Some(4), DEFAULT_BACKLOG),
                load.clone(),
            )
        })
        .collect()
}

/// The seed log's servers (../shared/background/rust-book-server-wrk2-log.md)
/// and the three fixes of the keep-alive pool, under `wrk2 -t12 -c400 -R1000`.
fn rust_book(options: &PlanOptions) -> Vec<Cell> {
    let (load, group) = seed_load(options);
    let connection = |strategy: Strategy| Target::dispatch(strategy, Scope::Connection);
    let mut servers = vec![(connection(Strategy::ThreadPerTask), None, KeepAlive::Off)];
    servers.push((connection(Strategy::MutexQueue), Some(4), KeepAlive::Off));
    // Per-worker channels, where the feature compiled it in.
    if let Ok(channels) = "worker-channels".parse::<Strategy>() {
        servers.push((connection(channels), Some(4), KeepAlive::Off));
    }
    servers.extend([
        (connection(Strategy::MutexQueue), Some(4), KeepAlive::On),
        // The three fixes of the keep-alive pool: a worker per connection,
        // adaptive keep-alive, request scope.
        (connection(Strategy::MutexQueue), Some(400), KeepAlive::On),
        (connection(Strategy::MutexQueue), Some(4), KeepAlive::Adaptive),
        (
            Target::dispatch(Strategy::MutexQueue, Scope::Request),
            Some(4),
            KeepAlive::On,
        ),
    ]);
    servers
        .into_iter()
        // Every pair here is valid: `dispatch` refuses only inline/connection.
        .filter_map(|(target, workers, keep_alive)| {
            let server = ServerSpec {
                keep_alive,
                ..dispatchlab(target?, workers, DEFAULT_BACKLOG)
            };
            Some(cell(group.clone(), server, load.clone()))
        })
        .collect()
}

/// The backlog scenario's concurrency levels: divisors of the total, as in
/// the seed experiment.
pub const BACKLOG_CLIENTS: [u32; 8] = [1, 2, 4, 8, 16, 32, 80, 160];
/// Requests in total per backlog cell.
pub const BACKLOG_TOTAL: u32 = 160;

fn backlog(options: &PlanOptions) -> Vec<Cell> {
    let (total, clients) = if options.quick {
        (16, vec![1, 16])
    } else {
        (BACKLOG_TOTAL, BACKLOG_CLIENTS.to_vec())
    };
    // The three designs the seed compared; mutex-queue stands for "a pool"
    // (always compiled in).
    let servers = [
        (Strategy::ThreadPerTask, Scope::Connection, None),
        (Strategy::MutexQueue, Scope::Connection, Some(4)),
        (Strategy::MutexQueue, Scope::Request, Some(total)),
    ];
    let mut cells = Vec::new();
    for backlog in [5, 1024] {
        for &(strategy, scope, workers) in &servers {
            let target = Target {
                engine: strategy.into(),
                scope,
            };
            let server = dispatchlab(target, workers, backlog);
            let mut group = target.to_string();
            if let Some(workers) = workers {
                group.push_str(&format!(" w={workers}"));
            }
            group.push_str(&format!(", backlog {backlog}"));
            for &p in &clients {
                let mut load = closed_load(
                    &planned("/sleep?ms=40"),
                    p,
                    secs(if options.quick { 30 } else { 120 }),
                    ms(0),
                );
                load.mode = ConnectionMode::Close;
                load.requests_per_connection = Some(u64::from(total / p));
                load.service_time = Some(ms(40));
                // SYNs dropped by a full queue come back after 1, 3, 7, 15 s:
                // slow requests, as in the seed experiment, not errors.
                load.timeout = secs(60);
                load.connect_timeout = secs(60);
                cells.push(cell(group.clone(), server.clone(), load));
            }
        }
    }
    cells
}

fn io_bound(options: &PlanOptions) -> Vec<Cell> {
    let concurrency = options.pick(&[1, 2, 4, 8, 16], &[1, 8]);
    let mut cells = Vec::new();
    for &c in &concurrency {
        let load = closed_load(
            &planned("/sleep?ms=40"),
            c,
            options.duration(secs(3), secs(1)),
            options.warmup(ms(500), ms(200)),
        );
        let group = format!("/sleep?ms=40 {}", load.label());
        let servers = options
            .pairs()
            .into_iter()
            .map(|target| dispatchlab(target, Some(4), DEFAULT_BACKLOG))
            .chain(options.tokio(Some(4), DEFAULT_BACKLOG));
        for server in servers {
            let mut cell = cell(group.clone(), server, load.clone());
            cell.ideal_rps = Some(f64::from(c) / 0.040);
            cells.push(cell);
        }
    }
    cells
}

fn cpu_bound(options: &PlanOptions) -> Vec<Cell> {
    let concurrency = options.pick(&[1, 2, 4, 8, 16, 32, 64], &[1, 8]);
    let workers = concurrency.iter().copied().max().unwrap_or(1);
    let mut cells = Vec::new();
    for &c in &concurrency {
        let load = closed_load(
            &planned("/spin?us=100"),
            c,
            options.duration(secs(2), ms(500)),
            options.warmup(ms(500), ms(200)),
        );
        let group = format!("/spin?us=100 {}", load.label());
        for target in options.pairs() {
            let mut cell = cell(
                group.clone(),
                dispatchlab(target, Some(workers), DEFAULT_BACKLOG),
                load.clone(),
            );
            // 100 µs of CPU per request: 10,000 req/s per core, at most one
            // core per request in flight.
            cell.ideal_rps = Some(f64::from(c.min(options.server_cpus.max(1))) * 10_000.0);
            cells.push(cell);
        }
    }
    cells
}

fn c10k(options: &PlanOptions) -> Vec<Cell> {
    let (connections, rate) = if options.quick {
        (1000, 1000.0)
    } else {
        (10_000, 4000.0)
    };
    // Open loop: connection g opens at g / rate, so the warm-up must cover
    // connections / rate (2.5 s) for every connection to be open when the
    // measurement starts, and the server must have taken them all in: a
    // thread per connection needs 10,000 thread spawns, several seconds on a
    // busy 2-CPU machine, during which requests wait in the accept queue.
    let mut load = closed_load(
        &planned("/"),
        connections,
        options.duration(secs(10), secs(2)),
        options.warmup(secs(8), ms(1500)),
    );
    load.rate = Some(rate);
    let group = format!("/ {}", load.label());
    options
        .pairs()
        .into_iter()
        .map(|target| dispatchlab(target, Some(4), 4096))
        .chain(options.tokio(Some(4), 4096))
        .map(|server| cell(group.clone(), server, load.clone()))
        .collect()
}

/// The c100k scenario's connection counts: the memory-per-connection curve.
pub const C100K_CONNECTIONS: [u32; 4] = [1_000, 10_000, 30_000, 100_000];
/// How often each c100k connection sends a request (open loop).
pub const C100K_PERIOD: Duration = secs(10);
/// New connections per second while a c100k cell opens them. With the
/// scenario's backlog of 4,096, the accept queue overflows only when the
/// server stops accepting for 0.4 s: the ramp, not the backlog, carries the
/// load of opening 100,000 connections.
pub const C100K_CONNECT_RATE: u32 = 10_000;
/// Connections per loopback source address in c100k. One address has
/// about 28,000 ephemeral ports; using 4,000 leaves room for the previous
/// cells' connections, whose ports stay in TIME_WAIT for 60 s after their
/// load closed them.
pub const C100K_PER_SOURCE: u32 = 4_000;
/// The listen backlog of c100k's servers (`net.core.somaxconn` caps it).
pub const C100K_BACKLOG: u32 = 4096;

fn c100k(options: &PlanOptions) -> Vec<Cell> {
    let counts = options.pick(&C100K_CONNECTIONS, &[1_000, 3_000]);
    let period = if options.quick { secs(2) } else { C100K_PERIOD };
    let mut servers: Vec<ServerSpec> = options
        .pairs()
        .into_iter()
        .filter(|target| target.scope == Scope::Request)
        .map(|target| dispatchlab(target, None, C100K_BACKLOG))
        .chain(options.tokio(None, C100K_BACKLOG))
        .collect();
    // A thread per connection: measured until the system's thread limits
    // stop it.
    servers.extend(
        options
            .pairs()
            .into_iter()
            .filter(|target| target.scope == Scope::Connection && target.strategy() == Some(Strategy::ThreadPerTask))
            .map(|target| dispatchlab(target, None, C100K_BACKLOG)),
    );
    let mut cells = Vec::new();
    for &connections in &counts {
        let ramp = Duration::from_secs_f64(f64::from(connections) / f64::from(C100K_CONNECT_RATE));
        // Every connection open and answered once before the measurement:
        // the ramp, then one period (connection g's first request is
        // intended at g/C of it), and a margin.
        let mut load = closed_load(
            &planned("/"),
            connections,
            options.duration(period * 2, period),
            options.warmup(ramp.max(period) + secs(2), ramp.max(period) + secs(1)),
        );
        load.rate = Some(f64::from(connections) / period.as_secs_f64());
        load.ramp = ramp;
        load.source_addrs = SourceAddrs::Loopback(connections.div_ceil(C100K_PER_SOURCE));
        let group = format!("/ {}", load.label());
        for server in &servers {
            cells.push(cell(group.clone(), server.clone(), load.clone()));
        }
    }
    cells
}

fn plaintext(options: &PlanOptions) -> Vec<Cell> {
    let connections = options.pick(&[16, 64, 256, 1024], &[16, 256]);
    let mut cells = Vec::new();
    for pipeline in [1, 16] {
        for &c in &connections {
            let mut load = closed_load(
                &planned("/"),
                c,
                options.duration(secs(2), ms(500)),
                options.warmup(ms(500), ms(200)),
            );
            load.pipeline = pipeline;
            let group = format!("/ {}", load.label());
            let servers = options
                .pairs()
                .into_iter()
                .map(|target| dispatchlab(target, None, DEFAULT_BACKLOG))
                .chain(options.tokio(None, DEFAULT_BACKLOG));
            for server in servers {
                cells.push(cell(group.clone(), server, load.clone()));
            }
            for &reference in &options.references {
                let server = ServerSpec::new(ServerKind::Reference(reference), None, DEFAULT_BACKLOG);
                cells.push(cell(group.clone(), server, load.clone()));
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> PlanOptions {
        PlanOptions {
            server_cpus: 1,
            references: vec![Reference::Nginx],
            ..PlanOptions::default()
        }
    }

    fn pairs() -> usize {
        Target::pairs(Strategy::ALL, &Scope::ALL).len()
    }

    /// The tokio row, where compiled in.
    fn tokio() -> usize {
        usize::from(Target::tokio().is_some())
    }

    fn tokio_cells(cells: &[Cell]) -> Vec<&Cell> {
        cells
            .iter()
            .filter(|c| c.server.kind.strategy_name() == "tokio")
            .collect()
    }

    fn servers(cells: &[Cell]) -> Vec<String> {
        let mut labels: Vec<String> = cells.iter().map(|c| c.server.kind.label()).collect();
        labels.sort();
        labels.dedup();
        labels
    }

    #[test]
    fn default_run_is_every_pair_at_16_and_256_plus_references() {
        let plan = default_plan(&options());
        assert_eq!(plan.cells.len(), (pairs() + tokio() + 1) * 2);
        assert_eq!(tokio_cells(&plan.cells).len(), tokio() * 2);
        assert!(
            plan.cells
                .iter()
                .all(|c| c.workload() == "/" && c.server.workers.is_none())
        );
        // Long enough for a starved connection's 2 s read timeout to fire
        // inside the measurement.
        let load = &plan.cells[0].load;
        assert!(load.warmup + load.duration > load.timeout);
    }

    #[test]
    fn rust_book_is_the_seed_run_over_the_seed_servers_and_the_fixes() {
        let plan = Scenario::RustBook.plan(&options());
        let channels = usize::from("worker-channels".parse::<Strategy>().is_ok());
        assert_eq!(plan.cells.len(), 6 + channels);
        let rows: Vec<(String, &str, KeepAlive)> = plan
            .cells
            .iter()
            .map(|c| (c.server.kind.label(), c.server.kind.scope_name(), c.server.keep_alive))
            .collect();
        assert_eq!(
            rows[0],
            ("thread-per-task/connection".into(), "connection", KeepAlive::Off)
        );
        assert!(rows.contains(&("mutex-queue/connection".into(), "connection", KeepAlive::Adaptive)));
        assert!(rows.contains(&("mutex-queue/request".into(), "request", KeepAlive::On)));
        for cell in &plan.cells {
            assert_eq!((cell.load.connections, cell.load.rate), (400, Some(1000.0)));
            assert!(matches!(cell.server.workers, None | Some(4) | Some(400)));
            assert_eq!(cell.load.mode, ConnectionMode::KeepAlive);
        }
        let off = plan
            .cells
            .iter()
            .find(|c| c.server.keep_alive == KeepAlive::Off)
            .expect("an off row");
        let args = off.server.serve_args(match off.server.kind {
            ServerKind::Dispatchlab(target) => target,
            ServerKind::Reference(_) | ServerKind::External(_) => {
                unreachable!("the scenario starts dispatchlab servers only")
            }
        });
        assert!(args.windows(2).any(|pair| pair == ["--keep-alive", "off"]), "{args:?}");
    }

    #[test]
    fn keepalive_starvation_is_the_seed_run() {
        let plan = Scenario::KeepaliveStarvation.plan(&options());
        assert_eq!(plan.cells.len(), pairs());
        for cell in &plan.cells {
            assert_eq!(
                (cell.load.connections, cell.load.rate, cell.server.workers),
                (400, Some(1000.0), Some(4))
            );
            assert_eq!(cell.load.mode, ConnectionMode::KeepAlive);
        }
        let scopes: Vec<&str> = plan.cells.iter().map(|c| c.server.kind.scope_name()).collect();
        assert!(scopes.contains(&"connection") && scopes.contains(&"request"));
    }

    #[test]
    fn backlog_is_p_clients_times_160_over_p_at_two_backlogs() {
        let plan = Scenario::Backlog.plan(&options());
        assert_eq!(plan.cells.len(), 2 * 3 * BACKLOG_CLIENTS.len());
        for cell in &plan.cells {
            let load = &cell.load;
            assert_eq!(load.mode, ConnectionMode::Close);
            assert_eq!(
                u64::from(load.connections) * load.requests_per_connection.unwrap(),
                u64::from(BACKLOG_TOTAL)
            );
            assert_eq!(load.service_time, Some(Duration::from_millis(40)));
            assert_eq!(load.target.path, "/sleep?ms=40");
            assert!(
                load.timeout >= Duration::from_secs(30),
                "SYN retransmits must show as latency"
            );
            assert!(load.warmup.is_zero());
        }
        let backlogs: Vec<u32> = plan.cells.iter().map(|c| c.server.backlog).collect();
        assert!(backlogs.contains(&5) && backlogs.contains(&1024));
        assert_eq!(servers(&plan.cells).len(), 3);
        let pool = plan
            .cells
            .iter()
            .find(|c| c.server.kind.scope_name() == "connection" && c.server.workers == Some(4));
        assert!(pool.is_some(), "the 4-worker pool");
    }

    #[test]
    fn io_bound_has_the_linear_ideal() {
        let plan = Scenario::IoBound.plan(&options());
        assert_eq!(plan.cells.len(), 5 * (pairs() + tokio()));
        assert_eq!(
            tokio_cells(&plan.cells).len(),
            5 * tokio(),
            "tokio at every concurrency"
        );
        for cell in &plan.cells {
            let ideal = cell.ideal_rps.unwrap();
            assert!((ideal - f64::from(cell.load.connections) / 0.040).abs() < 1e-9);
            assert_eq!(cell.server.workers, Some(4));
        }
    }

    #[test]
    fn cpu_bound_is_capped_by_the_server_cores() {
        let plan = Scenario::CpuBound.plan(&PlanOptions {
            server_cpus: 2,
            ..options()
        });
        assert_eq!(plan.cells.len(), 7 * pairs());
        let at = |c: u32| plan.cells.iter().find(|x| x.load.connections == c).unwrap().ideal_rps;
        assert_eq!((at(1), at(2), at(64)), (Some(10_000.0), Some(20_000.0), Some(20_000.0)));
        assert!(plan.cells.iter().all(|c| c.server.workers == Some(64)));
    }

    #[test]
    fn c10k_opens_every_connection_before_measuring() {
        let plan = Scenario::C10k.plan(&options());
        assert_eq!(plan.cells.len(), pairs() + tokio());
        for cell in &plan.cells {
            let load = &cell.load;
            assert_eq!(load.connections, 10_000);
            let opening = f64::from(load.connections) / load.rate.unwrap();
            assert!(load.warmup.as_secs_f64() >= opening);
            assert!(cell.server.backlog >= 4096);
        }
    }

    #[test]
    fn c100k_is_the_memory_curve_over_request_scope_tokio_and_a_thread_per_connection() {
        let plan = Scenario::C100k.plan(&options());
        let request = Target::pairs(Strategy::ALL, &[Scope::Request]).len();
        let per_count = request + tokio() + 1;
        assert_eq!(plan.cells.len(), C100K_CONNECTIONS.len() * per_count);
        let mut groups: Vec<&str> = plan.cells.iter().map(|c| c.group.as_str()).collect();
        groups.dedup();
        assert_eq!(groups.len(), C100K_CONNECTIONS.len(), "one table per count: {groups:?}");
        let connection_scope: Vec<String> = plan
            .cells
            .iter()
            .filter(|c| c.server.kind.scope_name() == "connection")
            .map(|c| c.server.kind.label())
            .collect();
        assert!(
            connection_scope
                .iter()
                .all(|label| label == "thread-per-task/connection"),
            "{connection_scope:?}"
        );
        assert_eq!(connection_scope.len(), C100K_CONNECTIONS.len());
        for cell in &plan.cells {
            let load = &cell.load;
            assert!(C100K_CONNECTIONS.contains(&load.connections));
            assert_eq!(load.mode, ConnectionMode::KeepAlive);
            // One request per connection per period, open loop.
            let period = f64::from(load.connections) / load.rate.expect("open loop");
            assert!((period - C100K_PERIOD.as_secs_f64()).abs() < 1e-9);
            // Opened at the connect rate, all of them before the measurement.
            let opening = f64::from(load.connections) / f64::from(C100K_CONNECT_RATE);
            assert!((load.ramp.as_secs_f64() - opening).abs() < 1e-9);
            assert!(load.warmup.as_secs_f64() > opening.max(period));
            assert!(
                load.duration.as_secs_f64() >= period,
                "every connection sends in the window"
            );
            // Never more per source address than leaves room for TIME_WAIT.
            let SourceAddrs::Loopback(addrs) = load.source_addrs else {
                panic!("loopback source addresses: {:?}", load.source_addrs);
            };
            assert!(load.connections.div_ceil(addrs) <= C100K_PER_SOURCE);
            assert_eq!(cell.server.backlog, C100K_BACKLOG);
            assert_eq!(cell.server.workers, None, "the servers' defaults");
        }
        let largest = plan.cells.iter().filter(|c| c.load.connections == 100_000).count();
        assert_eq!(largest, per_count, "every server at 100,000");
    }

    #[test]
    fn plaintext_has_both_depths_and_a_reference_per_point() {
        let plan = Scenario::Plaintext.plan(&options());
        assert_eq!(plan.cells.len(), 2 * 4 * (pairs() + tokio() + 1));
        assert_eq!(tokio_cells(&plan.cells).len(), 8 * tokio());
        let references = plan.cells.iter().filter(|c| c.is_reference()).count();
        assert_eq!(references, 8);
        let depths: Vec<u32> = plan.cells.iter().map(|c| c.load.pipeline).collect();
        assert!(depths.contains(&1) && depths.contains(&16));
        let mut groups: Vec<&str> = plan.cells.iter().map(|c| c.group.as_str()).collect();
        groups.dedup();
        assert_eq!(groups.len(), 8, "one table per load point: {groups:?}");
    }

    #[test]
    fn strategy_filters_and_quick_mode_shrink_every_scenario() {
        let narrow = PlanOptions {
            quick: true,
            strategies: vec![Strategy::ThreadPerTask],
            scopes: vec![Scope::Request],
            ..options()
        };
        for scenario in Scenario::ALL {
            let full = scenario.plan(&options());
            let quick = scenario.plan(&narrow);
            assert!(!quick.cells.is_empty(), "{}", scenario.name());
            // rust-book's servers are the seed's, fixed: it shrinks in time only.
            if scenario != Scenario::RustBook {
                assert!(quick.cells.len() < full.cells.len(), "{}", scenario.name());
            }
            let total = |plan: &Plan| plan.cells.iter().map(Cell::estimate).sum::<Duration>();
            assert!(total(&quick) < total(&full), "{}", scenario.name());
        }
    }

    #[test]
    fn tokio_stays_out_when_not_asked_for_and_out_of_the_dispatch_only_scenarios() {
        let without = PlanOptions {
            tokio: false,
            ..options()
        };
        for scenario in Scenario::ALL {
            assert!(
                tokio_cells(&scenario.plan(&without).cells).is_empty(),
                "{}",
                scenario.name()
            );
        }
        for scenario in [Scenario::KeepaliveStarvation, Scenario::Backlog, Scenario::CpuBound] {
            assert!(
                tokio_cells(&scenario.plan(&options()).cells).is_empty(),
                "{}",
                scenario.name()
            );
        }
    }

    #[test]
    fn names_match_the_command_line() {
        for scenario in Scenario::ALL {
            let value = scenario.to_possible_value().unwrap();
            assert_eq!(value.get_name(), scenario.name());
        }
    }
}
