//! What is particular to the tokio reference server (its HTTP behaviour is
//! checked with every other server in `http_behaviour` and
//! `graceful_shutdown`): `/sleep` waits without holding a worker thread,
//! `/metrics` reports the runtime's threads, and `--scope` and the
//! dispatcher-only flags are refused.
#![cfg(feature = "tokio")]

mod support;

use std::process::Command;
use std::thread;

use dispatchlab::server::{Engine, Scope};
use support::{Client, eventually, metric, start_with};

#[test]
fn sleeping_requests_do_not_hold_the_only_worker() {
    let mut config = support::config(Engine::Tokio, Scope::Connection);
    config.dispatch.workers = 1;
    let server = start_with(config);
    let addr = server.local_addr();
    let sleepers: Vec<_> = (0..8)
        .map(|_| thread::spawn(move || Client::connect(addr).get("/sleep?ms=3000").status))
        .collect();
    // A blocking server with one worker would hold the other seven, and this
    // /metrics request, until the first sleep ended; here all eight are in
    // flight at once and /metrics is answered meanwhile.
    eventually("eight sleeps in flight on one worker", || {
        metric(addr, "dispatchlab_requests_in_flight") == 9
    });
    assert_eq!(metric(addr, "dispatchlab_dispatch_threads_alive"), 1);
    for sleeper in sleepers {
        assert_eq!(sleeper.join().expect("client thread"), 200);
    }
}

/// `dispatchlab serve --strategy tokio` with `extra`: exit status and stderr.
fn serve_tokio_with(extra: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dispatchlab"))
        .args(["serve", "--addr", "127.0.0.1:0", "--strategy", "tokio"])
        .args(extra)
        .output()
        .expect("run dispatchlab serve");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_cli_refuses_a_scope_for_tokio() {
    let (status, stderr) = serve_tokio_with(&["--scope", "request"]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("takes no --scope"), "{stderr}");
}

#[test]
fn the_cli_refuses_dispatcher_flags_for_tokio_instead_of_ignoring_them() {
    let (status, stderr) = serve_tokio_with(&["--io-threads", "2", "--idle-spin", "1ms"]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("takes no --idle-spin, --io-threads"), "{stderr}");
}

#[test]
fn zero_workers_is_an_error_that_says_what_to_do() {
    let mut config = support::config(Engine::Tokio, Scope::Connection);
    config.dispatch.workers = 0;
    let err = dispatchlab::server::Server::start(config)
        .expect_err("no workers")
        .to_string();
    assert!(err.contains("--workers 1"), "{err}");
}
