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
//!    peak threads, CPU seconds over the measurement), and `/proc/stat` is
//!    read before and after for the share of the pinned CPUs that went to
//!    other processes ([`disturbance`]);
//! 4. stops the child with `SIGTERM` and waits for it; a child that fails to
//!    start, dies, exits non-zero or must be killed fails its row (the
//!    `outcome` column says how), the run goes on, and `compare` exits
//!    non-zero at the end with a list of the failed rows.
//!
//! With `--repeat N` every cell is measured N times, interleaved
//! ([`repeat::interleaved`]); each repeat is its own row, and the tables
//! give each cell's median with the range of its repeats. A run flagged as
//! disturbed is measured again up to `--retry-disturbed K` times; every
//! attempt is kept in `runs.csv` and the `counted` column marks the one that
//! counts. `--baseline DIR` then compares the result with an earlier one
//! ([`baseline`]).
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
//! | [`baseline`] | `dispatchlab baseline`: the cells two result directories share, judged against the noise of their repeats |
//! | [`repeat`] | the interleaved order of repeats, a cell's median and range |
//! | [`disturbance`] | how much of the pinned CPUs went to other processes during a run (`/proc/stat`) |
//! | `matrix` | [`Cell`]: a server and a load; the custom matrix's expansion |
//! | `scenario` | the named scenarios and the default run, as [`Plan`]s |
//! | `child` | server child processes: start, address, `SIGTERM`, exit status |
//! | `reference` | external reference servers (nginx) from a generated configuration |
//! | `external` | outside servers: `--server NAME=COMMAND` started per cell, `--url` already running |
//! | `pin` | CPU sets: parsing, splitting, `sched_setaffinity` |
//! | [`sampler`] | `/proc/<pid>` sampling while a run lasts (public: the tests read servers with it) |
//! | `measure` | one cell from start to row |
//! | `limits` | the system limits on threads, and the one a thread-per-connection server ran into |
//! | `output` | `runs.csv`, `runs.json`, `.hgrm`, `summary.md`, the ranking tables |
//! | `progress` | the progress bar (hidden when standard error is not a terminal) |

pub mod baseline;
mod child;
pub mod disturbance;
mod external;
mod limits;
mod matrix;
mod measure;
mod output;
mod pin;
mod progress;
mod reference;
pub mod repeat;
pub mod sampler;
mod scenario;

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use crate::Strategy;
use crate::load::ConnectionMode;
use crate::results::{self, Machine};
use crate::server::{Engine, SchedPolicy, Scope, Target};

pub use child::{ChildError, ServerChild};
pub use external::{BadExternal, External, ExternalSource};
pub use matrix::{Cell, DEFAULT_BACKLOG, MatrixSpec, PLANNED_ADDR, ServerKind, ServerSpec, planned_target};
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
    /// and the plaintext, io-bound, c10k and c100k scenarios. Also narrows scenarios
    /// (except `backlog` and `rust-book`, whose servers are fixed).
    #[arg(long, value_delimiter = ',', value_name = "LIST", value_parser = crate::dispatch::StrategyParser::<Engine>::default())]
    pub strategies: Vec<Engine>,
    /// Scopes to compare, comma-separated: connection, request [default: both].
    #[arg(long, value_delimiter = ',', value_enum, value_name = "LIST")]
    pub scopes: Vec<Scope>,
    /// Kernel scheduling policies for the crate's own servers (strategies
    /// and tokio), comma-separated: `other`, `batch` (`serve --sched`). Two
    /// policies run every such cell under each, side by side, so a change of
    /// policy is judged on the same plan [default: the server's, other].
    /// Applies to scenarios too; nginx and outside servers are not changed.
    #[arg(long, value_delimiter = ',', value_enum, value_name = "LIST")]
    pub sched: Vec<SchedPolicy>,
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
    #[arg(long = "workload", value_name = "PATH", value_parser = planned_target, conflicts_with = "scenario")]
    pub workloads: Vec<crate::load::Target>,
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
    /// Measure every cell N times, interleaved (every cell once, then again
    /// in reverse order, ...); tables give medians and ranges [default: 3
    /// for a named scenario (1 with --quick), 1 for the default run and
    /// custom matrices].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Measure a run again, up to K times, when other processes took more
    /// than 5 % of its server or load CPUs; every attempt stays in runs.csv,
    /// the `counted` column marks the one that counts.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub retry_disturbed: u32,
    /// After the run, compare it with an earlier result directory: printed,
    /// and written to baseline.md in the new one (as `dispatchlab baseline`).
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// Print the plan (every run, the estimated time) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// An outside server to compare, as NAME=COMMAND (repeatable). COMMAND
    /// is split into words as a shell would split them, but no shell runs
    /// it; `{port}` (or `{addr}`, 127.0.0.1:PORT) is replaced by a free port.
    /// For each run it is started on the server CPUs, loaded once the port
    /// accepts, sampled with its child processes, and stopped with SIGTERM
    /// (then SIGKILL, see below). Its rows have strategy NAME, scope `external`.
    /// It joins every `/` workload of the plan (and every --workload of a
    /// custom matrix); runs on other routes are left out, with a note.
    #[arg(long = "server", value_name = "NAME=COMMAND")]
    pub servers: Vec<External>,
    /// A server that is already running, as [NAME=]http://HOST:PORT (the
    /// path is the workload's); measured like --server [default NAME:
    /// external], but never started or stopped.
    #[arg(long, value_name = "[NAME=]URL")]
    pub url: Option<String>,
    /// The process of the --url server, to sample its memory, threads and
    /// CPU (with its children) [default: not sampled: those columns stay
    /// empty]. Its VmHWM is its peak since it started, not the run's.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
}

