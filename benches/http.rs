//! What the whole path costs, end to end over loopback: an in-process
//! `dispatchlab` server per strategy and scope (`BenchmarkId::new(strategy,
//! scope)`), one criterion group per question:
//!
//! | group | question | one iteration |
//! |---|---|---|
//! | `round_trip` | what does one request cost on a warm keep-alive connection? | `GET /` written, its response read in full |
//! | `pipelined_100` | how fast does one connection drain a pipeline? (elements/s) | 100 `GET /` written at once, the 100 responses read in order |
//! | `concurrent_32` | what do 32 concurrent keep-alive connections get? (elements/s) | `dispatchlab::load::run`: 32 connections × 20 requests, connects included, timed by the load generator |
//!
//! Pools have 2 workers (the development machine's CPUs): in connection scope
//! that means `concurrent_32` is served two connections at a time, the
//! keep-alive head-of-line blocking the crate exists to show, so expect
//! connection-scope pools to trail there. Server, client and load generator
//! share the CPUs (nothing is pinned): compare strategies within a group, not
//! these numbers with `dispatchlab compare`'s.
//!
//! Run: `cargo bench --bench http` (about a minute on 2 CPUs), or add
//! `-- --quick`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use dispatchlab::Strategy;
use dispatchlab::dispatch::DispatchConfig;
use dispatchlab::load::{self, Config, Target};
use dispatchlab::results::Machine;
use dispatchlab::server::{Scope, ServeConfig, Server};

const WORKERS: usize = 2;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const PIPELINE: usize = 100;
const CONNECTIONS: u32 = 32;
const REQUESTS_PER_CONNECTION: u64 = 20;

fn start_server(strategy: Strategy, scope: Scope) -> Server {
    let config = ServeConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        engine: strategy.into(),
        scope,
        dispatch: DispatchConfig::with_workers(WORKERS),
        ..ServeConfig::default()
    };
    Server::start(config).unwrap_or_else(|err| panic!("{strategy}/{scope}: the server did not start: {err}"))
}

fn stop_server(server: Server, label: &str) {
    if let Err(err) = server.shutdown() {
        eprintln!("{label}: the server did not shut down cleanly: {err}");
    }
}

/// A keep-alive HTTP/1.1 client that reads responses framed by the load
/// generator's parser (`load::first_response`).
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Client {
    fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        })
    }

    /// Writes `requests` and reads `responses` answers, each a 200.
    fn exchange(&mut self, requests: &[u8], responses: usize) -> io::Result<()> {
        self.stream.write_all(requests)?;
        for _ in 0..responses {
            self.read_response()?;
        }
        Ok(())
    }

    fn read_response(&mut self) -> io::Result<()> {
        loop {
            if let Some(length) = self.complete_response()? {
                self.start += length;
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// The length of the response at the front of the buffer, once it is all there.
    fn complete_response(&self) -> io::Result<Option<usize>> {
        match load::first_response(&self.buf[self.start..self.end])? {
            Some((_, status)) if status != 200 => Err(io::Error::other(format!("status {status}, expected 200"))),
            found => Ok(found.map(|(length, _)| length)),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.end..])? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            n => {
                self.end += n;
                Ok(())
            }
        }
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, measure_ms: u64) {
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(measure_ms));
}

/// One server under measurement.
struct Subject {
    strategy: Strategy,
    scope: Scope,
    addr: SocketAddr,
}

impl Subject {
    fn id(&self) -> BenchmarkId {
        BenchmarkId::new(self.strategy.name(), self.scope.name())
    }

    fn label(&self) -> String {
        format!("{}/{}", self.strategy, self.scope)
    }
}

/// Runs `bench` against a fresh server for every strategy × scope pair.
fn for_each_server(
    group: &mut BenchmarkGroup<'_, WallTime>,
    mut bench: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, &Subject),
) {
    let pairs = dispatchlab::server::Target::all().into_iter();
    for (strategy, scope) in pairs.filter_map(|t| Some((t.strategy()?, t.scope))) {
        let server = start_server(strategy, scope);
        let subject = Subject {
            strategy,
            scope,
            addr: server.local_addr(),
        };
        bench(group, &subject);
        stop_server(server, &subject.label());
    }
}

/// Benches `requests` answered by `responses` responses on one keep-alive connection.
fn bench_exchange(group: &mut BenchmarkGroup<'_, WallTime>, subject: &Subject, requests: &[u8], responses: usize) {
    let (label, addr) = (subject.label(), subject.addr);
    let mut client = Client::connect(addr).unwrap_or_else(|err| panic!("{label}: cannot connect to {addr}: {err}"));
    group.bench_function(subject.id(), |b| {
        b.iter(|| {
            client
                .exchange(requests, responses)
                .unwrap_or_else(|err| panic!("{label}: {err}"))
        })
    });
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    configure(&mut group, 30, 1_000);
    for_each_server(&mut group, |group, subject| bench_exchange(group, subject, REQUEST, 1));
    group.finish();
}

fn pipelined(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipelined_100");
    configure(&mut group, 10, 1_000);
    // Some servers take a quarter of a second per pipeline: the same count per sample.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(PIPELINE as u64));
    let requests = REQUEST.repeat(PIPELINE);
    for_each_server(&mut group, |group, subject| {
        bench_exchange(group, subject, &requests, PIPELINE)
    });
    group.finish();
}

fn concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("concurrent_32");
    configure(&mut group, 10, 1_000);
    // One iteration is tens of milliseconds of wall time: the same count per sample.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(u64::from(CONNECTIONS) * REQUESTS_PER_CONNECTION));
    for_each_server(&mut group, |group, subject| {
        let (config, label) = (fixed_count_load(subject.addr), subject.label());
        group.bench_function(subject.id(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_load(&config, &label)).sum())
        });
    });
    group.finish();
}

fn fixed_count_load(addr: SocketAddr) -> Config {
    let url = format!("http://{addr}/");
    let target = Target::parse(&url).unwrap_or_else(|err| panic!("{url}: {err}"));
    let mut config = Config::new(target);
    config.connections = CONNECTIONS;
    config.threads = 1;
    config.requests_per_connection = Some(REQUESTS_PER_CONNECTION);
    config.duration = Duration::from_secs(30);
    config.timeout = Duration::from_secs(10);
    config
}

/// One fixed-count run; its time as the load generator measured it (first
/// connect to last response): `load::run` itself returns up to 50 ms later,
/// when its supervising thread next looks.
fn run_load(config: &Config, label: &str) -> Duration {
    let report = load::run(config).unwrap_or_else(|err| panic!("{label}: the load generator failed: {err}"));
    let expected = u64::from(CONNECTIONS) * REQUESTS_PER_CONNECTION;
    if report.requests != expected || report.errors.total() != 0 {
        panic!(
            "{label}: {} of {expected} requests answered, {} errors: the measurement would not be comparable",
            report.requests,
            report.errors.total()
        );
    }
    report.fixed_count.map_or(report.elapsed, |fixed| fixed.elapsed)
}

fn print_context(_: &mut Criterion) {
    let machine = Machine::detect();
    eprintln!(
        "http bench: {} CPUs, {}, {}, git {}, pools of {WORKERS} workers, server and client unpinned",
        machine.cpus, machine.kernel, machine.rustc, machine.git_rev
    );
}

criterion_group!(benches, print_context, round_trip, pipelined, concurrent);
criterion_main!(benches);
