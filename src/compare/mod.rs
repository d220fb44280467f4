//! The runner behind `dispatchlab compare`: a matrix of strategies × scopes ×
//! connection counts × workloads, or a named [`Scenario`], measured one cell
//! at a time.
//!
//! For each cell the runner
//!
//! 1. starts the server as a child process of its own executable
//!    (`dispatchlab serve … --addr 127.0.0.1:0`), pinned to the server CPU
//!    set, and reads the port from its first line (or starts a reference
//!    server such as nginx from a generated configuration);
//! 2. pins its own thread to the load CPU set, so that the load generator's
//!    threads (which inherit the mask) never share a CPU with the server;
//! 3. runs the in-process load generator ([`crate::load::run`]): warm-up,
//!    then the measurement, while a sampler thread reads the child's
//!    `/proc/<pid>/status` and `/proc/<pid>/stat` every 100 ms (peak RSS,
//!    peak threads, CPU seconds over the measurement);
//! 4. stops the child with `SIGTERM` and waits for it; a child that fails to
//!    start, dies, exits non-zero or must be killed fails its row (the
//!    `outcome` column says how), the run goes on, and `compare` exits
//!    non-zero at the end with a list of the failed rows.
//!
//! CPU sets default to the two halves of the CPUs the runner may use (server
//! first) when there are at least two; `--server-cpus`, `--load-cpus` and
//! `--no-pin` change that.
//!
//! Results go to `results/<timestamp>/` (or `--out DIR`): `runs.csv`,
//! `runs.json`, `hgrm/NNN-<run>.hgrm`, `summary.md` and `servers.log`; the
//! ranking tables are printed on standard output. Every file records the
//! machine, the build and the exact command.
//!
//! | module | what it holds |
//! |---|---|
//! | `matrix` | [`Cell`]: a server and a load; the custom matrix's expansion |
//! | `scenario` | the named scenarios and the default run, as [`Plan`]s |
//! | `child` | server child processes: start, address, `SIGTERM`, exit status |
//! | `reference` | external reference servers (nginx) from a generated configuration |
//! | `pin` | CPU sets: parsing, splitting, `sched_setaffinity` |
//! | `sampler` | `/proc/<pid>` sampling while a run lasts |
//! | `measure` | one cell from start to row |
//! | `output` | `runs.csv`, `runs.json`, `.hgrm`, `summary.md`, the ranking tables |
//! | `progress` | the progress bar (hidden when standard error is not a terminal) |

mod baseline;
mod child;
mod disturbance;
mod matrix;
mod measure;
mod output;
mod pin;
mod progress;
mod reference;
mod repeat;
mod sampler;
mod scenario;

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::Strategy;
use crate::load::ConnectionMode;
use crate::results::{self, Machine};
use crate::server::{Engine, Scope, Target};

pub use child::{ChildError, ServerProcess};
pub use matrix::{Cell, DEFAULT_BACKLOG, LoadSpec, MatrixSpec, ServerKind, ServerSpec};
pub use output::{Header, Measured, Table};
pub use pin::{BadCpuList, CpuSet, PinGuard};
pub use progress::format_duration;
pub use reference::Reference;
pub use sampler::{ProcSample, Sampler, Usage};
pub use scenario::{Plan, PlanOptions, Scenario, default_plan};

