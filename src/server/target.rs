//! Which server answers: an [`Engine`] and, for a dispatch strategy, the
//! [`Scope`] its jobs cover.
//!
//! This is the one list of the servers the crate can run, in table order:
//! every valid strategy × scope pair (a strategy that runs jobs on the
//! caller, `inline`, only in request scope), then the reference servers. The
//! runner, the tests and the benches all take it from [`Target::all`], and
//! label, parse and start servers through it, so that no list of pairs and no
//! `cfg(feature = "tokio")` is written anywhere else.

use std::fmt;
use std::str::FromStr;

use crate::dispatch::Strategy;

use super::{Engine, Scope};

/// The scope a reference server reports: it serves a task per connection.
const REFERENCE_SCOPE: &str = "task";

/// A server to run: a strategy in a scope, or a reference server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// What answers the requests.
    pub engine: Engine,
    /// What one job covers; [`Scope::Connection`] for a reference server,
    /// which has its own and ignores it.
    pub scope: Scope,
}

/// A label that names no [`Target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTarget(pub String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown server {:?}: expected STRATEGY/SCOPE (e.g. mutex-queue/connection) or a reference server",
            self.0
        )
    }
}

impl std::error::Error for UnknownTarget {}

impl Target {
    /// `strategy` in `scope`, unless the pair is not valid (a strategy that
    /// runs jobs on the caller blocks the event loop, so request scope only).
    pub fn dispatch(strategy: Strategy, scope: Scope) -> Option<Target> {
        let valid = !(strategy.runs_on_caller() && scope == Scope::Connection);
        valid.then_some(Target {
            engine: Engine::Dispatch(strategy),
            scope,
        })
    }

    /// Every valid pair among `strategies` × `scopes`, strategies outer.
    pub fn pairs(strategies: &[Strategy], scopes: &[Scope]) -> Vec<Target> {
        let pairs = strategies.iter().flat_map(|&strategy| {
            let of = move |&scope| Target::dispatch(strategy, scope);
            scopes.iter().filter_map(of)
        });
        pairs.collect()
    }

    /// The compiled-in reference servers (tokio, with the `tokio` feature).
    pub fn references() -> impl Iterator<Item = Target> {
        Engine::REFERENCES.iter().map(|&engine| Target {
            engine,
            scope: Scope::Connection,
        })
    }

    /// The tokio reference server, where the `tokio` feature compiled it in.
    pub fn tokio() -> Option<Target> {
        "tokio".parse().ok()
    }

    /// Every server: each valid strategy × scope pair, then the reference servers.
    pub fn all() -> Vec<Target> {
        let mut all = Target::pairs(Strategy::ALL, &Scope::ALL);
        all.extend(Target::references());
        all
    }

    /// The dispatch strategy, if this is one.
    pub fn strategy(self) -> Option<Strategy> {
        self.engine.strategy()
    }

    /// The scope the server reports (`/metrics`, the announce line, result
    /// rows): the configured one, or `task` for a reference server.
    pub fn scope_name(self) -> &'static str {
        match self.strategy() {
            Some(_) => self.scope.name(),
            None => REFERENCE_SCOPE,
        }
    }

    /// The `dispatchlab serve` flags that choose this server.
    pub fn serve_args(self) -> Vec<&'static str> {
        let mut args = vec!["--strategy", self.engine.name()];
        if self.strategy().is_some() {
            args.extend(["--scope", self.scope.name()]);
        }
        args
    }
}

impl From<Engine> for Target {
    /// `engine` in the default scope (connection).
    fn from(engine: Engine) -> Self {
        Target {
            engine,
            scope: Scope::Connection,
        }
    }
}

impl fmt::Display for Target {
    /// `mutex-queue/connection`, `inline/request`, `tokio`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.strategy() {
            Some(strategy) => write!(f, "{strategy}/{}", self.scope),
            None => f.write_str(self.engine.name()),
        }
    }
}

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(label: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownTarget(label.to_owned());
        let Some((strategy, scope)) = label.split_once('/') else {
            return Target::references()
                .find(|target| target.engine.name() == label)
                .ok_or_else(unknown);
        };
        let strategy: Strategy = strategy.parse().map_err(|_| unknown())?;
        let scope = Scope::ALL.into_iter().find(|s| s.name() == scope).ok_or_else(unknown)?;
        Target::dispatch(strategy, scope).ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_round_trips() {
        for target in Target::all() {
            assert_eq!(target.to_string().parse::<Target>(), Ok(target));
        }
    }

    #[test]
    fn all_is_the_valid_pairs_then_the_references() {
        let all = Target::all();
        let pairs = all.iter().take_while(|t| t.strategy().is_some()).count();
        assert_eq!(pairs, Strategy::ALL.len() * Scope::ALL.len() - 1);
        assert_eq!(all.len(), pairs + Engine::REFERENCES.len());
        assert_eq!(Target::dispatch(Strategy::Inline, Scope::Connection), None);
        assert!("inline/connection".parse::<Target>().is_err());
        assert!("mutex-queue".parse::<Target>().is_err());
        assert_eq!(Target::tokio().is_some(), cfg!(feature = "tokio"));
    }

    #[test]
    fn serve_args_name_the_scope_of_strategies_only() {
        let target = Target::dispatch(Strategy::MutexQueue, Scope::Request);
        let args = target.map(Target::serve_args);
        assert_eq!(args, Some(vec!["--strategy", "mutex-queue", "--scope", "request"]));
        for reference in Target::references() {
            assert_eq!(reference.serve_args(), vec!["--strategy", reference.engine.name()]);
            assert_eq!(reference.scope_name(), "task");
        }
    }
}
