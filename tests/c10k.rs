//! 10,000 concurrent keep-alive connections against request scope, each
//! doing a few requests, for every strategy: zero errors, and the server's
//! memory stays bounded. The server runs as a child process so that its peak
//! resident set (VmHWM) is its own; the figures are printed for the record.

mod support;

use std::net::SocketAddr;
use std::thread;

use dispatchlab::Strategy;
use support::{Client, ServerProcess};

const CONNECTIONS: usize = 10_000;
const ROUNDS: usize = 3;
const CLIENT_THREADS: usize = 8;
/// A generous bound on the server's peak RSS with 10,000 connections: the
/// design needs no buffer per idle connection (measured figures are far
/// lower; see the README). A regression that allocates per connection
/// (a 64 KiB buffer each would be 640 MB) fails it.
const MAX_PEAK_RSS_KIB: u64 = 100 * 1024;

/// Opens this thread's share of connections, then runs `ROUNDS` rounds in
/// which every connection has a request in flight at the same time.
fn client_share(addr: SocketAddr, count: usize, barrier: &std::sync::Barrier) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..count).map(|_| Client::connect(addr)).collect();
    barrier.wait();
    for _ in 0..ROUNDS {
        for client in &mut clients {
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        for client in &mut clients {
            let response = client.read_response();
            assert_eq!(
                (response.status, response.body.as_slice()),
                (200, &b"Hello, World!"[..])
            );
        }
    }
    clients
}

#[test]
fn ten_thousand_keep_alive_connections_in_request_scope() {
    dispatchlab::rlimit::raise_open_file_limit().expect("raise the open-file limit");
    for &strategy in Strategy::ALL {
        let server = ServerProcess::spawn(&[
            "--scope",
            "request",
            "--workers",
            "4",
            "--backlog",
            "4096",
            "--strategy",
            strategy.name(),
        ]);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(CLIENT_THREADS + 1));
        let threads: Vec<_> = (0..CLIENT_THREADS)
            .map(|_| {
                let (addr, barrier) = (server.addr, std::sync::Arc::clone(&barrier));
                thread::spawn(move || client_share(addr, CONNECTIONS / CLIENT_THREADS, &barrier))
            })
            .collect();
        barrier.wait();
        let open: Vec<Vec<Client>> = threads.into_iter().map(|t| t.join().expect("client thread")).collect();
        let connections: usize = open.iter().map(Vec::len).sum();
        let open_metric = support::metric(server.addr, "dispatchlab_connections_open");
        let (rss, peak) = (server.memory_kib("VmRSS"), server.memory_kib("VmHWM"));
        eprintln!(
            "c10k {strategy}: {connections} connections × {ROUNDS} requests, 0 errors; server RSS {rss} KiB, peak {peak} KiB"
        );
        assert_eq!(
            open_metric,
            CONNECTIONS as u64 + 1,
            "{strategy}: the server holds every connection (+ the metrics one)"
        );
        assert!(
            peak <= MAX_PEAK_RSS_KIB,
            "{strategy}: peak RSS {peak} KiB with {CONNECTIONS} connections"
        );
        let responses = support::metric(server.addr, "dispatchlab_responses_total{class=\"2xx\"}");
        assert_eq!(
            responses,
            (CONNECTIONS * ROUNDS + 1) as u64,
            "{strategy}: every request answered exactly once"
        );
    }
}
