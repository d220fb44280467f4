//! The `dispatchlab` command line: parses arguments and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispatchlab::Strategy;
use dispatchlab::load::{self, LoadArgs};
use dispatchlab::server::{self, ServeArgs};

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
    Serve(ServeArgs),
    /// Load an HTTP/1.x server, as wrk (closed loop) or wrk2 (-R: constant rate).
    ///
    /// Exit status: 0 when the run completed and at least one request
    /// succeeded (errors are counted and reported, as wrk does); 1 when the
    /// run could not start, or completed without a single success (wrong
    /// port, server down: the report is still printed); 2 for bad arguments.
    Load(Box<LoadArgs>),
    /// List the compiled-in strategies, one per line: name, then what a dispatch does.
    Strategies,
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
        Command::Strategies => {
            for strategy in Strategy::ALL {
                println!("{:<16} {}", strategy.name(), strategy.description());
            }
            ExitCode::SUCCESS
        }
    }
}
