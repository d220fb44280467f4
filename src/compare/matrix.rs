//! What one measured run is ([`Cell`]: a server and a load) and how a custom
//! matrix of strategies × scopes × connection counts expands into cells.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::Strategy;
use crate::load::{Config, ConnectionMode, LoadError, Target as LoadTarget};
use crate::server::{Engine, KeepAlive, SchedPolicy, Scope, Target};

use super::external::External;
use super::reference::Reference;

/// The server a cell measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `dispatchlab serve` running this target: a strategy in a scope, or
    /// the tokio reference server (which serves every workload).
    Dispatchlab(Target),
    /// A server that is not `dispatchlab serve` (nginx), measured with the
    /// same load for reference.
    Reference(Reference),
    /// A server that is not the crate's (`compare --server`, `--url`): the
    /// subject of the comparison, not a reference.
    External(Arc<External>),
}

impl ServerKind {
    /// `mutex-queue/connection`, `inline/request`, `tokio`, `nginx`.
    pub fn label(&self) -> String {
        match self {
            ServerKind::Dispatchlab(target) => target.to_string(),
            ServerKind::Reference(reference) => reference.name().to_owned(),
            ServerKind::External(external) => external.name.clone(),
        }
    }

    /// The strategy column of a result row.
    pub fn strategy_name(&self) -> &str {
        match self {
            ServerKind::Dispatchlab(target) => target.engine.name(),
            ServerKind::Reference(reference) => reference.name(),
            ServerKind::External(external) => &external.name,
        }
    }

    /// The scope column of a result row: `task` for tokio (a task per
    /// connection, as its `/metrics` says), empty for reference servers,
    /// `external` for outside ones.
    pub fn scope_name(&self) -> &'static str {
        match self {
            ServerKind::Dispatchlab(target) => target.scope_name(),
            ServerKind::Reference(_) => "",
            ServerKind::External(_) => "external",
        }
    }

    /// Whether the server may be several processes (nginx's master and
    /// workers, whatever an outside command starts): sampled as a tree.
    pub fn is_process_tree(&self) -> bool {
        !matches!(self, ServerKind::Dispatchlab(_))
    }

    /// How long the server may take to exit after `SIGTERM`.
    pub fn stop_timeout(&self) -> Duration {
        match self {
            ServerKind::External(_) => super::external::GRACE,
            ServerKind::Dispatchlab(_) | ServerKind::Reference(_) => super::child::STOP_TIMEOUT,
        }
    }
}

/// The server's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSpec {
    /// Which server.
    pub kind: ServerKind,
    /// Pool workers; `None` leaves the server's default (one per CPU of the
    /// server's CPU set). For a reference server: its worker processes.
    pub workers: Option<u32>,
    /// Listen backlog.
    pub backlog: u32,
    /// Request scope: event-loop threads; `None` leaves the default (1).
    pub io_threads: Option<u32>,
    /// Whether a connection outlives its answer (dispatchlab servers).
    pub keep_alive: KeepAlive,
    /// The kernel scheduling policy of the server's threads (dispatchlab
    /// servers: `serve --sched`).
    pub sched: SchedPolicy,
}

/// The `--shutdown-timeout` given to dispatchlab children (shorter than
/// [`STOP_TIMEOUT`](super::child::STOP_TIMEOUT), so a server that gives up
/// on its in-flight requests exits 1 before it is killed).
const SERVER_SHUTDOWN_TIMEOUT: &str = "15s";

impl ServerSpec {
    /// `kind` with `workers` and `backlog`, and the server's own defaults for
    /// the rest (I/O threads, keep-alive, sched).
    pub fn new(kind: ServerKind, workers: Option<u32>, backlog: u32) -> Self {
        Self {
            kind,
            workers,
            backlog,
            io_threads: None,
            keep_alive: KeepAlive::default(),
            sched: SchedPolicy::default(),
        }
    }

