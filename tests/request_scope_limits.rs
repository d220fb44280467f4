//! Request-scope limits that keep memory bounded: in-flight requests per
//! event loop never exceed `--max-in-flight`, however much clients pipeline,
//! and everything is still answered, in order.

mod support;

use std::thread;

use dispatchlab::Strategy;
use dispatchlab::dispatch::DispatchConfig;
use dispatchlab::server::{Scope, ServeError, Server};
use support::{Client, metric, start_with};

#[test]
fn in_flight_requests_stay_under_the_bound_while_clients_flood() {
    const BOUND: usize = 8;
    const CONNECTIONS: usize = 4;
    const PIPELINED: usize = 100;
    let mut config = support::config(Strategy::MutexQueue, Scope::Request);
    config.dispatch = DispatchConfig::with_workers(2);
    config.max_in_flight = BOUND;
    let server = start_with(config);
    let addr = server.local_addr();
    let floods: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                // Sleeps keep the workers busy so that a queue builds up; the
                // sized answers in between show the order is kept.
                let burst: String = (0..PIPELINED)
                    .map(|i| match i % 2 {
                        0 => "GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n".to_owned(),
                        _ => format!("GET /bytes?n={i} HTTP/1.1\r\nHost: t\r\n\r\n"),
                    })
                    .collect();
                client.send(burst.as_bytes());
                for i in 0..PIPELINED {
                    let response = client.read_response();
                    assert_eq!(response.status, 200);
                    if i % 2 == 1 {
                        assert_eq!(response.body.len(), i, "response {i} out of order");
                    }
                }
            })
        })
        .collect();
    // The server's own gauge, kept by the event loop: exact with one loop.
    let mut max_seen = 0;
    while floods.iter().any(|flood| !flood.is_finished()) {
        max_seen = max_seen.max(server.stats().requests_in_flight);
        thread::yield_now();
    }
    for flood in floods {
        flood.join().expect("flooding client");
    }
    assert!(max_seen <= BOUND as u64, "{max_seen} requests in flight, bound {BOUND}");
    assert!(
        max_seen > 2,
        "the flood never queued behind the 2 workers ({max_seen}): the test did not test the bound"
    );
    let answered = metric(addr, "dispatchlab_responses_total{class=\"2xx\"}");
    assert_eq!(answered, (CONNECTIONS * PIPELINED) as u64);
}

#[test]
fn inline_is_refused_in_connection_scope_with_a_clear_reason() {
    let config = support::config(Strategy::Inline, Scope::Connection);
    let err = Server::start(config).expect_err("inline cannot serve connection scope");
    assert!(matches!(err, ServeError::NeedsRequestScope("inline")), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("--scope request"), "{message}");
}

#[test]
fn inline_in_connection_scope_fails_at_the_command_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dispatchlab"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--strategy",
            "inline",
            "--scope",
            "connection",
        ])
        .output()
        .expect("run dispatchlab");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only works with --scope request"), "{stderr}");
}