/// The command line of `dispatchlab compare`.
#[derive(Clone, Debug, Args)]
#[command(after_help = after_help())]
pub struct CompareArgs {
    /// Run a named scenario instead of the default matrix (listed below).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Shorten every scenario (fewer points, short runs): a smoke test whose
    /// numbers are not for reading.
    #[arg(long)]
    pub quick: bool,
    /// Strategies to compare, comma-separated [default: every compiled-in
    /// one, and tokio; `dispatchlab strategies` lists them]. `tokio` (the
    /// tokio reference server) joins only the default run, custom matrices
    /// and the plaintext, io-bound and c10k scenarios. Also narrows scenarios
    /// (except `backlog`, whose three servers are fixed).
    #[arg(long, value_delimiter = ',', value_name = "LIST", value_parser = crate::dispatch::StrategyParser::<Engine>::default())]
    pub strategies: Vec<Engine>,
    /// Scopes to compare, comma-separated: connection, request [default: both].
    #[arg(long, value_delimiter = ',', value_enum, value_name = "LIST")]
    pub scopes: Vec<Scope>,
    /// Custom matrix: connection counts, comma-separated [default: 16,256].
    #[arg(
        short = 'c',
        long,
        value_delimiter = ',',
        value_name = "LIST",
        conflicts_with = "scenario"
    )]
    pub connections: Vec<u32>,
    /// Custom matrix: request target, e.g. /sleep?ms=40 (repeatable) [default: /].
    #[arg(long = "workload", value_name = "PATH", conflicts_with = "scenario")]
    pub workloads: Vec<String>,
    /// Custom matrix: pool workers [default: the server's, one per server CPU].
    #[arg(short = 'w', long, conflicts_with = "scenario")]
    pub workers: Option<u32>,
    /// Custom matrix: listen backlog [default: the server's, 1024].
    #[arg(long, conflicts_with = "scenario")]
    pub backlog: Option<u32>,
    /// Custom matrix: requests in flight per connection (keepalive only) [default: 1].
    #[arg(long, conflicts_with = "scenario")]
    pub pipeline: Option<u32>,
    /// Custom matrix: open loop at this many requests/s in all (as wrk2 -R)
    /// [default: closed loop].
    #[arg(short = 'R', long, conflicts_with = "scenario")]
    pub rate: Option<f64>,
    /// Custom matrix: keepalive, close (a connection per request) or http10 [default: keepalive].
    #[arg(long, value_enum, conflicts_with = "scenario")]
    pub mode: Option<ConnectionMode>,
    /// Custom matrix: per-request timeout of the load generator [default: 2s].
    #[arg(long, value_parser = parse_duration, conflicts_with = "scenario")]
    pub timeout: Option<Duration>,
    /// Measured time per run, e.g. 2s, 500ms [default: 2s; scenarios have
    /// their own, which this overrides for timed runs].
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up per run, discarded [default: 300ms; scenarios have their own].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Directory for the result files [default: results/TIMESTAMP under the
    /// current directory].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// CPUs for the servers, e.g. 0 or 0-1 [default: the first half of the
    /// CPUs this process may use].
    #[arg(long, value_name = "LIST", conflicts_with = "no_pin")]
    pub server_cpus: Option<CpuSet>,
    /// CPUs for the load generator [default: the other half].
    #[arg(long, value_name = "LIST", conflicts_with = "no_pin")]
    pub load_cpus: Option<CpuSet>,
    /// Do not pin: server and load share every CPU.
    #[arg(long)]
    pub no_pin: bool,
    /// Load-generator threads [default: one per load CPU].
    #[arg(long, value_name = "N")]
    pub load_threads: Option<u32>,
    /// Leave out the reference server (nginx) even where it is installed
    /// (tokio is a `--strategies` choice instead).
    #[arg(long)]
    pub no_reference: bool,
    /// Print the plan (every run, the estimated time) and exit.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::load::parse_duration(text)
}