    /// `mutex-queue/connection`, with `keep-alive off` (or `adaptive`) and
    /// `sched batch` where they are not the default: the server column of
    /// the tables.
    pub fn label(&self) -> String {
        let mut label = self.kind.label();
        if self.keep_alive != KeepAlive::default() {
            label.push_str(&format!(" keep-alive {}", self.keep_alive));
        }
        if self.sched != SchedPolicy::default() {
            label.push_str(&format!(" sched {}", self.sched));
        }
        label
    }

    /// The arguments of `dispatchlab serve` that run `target` with these
    /// settings (workers, backlog, I/O threads, keep-alive, sched) on a free loopback port. The
    /// tokio server gets no scope and no I/O thread setting.
    pub fn serve_args(&self, target: Target) -> Vec<String> {
        let mut args: Vec<String> = ["serve", "--addr", "127.0.0.1:0"].map(String::from).to_vec();
        args.extend(target.serve_args().into_iter().map(String::from));
        args.extend([
            "--backlog".into(),
            self.backlog.to_string(),
            "--shutdown-timeout".into(),
            SERVER_SHUTDOWN_TIMEOUT.into(),
        ]);
        if let Some(workers) = self.workers {
            args.extend(["--workers".into(), workers.to_string()]);
        }
        if self.keep_alive != KeepAlive::default() {
            args.extend(["--keep-alive".into(), self.keep_alive.name().into()]);
        }
        if self.sched != SchedPolicy::default() {
            args.extend(["--sched".into(), self.sched.name().into()]);
        }
        if let (Some(_), Some(io_threads)) = (target.strategy(), self.io_threads) {
            let flag = match target.scope {
                Scope::Connection => "--accept-threads",
                Scope::Request => "--io-threads",
            };
            args.extend([flag.into(), io_threads.to_string()]);
        }
        args
    }
}

/// Where a planned cell's load goes before its server has started: port 0
/// stands for "not known yet"; the runner aims the load at the address the
/// server announces ([`Target::at`](crate::load::Target::at)).
pub const PLANNED_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// `path` as a planned cell's target (see [`PLANNED_ADDR`]); the value parser
/// of `compare --workload`.
pub fn planned_target(path: &str) -> Result<LoadTarget, String> {
    LoadTarget::at(PLANNED_ADDR, path).map_err(|err| match err {
        LoadError::InvalidUrl { reason, .. } => format!("{reason}, e.g. /sleep?ms=40"),
        other => other.to_string(),
    })
}

/// A planned target for a path written in this crate's code (the
/// scenarios' workloads); the scenario tests plan every one of them.
pub(crate) fn planned(path: &'static str) -> LoadTarget {
    planned_target(path).expect("the crate's own workload paths are valid")
}

/// A closed-loop keep-alive load of `connections` on `target`, with the
/// load generator's defaults for everything else.
pub fn closed_load(target: &LoadTarget, connections: u32, duration: Duration, warmup: Duration) -> Config {
    let mut load = Config::new(target.clone());
    load.connections = connections;
    load.duration = duration;
    load.warmup = warmup;
    load
}

/// One measured run: a server under a load.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The rows a table compares with each other share a group (same load,
    /// or same server setting in fixed-count scenarios), e.g. `/ c=16`.
    pub group: String,
    /// The server.
    pub server: ServerSpec,
    /// The load; its target's address is [`PLANNED_ADDR`] until the server
    /// announces its own.
    pub load: Config,
    /// The throughput the scenario's model predicts for this cell (the linear
    /// ideal of I/O-bound scaling, the core cap of CPU-bound work), req/s.
    pub ideal_rps: Option<f64>,
}

impl Cell {
    /// `mutex-queue/connection / c=256` for progress lines and logs.
    pub fn label(&self) -> String {
        let mut label = format!("{} {} {}", self.server.label(), self.workload(), self.load.label());
        if let Some(workers) = self.server.workers {
            label.push_str(&format!(" w={workers}"));
        }
        if self.server.backlog != DEFAULT_BACKLOG {
            label.push_str(&format!(" backlog={}", self.server.backlog));
        }
        label
    }

