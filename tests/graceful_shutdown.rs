//! SIGTERM while clients are busy: every response that started is finished,
//! idle and waiting connections are closed, and the process exits 0 within
//! its shutdown timeout. Runs the real binary for every strategy and scope,
//! and for the tokio reference server.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Client, ServerProcess, servers};

const CLIENTS: usize = 8;

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    complete: usize,
    said_close: bool,
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
                    seen.said_close = true;
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
        let args = ["--shutdown-timeout", "20s", "--workers", "4"];
        let mut server = ServerProcess::spawn(&[&args[..], &target.serve_args()].concat());
        let (addr, child) = (server.addr, &mut server.child);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || busy_client(addr, &stop))
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let signalled = Instant::now();
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
        stop.store(true, Ordering::Relaxed);
        let seen: Vec<Seen> = clients.into_iter().map(|c| c.join().expect("client")).collect();
        assert!(status.success(), "{label}: exit status {status}");
        for (index, client) in seen.iter().enumerate() {
            assert!(
                client.partial.is_none(),
                "{label}: client {index} got a cut response: {:?}",
                client.partial
            );
        }
        let answered: usize = seen.iter().map(|s| s.complete).sum();
        assert!(answered > 0, "{label}: no client was answered before the signal");
        assert!(
            seen.iter().any(|s| s.said_close),
            "{label}: no in-flight request was answered with Connection: close"
        );
    }
}
