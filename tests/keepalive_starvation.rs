//! More concurrent keep-alive connections than workers: the documented
//! behaviour, asserted for every strategy in both scopes.
//!
//! In connection scope a job is a whole connection, so a pool of N workers
//! serves N connections at a time: connection N + 1 is accepted but gets no
//! answer until one of the first N closes (head-of-line blocking). A thread
//! per task has no such limit. In request scope a job is one request, so
//! every strategy answers every connection.

mod support;

use std::time::Duration;

use dispatchlab::Strategy;
use dispatchlab::dispatch::DispatchConfig;
use dispatchlab::server::Scope;
use support::{Client, matrix, start_with};

const WORKERS: usize = 2;

/// Whether the design makes connection N + 1 wait for a free worker.
fn starves(strategy: Strategy, scope: Scope) -> bool {
    scope == Scope::Connection && strategy != Strategy::ThreadPerTask
}

#[test]
fn one_connection_more_than_workers() {
    for (strategy, scope) in matrix() {
        let mut config = support::config(strategy, scope);
        config.dispatch = DispatchConfig::with_workers(WORKERS);
        let server = start_with(config);
        let mut held: Vec<Client> = (0..WORKERS).map(|_| Client::connect(server.local_addr())).collect();
        for client in &mut held {
            assert_eq!(
                client.get("/").status,
                200,
                "{strategy}/{scope}: the first {WORKERS} are served"
            );
        }
        let mut extra = Client::connect(server.local_addr());
        extra.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        if starves(strategy, scope) {
            assert!(
                extra.stays_silent_for(Duration::from_millis(300)),
                "{strategy}/{scope}: connection {} must wait while {WORKERS} workers hold keep-alive connections",
                WORKERS + 1
            );
            // Which held connection must close first depends on the strategy
            // (with worker-channels, the one on the worker the job was queued
            // to); once all have closed, the waiting one is served.
            held.clear();
            assert_eq!(
                extra.read_response().status,
                200,
                "{strategy}/{scope}: served once the workers free up"
            );
        } else {
            assert_eq!(
                extra.read_response().status,
                200,
                "{strategy}/{scope}: no connection waits"
            );
            for client in &mut held {
                assert_eq!(
                    client.get("/").status,
                    200,
                    "{strategy}/{scope}: held connections still served"
                );
            }
        }
    }
}
