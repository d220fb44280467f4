//! The `dispatchlab` command line: parses arguments and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispatchlab::compare::baseline::{self, BaselineArgs};
use dispatchlab::compare::{self, CompareArgs};
use dispatchlab::load::{self, LoadArgs};
use dispatchlab::server::{self, Engine, ServeArgs, Target};

/// Measures how a server should hand work to threads.
#[derive(Debug, Parser)]
#[command(name = "dispatchlab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP with one strategy in one scope until SIGINT/SIGTERM.
    Serve(Box<ServeArgs>),
    /// Load an HTTP/1.x server, as wrk (closed loop) or wrk2 (-R: constant rate).
    ///
    /// Exit status: 0 when the run completed and at least one request
    /// succeeded (errors are counted and reported, as wrk does); 1 when the
    /// run could not start, or completed without a single success (wrong
    /// port, server down: the report is still printed); 2 for bad arguments.
    Load(Box<LoadArgs>),
    /// Compare strategies and scopes: start each server as a child, load it,
    /// sample it, rank the results (the crate's main job; see --help).
    ///
    /// Runs a matrix of strategies x scopes x connection counts (or a named
    /// scenario), each server pinned apart from the load generator, and
    /// writes runs.csv, runs.json, .hgrm files and summary.md under
    /// results/<timestamp>/.
    Compare(Box<CompareArgs>),
    /// Compare two result directories cell by cell: req/s, p50 and p99 of
    /// every cell both measured, each judged "better", "worse" or "within
    /// noise" by the ranges of its repeats (`compare --repeat N`); cells on
    /// one side only are listed.
    Baseline(BaselineArgs),
    /// List the compiled-in strategies, one per line: name, then what a
    /// dispatch does; then the reference servers (tokio), which are not
    /// dispatchers but are chosen with the same --strategy flag.
    Strategies,
    /// List every server `serve` can run, one per line: its label
    /// (`mutex-queue/connection`, `tokio`), then the `serve` flags that
    /// choose it (for scripts that serve each in turn).
    Targets,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => match server::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("dispatchlab serve: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Load(args) => load::cli::run(&args).unwrap_or_else(|message| {
            eprintln!("dispatchlab load: {message}");
            ExitCode::FAILURE
        }),
        Command::Compare(args) => match compare::run(&args) {
            Ok(outcome) if outcome.failed.is_empty() && !outcome.interrupted => ExitCode::SUCCESS,
            Ok(outcome) => {
                if !outcome.failed.is_empty() {
                    eprintln!(
                        "dispatchlab compare: {} of {} runs failed (their rows are in {}; see servers.log there):",
                        outcome.failed.len(),
                        outcome.rows,
                        outcome.dir.display()
                    );
                    for failure in &outcome.failed {
                        eprintln!("  {failure}");
                    }
                }
                if outcome.interrupted {
                    eprintln!(
                        "dispatchlab compare: interrupted; the runs so far are in {}",
                        outcome.dir.display()
                    );
                }
                ExitCode::FAILURE
            }
            Err(err) => {
                eprintln!("dispatchlab compare: {err}");
                ExitCode::from(2)
            }
        },
        Command::Baseline(args) => match baseline::run(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("dispatchlab baseline: {err}");
                ExitCode::from(2)
            }
        },
        Command::Strategies => {
            for engine in Engine::all() {
                println!("{:<16} {}", engine.name(), engine.description());
            }
            ExitCode::SUCCESS
        }
        Command::Targets => {
            for target in Target::all() {
                println!("{:<32} {}", target.to_string(), target.serve_args().join(" "));
            }
            ExitCode::SUCCESS
        }
    }
}
