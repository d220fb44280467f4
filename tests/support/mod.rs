//! Helpers shared by the integration tests: dispatchlab servers on port 0,
//! a raw HTTP/1.1 client over `TcpStream`, the strategy × scope matrix (and
//! [`servers`]: the matrix plus the tokio reference server), and
//! (in [`test_servers`]) small stand-in servers for the load generator's tests.
#![allow(dead_code)] // each test binary uses its own subset

pub mod test_servers;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dispatchlab::Strategy;
use dispatchlab::compare::sampler;
use dispatchlab::dispatch::DispatchConfig;
use dispatchlab::server::{Announce, Engine, Scope, ServeConfig, Server, Timeouts};

/// How long a test waits for something that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Every valid strategy × scope pair, for tests that hold for all of them.
pub fn matrix() -> Vec<(Strategy, Scope)> {
    let pairs = dispatchlab::server::Target::all().into_iter();
    pairs
        .filter_map(|target| Some((target.strategy()?, target.scope)))
        .collect()
}

/// One server the HTTP behaviour must hold for: the crate's
/// [`Target`](dispatchlab::server::Target) (its fields, label and
/// `serve_args` through `Deref`), started with the test config.
#[derive(Clone, Copy, Debug)]
pub struct Target(pub dispatchlab::server::Target);

impl Target {
    pub fn config(self) -> ServeConfig {
        config(self.engine, self.scope)
    }

    pub fn start(self) -> Server {
        start_with(self.config())
    }
}

impl std::ops::Deref for Target {
    type Target = dispatchlab::server::Target;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Every server of [`dispatchlab::server::Target::all`]: each strategy ×
/// scope pair, then every compiled-in reference server (tokio).
pub fn servers() -> Vec<Target> {
    dispatchlab::server::Target::all().into_iter().map(Target).collect()
}

/// A server config on a free loopback port.
pub fn config(strategy: impl Into<Engine>, scope: Scope) -> ServeConfig {
    ServeConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        engine: strategy.into(),
        scope,
        dispatch: DispatchConfig::with_workers(4),
        timeouts: Timeouts {
            shutdown: Duration::from_secs(20),
            ..Timeouts::default()
        },
        ..ServeConfig::default()
    }
}

/// Starts a server with the default test config.
pub fn start(strategy: Strategy, scope: Scope) -> Server {
    start_with(config(strategy, scope))
}

pub fn start_with(config: ServeConfig) -> Server {
    let label = config.target().to_string();
    Server::start(config).unwrap_or_else(|err| panic!("{label}: server did not start: {err}"))
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client on one connection.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, PATIENCE).unwrap_or_else(|err| panic!("connect {addr}: {err}"));
        stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// A client over a connection opened elsewhere.
    pub fn from_stream(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send request");
    }

    /// Sends without failing the test if the server already closed.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response()
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).expect("read timeout");
    }

    /// Reads one complete response (Content-Length framed), skipping 1xx.
    pub fn read_response(&mut self) -> Response {
        self.try_read_response()
            .unwrap_or_else(|err| panic!("reading a response: {err}"))
    }

    /// Reads one response, or says why none came (EOF, timeout, reset).
    pub fn try_read_response(&mut self) -> io::Result<Response> {
        loop {
            let response = self.read_one()?;
            if response.status >= 200 {
                return Ok(response);
            }
        }
    }

    /// Reads the head of a response to HEAD: it has a Content-Length but no body.
    pub fn read_head_only(&mut self) -> Response {
        self.read_framed(true)
            .unwrap_or_else(|err| panic!("reading a HEAD response: {err}"))
    }

    /// Reads one response including interim (1xx) ones.
    pub fn read_one(&mut self) -> io::Result<Response> {
        self.read_framed(false)
    }

    fn read_framed(&mut self, head_only: bool) -> io::Result<Response> {
        loop {
            if let Some((response, used)) = parse_response(&self.pending, head_only)? {
                self.pending.drain(..used);
                return Ok(response);
            }
            self.fill()?;
        }
    }

    /// Whether the server closed the connection (EOF or reset) with nothing
    /// more to read, within `PATIENCE`.
    pub fn is_closed(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(err) => matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }

    /// Whether nothing arrives for `quiet` (the connection is open and silent).
    pub fn stays_silent_for(&mut self, quiet: Duration) -> bool {
        self.stream.set_read_timeout(Some(quiet)).expect("read timeout");
        let mut byte = [0u8; 1];
        let silent = match self.stream.read(&mut byte) {
            Err(err) => matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            Ok(0) => false,
            Ok(_) => {
                self.pending.push(byte[0]);
                false
            }
        };
        self.stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        silent
    }

    /// Reads more bytes. A connection that ends with part of a response
    /// received is `InvalidData` (a cut response), otherwise the error as is.
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let error = match self.stream.read(&mut chunk) {
            Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"),
            Ok(count) => {
                self.pending.extend_from_slice(&chunk[..count]);
                return Ok(());
            }
            Err(err) => err,
        };
        let timed_out = matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
        if self.pending.is_empty() || timed_out {
            return Err(error);
        }
        let cut = format!("connection ended {} bytes into a response: {error}", self.pending.len());
        Err(io::Error::new(io::ErrorKind::InvalidData, cut))
    }
}

/// One response at the start of `bytes`, parsed by the load generator's
/// parser (`load::response_head`, `load::first_response`); an interim (1xx)
/// head is returned alone, as the tests read it (the crate's framing skips
/// it).
fn parse_response(bytes: &[u8], head_only: bool) -> io::Result<Option<(Response, usize)>> {
    let Some(head) = dispatchlab::load::response_head(bytes)? else {
        return Ok(None);
    };
    let end = if head_only || (100..200).contains(&head.status) {
        head.len
    } else {
        match dispatchlab::load::first_response(bytes)? {
            Some((end, _)) => end,
            None => return Ok(None),
        }
    };
    let body = bytes[head.len..end].to_vec();
    let response = Response {
        status: head.status,
        headers: head.headers,
        body,
    };
    Ok(Some((response, end)))
}

/// Polls `condition` until it holds or `PATIENCE` runs out.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads `/metrics` on a fresh connection and returns the value of `name`.
pub fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = Client::connect(addr).get("/metrics").text();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// `dispatchlab serve` as a child process (for signals and per-process
/// memory); killed on drop if still running.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `dispatchlab serve --addr 127.0.0.1:0 ARGS…` and reads the
    /// address from the line it prints first.
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_with(args, |_| {})
    }

    /// As [`spawn`](Self::spawn), after `prepare` has adjusted the command
    /// (resource limits, user, environment).
    pub fn spawn_with(args: &[&str], prepare: impl FnOnce(&mut Command)) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dispatchlab"));
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        prepare(&mut command);
        let mut child = command.spawn().expect("start dispatchlab serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address line");
        let announced: Announce = line
            .parse()
            .unwrap_or_else(|err| panic!("{err} (did the server start?)"));
        Self {
            child,
            addr: announced.addr,
        }
    }

    /// User plus system CPU time the process has used, from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Duration {
        sampler::cpu_time(self.child.id()).expect("proc stat")
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        sampler::status_value(self.child.id(), field).unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test that needs `what` (a tool, root) which this machine lacks: under
/// `CI` (set by `.ci/run`, which installs the tools and runs as root) that
/// is a failure; elsewhere the test prints a loud skip line and returns.
pub fn prerequisite_missing(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI is set but {what} is missing");
    eprintln!("\n*** SKIPPED: {what} is missing (under CI this test fails) ***\n");
}
