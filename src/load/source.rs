//! Source addresses: how the load generator opens more connections to one
//! loopback port than one client address has ephemeral ports.
//!
//! A TCP connection is named by its four-tuple. Towards one server address
//! and port, a client address can tell connections apart by its local port
//! only, and the kernel hands those out of `net.ipv4.ip_local_port_range`
//! (32768–60999 by default: 28,232 ports). Past that, `connect` fails with
//! `EADDRNOTAVAIL`. The whole of 127.0.0.0/8 is loopback on Linux, so a
//! connection bound to 127.0.0.2 before its connect is a different client
//! address with its own 28,232 ports: spreading the connections over
//! 127.0.0.1, 127.0.0.2, … lifts the limit without any configuration.
//!
//! [`SourceAddrs::Auto`] (the default) does this by itself for an IPv4
//! loopback target when the connection count needs it, giving each address
//! at most three quarters of the port range (the rest stays for the other
//! programs of the machine and for sockets still in `TIME_WAIT`). A count or
//! an explicit list (`--source-addrs 4`, `--source-addrs 10.0.0.1,10.0.0.2`)
//! overrides it. Connection *g* uses address *g* mod *n* for all of its
//! connects, so the spread is even and stable.
//!
//! The socket is bound with `IP_BIND_ADDRESS_NO_PORT` (Linux): the port is
//! picked at `connect`, from the four-tuple, instead of being reserved for
//! the address alone at `bind`, so the bound connections use the same port
//! range a plain `connect` would.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

use super::LoadError;

/// Which client addresses the connections are bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SourceAddrs {
    /// For an IPv4 loopback target, as many loopback addresses as the
    /// connection count needs (see the module docs); otherwise none: the
    /// kernel picks the address, as for any client.
    #[default]
    Auto,
    /// The first `n` addresses of the target's loopback network, from
    /// 127.0.0.1 (IPv4 loopback targets only).
    Loopback(u32),
    /// These addresses, in turn.
    List(Vec<IpAddr>),
}

/// The ports a source address may use: `ip_local_port_range` when it can be
/// read, Linux's default range otherwise.
pub fn ephemeral_ports() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u32>().ok());
            let (low, high) = (bounds.next()??, bounds.next()??);
            high.checked_sub(low).map(|span| span + 1)
        })
        .unwrap_or(60999 - 32768 + 1)
}

/// How many connections [`SourceAddrs::Auto`] puts on one address:
/// three quarters of `ports`.
pub fn connections_per_source(ports: u32) -> u32 {
    (ports / 4 * 3).max(1)
}

/// The most addresses a loopback count may ask for (127.0.0.1 …
/// 127.0.255.255 keeps the count readable and far from 127.255.255.255).
const MAX_LOOPBACK_SOURCES: u32 = 1 << 16;

impl SourceAddrs {
    /// The addresses `connections` connections to `target` are bound to;
    /// empty when the kernel picks.
    pub fn resolve(&self, target: SocketAddr, connections: u32) -> Result<Vec<IpAddr>, LoadError> {
        let invalid = |message: String| Err(LoadError::InvalidConfig(message));
        match self {
            SourceAddrs::Auto => {
                let per_source = connections_per_source(ephemeral_ports());
                let loopback_v4 = matches!(target.ip(), IpAddr::V4(ip) if ip.is_loopback());
                if !loopback_v4 || connections <= per_source {
                    return Ok(Vec::new());
                }
                Ok(loopback(connections.div_ceil(per_source)))
            }
            SourceAddrs::Loopback(0) => invalid("--source-addrs must be at least 1".into()),
            SourceAddrs::Loopback(n) if *n > MAX_LOOPBACK_SOURCES => invalid(format!(
                "--source-addrs {n}: at most {MAX_LOOPBACK_SOURCES} loopback addresses"
            )),
            SourceAddrs::Loopback(n) => match target.ip() {
                IpAddr::V4(ip) if ip.is_loopback() => Ok(loopback(*n)),
                ip => invalid(format!(
                    "--source-addrs {n} spreads over 127.0.0.x, which cannot reach {ip}: \
                     target 127.0.0.1, or list the client addresses (--source-addrs 10.0.0.1,10.0.0.2)"
                )),
            },
            SourceAddrs::List(list) if list.is_empty() => invalid("--source-addrs lists no address".into()),
            SourceAddrs::List(list) => match list.iter().find(|ip| ip.is_ipv4() != target.is_ipv4()) {
                Some(ip) => invalid(format!(
                    "--source-addrs {ip} is not of the target's address family ({})",
                    target.ip()
                )),
                None => Ok(list.clone()),
            },
        }
    }
}

