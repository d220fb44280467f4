//! The Rust Book style server of `examples/book_server/` over real sockets:
//! it answers `GET /` with `Hello, World!` and `Content-Length`, closes each
//! connection after one answer, and keeps serving after clients that hang up
//! at once or send garbage. Its `serve` runs here on a port-0 listener, for a
//! fixed number of connections, so the test also sees the pool shut down.

#[path = "../examples/book_server/book.rs"]
mod book;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long a step may take that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn answers_hello_and_closes_and_survives_hang_ups_and_garbage() {
    const CONNECTIONS: usize = 5;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("local addr");
    let (served_tx, served_rx) = mpsc::channel();
    thread::spawn(move || {
        book::serve(listener.incoming().take(CONNECTIONS));
        let _ = served_tx.send(());
    });

    // 1. A client that hangs up at once.
    drop(TcpStream::connect(addr).expect("connect"));
    // 2. Bytes that are not text: no answer, just a close (or a reset).
    match exchange(addr, b"\xff\xfe\x00\x01\r\n\r\n") {
        Ok(answer) => assert_eq!(answer, "", "garbage got an answer"),
        Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}"),
    }
    // 3. Text that is not a request for `/`: the Book's 404.
    let answer = exchange(addr, b"hello there\r\n\r\n").expect("404 exchange");
    assert!(answer.starts_with("HTTP/1.1 404 NOT FOUND\r\n"), "{answer:?}");
    assert!(
        answer.contains("\r\nContent-Length: 9\r\n") && answer.ends_with("\r\n\r\nNot Found"),
        "{answer:?}"
    );
    // 4. and 5. The server still answers, once per connection, then closes
    // (`exchange` reads to the end, so the close is what ends each read).
    for version in ["1.1", "1.0"] {
        let request = format!("GET / HTTP/{version}\r\nHost: {addr}\r\n\r\n");
        let answer = exchange(addr, request.as_bytes()).expect("hello exchange");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
        assert!(answer.contains("\r\nContent-Length: 13\r\n"), "{answer:?}");
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer:?}");
        assert!(answer.ends_with("\r\n\r\nHello, World!"), "{answer:?}");
    }

    served_rx
        .recv_timeout(PATIENCE)
        .expect("serve returns after its connections, with its workers joined");
}
