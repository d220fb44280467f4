//! Out of threads: `thread-per-task` answers 503 when it cannot start a
//! thread — past its own `--max-threads` cap, or when the OS refuses one
//! (RLIMIT_NPROC) — and keeps serving, without a panic. Both scopes. The
//! RLIMIT_NPROC test needs root: without it, it fails under `CI` and
//! otherwise prints a loud skip line.

mod support;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::thread;

use dispatchlab::Strategy;
use dispatchlab::server::Scope;
use support::{Client, ServerProcess, eventually, metric, start_with};

/// The uid/gid the OS-limit test runs its server as: RLIMIT_NPROC is not
/// enforced for root.
const NOBODY: libc::uid_t = 65534;
/// Threads (of all the processes of that uid) the server may have.
const NPROC_LIMIT: libc::rlim_t = 12;
/// Concurrent slow requests in the OS-limit flood.
const FLOOD: usize = 40;

#[test]
fn past_max_threads_thread_per_task_answers_503_and_keeps_serving() {
    for scope in Scope::ALL {
        let mut config = support::config(Strategy::ThreadPerTask, scope);
        config.dispatch.max_threads = Some(2);
        let server = start_with(config);
        let addr = server.local_addr();
        // Two jobs that hold their threads: keep-alive connections in
        // connection scope, slow requests in request scope.
        let mut holders: Vec<Client> = (0..2).map(|_| Client::connect(addr)).collect();
        for holder in &mut holders {
            match scope {
                Scope::Connection => assert_eq!(holder.get("/").status, 200, "{scope}"),
                Scope::Request => holder.send(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n"),
            }
        }
        eventually("both threads are busy", || server.dispatch_stats().threads_alive == 2);
        let mut refused = Client::connect(addr);
        let response = refused.get("/");
        assert_eq!(response.status, 503, "{scope}: a third job past --max-threads 2");
        assert!(response.says_close() && refused.is_closed(), "{scope}: 503 closes");
        for holder in &mut holders {
            let response = match scope {
                Scope::Connection => holder.get("/"),
                Scope::Request => holder.read_response(),
            };
            assert_eq!(response.status, 200, "{scope}: the jobs that got threads are served");
        }
        drop(holders);
        eventually("the threads are released", || {
            server.dispatch_stats().threads_alive == 0
        });
        assert_eq!(Client::connect(addr).get("/").status, 200, "{scope}: serving again");
        assert!(server.stats().rejected_total >= 1, "{scope}: the refusal is counted");
        assert_eq!(server.stats().handler_panics_total, 0, "{scope}");
    }
}

/// The statuses `FLOOD` concurrent `/sleep?ms=300` requests got, one per
/// connection; `None` for a connection that broke without an answer.
fn flood(addr: SocketAddr) -> Vec<Option<u16>> {
    let clients: Vec<_> = (0..FLOOD)
        .map(|_| {
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                client.try_send(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n").ok()?;
                client.try_read_response().ok().map(|response| response.status)
            })
        })
        .collect();
    clients.into_iter().map(|c| c.join().expect("client thread")).collect()
}

#[test]
fn under_rlimit_nproc_thread_per_task_answers_503_and_keeps_serving() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        support::prerequisite_missing(&format!(
            "root (to switch the server to uid {NOBODY}: RLIMIT_NPROC is not enforced for root)"
        ));
        return;
    }
    for scope in Scope::ALL {
        let args = ["--strategy", "thread-per-task", "--scope", scope.name()];
        let mut server = ServerProcess::spawn_with(&args, |command| {
            // SAFETY: setrlimit, setgroups, setgid and setuid are
            // async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    let limit = libc::rlimit {
                        rlim_cur: NPROC_LIMIT,
                        rlim_max: NPROC_LIMIT,
                    };
                    let failed = libc::setrlimit(libc::RLIMIT_NPROC, &limit) != 0
                        || libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(NOBODY) != 0
                        || libc::setuid(NOBODY) != 0;
                    if failed {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        });
        let statuses = flood(server.addr);
        let ok = statuses.iter().filter(|s| **s == Some(200)).count();
        let unavailable = statuses.iter().filter(|s| **s == Some(503)).count();
        eprintln!(
            "{scope}: {FLOOD} concurrent requests under RLIMIT_NPROC {NPROC_LIMIT}: {ok} × 200, {unavailable} × 503"
        );
        assert_eq!(
            ok + unavailable,
            FLOOD,
            "{scope}: every request is answered 200 or 503: {statuses:?}"
        );
        assert!(
            unavailable > 0,
            "{scope}: the thread limit was never reached; the test proved nothing"
        );
        assert!(ok > 0, "{scope}: no request got a thread");
        assert!(
            server.child.try_wait().expect("wait").is_none(),
            "{scope}: the server died"
        );
        eventually("the threads are released and it serves again", || {
            let mut client = Client::connect(server.addr);
            client.try_send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").is_ok()
                && client.try_read_response().is_ok_and(|response| response.status == 200)
        });
        assert_eq!(metric(server.addr, "dispatchlab_handler_panics_total"), 0, "{scope}");
        assert!(
            metric(server.addr, "dispatchlab_rejected_total") >= unavailable as u64,
            "{scope}"
        );
    }
}
