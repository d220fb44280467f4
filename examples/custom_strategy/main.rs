//! A strategy that is not in the crate, served by the crate's server with
//! the flags of `dispatchlab serve`:
//!
//! ```text
//! cargo run --release --example custom_strategy -- serve --addr 127.0.0.1:8080 --scope request
//! ```
//!
//! The strategy is `lifo_idle.rs` (a `Dispatcher` built on the crate's public
//! counters and worker plumbing); `tests/custom_strategy.rs` runs the public
//! contract checks on it and serves HTTP with it in both scopes. This file is
//! the whole binary: a clap parser that flattens `ServeArgs`, and
//! `serve_with`.

mod lifo_idle;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use dispatchlab::Dispatcher;
use dispatchlab::server::{ServeArgs, serve_with};

use lifo_idle::LifoIdle;

/// dispatchlab's server over the lifo-idle strategy.
#[derive(Debug, Parser)]
#[command(name = "custom_strategy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP with lifo-idle until SIGINT/SIGTERM (the flags of
    /// `dispatchlab serve`, but --strategy, which chooses among the crate's
    /// own, is hidden and refused).
    #[command(mut_arg("strategy", |arg| arg.hide(true)))]
    Serve(Box<ServeArgs>),
}

fn main() -> ExitCode {
    let Command::Serve(args) = Cli::parse().command;
    let served = serve_with(&args, lifo_idle::NAME, |config| {
        Ok(Arc::new(LifoIdle::new(config.workers)?) as Arc<dyn Dispatcher>)
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("custom_strategy serve: {err}");
            ExitCode::FAILURE
        }
    }
}