fn after_help() -> String {
    let mut text = String::from("Scenarios (--scenario NAME):\n");
    for scenario in Scenario::ALL {
        text.push_str(&format!("  {:<21} {}\n", scenario.name(), scenario.summary()));
    }
    text.push_str(
        "\nWithout --scenario: every compiled-in strategy in both scopes at 16 and 256 keep-alive connections on
`/`, plus the tokio reference server and nginx when installed (about a minute on 2 CPUs).

Results: results/<timestamp>/{runs.csv, runs.json, summary.md, servers.log, hgrm/*.hgrm}; the columns
are documented in results/README.md. Exit status: 0 when every run completed; 1 when any run failed
(its row's outcome says why; the others are still written); 2 for bad arguments.

Examples:
  dispatchlab compare
  dispatchlab compare --scenario keepalive-starvation
  dispatchlab compare --scenario backlog --out results/backlog
  dispatchlab compare --strategies mutex-queue,inline --scopes request -c 64,1024 -d 5s
  dispatchlab compare --scenario plaintext --strategies work-stealing,tokio --scopes request
  dispatchlab compare --workload /sleep?ms=40 -c 1,8 --workers 4 --dry-run",
    );
    text
}

/// How a comparison ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Where the files are.
    pub dir: PathBuf,
    /// Rows written.
    pub rows: usize,
    /// `label: outcome` of every row that failed.
    pub failed: Vec<String>,
    /// Stopped by Ctrl-C before the plan was done.
    pub interrupted: bool,
}

/// Why a comparison could not run at all.
#[derive(Debug)]
pub enum CompareError {
    /// The arguments do not describe a runnable plan.
    Invalid(String),
    /// A file or directory could not be written.
    Io {
        /// What was being written.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareError::Invalid(message) => f.write_str(message),
            CompareError::Io { what, source } => write!(f, "cannot write {what}: {source}"),
        }
    }
}

impl std::error::Error for CompareError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CompareError::Io { source, .. } => Some(source),
            CompareError::Invalid(_) => None,
        }
    }
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> CompareError {
    let what = what.into();
    move |source| CompareError::Io { what, source }
}

/// The server and load CPU sets the arguments ask for; `None` for unpinned.
pub fn cpu_sets(args: &CompareArgs, allowed: &CpuSet) -> Result<(Option<CpuSet>, Option<CpuSet>), CompareError> {
    if args.no_pin {
        return Ok((None, None));
    }
    let rest = |taken: &CpuSet| {
        CpuSet::new(
            allowed
                .cpus()
                .iter()
                .copied()
                .filter(|c| !taken.cpus().contains(c))
                .collect(),
        )
    };
    let (server, load) = match (&args.server_cpus, &args.load_cpus) {
        (Some(server), Some(load)) => (server.clone(), load.clone()),
        (Some(server), None) => (server.clone(), rest(server)),
        (None, Some(load)) => (rest(load), load.clone()),
        (None, None) => match allowed.split_in_half() {
            Some(halves) => halves,
            None => return Ok((None, None)),
        },
    };
    for (name, set) in [("--server-cpus", &server), ("--load-cpus", &load)] {
        if set.is_empty() {
            return Err(CompareError::Invalid(format!(
                "{name} leaves no CPU (this process may use {allowed}); give both --server-cpus and --load-cpus, or --no-pin"
            )));
        }
        if let Some(cpu) = set.cpus().iter().find(|c| !allowed.cpus().contains(c)) {
            return Err(CompareError::Invalid(format!(
                "{name} {set}: CPU {cpu} is not one this process may use ({allowed})"
            )));
        }
    }
    Ok((Some(server), Some(load)))
}

/// The plan the arguments describe, with reference servers where the plan
/// has hello workloads.
pub fn plan(args: &CompareArgs, server_cpus: u32, references: Vec<Reference>) -> Result<Plan, CompareError> {
    let (strategies, tokio) = if args.strategies.is_empty() {
        (Strategy::ALL.to_vec(), Target::tokio().is_some())
    } else {
        let strategies = args.strategies.iter().filter_map(|engine| engine.strategy()).collect();
        (
            strategies,
            args.strategies.iter().any(|engine| engine.strategy().is_none()),
        )
    };
    let scopes = if args.scopes.is_empty() {
        Scope::ALL.to_vec()
    } else {
        args.scopes.clone()
    };
    let options = PlanOptions {
        quick: args.quick,
        duration: args.duration,
        warmup: args.warmup,
        strategies,
        scopes,
        server_cpus,
        references,
        tokio,
    };
    let plan = match (args.scenario, custom_matrix(args, &options)) {
        (Some(scenario), _) => scenario.plan(&options),
        (None, None) => default_plan(&options),
        (None, Some(spec)) => Plan {
            name: "custom".into(),
            title: "Custom matrix".into(),
            varies: "strategy x scope x connections x workload, as given on the command line".into(),
            shows: default_plan(&options).shows,
            cells: spec.expand(),
        },
    };
    if plan.cells.is_empty() {
        return Err(CompareError::Invalid(
            "nothing to run: no valid strategy x scope pair (inline runs in request scope only)".into(),
        ));
    }
    if let Some(zero) = plan.cells.iter().find(|c| c.load.connections == 0) {
        return Err(CompareError::Invalid(format!(
            "{}: connections must be at least 1",
            zero.label()
        )));
    }
    Ok(plan)
}

/// The custom matrix the matrix flags describe: the default run's, changed
/// where a flag was given; `None` when no matrix flag was given.
fn custom_matrix(args: &CompareArgs, options: &PlanOptions) -> Option<MatrixSpec> {
    let given = !args.connections.is_empty()
        || !args.workloads.is_empty()
        || args.workers.is_some()
        || args.backlog.is_some()
        || args.pipeline.is_some()
        || args.rate.is_some()
        || args.mode.is_some()
        || args.timeout.is_some();
    if !given {
        return None;
    }
    let mut spec = scenario::default_matrix(options);
    if !args.connections.is_empty() {
        spec.connections.clone_from(&args.connections);
    }
    if !args.workloads.is_empty() {
        spec.workloads.clone_from(&args.workloads);
    }
    spec.workers = args.workers;
    spec.backlog = args.backlog.unwrap_or(spec.backlog);
    spec.pipeline = args.pipeline.unwrap_or(spec.pipeline);
    spec.rate = args.rate;
    spec.mode = args.mode.unwrap_or(spec.mode);
    spec.timeout = args.timeout.unwrap_or(spec.timeout);
    // A custom run is never shortened by --quick.
    spec.duration = args.duration.unwrap_or(scenario::DEFAULT_DURATION);
    spec.warmup = args.warmup.unwrap_or(scenario::DEFAULT_WARMUP);
    Some(spec)
}

/// The command line as typed, quoted where a shell would split it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    match args.split_first() {
        Some((program, rest)) => child::render(Path::new(program), rest),
        None => "dispatchlab compare".into(),
    }
}

/// The command that regenerates the run (`--out` left out).
fn regenerate_command() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut kept = Vec::new();
    let mut iter = args.iter().skip_while(|a| a.as_str() != "compare").skip(1);
    while let Some(arg) = iter.next() {
        if arg == "--out" {
            iter.next();
        } else if !arg.starts_with("--out=") {
            kept.push(arg.clone());
        }
    }
    let mut command = String::from("cargo run --release -- compare");
    for arg in kept {
        command.push(' ');
        command.push_str(&child::quote(&arg));
    }
    command
}

/// A fresh directory for the results.
fn create_out_dir(args: &CompareArgs, run_name: &str) -> Result<PathBuf, CompareError> {
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let base = Path::new("results");
            let mut dir = base.join(run_name);
            let mut n = 2;
            while dir.exists() {
                dir = base.join(format!("{run_name}-{n}"));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(dir.join("hgrm")).map_err(io_error(format!("the result directory {}", dir.display())))?;
    Ok(dir)
}

/// Runs the comparison the arguments describe: prints the plan, measures
/// every cell, writes the files, prints the ranking.
pub fn run(args: &CompareArgs) -> Result<Outcome, CompareError> {
    let machine = Machine::detect();
    let started = results::timestamp_now();
    let run_name = results::run_name_now();
    let command = command_line();
    let allowed = CpuSet::of_current_thread()
        .map_err(|err| CompareError::Invalid(format!("cannot read this process's CPU affinity: {err}")))?;
    let (server_cpus, load_cpus) = cpu_sets(args, &allowed)?;
    let mut notes = Vec::new();
    if server_cpus.is_none() {
        notes.push(if args.no_pin {
            "Unpinned (--no-pin): server and load generator share every CPU.".to_owned()
        } else {
            format!(
                "Only {} CPU available: server and load generator share it, unpinned.",
                allowed.len()
            )
        });
    } else if let (Some(s), Some(l)) = (&server_cpus, &load_cpus)
        && s.overlaps(l)
    {
        notes.push(format!(
            "Server CPUs {s} and load CPUs {l} overlap: the two compete for them."
        ));
    }
    let load_threads = args
        .load_threads
        .unwrap_or_else(|| load_cpus.as_ref().map_or((allowed.len() / 2).max(1), CpuSet::len) as u32)
        .max(1);
    let server_cpu_count = server_cpus.as_ref().map_or(allowed.len(), CpuSet::len) as u32;

    // Reference servers: those installed join the plan; a missing one is
    // named with how to install it.
    let mut located = Vec::new();
    let mut missing = Vec::new();
    if !args.no_reference {
        for &reference in Reference::ALL {
            match reference.locate() {
                Some(program) => located.push((reference, program)),
                None => missing.push(reference),
            }
        }
    }
    let plan = plan(args, server_cpu_count, located.iter().map(|(r, _)| *r).collect())?;
    let planned_with = |r: Reference| {
        let probe = self::plan(args, server_cpu_count, vec![r]);
        probe.is_ok_and(|p| p.cells.iter().any(Cell::is_reference))
    };
    for reference in missing {
        if planned_with(reference) {
            let note = format!(
                "{reference} is not installed, so its reference rows are left out (install: {}).",
                reference.install_hint()
            );
            eprintln!("dispatchlab compare: note: {note}");
            notes.push(note);
        }
    }

    let estimate: Duration = plan.cells.iter().map(Cell::estimate).sum();
    println!("dispatchlab compare: {} ({})", plan.title, plan.name);
    println!("  varies: {}", plan.varies);
    println!("  shows:  {}", plan.shows);
    println!(
        "  {} runs, about {}; server CPUs {}, load CPUs {} ({} load thread{})",
        plan.cells.len(),
        format_duration(estimate),
        server_cpus.as_ref().map_or("-".into(), ToString::to_string),
        load_cpus.as_ref().map_or("-".into(), ToString::to_string),
        load_threads,
        if load_threads == 1 { "" } else { "s" }
    );
    if args.dry_run {
        for (index, cell) in plan.cells.iter().enumerate() {
            println!(
                "  {:>3}. {}  (~{})",
                index + 1,
                cell.label(),
                format_duration(cell.estimate())
            );
        }
        return Ok(Outcome {
            dir: PathBuf::new(),
            rows: 0,
            failed: Vec::new(),
            interrupted: false,
        });
    }
    let dir = create_out_dir(args, &run_name)?;
    println!("  results: {}", dir.display());

    if let Err(err) = crate::rlimit::raise_open_file_limit() {
        notes.push(format!(
            "Could not raise the open-file limit ({err}): large connection counts may fail."
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl-C exits at once (the children get SIGTERM through
        // PR_SET_PDEATHSIG).
        let registered = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(err) = registered {
            return Err(CompareError::Invalid(format!(
                "cannot install the Ctrl-C handler: {err}"
            )));
        }
    }
    let log_path = dir.join("servers.log");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_error(log_path.display().to_string()))?;
    writeln!(
        log,
        "# dispatchlab compare, {started}: {command}\n# {} ({} CPUs, kernel {}), {}, git {}; server CPUs {}, load CPUs {}",
        machine.host,
        machine.cpus,
        machine.kernel,
        machine.rustc,
        machine.git_rev,
        server_cpus.as_ref().map_or("-".into(), ToString::to_string),
        load_cpus.as_ref().map_or("-".into(), ToString::to_string),
    )
    .map_err(io_error(log_path.display().to_string()))?;
    let exe = std::env::current_exe().map_err(|err| {
        CompareError::Invalid(format!("cannot find this program's executable to start servers: {err}"))
    })?;
    let ctx = measure::Context {
        exe,
        machine: machine.clone(),
        server_cpus: server_cpus.clone(),
        load_cpus: load_cpus.clone(),
        load_threads,
        command: command.clone(),
        scenario: plan.name.clone(),
        run_name,
        stop: Arc::clone(&stop),
        references: located,
        log,
    };
    let mut header = Header {
        tool: "dispatchlab compare".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        scenario: plan.name.clone(),
        title: plan.title.clone(),
        varies: plan.varies.clone(),
        shows: plan.shows.clone(),
        command,
        started,
        finished: String::new(),
        host: machine.host.clone(),
        kernel: machine.kernel.clone(),
        cpus: machine.cpus,
        rustc: machine.rustc.clone(),
        git_rev: machine.git_rev.clone(),
        server_cpus: server_cpus.as_ref().map(ToString::to_string).unwrap_or_default(),
        load_cpus: load_cpus.as_ref().map(ToString::to_string).unwrap_or_default(),
        load_threads,
        cells: plan.cells.len(),
        failed: 0,
        notes: Vec::new(),
    };

    let mut progress = progress::Progress::new(plan.cells.iter().map(Cell::estimate).collect());
    let mut measured: Vec<Measured> = Vec::new();
    let clock = Instant::now();
    for (index, cell) in plan.cells.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let label = cell.label();
        progress.start(index, &format!("{}/{} {label}", index + 1, plan.cells.len()));
        let result = measure::measure(&ctx, index, cell);
        if let Some(report) = &result.report {
            let path = dir
                .join("hgrm")
                .join(format!("{index:03}-{}.hgrm", output::slug(&label)));
            if let Err(err) = output::write_hgrm(&path, report, &result.row, &header) {
                progress.println(&format!("dispatchlab compare: cannot write {}: {err}", path.display()));
            }
        }
        if result.row.outcome != "ok" {
            progress.println(&format!("dispatchlab compare: {label}: {}", result.row.outcome));
        }
        measured.push(Measured {
            cell: cell.clone(),
            row: result.row,
        });
        progress.finish_cell(index);
        // Rewritten after every run, so an aborted comparison keeps what it measured.
        let rows: Vec<_> = measured.iter().map(|m| m.row.clone()).collect();
        output::write_csv(&dir, &rows).map_err(io_error("runs.csv"))?;
        output::write_json(&dir, &header, &rows).map_err(io_error("runs.json"))?;
    }
    progress.finish();
    let interrupted = stop.load(Ordering::Relaxed);

    header.finished = results::timestamp_now();
    header.failed = measured.iter().filter(|m| !m.ok()).count();
    notes.extend(output::notes(&measured));
    if interrupted {
        notes.push(format!(
            "Interrupted (Ctrl-C) after {} of {} runs.",
            measured.len(),
            plan.cells.len()
        ));
    }
    header.notes = notes;
    let rows: Vec<_> = measured.iter().map(|m| m.row.clone()).collect();
    output::write_csv(&dir, &rows).map_err(io_error("runs.csv"))?;
    output::write_json(&dir, &header, &rows).map_err(io_error("runs.json"))?;
    let summary = output::summary_markdown(&header, &plan, &measured, &regenerate_command());
    std::fs::write(dir.join("summary.md"), summary).map_err(io_error("summary.md"))?;

    println!();
    for table in output::tables(&measured, false) {
        println!("{}", table.to_text());
    }
    for note in &header.notes {
        println!("note: {note}");
    }
    println!(
        "\n{} runs in {} ({} estimated); results in {}",
        measured.len(),
        format_duration(clock.elapsed()),
        format_duration(estimate),
        dir.display()
    );
    let failed = measured
        .iter()
        .filter(|m| !m.ok())
        .map(|m| format!("{}: {}", m.cell.label(), m.row.outcome))
        .collect();
    Ok(Outcome {
        dir,
        rows: measured.len(),
        failed,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Compare {
        #[command(flatten)]
        args: CompareArgs,
    }

    fn plan_of(flags: &[&str]) -> Plan {
        let line = std::iter::once("compare").chain(flags.iter().copied());
        let args = Compare::try_parse_from(line).expect("flags parse").args;
        plan(&args, 1, Vec::new()).expect("a plan")
    }

    #[test]
    fn a_matrix_flag_given_makes_a_custom_run_even_at_its_default_value() {
        assert_eq!(plan_of(&[]).name, "default");
        for flags in [
            &["--timeout", "2s"][..],
            &["--backlog", "1024"],
            &["--pipeline", "1"],
            &["-c", "16,256"],
        ] {
            assert_eq!(plan_of(flags).name, "custom", "{flags:?}");
        }
        assert_eq!(plan_of(&["--timeout", "2s"]).cells, plan_of(&[]).cells);
    }
}