/// 127.0.0.1 and the `n - 1` addresses after it.
fn loopback(n: u32) -> Vec<IpAddr> {
    let first = u32::from(Ipv4Addr::new(127, 0, 0, 1));
    (0..n).map(|i| IpAddr::V4(Ipv4Addr::from(first + i))).collect()
}

impl FromStr for SourceAddrs {
    type Err = String;

    /// `auto`, a count (`4`), or a comma-separated list of addresses.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(SourceAddrs::Auto);
        }
        if let Ok(n) = text.parse::<u32>() {
            return Ok(SourceAddrs::Loopback(n));
        }
        text.split(',')
            .map(|part| {
                part.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{part:?} is not an IP address (write auto, a count such as 4, or a list such as 127.0.0.2,127.0.0.3)"))
            })
            .collect::<Result<_, _>>()
            .map(SourceAddrs::List)
    }
}

/// Starts a non-blocking connect to `addr`, from `source` when given (port
/// chosen by the kernel).
pub(crate) fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr);
    };
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    #[cfg(target_os = "linux")]
    if source.is_ipv4() {
        bind_address_no_port(&socket)?;
    }
    socket.bind(&SocketAddr::new(source, 0).into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(err) => return Err(err),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`: `bind` takes the address only, `connect`
/// picks the port (socket2 has no setter for it).
#[cfg(target_os = "linux")]
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and a c_int option of the right size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> SocketAddr {
        text.parse().expect("a socket address")
    }

    #[test]
    fn auto_spreads_loopback_only_when_the_count_needs_it() {
        let per_source = connections_per_source(ephemeral_ports());
        let local = target("127.0.0.1:8080");
        assert!(SourceAddrs::Auto.resolve(local, per_source).unwrap().is_empty());
        let spread = SourceAddrs::Auto.resolve(local, per_source * 2 + 1).unwrap();
        assert_eq!(spread.len(), 3);
        assert_eq!(spread[2], "127.0.0.3".parse::<IpAddr>().unwrap());
        assert!(
            SourceAddrs::Auto
                .resolve(target("[::1]:80"), 200_000)
                .unwrap()
                .is_empty()
        );
        assert!(
            SourceAddrs::Auto
                .resolve(target("10.1.2.3:80"), 200_000)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_default_range_gives_five_addresses_for_100k() {
        assert_eq!(100_000_u32.div_ceil(connections_per_source(28_232)), 5);
    }

    #[test]
    fn counts_and_lists_parse_and_are_checked_against_the_target() {
        assert_eq!("auto".parse(), Ok(SourceAddrs::Auto));
        assert_eq!("4".parse(), Ok(SourceAddrs::Loopback(4)));
        let list: SourceAddrs = "127.0.0.2, 127.0.0.3".parse().unwrap();
        assert_eq!(list.resolve(target("127.0.0.1:80"), 1).unwrap().len(), 2);
        assert!("127.0.0.2,nonsense".parse::<SourceAddrs>().is_err());
        for (addrs, to) in [
            (SourceAddrs::Loopback(0), "127.0.0.1:80"),
            (SourceAddrs::Loopback(2), "10.0.0.1:80"),
            (SourceAddrs::Loopback(2), "[::1]:80"),
            (SourceAddrs::List(vec!["::1".parse().unwrap()]), "127.0.0.1:80"),
        ] {
            let err = addrs.resolve(target(to), 10).expect_err("refused");
            assert!(err.to_string().contains("--source-addrs"), "{err}");
        }
    }
}
