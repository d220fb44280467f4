//! One cell, start to finish: start the server child pinned to the server
//! CPUs, pin the load to the load CPUs, sample the child from `/proc` while
//! the in-process load generator warms up and measures (and read
//! `/proc/stat` around it for the [`disturbance`](super::disturbance)),
//! stop the child with `SIGTERM`, and turn it all into one [`RunRow`].
//!
//! A run with errors whose server's peak thread count reached a system
//! limit on threads says which one in the outcome (see `limits`).
//!
//! Whatever goes wrong ends up in the row's `outcome`, never in a panic or an
//! early return of the whole comparison: a server that does not start, dies
//! during the run, exits non-zero or has to be killed after `SIGTERM` fails
//! its row only.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::child::{ChildError, ServerChild};
use super::disturbance::{self, Disturbance, Sets, Window};
use super::external::{self, Attached, ExternalSource};
use super::limits;
use super::matrix::{Cell, ServerKind};
use super::pin::CpuSet;
use super::reference::Reference;
use super::sampler::{Sampler, Usage};
use crate::load::{self, Config, LoadError, Report, Target};
use crate::results::{Machine, RunRow};

/// What every cell of a comparison shares.
#[derive(Debug)]
pub struct Context {
    /// The executable started as `serve` (normally the runner's own).
    pub exe: PathBuf,
    /// Machine and build facts for the rows.
    pub machine: Machine,
    /// The server CPU set; `None` when unpinned.
    pub server_cpus: Option<CpuSet>,
    /// The load CPU set; `None` when unpinned.
    pub load_cpus: Option<CpuSet>,
    /// The CPU sets whose disturbance each run measures.
    pub disturbance_sets: Sets,
    /// Load-generator threads.
    pub load_threads: u32,
    /// The exact command of the comparison.
    pub command: String,
    /// The plan's name, for the `scenario` column.
    pub scenario: String,
    /// The run's name; row ids are `<run name>-<index>`.
    pub run_name: String,
    /// Set on Ctrl-C: the current load stops early, later cells are skipped.
    pub stop: Arc<AtomicBool>,
    /// Located reference-server programs.
    pub references: Vec<(Reference, PathBuf)>,
    /// `servers.log`: each child's pid and command, then its standard error.
    pub log: File,
}

/// A measured cell.
#[derive(Debug)]
pub struct CellResult {
    /// The row (always present; `outcome` says whether it is complete).
    pub row: RunRow,
    /// The load report, when the load ran.
    pub report: Option<Report>,
    /// The disturbance of the pinned CPUs, when the load ran.
    pub disturbance: Option<Disturbance>,
}

