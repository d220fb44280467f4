//! SIGTERM while clients are busy: every response that started is finished,
//! idle and waiting connections are closed, and the process exits 0 within
//! its shutdown timeout. Runs the real binary for every strategy and scope,
//! and for the tokio reference server.
//!
//! Besides the busy clients, each run holds one idle keep-alive connection
//! (it must be closed while a slow request is still in flight, not merely
//! when the process exits) and one slow request, in flight when the signal
//! comes, answered in full with `Connection: close`. With `inline` the slow
//! request holds the event loop itself, so the test waits until it does
//! before signalling, and the idle connection can only be closed once the
//! loop is free again (just before the process exits).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dispatchlab::server::Engine;
use support::{Client, ServerProcess, servers};

const CLIENTS: usize = 8;
/// The `--shutdown-timeout` the servers run with.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    complete: usize,
    partial: Option<String>,
}

/// Sends requests back to back until the connection ends, recording every
/// response and whether one was cut in the middle.
fn busy_client(addr: SocketAddr, stop: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    let mut client = Client::connect(addr);
    while !stop.load(Ordering::Relaxed) {
        if client.try_send(b"GET /sleep?ms=5 HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
            break;
        }
        match client.try_read_response() {
            Ok(response) => {
                assert_eq!(response.status, 200);
                seen.complete += 1;
                if response.says_close() {
                    break;
                }
            }
            Err(err) => {
                // EOF or reset before a response began is allowed (the server
                // had not read that request); bytes of a response that then
                // broke off are not.
                if err.kind() == std::io::ErrorKind::InvalidData {
                    seen.partial = Some(err.to_string());
                }
                break;
            }
        }
    }
    seen
}

#[test]
fn sigterm_during_a_burst_loses_no_started_response() {
    for target in servers() {
        let label = target.to_string();
        let args = ["--shutdown-timeout", "20s", "--workers", "4"]; // SHUTDOWN_TIMEOUT
        let mut server = ServerProcess::spawn(&[&args[..], &target.serve_args()].concat());
        let (addr, child) = (server.addr, &mut server.child);
        // The idle and the slow connection are connected first, so that in
        // connection scope each has a worker before the busy clients take the
        // rest.
        let mut idle = Client::connect(addr);
        assert_eq!(idle.get("/").status, 200, "{label}");
        let mut slow = Client::connect(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || busy_client(addr, &stop))
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        // With inline the sleeping handler blocks the event loop (and every
        // busy client with it) until it answers.
        let holds_the_loop = blocks_its_loop(target.engine);
        slow.send(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
        if holds_the_loop {
            wait_until_the_loop_is_held(addr, &label);
        } else {
            thread::sleep(Duration::from_millis(300));
        }
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let signalled = Instant::now();
        assert!(idle.is_closed(), "{label}: the idle connection was not closed");
        if !holds_the_loop {
            assert!(
                child.try_wait().expect("wait").is_none(),
                "{label}: the idle connection stayed open until the process exited"
            );
        }
        let response = slow.read_response();
        assert!(
            response.status == 200 && response.says_close(),
            "{label}: the request in flight is answered with Connection: close"
        );
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if signalled.elapsed() > support::PATIENCE * 3 {
                let _ = child.kill();
                panic!("{label}: server did not exit after SIGTERM");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let exited_after = signalled.elapsed();
        stop.store(true, Ordering::Relaxed);
        let seen: Vec<Seen> = clients.into_iter().map(|c| c.join().expect("client")).collect();
        assert!(status.success(), "{label}: exit status {status}");
        assert!(
            exited_after < SHUTDOWN_TIMEOUT,
            "{label}: exit took {exited_after:?}, past --shutdown-timeout"
        );
        for (index, client) in seen.iter().enumerate() {
            assert!(
                client.partial.is_none(),
                "{label}: client {index} got a cut response: {:?}",
                client.partial
            );
        }
        let answered: usize = seen.iter().map(|s| s.complete).sum();
        assert!(answered > 0, "{label}: no client was answered before the signal");
    }
}

/// Waits until the event loop is inside the slow request's handler: a `GET /`
/// on a new connection then goes unanswered. Bounded: gives up (and fails)
/// after `PATIENCE`.
fn wait_until_the_loop_is_held(addr: SocketAddr, label: &str) {
    let deadline = Instant::now() + support::PATIENCE;
    while Instant::now() < deadline {
        let mut probe = Client::connect(addr);
        probe.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        if probe.stays_silent_for(Duration::from_millis(200)) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("{label}: the event loop never started the slow request");
}

/// Whether a sleeping handler would block the thread that does the I/O (the
/// `inline` strategy).
fn blocks_its_loop(engine: Engine) -> bool {
    matches!(engine, Engine::Dispatch(strategy) if strategy.runs_on_caller())
}
