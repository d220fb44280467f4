//! `--keep-alive on|off|adaptive`: whether a connection outlives its answer.
//!
//! * `on` (the default): HTTP/1.1 keep-alive as the client asks for it.
//! * `off`: one request per connection, answered with `Connection: close`,
//!   then the socket closes: the server of the Rust Book's final chapter,
//!   whose figures the seed log measured.
//! * `adaptive` (connection scope): while any accepted connection waits for
//!   a worker, the answer on a keep-alive connection says `Connection:
//!   close`, so that its worker moves on instead of waiting for that
//!   client's next request. A pool of N workers then cannot be held by N
//!   idle clients; nginx closes keep-alive connections in the same spirit
//!   when it runs short of them. In request scope and in the tokio server no
//!   connection ever waits for a worker, so `adaptive` behaves as `on`.
//!
//! The decision is taken in one place, [`Service::encode`](super::service),
//! for every server.

use std::fmt;

use clap::builder::PossibleValue;

/// Whether a connection stays open after its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeepAlive {
    /// As the client asks (HTTP/1.1 default, HTTP/1.0 with `keep-alive`).
    #[default]
    On,
    /// Every answer closes its connection.
    Off,
    /// Close after the answer while connections wait for a worker.
    Adaptive,
}

impl KeepAlive {
    /// Every policy, in `--help` order.
    pub const ALL: [KeepAlive; 3] = [KeepAlive::On, KeepAlive::Off, KeepAlive::Adaptive];

    /// The name used on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            KeepAlive::On => "on",
            KeepAlive::Off => "off",
            KeepAlive::Adaptive => "adaptive",
        }
    }

    fn description(self) -> &'static str {
        match self {
            KeepAlive::On => "keep-alive as the client asks (the default)",
            KeepAlive::Off => "one request per connection, answered with Connection: close (the Rust Book's server)",
            KeepAlive::Adaptive => {
                "connection scope: close after the answer while accepted connections wait for a worker; elsewhere as on"
            }
        }
    }

    /// Whether a connection the client wants kept must close anyway, given
    /// how many accepted connections wait for a worker.
    pub(crate) fn closes(self, connections_waiting: u64) -> bool {
        match self {
            KeepAlive::On => false,
            KeepAlive::Off => true,
            KeepAlive::Adaptive => connections_waiting > 0,
        }
    }
}

impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl clap::ValueEnum for KeepAlive {
    fn value_variants<'a>() -> &'a [Self] {
        &KeepAlive::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.description()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_off_and_a_waiting_connection_under_adaptive_close() {
        assert!(!KeepAlive::On.closes(5));
        assert!(KeepAlive::Off.closes(0));
        assert!(!KeepAlive::Adaptive.closes(0));
        assert!(KeepAlive::Adaptive.closes(1));
    }

    #[test]
    fn names_round_trip_through_clap() {
        use clap::ValueEnum as _;
        for policy in KeepAlive::ALL {
            assert_eq!(KeepAlive::from_str(policy.name(), false), Ok(policy));
        }
    }
}
