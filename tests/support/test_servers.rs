//! Small HTTP/1.x servers for the load generator's tests: std `TcpListener`s
//! on 127.0.0.1 port 0, a thread per connection, counters for what they did.
//!
//! Routes (for the behaviours that answer): `/` → `Hello, World!`;
//! `/sleep?ms=N` → sleeps N ms, then answers; `/bye` → answers with
//! `Connection: close` and closes; `/big` → a 300,000-byte body; anything
//! else → 404.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dispatchlab::load::{Config, Target};

/// How a test server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Keep-alive HTTP/1.1 with `Content-Length` (HTTP/1.0 and
    /// `Connection: close` requests are answered, then the connection closes).
    ContentLength,
    /// As `ContentLength`, with chunked bodies (two chunks, one with an extension, and a trailer).
    Chunked,
    /// Answers without `Content-Length` and closes: the body ends at the close.
    CloseDelimited,
    /// As `ContentLength`, but the `nth` request answered (1-based, over the
    /// whole server) waits one second first.
    StallOnce { nth: u64 },
    /// As `ContentLength` for the first `answers` requests (over the whole
    /// server), then reads every later request and never answers it; the
    /// connection stays open until the client closes it.
    AnswerThenStall { answers: u64 },
    /// Accepts and closes at once, reading nothing.
    CloseAfterAccept,
    /// Never accepts (listen backlog 0): the first connection waits in the
    /// accept queue, later SYNs are dropped.
    NeverAccept,
}

/// What a server has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepts: AtomicU64,
    /// Responses written in full.
    pub answered: AtomicU64,
    /// Response bytes written.
    pub bytes: AtomicU64,
    /// The client address of every connection accepted, in order.
    pub peers: Mutex<Vec<IpAddr>>,
}

/// A running test server; stops on drop.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    // Keeps a never-accepting listener open.
    _idle: Option<socket2::Socket>,
}

impl TestServer {
    pub fn start(behaviour: Behaviour) -> Self {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        if behaviour == Behaviour::NeverAccept {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
            socket
                .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
                .expect("bind");
            socket.listen(0).expect("listen");
            let addr = socket.local_addr().expect("addr").as_socket().expect("inet");
            return Self {
                addr,
                counters,
                stop,
                acceptor: None,
                _idle: Some(socket),
            };
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = {
            let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    counters.accepts.fetch_add(1, Ordering::AcqRel);
                    if let (Ok(peer), Ok(mut peers)) = (stream.peer_addr(), counters.peers.lock()) {
                        peers.push(peer.ip());
                    }
                    if behaviour == Behaviour::CloseAfterAccept {
                        drop(stream);
                        continue;
                    }
                    let counters = Arc::clone(&counters);
                    thread::spawn(move || serve(stream, behaviour, &counters));
                }
            })
        };
        Self {
            addr,
            counters,
            stop,
            acceptor: Some(acceptor),
            _idle: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A load config for `path` with one thread and short timeouts.
    pub fn config(&self, path: &str) -> Config {
        let mut config = Config::new(Target::parse(&self.url(path)).expect("test URL parses"));
        config.threads = 1;
        config.duration = Duration::from_secs(20);
        config.timeout = Duration::from_secs(10);
        config
    }

    pub fn accepts(&self) -> u64 {
        self.counters.accepts.load(Ordering::Acquire)
    }

    pub fn answered(&self) -> u64 {
        self.counters.answered.load(Ordering::Acquire)
    }

    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Acquire)
    }

    /// The client addresses of the connections accepted so far.
    pub fn peers(&self) -> Vec<IpAddr> {
        self.counters
            .peers
            .lock()
            .map(|peers| peers.clone())
            .unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            // Wake the blocking accept.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = acceptor.join();
        }
    }
}

/// An address where nothing listens (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Serves one connection until it closes, answering pipelined requests in order.
fn serve(mut stream: TcpStream, behaviour: Behaviour, counters: &Counters) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0_u8; 4096];
    loop {
        // Parse every complete request in the buffer.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            let len = match request.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            };
            let path = request.path.unwrap_or("/").to_owned();
            let http10 = request.version == Some(0);
            let connection = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("connection"))
                .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase());
            let mut close = match connection.as_deref() {
                Some("close") => true,
                Some("keep-alive") => false,
                _ => http10,
            };
            buf.drain(..len);
            if let Behaviour::AnswerThenStall { answers } = behaviour
                && counters.answered.load(Ordering::Acquire) >= answers
            {
                continue;
            }
            let (status, body) = route(&path);
            if path == "/bye" {
                close = true;
            }
            if let Behaviour::StallOnce { nth } = behaviour
                && counters.answered.load(Ordering::Acquire) + 1 == nth
            {
                thread::sleep(Duration::from_secs(1));
            }
            let response = render(behaviour, status, body, close, http10);
            if stream.write_all(&response).is_err() {
                return;
            }
            counters.bytes.fetch_add(response.len() as u64, Ordering::AcqRel);
            counters.answered.fetch_add(1, Ordering::AcqRel);
            if close || behaviour == Behaviour::CloseDelimited {
                let _ = stream.shutdown(std::net::Shutdown::Write);
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The body of `/big`.
static BIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "0123456789".repeat(30_000));

fn route(path: &str) -> (u16, &'static str) {
    if path == "/" || path == "/bye" {
        return (200, "Hello, World!");
    }
    if path == "/big" {
        return (200, BIG.as_str());
    }
    if let Some(ms) = path.strip_prefix("/sleep?ms=") {
        let ms: u64 = ms.parse().unwrap_or(0);
        thread::sleep(Duration::from_millis(ms));
        return (200, "slept");
    }
    (404, "not found")
}

fn render(behaviour: Behaviour, status: u16, body: &str, close: bool, http10: bool) -> Vec<u8> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut head = format!("{version} {status} {reason}\r\nServer: test\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    } else if http10 {
        head.push_str("Connection: keep-alive\r\n");
    }
    match behaviour {
        Behaviour::Chunked if !http10 => {
            let (a, b) = body.split_at(body.len() / 2);
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            head.push_str(&format!(
                "{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
                a.len(),
                b.len()
            ));
        }
        Behaviour::CloseDelimited => {
            head.push_str("Content-Type: text/plain\r\n\r\n");
            head.push_str(body);
        }
        _ => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        }
    }
    head.into_bytes()
}
