//! The listening socket, built with socket2 so that the backlog, address
//! reuse, port sharing and send buffer are explicit settings rather than
//! std's defaults.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// How every listening socket of a server is set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenSettings {
    /// Connections the kernel queues before accept.
    pub(crate) backlog: u32,
    /// `SO_SNDBUF` asked of the kernel for each connection (0: the
    /// kernel's autotuning); see `ServeConfig::send_buffer`.
    pub(crate) send_buffer: usize,
}

/// Binds a non-blocking listener on `addr` with `settings`.
///
/// `SO_REUSEADDR` is always set (a restarted server is not kept out by
/// connections in TIME_WAIT); `SO_REUSEPORT` when several event loops each
/// own a listener on the same port, so that the kernel spreads connections
/// across them. The send buffer is set on the listener because Linux gives
/// every accepted socket the listener's: one setting, in every scope and in
/// tokio, before a connection's first byte.
pub(crate) fn bind(addr: SocketAddr, settings: ListenSettings, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if settings.send_buffer > 0 {
        socket.set_send_buffer_size(settings.send_buffer)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(settings.backlog).unwrap_or(i32::MAX))?;
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

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;

    /// SO_SNDBUF of a connection accepted on `listener`.
    fn accepted_send_buffer(listener: &TcpListener) -> usize {
        let _client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        listener.set_nonblocking(false).expect("blocking accept");
        let (accepted, _) = listener.accept().expect("accept");
        socket2::SockRef::from(&accepted).send_buffer_size().expect("SO_SNDBUF")
    }

    fn bound(send_buffer: usize) -> TcpListener {
        let settings = ListenSettings {
            backlog: 8,
            send_buffer,
        };
        bind(SocketAddr::from(([127, 0, 0, 1], 0)), settings, false).expect("bind")
    }

    #[test]
    fn accepted_connections_get_the_listeners_send_buffer() {
        // Linux reserves twice what is asked (socket(7)).
        assert_eq!(accepted_send_buffer(&bound(96 * 1024)), 2 * 96 * 1024);
    }

    #[test]
    fn no_send_buffer_leaves_the_kernels_default() {
        let untouched = TcpListener::bind("127.0.0.1:0").expect("std bind");
        assert_eq!(accepted_send_buffer(&bound(0)), accepted_send_buffer(&untouched));
    }
}
