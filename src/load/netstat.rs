//! `/proc/net/netstat` TcpExt counters, read before and after a run.
//!
//! The counters are host-wide: every process's connections count, not only
//! the run's. On a quiet machine the deltas are the run's; say so when
//! reporting them.

use serde::Serialize;

/// The TcpExt counters the load generator reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Netstat {
    /// Times a listen queue was full when a connection completed its handshake.
    pub listen_overflows: u64,
    /// SYNs or completed handshakes dropped at a listening socket (overflows included).
    pub listen_drops: u64,
    /// SYN retransmissions (a dropped SYN is retransmitted after ~1 s, 3 s, …).
    pub syn_retransmits: u64,
}

/// The change of the counters over a run (host-wide).
pub type NetstatDelta = Netstat;

impl Netstat {
    /// Reads the counters; `None` when `/proc/net/netstat` is missing (not
    /// Linux) or lacks them.
    pub fn read() -> Option<Self> {
        std::fs::read_to_string("/proc/net/netstat")
            .ok()
            .and_then(|text| Self::parse(&text))
    }

    /// Parses the text of `/proc/net/netstat`: a `TcpExt:` line of names
    /// followed by a `TcpExt:` line of values.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
        let names = lines.next()?.split_whitespace().skip(1);
        let values = lines.next()?.split_whitespace().skip(1);
        let mut found = (None, None, None);
        for (name, value) in names.zip(values) {
            let value = value.parse::<u64>().ok();
            match name {
                "ListenOverflows" => found.0 = value,
                "ListenDrops" => found.1 = value,
                "TCPSynRetrans" => found.2 = value,
                _ => {}
            }
        }
        Some(Self {
            listen_overflows: found.0?,
            listen_drops: found.1?,
            syn_retransmits: found.2?,
        })
    }

    /// `self − before`, saturating (a counter never goes back; if it seems
    /// to, the delta is zero).
    pub fn since(&self, before: &Netstat) -> NetstatDelta {
        Netstat {
            listen_overflows: self.listen_overflows.saturating_sub(before.listen_overflows),
            listen_drops: self.listen_drops.saturating_sub(before.listen_drops),
            syn_retransmits: self.syn_retransmits.saturating_sub(before.syn_retransmits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tcpext_pair_of_lines() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\n\
                    TcpExt: 0 5 7 11\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        let parsed = Netstat::parse(text).unwrap();
        assert_eq!(
            parsed,
            Netstat {
                listen_overflows: 5,
                listen_drops: 7,
                syn_retransmits: 11
            }
        );
        let later = Netstat {
            listen_overflows: 6,
            listen_drops: 9,
            syn_retransmits: 11,
        };
        assert_eq!(
            later.since(&parsed),
            Netstat {
                listen_overflows: 1,
                listen_drops: 2,
                syn_retransmits: 0
            }
        );
    }

    #[test]
    fn reads_this_machine_when_linux() {
        if cfg!(target_os = "linux") && std::path::Path::new("/proc/net/netstat").exists() {
            assert!(Netstat::read().is_some());
        }
    }
}