    /// The request target, e.g. `/` or `/sleep?ms=40`.
    pub fn workload(&self) -> &str {
        &self.load.target.path
    }

    /// Whether the server is a reference server.
    pub fn is_reference(&self) -> bool {
        matches!(self.server.kind, ServerKind::Reference(_))
    }

    /// A guess of how long the cell takes, start and stop included, for the
    /// plan's estimate and the progress bar.
    pub fn estimate(&self) -> Duration {
        const OVERHEAD: Duration = Duration::from_millis(200);
        let load = &self.load;
        let run = match (load.requests_per_connection, load.service_time) {
            (Some(requests), Some(service)) => {
                // Waves of at most `parallel` requests at a time.
                let parallel = match self.server.kind {
                    ServerKind::Dispatchlab(Target {
                        engine: Engine::Dispatch(strategy),
                        scope: Scope::Connection,
                    }) if strategy != Strategy::ThreadPerTask => self.server.workers.unwrap_or(1).max(1),
                    _ => load.connections,
                };
                let total = requests * u64::from(load.connections);
                let waves = total.div_ceil(u64::from(parallel.min(load.connections).max(1)));
                service.saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX))
            }
            (Some(_), None) => load.duration.min(Duration::from_secs(10)),
            (None, _) => load.warmup + load.duration,
        };
        run + OVERHEAD
    }
}

/// The listen backlog when nothing else is said (the server's default).
pub const DEFAULT_BACKLOG: u32 = crate::server::ServeConfig::DEFAULT_BACKLOG;

