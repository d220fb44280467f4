//! The Rust Book's final-chapter web server, as a yardstick for the crate's
//! strategies: `book_server PORT` listens on `127.0.0.1:PORT` (0 picks a free
//! port) and answers `GET /` with `Hello, World!` until killed.
//!
//! ```text
//! cargo build --release --example book_server
//! target/release/examples/book_server 7878 &
//! target/release/dispatchlab load http://127.0.0.1:7878/ --mode close -c 16 -d 5s
//! ```
//!
//! The pool and the handler are in `book.rs` (tested by `tests/book_server.rs`).

mod book;

use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|arg| arg.parse::<u16>().ok()) else {
        eprintln!("usage: book_server PORT   (listens on 127.0.0.1:PORT; 0 picks a free port)");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("book_server: cannot listen on 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("book_server: listening on http://{addr}/ ({} workers)", book::WORKERS);
    }
    book::serve(listener.incoming());
    ExitCode::SUCCESS
}