/// How many times every cell is measured: `--repeat`, else
/// [`repeat::SCENARIO_REPEATS`] for a named scenario (once with `--quick`,
/// a smoke test) and once for the default run and custom matrices.
pub fn repeats(args: &CompareArgs) -> usize {
    match (args.repeat, args.scenario) {
        (Some(n), _) => n as usize,
        (None, Some(_)) if !args.quick => repeat::SCENARIO_REPEATS,
        (None, _) => 1,
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::load::parse_duration(text)
}

fn after_help() -> String {
    let mut text = String::from("Scenarios (--scenario NAME):\n");
    for scenario in Scenario::ALL {
        text.push_str(&format!("  {:<21} {}\n", scenario.name(), scenario.summary()));
    }
    text.push_str(&format!(
        "
Outside servers: --server NAME=COMMAND and --url join the default run, custom matrices and
the scenarios' `/` runs (keepalive-starvation, c10k, plaintext, rust-book); the /sleep and /spin
runs (backlog, io-bound, cpu-bound) are left out for them, with a note. A command that exits
before its port opens fails its rows with what it wrote, as does a port that does not open
within {} s; one still running {} s after SIGTERM is killed (SIGKILL), as its outcome says.
",
        child::START_TIMEOUT.as_secs(),
        external::GRACE.as_secs()
    ));
    text.push_str(
        "\nWithout --scenario: every compiled-in strategy in both scopes at 16 and 256 keep-alive connections on
`/`, plus the tokio reference server and nginx when installed (about a minute on 2 CPUs).

Results: results/<timestamp>/{runs.csv, runs.json, summary.md, servers.log, hgrm/*.hgrm}; the columns
are documented in results/README.md. Exit status: 0 when every run completed; 1 when any run failed
(its row's outcome says why; the others are still written); 2 for bad arguments.

Examples:
  dispatchlab compare
  dispatchlab compare --server \"py=python3 -m http.server {port} --bind 127.0.0.1\" -c 16 -d 1s
  dispatchlab compare --scenario rust-book \\
      --server \"book=target/release/examples/book_server {port}\"
  dispatchlab compare --url http://127.0.0.1:8080 --pid 4242 --strategies mutex-queue
  dispatchlab compare --scenario keepalive-starvation
  dispatchlab compare --scenario cpu-bound --sched other,batch
  dispatchlab compare --repeat 3 --retry-disturbed 2 --baseline results/before
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
    let custom = custom_matrix(args, &options).filter(|_| args.scenario.is_none());
    // A custom matrix's workloads are the user's choice: outside servers get them all.
    let every_workload = custom.is_some();
    let mut plan = match (args.scenario, custom) {
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
    plan.cells = under_policies(std::mem::take(&mut plan.cells), &args.sched);
    plan.cells = external::join(std::mem::take(&mut plan.cells), &outside_servers(args)?, every_workload);
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

/// Each of the crate's own servers' cells once per `--sched` policy, the
/// policies of one cell next to each other; other cells once. No policy
/// given: the cells as planned (the server's default policy).
fn under_policies(cells: Vec<Cell>, policies: &[SchedPolicy]) -> Vec<Cell> {
    if policies.is_empty() {
        return cells;
    }
    let mut expanded = Vec::with_capacity(cells.len() * policies.len());
    for cell in cells {
        if !matches!(cell.server.kind, ServerKind::Dispatchlab(_)) {
            expanded.push(cell);
            continue;
        }
        for &sched in policies {
            let mut under = cell.clone();
            under.server.sched = sched;
            expanded.push(under);
        }
    }
    expanded
}

/// The `--server` and `--url` servers, each name once.
fn outside_servers(args: &CompareArgs) -> Result<Vec<Arc<External>>, CompareError> {
    let mut servers = args.servers.clone();
    if let Some(url) = &args.url {
        servers.push(External::running(url, args.pid).map_err(|err| CompareError::Invalid(err.to_string()))?);
    }
    for (index, server) in servers.iter().enumerate() {
        if servers[..index].iter().any(|earlier| earlier.name == server.name) {
            return Err(CompareError::Invalid(format!(
                "two outside servers are named {:?}: give each its own NAME",
                server.name
            )));
        }
    }
    Ok(servers.into_iter().map(Arc::new).collect())
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

/// Runs the comparison the arguments describe: plans it, prepares the
/// output, measures every cell, writes the files, prints the ranking.
pub fn run(args: &CompareArgs) -> Result<Outcome, CompareError> {
    let mut setup = Setup::detect(args)?;
    let (plan, located) = plan_with_references(args, &mut setup)?;
    if let Some(dir) = &args.baseline
        && !dir.join("runs.csv").is_file()
    {
        return Err(CompareError::Invalid(format!(
            "--baseline {}: no runs.csv there (give a directory written by compare)",
            dir.display()
        )));
    }
    let estimate = plan.cells.iter().map(Cell::estimate).sum::<Duration>() * setup.repeats as u32;
    print_plan(&plan, &setup, estimate);
    if args.dry_run {
        print_cells(&plan);
        return Ok(Outcome {
            dir: PathBuf::new(),
            rows: 0,
            failed: Vec::new(),
            interrupted: false,
        });
    }
    let mut session = prepare_output(args, &plan, setup, located)?;
    let clock = Instant::now();
    let measured = run_cells(&session, &plan)?;
    let interrupted = session.ctx.stop.load(Ordering::Relaxed);
    write_results(&mut session, &plan, &measured, interrupted)?;
    print_results(&session, &measured, clock.elapsed(), estimate);
    if let Some(dir) = &args.baseline {
        compare_with_baseline(dir, &session.dir);
    }
    let failed = measured
        .iter()
        .filter(|m| m.counts() && !m.ok())
        .map(|m| format!("{}: {}", m.cell.label(), m.row.outcome))
        .collect();
    Ok(Outcome {
        dir: session.dir,
        rows: measured.len(),
        failed,
        interrupted,
    })
}

/// `--baseline DIR`: the comparison printed and written to `baseline.md`;
/// a failure to read either side is reported, the results stay.
fn compare_with_baseline(baseline: &Path, current: &Path) {
    println!();
    let args = baseline::BaselineArgs {
        baseline: baseline.to_owned(),
        current: current.to_owned(),
        markdown: Some(current.join("baseline.md")),
    };
    if let Err(err) = baseline::run(&args) {
        eprintln!(
            "dispatchlab compare: cannot compare with the baseline {}: {err}",
            baseline.display()
        );
    }
}

/// What the comparison runs on: machine, CPU sets, load threads, and the
/// notes gathered on the way.
struct Setup {
    machine: Machine,
    started: String,
    run_name: String,
    command: String,
    server_cpus: Option<CpuSet>,
    load_cpus: Option<CpuSet>,
    load_threads: u32,
    /// CPUs the servers may use (all of this process's when unpinned).
    server_cpu_count: u32,
    disturbance_sets: disturbance::Sets,
    /// Repeats of every cell.
    repeats: usize,
    /// Retries of a disturbed run.
    retry_disturbed: u32,
    /// The 1-minute load average before anything ran.
    load_average: Option<f64>,
    notes: Vec<String>,
}

impl Setup {
    fn detect(args: &CompareArgs) -> Result<Self, CompareError> {
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
        let disturbance_sets = disturbance_sets(server_cpus.as_ref(), load_cpus.as_ref(), &allowed);
        Ok(Self {
            disturbance_sets,
            repeats: repeats(args),
            retry_disturbed: args.retry_disturbed,
            load_average: disturbance::load_average(),
            machine: Machine::detect(),
            started: results::timestamp_now(),
            run_name: results::run_name_now(),
            command: command_line(),
            server_cpu_count: server_cpus.as_ref().map_or(allowed.len(), CpuSet::len) as u32,
            server_cpus,
            load_cpus,
            load_threads,
            notes,
        })
    }

    fn server_cpus_text(&self) -> String {
        self.server_cpus.as_ref().map_or("-".into(), ToString::to_string)
    }

    fn load_cpus_text(&self) -> String {
        self.load_cpus.as_ref().map_or("-".into(), ToString::to_string)
    }
}

/// The CPU sets to measure the disturbance of: server and load apart when
/// they are disjoint, else one set of all the CPUs they share.
fn disturbance_sets(server: Option<&CpuSet>, load: Option<&CpuSet>, allowed: &CpuSet) -> disturbance::Sets {
    match (server, load) {
        (Some(server), Some(load)) if !server.overlaps(load) => disturbance::Sets::Pinned {
            server: server.cpus().to_vec(),
            load: load.cpus().to_vec(),
        },
        (Some(server), Some(load)) => {
            let both = server.cpus().iter().chain(load.cpus()).copied().collect();
            disturbance::Sets::Shared(CpuSet::new(both).cpus().to_vec())
        }
        _ => disturbance::Sets::Shared(allowed.cpus().to_vec()),
    }
}

/// The plan, with the installed reference servers in it; a missing one the
/// plan would have used is noted with how to install it.
fn plan_with_references(
    args: &CompareArgs,
    setup: &mut Setup,
) -> Result<(Plan, Vec<(Reference, PathBuf)>), CompareError> {
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
    let cpus = setup.server_cpu_count;
    let plan = plan(args, cpus, located.iter().map(|(r, _)| *r).collect())?;
    let planned_with = |r: Reference| {
        let probe = self::plan(args, cpus, vec![r]);
        probe.is_ok_and(|p| p.cells.iter().any(Cell::is_reference))
    };
    let missing = missing.into_iter().filter(|&r| planned_with(r)).map(|reference| {
        format!(
            "{reference} is not installed, so its reference rows are left out (install: {}).",
            reference.install_hint()
        )
    });
    let outside = outside_servers(args)?;
    for note in missing.chain(external::left_out(&plan.cells, &outside)) {
        eprintln!("dispatchlab compare: note: {note}");
        setup.notes.push(note);
    }
    setup.notes.extend(outside.iter().map(|server| {
        format!(
            "{} is an outside server (scope external): {}.",
            server.name,
            server.describe()
        )
    }));
    Ok((plan, located))
}

fn print_plan(plan: &Plan, setup: &Setup, estimate: Duration) {
    println!("dispatchlab compare: {} ({})", plan.title, plan.name);
    println!("  varies: {}", plan.varies);
    println!("  shows:  {}", plan.shows);
    let runs = match setup.repeats {
        1 => format!("{} runs", plan.cells.len()),
        repeats => format!(
            "{} cells x {repeats} repeats = {} runs",
            plan.cells.len(),
            plan.cells.len() * repeats
        ),
    };
    println!(
        "  {runs}, about {}; server CPUs {}, load CPUs {} ({} load thread{})",
        format_duration(estimate),
        setup.server_cpus_text(),
        setup.load_cpus_text(),
        setup.load_threads,
        if setup.load_threads == 1 { "" } else { "s" }
    );
    if let Some(load) = setup.load_average.filter(|&load| load > disturbance::BUSY_LOAD_AVERAGE) {
        println!(
            "  warning: 1-minute load average {load:.2} (above {}): the machine is busy, the figures will be noisy",
            disturbance::BUSY_LOAD_AVERAGE
        );
    }
}

/// `--dry-run`: every cell with its estimate.
fn print_cells(plan: &Plan) {
    for (index, cell) in plan.cells.iter().enumerate() {
        println!(
            "  {:>3}. {}  (~{})",
            index + 1,
            cell.label(),
            format_duration(cell.estimate())
        );
    }
}

/// A comparison under way: where it writes, what every cell is measured
/// with, and the header every file records.
struct Session {
    dir: PathBuf,
    ctx: measure::Context,
    header: Header,
    notes: Vec<String>,
}

/// Creates the result directory and `servers.log`, installs the Ctrl-C
/// handler and builds the measuring context.
fn prepare_output(
    args: &CompareArgs,
    plan: &Plan,
    mut setup: Setup,
    located: Vec<(Reference, PathBuf)>,
) -> Result<Session, CompareError> {
    let dir = create_out_dir(args, &setup.run_name)?;
    println!("  results: {}", dir.display());
    if let Err(err) = crate::rlimit::raise_open_file_limit() {
        setup.notes.push(format!(
            "Could not raise the open-file limit ({err}): large connection counts may fail."
        ));
    }
    // Ctrl-C: the current load stops early, later cells are skipped; a
    // second one exits at once (the children get SIGTERM through
    // PR_SET_PDEATHSIG).
    let stop = crate::signals::stop_flag()
        .map_err(|err| CompareError::Invalid(format!("cannot install the Ctrl-C handler: {err}")))?;
    let log_path = dir.join("servers.log");
    // Readable too: an outside server that exits at once is quoted from it.
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&log_path)
        .map_err(io_error(log_path.display().to_string()))?;
    let machine = &setup.machine;
    writeln!(
        log,
        "# dispatchlab compare, {}: {}\n# {} ({} CPUs, kernel {}), {}, git {}; server CPUs {}, load CPUs {}",
        setup.started,
        setup.command,
        machine.host,
        machine.cpus,
        machine.kernel,
        machine.rustc,
        machine.git_rev,
        setup.server_cpus_text(),
        setup.load_cpus_text(),
    )
    .map_err(io_error(log_path.display().to_string()))?;
    let exe = std::env::current_exe().map_err(|err| {
        CompareError::Invalid(format!("cannot find this program's executable to start servers: {err}"))
    })?;
    let header = Header {
        tool: "dispatchlab compare".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        scenario: plan.name.clone(),
        title: plan.title.clone(),
        varies: plan.varies.clone(),
        shows: plan.shows.clone(),
        command: setup.command.clone(),
        started: setup.started.clone(),
        finished: String::new(),
        host: machine.host.clone(),
        kernel: machine.kernel.clone(),
        cpus: machine.cpus,
        rustc: machine.rustc.clone(),
        git_rev: machine.git_rev.clone(),
        server_cpus: setup.server_cpus.as_ref().map(ToString::to_string).unwrap_or_default(),
        load_cpus: setup.load_cpus.as_ref().map(ToString::to_string).unwrap_or_default(),
        load_threads: setup.load_threads,
        cells: plan.cells.len(),
        failed: 0,
        repeats: setup.repeats,
        retry_disturbed: setup.retry_disturbed,
        load_average: setup.load_average,
        notes: Vec::new(),
    };
    let ctx = measure::Context {
        exe,
        machine: setup.machine,
        server_cpus: setup.server_cpus,
        load_cpus: setup.load_cpus,
        disturbance_sets: setup.disturbance_sets,
        load_threads: setup.load_threads,
        command: setup.command,
        scenario: plan.name.clone(),
        run_name: setup.run_name,
        stop,
        references: located,
        log,
    };
    Ok(Session {
        dir,
        ctx,
        header,
        notes: setup.notes,
    })
}

/// Measures the cells round after round in the interleaved order
/// ([`repeat::interleaved`]) until the plan is done or Ctrl-C stops it; the
/// result files are rewritten after every run, so that an aborted
/// comparison keeps what it measured.
fn run_cells(session: &Session, plan: &Plan) -> Result<Vec<Measured>, CompareError> {
    let repeats = session.header.repeats;
    let visits = repeat::interleaved(plan.cells.len(), repeats);
    let mut progress = progress::Progress::new(visits.iter().map(|v| plan.cells[v.cell].estimate()).collect());
    let mut measured: Vec<Measured> = Vec::new();
    for (step, visit) in visits.iter().enumerate() {
        if session.ctx.stop.load(Ordering::Relaxed) {
            break;
        }
        let cell = &plan.cells[visit.cell];
        let round = match repeats {
            1 => String::new(),
            _ => format!(" (repeat {}/{repeats})", visit.round + 1),
        };
        progress.start(step, &format!("{}/{} {}{round}", step + 1, visits.len(), cell.label()));
        measure_repeat(session, *visit, cell, &mut measured, &progress)?;
        progress.finish_cell(step);
    }
    progress.finish();
    Ok(measured)
}

/// One repeat of a cell: measured, and measured again while it is flagged
/// as disturbed, at most `--retry-disturbed` times. Every attempt is kept;
/// the `counted` column marks the one that counts ([`counted_attempt`]).
fn measure_repeat(
    session: &Session,
    visit: repeat::Visit,
    cell: &Cell,
    measured: &mut Vec<Measured>,
    progress: &progress::Progress,
) -> Result<(), CompareError> {
    let first = measured.len();
    let mut attempts = Vec::new();
    for attempt in 0..=session.header.retry_disturbed {
        if attempt > 0 {
            if session.ctx.stop.load(Ordering::Relaxed) {
                break;
            }
            progress.println(&format!(
                "dispatchlab compare: {}: measuring again ({attempt})",
                cell.label()
            ));
        }
        let (mut m, worst) = measure_attempt(session, (visit.cell, cell), measured.len(), progress);
        m.row.repeat = Some(visit.round as u32 + 1);
        let disturbed = m.disturbed();
        attempts.push((m.ok(), worst));
        measured.push(m);
        let counted = first + counted_attempt(&attempts);
        for (index, m) in measured.iter_mut().enumerate().skip(first) {
            m.row.counted = Some(index == counted);
        }
        write_rows(session, measured)?;
        if !disturbed {
            break;
        }
    }
    Ok(())
}

/// Of one repeat's attempts (`(complete, worst disturbance share)` each, in
/// order), the one that counts: the least disturbed complete one (the first
/// of equals, so the first undisturbed one, where the retries stop), or the
/// last when none completed.
fn counted_attempt(attempts: &[(bool, Option<f64>)]) -> usize {
    attempts
        .iter()
        .enumerate()
        .filter(|(_, (complete, _))| *complete)
        .min_by(|(_, (_, a)), (_, (_, b))| a.unwrap_or(0.0).total_cmp(&b.unwrap_or(0.0)))
        .map_or(attempts.len().saturating_sub(1), |(index, _)| index)
}

/// One run of a cell as the `index`th row: measured, its `.hgrm` written,
/// a bad outcome printed; with its worst disturbance share.
fn measure_attempt(
    session: &Session,
    (cell_index, cell): (usize, &Cell),
    index: usize,
    progress: &progress::Progress,
) -> (Measured, Option<f64>) {
    let label = cell.label();
    let result = measure::measure(&session.ctx, index, cell);
    if let Some(report) = &result.report {
        let path = session
            .dir
            .join("hgrm")
            .join(format!("{index:03}-{}.hgrm", output::slug(&label)));
        if let Err(err) = output::write_hgrm(&path, report, &result.row, &session.header) {
            progress.println(&format!("dispatchlab compare: cannot write {}: {err}", path.display()));
        }
    }
    if result.row.outcome != "ok" {
        progress.println(&format!("dispatchlab compare: {label}: {}", result.row.outcome));
    }
    let worst = result.disturbance.and_then(|d| d.worst());
    let measured = Measured {
        index: cell_index,
        cell: cell.clone(),
        row: result.row,
    };
    (measured, worst)
}

/// `runs.csv` and `runs.json` with the rows so far.
fn write_rows(session: &Session, measured: &[Measured]) -> Result<(), CompareError> {
    let rows: Vec<_> = measured.iter().map(|m| m.row.clone()).collect();
    output::write_csv(&session.dir, &rows).map_err(io_error("runs.csv"))?;
    output::write_json(&session.dir, &session.header, measured).map_err(io_error("runs.json"))
}

/// The final header (end time, failures, notes), rows and `summary.md`.
fn write_results(
    session: &mut Session,
    plan: &Plan,
    measured: &[Measured],
    interrupted: bool,
) -> Result<(), CompareError> {
    let header = &mut session.header;
    header.finished = results::timestamp_now();
    header.failed = measured.iter().filter(|m| m.counts() && !m.ok()).count();
    let mut notes = std::mem::take(&mut session.notes);
    notes.extend(output::notes(measured));
    if interrupted {
        notes.push(format!(
            "Interrupted (Ctrl-C) after {} of {} runs.",
            measured.iter().filter(|m| m.counts()).count(),
            plan.cells.len() * header.repeats
        ));
    }
    header.notes = notes;
    write_rows(session, measured)?;
    let summary = output::summary_markdown(&session.header, plan, measured, &regenerate_command());
    std::fs::write(session.dir.join("summary.md"), summary).map_err(io_error("summary.md"))
}

/// The ranking tables, the notes and where the files are.
fn print_results(session: &Session, measured: &[Measured], took: Duration, estimate: Duration) {
    println!();
    for table in output::tables(measured, false) {
        println!("{}", table.to_text());
    }
    for note in &session.header.notes {
        println!("note: {note}");
    }
    println!(
        "\n{} runs in {} ({} estimated); results in {}",
        measured.len(),
        format_duration(took),
        format_duration(estimate),
        session.dir.display()
    );
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
    fn the_least_disturbed_complete_attempt_counts() {
        assert_eq!(counted_attempt(&[(true, Some(0.01))]), 0);
        assert_eq!(counted_attempt(&[(true, Some(0.30)), (true, Some(0.02))]), 1);
        assert_eq!(counted_attempt(&[(true, Some(0.10)), (true, Some(0.40))]), 0);
        assert_eq!(
            counted_attempt(&[(true, Some(0.30)), (false, None)]),
            0,
            "a failed retry never counts"
        );
        assert_eq!(counted_attempt(&[(false, None), (false, None)]), 1);
    }

    #[test]
    fn scenarios_repeat_three_times_and_the_default_run_once() {
        let args = |flags: &[&str]| {
            let line = std::iter::once("compare").chain(flags.iter().copied());
            Compare::try_parse_from(line).expect("flags parse").args
        };
        assert_eq!(repeats(&args(&[])), 1);
        assert_eq!(repeats(&args(&["-c", "16"])), 1);
        assert_eq!(repeats(&args(&["--scenario", "io-bound"])), repeat::SCENARIO_REPEATS);
        assert_eq!(repeats(&args(&["--scenario", "io-bound", "--quick"])), 1);
        assert_eq!(repeats(&args(&["--scenario", "io-bound", "--repeat", "5"])), 5);
        assert!(Compare::try_parse_from(["compare", "--repeat", "0"]).is_err());
    }

    #[test]
    fn the_retry_help_states_the_disturbance_threshold_in_force() {
        use clap::CommandFactory;
        let help = Compare::command().render_long_help().to_string();
        let threshold = format!("{} %", disturbance::DISTURBED_ABOVE * 100.0);
        assert!(
            help.contains(&threshold),
            "--retry-disturbed must say {threshold}:\n{help}"
        );
    }

    #[test]
    fn two_sched_policies_run_every_own_server_under_each_side_by_side() {
        let once = plan_of(&["--scenario", "io-bound"]);
        let both = plan_of(&["--scenario", "io-bound", "--sched", "other,batch"]);
        assert_eq!(both.cells.len(), 2 * once.cells.len());
        for (cell, pair) in once.cells.iter().zip(both.cells.chunks(2)) {
            assert_eq!(cell.label(), pair[0].label(), "the default policy keeps the label");
            assert_eq!(
                (pair[0].server.sched, pair[1].server.sched),
                (SchedPolicy::Other, SchedPolicy::Batch)
            );
            assert_eq!(pair[1].server.label(), format!("{} sched batch", cell.server.label()));
            let ServerKind::Dispatchlab(target) = cell.server.kind else {
                panic!("io-bound plans only the crate's own servers without references");
            };
            let args = pair[1].server.serve_args(target);
            assert!(args.windows(2).any(|flag| flag == ["--sched", "batch"]), "{args:?}");
        }
        let batch = plan_of(&["--sched", "batch"]);
        assert!(batch.cells.iter().all(|cell| cell.server.sched == SchedPolicy::Batch));
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
        let debug = |plan: Plan| format!("{:?}", plan.cells);
        assert_eq!(debug(plan_of(&["--timeout", "2s"])), debug(plan_of(&[])));
    }
}
