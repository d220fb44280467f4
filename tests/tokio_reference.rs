//! What is particular to the tokio reference server (its HTTP behaviour is
//! checked with every other server in `http_behaviour` and
//! `graceful_shutdown`): `/sleep` waits without holding a worker thread,
//! `/metrics` reports the runtime's threads, a pipeline of large answers is
//! written as it grows, and `--scope` and the dispatcher-only flags are
//! refused.
#![cfg(feature = "tokio")]

mod support;

use std::process::Command;
use std::thread;

use dispatchlab::server::{Engine, Scope};
use support::{Client, ServerProcess, eventually, metric, start_with};

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

/// 40 pipelined `/bytes?n=1048576` requests, read only after a pause: the
/// server writes its answers as they grow (every 64 KiB, as connection
/// scope does) instead of building all 40 MiB before the first write.
#[test]
fn a_pipeline_of_large_answers_is_written_as_it_grows() {
    const ANSWERS: usize = 40;
    let server = ServerProcess::spawn(&["--strategy", "tokio", "--workers", "1"]);
    let mut client = Client::connect(server.addr);
    client.send(&b"GET /bytes?n=1048576 HTTP/1.1\r\nHost: t\r\n\r\n".repeat(ANSWERS));
    thread::sleep(std::time::Duration::from_millis(300));
    for n in 0..ANSWERS {
        let response = client.read_response();
        assert_eq!((response.status, response.body.len()), (200, 1 << 20), "answer {n}");
    }
    let peak_mib = server.memory_kib("VmHWM") / 1024;
    assert!(
        peak_mib < (ANSWERS / 2) as u64,
        "peak RSS {peak_mib} MiB for {ANSWERS} pipelined 1 MiB answers: they were held, not streamed"
    );
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
