//! `serve --keep-alive on|off|adaptive` over real sockets.
//!
//! `off` must give every client a closed connection after one answer that
//! says so, in every server; `adaptive` must keep a 4-worker connection-scope
//! pool from being held by 4 idle keep-alive clients while 16 more wait,
//! which is what `on` does. No absolute-time assertion: the unanswered
//! clients of `on` wait for a bound chosen far below the server's idle
//! timeout (60 s), the answered ones within [`PATIENCE`].

mod support;

use std::time::{Duration, Instant};

use dispatchlab::Strategy;
use dispatchlab::server::{KeepAlive, Scope, ServeConfig, Server};
use support::{Client, PATIENCE, Target, servers};

fn start(target: Target, keep_alive: KeepAlive) -> Server {
    support::start_with(ServeConfig {
        keep_alive,
        ..target.config()
    })
}

#[test]
fn off_answers_one_request_per_connection_and_closes_in_every_server() {
    for target in servers() {
        let server = start(target, KeepAlive::Off);
        for request in [
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ] {
            let mut client = Client::connect(server.local_addr());
            // A second request behind the first is never answered.
            client.send(format!("{request}{request}").as_bytes());
            let response = client.read_response();
            assert_eq!(response.status, 200, "{target}");
            assert!(response.says_close(), "{target}: the answer says Connection: close");
            assert_eq!(response.body, b"Hello, World!", "{target}");
            assert!(client.is_closed(), "{target}: the connection closes after one answer");
        }
        assert_eq!(server.stats().connections_total, 2, "{target}");
    }
}

/// Opens `clients` keep-alive connections to a 4-worker mutex-queue pool in
/// connection scope, sends one request on each and keeps every connection
/// open; returns how many were answered before `wait` ran out, and how many
/// of the answers said `Connection: close`.
fn idle_clients(keep_alive: KeepAlive, clients: usize, wait: Duration) -> (usize, usize) {
    let target = Target(dispatchlab::server::Target {
        engine: Strategy::MutexQueue.into(),
        scope: Scope::Connection,
    });
    let server = start(target, keep_alive);
    let mut connections: Vec<Client> = (0..clients).map(|_| Client::connect(server.local_addr())).collect();
    for client in &mut connections {
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    let deadline = Instant::now() + wait;
    let (mut answered, mut closing) = (0, 0);
    for client in &mut connections {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        client.set_read_timeout(left);
        if let Ok(response) = client.try_read_response() {
            assert_eq!(response.status, 200);
            answered += 1;
            closing += usize::from(response.says_close());
        }
    }
    (answered, closing)
}

#[test]
fn adaptive_answers_every_idle_client_of_a_pool_that_on_starves() {
    // `on`: the first 4 connections hold the 4 workers while their clients
    // stay idle (the idle timeout is 60 s); the other 16 are never served.
    let (answered, _) = idle_clients(KeepAlive::On, 20, Duration::from_secs(3));
    assert_eq!(answered, 4, "with keep-alive on, 16 of 20 idle clients starve");
    // `adaptive`: while connections wait, answers close their connection, so
    // every worker moves on; all 20 are answered.
    let (answered, closing) = idle_clients(KeepAlive::Adaptive, 20, PATIENCE);
    assert_eq!(answered, 20, "adaptive keep-alive answers every client");
    assert!(
        closing >= 16,
        "answers given while others waited say close ({closing} did)"
    );
}