/// Measures cell `index` of the plan.
pub fn measure(ctx: &Context, index: usize, cell: &Cell) -> CellResult {
    let run_id = format!("{}-{index:03}", ctx.run_name);
    let mut row = base_row(ctx, cell, &run_id);
    row.load_average = disturbance::load_average();
    let mut log = ctx.log.try_clone();
    let note = |log: &mut std::io::Result<File>, line: &str| {
        if let Ok(log) = log {
            let _ = writeln!(log, "{line}");
        }
    };
    note(&mut log, &format!("--- run {run_id}: {}", cell.label()));
    let stderr = match ctx.log.try_clone() {
        Ok(file) => file,
        Err(err) => return failed(row, format!("cannot pass servers.log to the server: {err}")),
    };
    let mut server = match start(ctx, cell, stderr) {
        Ok(server) => server,
        Err(err) => {
            note(&mut log, &format!("server failed to start: {err}"));
            return failed(row, format!("server failed to start: {err}"));
        }
    };
    let pid = server.pid();
    note(&mut log, &server.describe());
    if let Running::Started(child) = &server {
        row.server_command.clone_from(&child.command);
        row.workers = child.workers.or(cell.server.workers);
    }
    let stop_timeout = cell.server.kind.stop_timeout();

    let config = match load_config(ctx, cell, &server) {
        Ok(config) => config,
        Err(err) => {
            let _ = server.stop(stop_timeout);
            return failed(row, err);
        }
    };
    let (report, usage, disturbance) = {
        let _pin = match ctx.load_cpus.as_ref().map(CpuSet::pin_scoped).transpose() {
            Ok(guard) => guard,
            Err(err) => {
                let _ = server.stop(stop_timeout);
                return failed(row, format!("cannot pin the load generator: {err}"));
            }
        };
        // Started while pinned, so the sampler stays off the server's CPUs.
        // A server whose process is not known (`--url` without `--pid`)
        // is neither sampled nor told apart from the disturbance.
        let measure_start = Instant::now() + cell.load.warmup;
        let sampler = pid.map(|pid| Sampler::start(pid, cell.server.kind.is_process_tree(), measure_start));
        let window = pid.map(|pid| (pid, Window::open(pid)));
        let report = load::run(&config);
        let disturbance =
            window.and_then(|(pid, window)| window.and_then(|w| w.close(pid, &ctx.disturbance_sets)).ok());
        let usage = match sampler {
            Some(Ok(sampler)) => sampler.stop(),
            Some(Err(_)) | None => Usage::default(),
        };
        (report, usage, disturbance)
    };
    // The other threads of the system, counted while the server still runs.
    let others = limits::system_threads().map(|all| {
        all.saturating_sub(
            pid.and_then(|pid| super::sampler::status_value(pid, "Threads"))
                .unwrap_or(0),
        )
    });
    let died = server.exited();
    let stopped = match died {
        Some(_) => Ok(()),
        None => server.stop(stop_timeout),
    };
    let mut outcome = Vec::new();
    match &report {
        Ok(report) => {
            report.fill_row(&mut row);
            if report.interrupted {
                outcome.push("interrupted (Ctrl-C)".to_owned());
            }
        }
        Err(err) => outcome.push(format!("load failed: {err}")),
    }
    if let (Ok(report), Some(peak)) = (&report, usage.peak_threads)
        && report.errors.total() > 0
        && let Some(limit) = limits::diagnose(peak, &limits::thread_limits(others.unwrap_or(0)))
    {
        outcome.push(limit);
    }
    if let Some(how) = died {
        outcome.push(format!("server {how} during the run"));
    }
    if let Err(err) = stopped {
        outcome.push(err);
    }
    row.server_peak_rss_kib = usage.peak_rss_kib;
    row.server_peak_threads = usage.peak_threads;
    row.server_cpu_s = usage.cpu_s;
    if let Some(disturbance) = &disturbance {
        row.disturbance = disturbance.to_string();
        outcome.extend(disturbance.flag());
    }
    row.outcome = if outcome.is_empty() {
        "ok".into()
    } else {
        outcome.join("; ")
    };
    note(&mut log, &format!("outcome: {}", row.outcome));
    CellResult {
        row,
        report: report.ok(),
        disturbance,
    }
}

fn failed(mut row: RunRow, outcome: String) -> CellResult {
    row.outcome = outcome;
    CellResult {
        row,
        report: None,
        disturbance: None,
    }
}

/// The server a cell measures: a child the runner started, or one that was
/// already running (`compare --url`).
#[derive(Debug)]
enum Running {
    Started(ServerChild),
    Attached(Attached),
}

/// Starts (or reaches) the cell's server, pinned to the server CPUs, its
/// output to `stderr`.
fn start(ctx: &Context, cell: &Cell, stderr: File) -> Result<Running, ChildError> {
    let cpus = ctx.server_cpus.as_ref();
    let started = match &cell.server.kind {
        ServerKind::Dispatchlab(target) => {
            ServerChild::start_dispatchlab(&ctx.exe, &cell.server.serve_args(*target), cpus, stderr)
        }
        ServerKind::Reference(reference) => {
            let Some((_, program)) = ctx.references.iter().find(|(r, _)| r == reference) else {
                return Err(ChildError::NotReady(format!(
                    "{reference} is not installed ({})",
                    reference.install_hint()
                )));
            };
            reference.start(program, cell.server.workers, cell.server.backlog, cpus, stderr)
        }
        ServerKind::External(external) => match &external.source {
            ExternalSource::Command(words) => external::start(words, cpus, stderr),
            ExternalSource::Running { authority, pid } => {
                return Attached::connect(authority, *pid)
                    .map(Running::Attached)
                    .map_err(ChildError::NotReady);
            }
        },
    };
    started.map(Running::Started)
}

