//! `serve` for a strategy written outside the crate: the same flags, the
//! same announce line, the same signals and report as `dispatchlab serve`.
//!
//! A binary of one's own flattens [`ServeArgs`] into its clap parser and
//! hands [`serve_with`] a name and a factory for its dispatcher; everything
//! else (both scopes, the routes, `/metrics`, graceful shutdown) is the
//! crate's server. `examples/custom_strategy/` is such a binary:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use clap::Parser;
//! use dispatchlab::Dispatcher;
//! use dispatchlab::dispatch::mutex_queue::MutexQueue;
//! use dispatchlab::server::{ServeArgs, serve_with};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     serve: ServeArgs,
//! }
//!
//! let cli = Cli::parse();
//! serve_with(&cli.serve, "my-queue", |config| {
//!     Ok(Arc::new(MutexQueue::new(config.workers)?) as Arc<dyn Dispatcher>)
//! })
//! .unwrap_or_else(|err| {
//!     eprintln!("my-queue: {err}");
//!     std::process::exit(1);
//! });
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::dispatch::{DispatchConfig, Dispatcher};

use super::cli::serve_until_signal;
use super::{Engine, ServeArgs, ServeConfig, ServeError, Server, sched};

/// Serves with the dispatcher `factory` builds (called once, under
/// `--sched`, with the `--workers`, `--max-threads`, … the arguments give)
/// until SIGINT/SIGTERM, as `dispatchlab serve` does; `name` stands for the
/// strategy in the announce line and in `/metrics`.
///
/// `--strategy` chooses among the crate's own strategies, so a value other
/// than its default is refused rather than ignored.
pub fn serve_with(
    args: &ServeArgs,
    name: &'static str,
    factory: impl FnOnce(&DispatchConfig) -> io::Result<Arc<dyn Dispatcher>>,
) -> Result<(), ServeWithError> {
    let config = args.config();
    if config.engine != ServeConfig::default().engine {
        return Err(ServeWithError::StrategyGiven {
            serves: name,
            given: config.engine,
        });
    }
    serve_until_signal(args, config, |config| {
        let built = sched::with_policy(config.sched, || factory(&config.dispatch)).map_err(ServeError::Setup)?;
        let dispatcher = built
            .map_err(|err| ServeError::Setup(io::Error::new(err.kind(), format!("cannot build {name}: {err}"))))?;
        Server::start_with(config, name, dispatcher)
    })
    .map_err(ServeWithError::Serve)
}

/// Why [`serve_with`] could not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeWithError {
    /// `--strategy` named one of the crate's strategies.
    StrategyGiven {
        /// What this binary serves.
        serves: &'static str,
        /// What `--strategy` asked for.
        given: Engine,
    },
    /// The server (or the dispatcher) could not start, or did not stop cleanly.
    Serve(ServeError),
}

impl fmt::Display for ServeWithError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeWithError::StrategyGiven { serves, given } => write!(
                f,
                "this binary serves {serves}; --strategy {given} chooses among dispatchlab's own strategies \
                 (run `dispatchlab serve --strategy {given}` for that one)"
            ),
            ServeWithError::Serve(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ServeWithError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeWithError::StrategyGiven { .. } => None,
            ServeWithError::Serve(err) => Some(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn a_strategy_flag_is_refused_before_anything_is_built() {
        let cli = Cli::parse_from(["custom", "--strategy", "inline", "--addr", "127.0.0.1:0"]);
        let err = serve_with(&cli.serve, "mine", |_| panic!("the factory must not run")).unwrap_err();
        assert!(
            matches!(err, ServeWithError::StrategyGiven { serves: "mine", .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("serves mine") && message.contains("--strategy inline"),
            "{message}"
        );
    }
}
