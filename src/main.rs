//! The `dispatchlab` command line: parses arguments and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispatchlab::Strategy;
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
        Command::Strategies => {
            for strategy in Strategy::ALL {
                println!("{:<16} {}", strategy.name(), strategy.description());
            }
            ExitCode::SUCCESS
        }
    }
}