/// The shape of a custom matrix (the flags of `dispatchlab compare`).
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSpec {
    /// Strategies, in order.
    pub strategies: Vec<Strategy>,
    /// Scopes, in order.
    pub scopes: Vec<Scope>,
    /// Connection counts, in order.
    pub connections: Vec<u32>,
    /// Request targets, in order.
    pub workloads: Vec<LoadTarget>,
    /// Pool workers (`None`: the server's default).
    pub workers: Option<u32>,
    /// Listen backlog.
    pub backlog: u32,
    /// Requests in flight per connection.
    pub pipeline: u32,
    /// Open-loop rate, if any.
    pub rate: Option<f64>,
    /// How connections are used.
    pub mode: ConnectionMode,
    /// Measured time per cell.
    pub duration: Duration,
    /// Warm-up per cell.
    pub warmup: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Reference servers to measure beside the strategies (hello workloads
    /// only: a reference server answers `Hello, World!` and nothing else).
    pub references: Vec<Reference>,
    /// Also measure the tokio reference server (every workload, `workers`
    /// runtime threads).
    pub tokio: bool,
}

impl MatrixSpec {
    /// The cells, grouped by load: for each workload and connection count,
    /// every server.
    pub fn expand(&self) -> Vec<Cell> {
        let mut targets = Target::pairs(&self.strategies, &self.scopes);
        if self.tokio {
            targets.extend(Target::tokio());
        }
        let mut cells = Vec::new();
        for workload in &self.workloads {
            for &connections in &self.connections {
                let mut load = closed_load(workload, connections, self.duration, self.warmup);
                load.pipeline = self.pipeline;
                load.rate = self.rate;
                load.mode = self.mode;
                load.timeout = self.timeout;
                let group = format!("{} {}", workload.path, load.label());
                let server = |kind| ServerSpec::new(kind, self.workers, self.backlog);
                for &target in &targets {
                    cells.push(Cell {
                        group: group.clone(),
                        server: server(ServerKind::Dispatchlab(target)),
                        load: load.clone(),
                        ideal_rps: None,
                    });
                }
                if workload.path == "/" {
                    for &reference in &self.references {
                        cells.push(Cell {
                            group: group.clone(),
                            server: ServerSpec::new(ServerKind::Reference(reference), None, self.backlog),
                            load: load.clone(),
                            ideal_rps: None,
                        });
                    }
                }
            }
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MatrixSpec {
        MatrixSpec {
            strategies: Strategy::ALL.to_vec(),
            scopes: Scope::ALL.to_vec(),
            connections: vec![16, 256],
            workloads: vec![planned("/")],
            workers: None,
            backlog: DEFAULT_BACKLOG,
            pipeline: 1,
            rate: None,
            mode: ConnectionMode::KeepAlive,
            duration: Duration::from_secs(2),
            warmup: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
            references: vec![],
            tokio: false,
        }
    }

    #[test]
    fn the_matrix_is_every_pair_at_every_connection_count() {
        let cells = spec().expand();
        let pairs = Target::pairs(Strategy::ALL, &Scope::ALL).len();
        assert_eq!(cells.len(), pairs * 2);
        assert!(
            cells[..pairs]
                .iter()
                .all(|c| c.load.connections == 16 && c.group == "/ c=16")
        );
        assert!(cells[pairs..].iter().all(|c| c.load.connections == 256));
    }

    #[test]
    fn references_join_hello_groups_only() {
        let mut spec = spec();
        spec.references = vec![Reference::Nginx];
        spec.workloads = vec![planned("/"), planned("/sleep?ms=1")];
        let cells = spec.expand();
        let references: Vec<&Cell> = cells.iter().filter(|c| c.is_reference()).collect();
        assert_eq!(references.len(), 2);
        assert!(references.iter().all(|c| c.workload() == "/"));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_joins_every_group_with_the_pool_workers() {
        let mut spec = spec();
        spec.tokio = true;
        spec.workers = Some(4);
        spec.workloads = vec![planned("/"), planned("/sleep?ms=40")];
        let cells = spec.expand();
        let kind = Target::tokio().map(ServerKind::Dispatchlab);
        let tokio: Vec<&Cell> = cells.iter().filter(|c| Some(&c.server.kind) == kind.as_ref()).collect();
        assert_eq!(tokio.len(), 2 * 2, "one per workload x connection count");
        assert!(tokio.iter().all(|c| c.server.workers == Some(4) && !c.is_reference()));
        assert_eq!(
            (tokio[0].server.kind.label(), tokio[0].server.kind.scope_name()),
            ("tokio".into(), "task")
        );
    }

    #[test]
    fn serve_arguments_follow_the_spec() {
        let target = Target::dispatch(Strategy::MutexQueue, Scope::Request).expect("a valid pair");
        let spec = ServerSpec {
            io_threads: Some(2),
            ..ServerSpec::new(ServerKind::Dispatchlab(target), Some(4), 5)
        };
        let args = spec.serve_args(target).join(" ");
        assert!(args.starts_with("serve --addr 127.0.0.1:0 --strategy mutex-queue --scope request --backlog 5"));
        assert!(
            args.contains("--workers 4") && args.contains("--io-threads 2"),
            "{args}"
        );
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_gets_no_scope_and_no_io_threads() {
        let tokio = Target::tokio().expect("compiled in");
        let spec = ServerSpec {
            io_threads: Some(2),
            ..ServerSpec::new(ServerKind::Dispatchlab(tokio), Some(4), 1024)
        };
        let args = spec.serve_args(tokio).join(" ");
        assert!(
            args.starts_with("serve --addr 127.0.0.1:0 --strategy tokio --backlog 1024"),
            "{args}"
        );
        assert!(
            args.contains("--workers 4") && !args.contains("--scope") && !args.contains("threads"),
            "{args}"
        );
    }

    #[test]
    fn labels_say_what_differs() {
        let mut load = closed_load(&planned("/"), 400, Duration::from_secs(1), Duration::ZERO);
        load.rate = Some(1000.0);
        assert_eq!(load.label(), "c=400 @1000/s");
        load.rate = None;
        load.pipeline = 16;
        assert_eq!(load.label(), "c=400 pipeline 16");
        load.pipeline = 1;
        load.mode = ConnectionMode::Close;
        load.requests_per_connection = Some(20);
        assert_eq!(load.label(), "close c=400 x20");
    }
}
