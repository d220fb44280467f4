//! The line `dispatchlab serve` prints once it listens:
//!
//! ```text
//! dispatchlab: listening on http://127.0.0.1:8080/ (strategy mutex-queue, scope connection, workers 4, backlog 1024, sched other)
//! ```
//!
//! Whoever asked for port 0 learns the address from it: the runner, the
//! tests, the benches and the wrk scripts (which `grep` for
//! `listening on http://`). The server prints it with [`Announce`]'s
//! `Display` and the Rust readers parse it with its `FromStr`, so the text
//! is written here once.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use super::{SchedPolicy, Server};

const PREFIX: &str = "dispatchlab: listening on http://";

/// What a started server says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The strategy (or reference server) name.
    pub strategy: String,
    /// The scope it reports (`task` for a reference server).
    pub scope: String,
    /// Pool workers (tokio: runtime threads).
    pub workers: usize,
    /// Listen backlog asked for.
    pub backlog: u32,
    /// Scheduling policy of its threads.
    pub sched: SchedPolicy,
}

/// A line that is not an announce line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAnnounce(pub String);

impl fmt::Display for NotAnnounce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a `{PREFIX}…` line: {:?}", self.0)
    }
}

impl std::error::Error for NotAnnounce {}

impl Announce {
    /// What `server` announces.
    pub fn of(server: &Server) -> Self {
        let config = server.config();
        Self {
            addr: server.local_addr(),
            strategy: server.strategy_name().to_owned(),
            scope: config.scope_name().to_owned(),
            workers: config.dispatch.workers,
            backlog: config.backlog,
            sched: config.sched,
        }
    }
}

impl fmt::Display for Announce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}/ (strategy {}, scope {}, workers {}, backlog {}, sched {})",
            self.addr, self.strategy, self.scope, self.workers, self.backlog, self.sched
        )
    }
}

impl FromStr for Announce {
    type Err = NotAnnounce;

    /// Parses the line (a trailing newline allowed); every field must be there.
    fn from_str(line: &str) -> Result<Self, Self::Err> {
        parse(line.trim_end()).ok_or_else(|| NotAnnounce(line.trim_end().to_owned()))
    }
}

fn parse(line: &str) -> Option<Announce> {
    let (addr, fields) = line.strip_prefix(PREFIX)?.split_once("/ (")?;
    let mut fields = fields.strip_suffix(')')?.split(", ");
    let mut field = |name: &str| fields.next()?.strip_prefix(name)?.strip_prefix(' ');
    let announce = Announce {
        addr: addr.parse().ok()?,
        strategy: field("strategy")?.to_owned(),
        scope: field("scope")?.to_owned(),
        workers: field("workers")?.parse().ok()?,
        backlog: field("backlog")?.parse().ok()?,
        sched: clap::ValueEnum::from_str(field("sched")?, false).ok()?,
    };
    fields.next().is_none().then_some(announce)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "dispatchlab: listening on http://127.0.0.1:40123/ (strategy mutex-queue, scope connection, workers 4, backlog 1024, sched batch)";

    #[test]
    fn the_line_round_trips() {
        let announce: Announce = format!("{LINE}\n").parse().expect("an announce line");
        assert_eq!(announce.addr, SocketAddr::from(([127, 0, 0, 1], 40123)));
        assert_eq!(
            (announce.strategy.as_str(), announce.scope.as_str()),
            ("mutex-queue", "connection")
        );
        assert_eq!(
            (announce.workers, announce.backlog, announce.sched),
            (4, 1024, SchedPolicy::Batch)
        );
        assert_eq!(announce.to_string(), LINE);
    }

    #[test]
    fn other_lines_are_refused() {
        assert!("something else".parse::<Announce>().is_err());
        let without_sched = LINE.replace(", sched batch", "");
        assert!(without_sched.parse::<Announce>().is_err());
        let extra = LINE.replace("batch)", "batch, more 1)");
        assert!(extra.parse::<Announce>().is_err());
    }
}
