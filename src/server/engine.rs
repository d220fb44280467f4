//! What `--strategy` names: a dispatch strategy served by one of the crate's
//! two scopes, or a reference server that owns its I/O.
//!
//! The tokio reference server is not a [`Dispatcher`](crate::Dispatcher): it
//! hands no jobs to threads, it runs one task per connection on tokio's
//! work-stealing runtime, which polls the sockets itself. It answers with the
//! same codec, routes, limits and shutdown as the strategies, so that its row
//! reads as "what an async runtime does with the same server". That is why it
//! is chosen with the same flag but listed apart from the strategies.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use clap::builder::PossibleValue;

use crate::dispatch::{Strategy, UnknownStrategy};

/// What answers the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Engine {
    /// A dispatch strategy, in the configured scope.
    Dispatch(Strategy),
    /// The tokio reference server: a task per connection on tokio's
    /// multi-threaded runtime (`--workers` = its worker threads).
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Engine {
    /// Every compiled-in choice: the strategies, then the reference servers.
    pub fn all() -> &'static [Engine] {
        static ALL: OnceLock<Vec<Engine>> = OnceLock::new();
        ALL.get_or_init(|| {
            let strategies = Strategy::ALL.iter().copied().map(Engine::Dispatch);
            strategies.chain(Engine::REFERENCES.iter().copied()).collect()
        })
    }

    /// The reference servers: not dispatchers, listed after the strategies.
    pub const REFERENCES: &'static [Engine] = &[
        #[cfg(feature = "tokio")]
        Engine::Tokio,
    ];

    /// The name used on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Dispatch(strategy) => strategy.name(),
            #[cfg(feature = "tokio")]
            Engine::Tokio => "tokio",
        }
    }

    /// One line on what serves a request.
    pub fn description(self) -> &'static str {
        match self {
            Engine::Dispatch(strategy) => strategy.description(),
            #[cfg(feature = "tokio")]
            Engine::Tokio => {
                "reference server, not a dispatcher: a task per connection on tokio's multi-threaded runtime (--workers = runtime threads; /sleep awaits the timer; no --scope)"
            }
        }
    }

    /// The dispatch strategy, if this is one.
    pub fn strategy(self) -> Option<Strategy> {
        match self {
            Engine::Dispatch(strategy) => Some(strategy),
            #[cfg(feature = "tokio")]
            Engine::Tokio => None,
        }
    }
}

impl From<Strategy> for Engine {
    fn from(strategy: Strategy) -> Self {
        Engine::Dispatch(strategy)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = UnknownStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let reference = Engine::REFERENCES.iter().copied().find(|engine| engine.name() == name);
        match reference {
            Some(engine) => Ok(engine),
            None => name.parse().map(Engine::Dispatch),
        }
    }
}

impl clap::ValueEnum for Engine {
    fn value_variants<'a>() -> &'a [Self] {
        Engine::all()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.description()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_strategies_come_first() {
        for &engine in Engine::all() {
            assert_eq!(engine.name().parse::<Engine>(), Ok(engine));
        }
        let strategies = Engine::all().iter().take_while(|e| e.strategy().is_some()).count();
        assert_eq!(strategies, Strategy::ALL.len());
        assert_eq!(Engine::all().len(), Strategy::ALL.len() + Engine::REFERENCES.len());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_says_it_is_a_reference_server() {
        assert_eq!("tokio".parse::<Engine>(), Ok(Engine::Tokio));
        assert!(
            Engine::Tokio
                .description()
                .starts_with("reference server, not a dispatcher")
        );
    }
}
