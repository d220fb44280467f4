//! The `dispatchlab` command line: parses arguments and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispatchlab::Strategy;

/// Measures how a server should hand work to threads.
#[derive(Debug, Parser)]
#[command(name = "dispatchlab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the compiled-in strategies, one per line: name, then what a dispatch does.
    Strategies,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Strategies => {
            for strategy in Strategy::ALL {
                println!("{:<16} {}", strategy.name(), strategy.description());
            }
            ExitCode::SUCCESS
        }
    }
}
