//! The listening socket, built with socket2 so that the backlog, address
//! reuse and port sharing are explicit settings rather than std's defaults.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a non-blocking listener on `addr` with the given accept backlog.
///
/// `SO_REUSEADDR` is always set (a restarted server is not kept out by
/// connections in TIME_WAIT); `SO_REUSEPORT` when several event loops each
/// own a listener on the same port, so that the kernel spreads connections
/// across them.
pub(crate) fn bind(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// The kernel's cap on any listen backlog (`net.core.somaxconn`), when it
/// can be read: a larger `--backlog` is silently cut to it.
pub(crate) fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets the options every accepted connection gets.
pub(crate) fn configure_accepted(stream: &std::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}