impl Running {
    /// The process to sample, if known.
    fn pid(&self) -> Option<u32> {
        match self {
            Running::Started(child) => Some(child.pid()),
            Running::Attached(attached) => attached.pid,
        }
    }

    /// `path` on this server, the load's target.
    fn target(&self, path: &str) -> Result<Target, LoadError> {
        match self {
            Running::Started(child) => Target::at(child.addr, path),
            Running::Attached(attached) => Target::parse(&format!("http://{}{path}", attached.authority)),
        }
    }

    /// The `servers.log` line: `pid N: command` for a started child.
    fn describe(&self) -> String {
        match self {
            Running::Started(child) => format!("pid {}: {}", child.pid(), child.command),
            Running::Attached(attached) => match attached.pid {
                Some(pid) => format!("already running: http://{}/ (process {pid})", attached.authority),
                None => format!(
                    "already running: http://{}/ (no --pid: not sampled)",
                    attached.authority
                ),
            },
        }
    }

    /// `Some(description)` when the server has already exited.
    fn exited(&mut self) -> Option<String> {
        match self {
            Running::Started(child) => child.exited(),
            Running::Attached(attached) => attached.exited(),
        }
    }

    /// Stops a started child; leaves a running server alone.
    fn stop(self, timeout: std::time::Duration) -> Result<(), String> {
        match self {
            Running::Started(child) => child.stop(timeout),
            Running::Attached(_) => Ok(()),
        }
    }
}

/// The load generator's configuration for a cell against `server`.
fn load_config(ctx: &Context, cell: &Cell, server: &Running) -> Result<Config, String> {
    let mut config = cell.load.clone();
    config.target = server.target(cell.workload()).map_err(|err| err.to_string())?;
    config.threads = ctx.load_threads.max(1);
    config.stop = Some(Arc::clone(&ctx.stop));
    config.validate().map_err(|err| err.to_string())?;
    Ok(config)
}

/// The row as far as the cell defines it: what a failed run still records.
fn base_row(ctx: &Context, cell: &Cell, run_id: &str) -> RunRow {
    let load = &cell.load;
    let mut row = RunRow {
        run_id: run_id.to_owned(),
        timestamp: crate::results::timestamp_now(),
        load_tool: "dispatchlab".into(),
        workload: cell.workload().to_owned(),
        connection_mode: load.mode.name().into(),
        connections: load.connections,
        load_threads: ctx.load_threads.clamp(1, load.connections.max(1)),
        pipeline: load.pipeline,
        target_rate: load.rate,
        requests_per_connection: load.requests_per_connection,
        service_time_ms: load.service_time.map(|t| t.as_secs_f64() * 1e3),
        ..RunRow::default()
    };
    ctx.machine.stamp(&mut row);
    fill_server_side(ctx, cell, &mut row);
    row
}

/// The columns the runner knows and the load report does not.
fn fill_server_side(ctx: &Context, cell: &Cell, row: &mut RunRow) {
    row.scenario.clone_from(&ctx.scenario);
    row.strategy = cell.server.kind.strategy_name().into();
    row.scope = cell.server.kind.scope_name().into();
    row.workers = cell.server.workers;
    // What the server was told; empty when it was left to its default.
    row.io_threads = match &cell.server.kind {
        ServerKind::Dispatchlab(target) if target.strategy().is_some() => cell.server.io_threads,
        ServerKind::Dispatchlab(_) | ServerKind::Reference(_) | ServerKind::External(_) => None,
    };
    // An outside server is not told a backlog, nor a keep-alive policy.
    if !matches!(cell.server.kind, ServerKind::External(_)) {
        row.backlog = Some(cell.server.backlog);
    }
    if let ServerKind::Dispatchlab(_) = cell.server.kind {
        row.keep_alive = cell.server.keep_alive.name().into();
        row.sched = cell.server.sched.name().into();
    }
    row.server_cpus = ctx.server_cpus.as_ref().map(ToString::to_string).unwrap_or_default();
    row.load_cpus = ctx.load_cpus.as_ref().map(ToString::to_string).unwrap_or_default();
    row.command.clone_from(&ctx.command);
}
