//! The routes every strategy serves, identically.
//!
//! | route | what it costs the thread that runs it |
//! |---|---|
//! | `GET /` | nothing: `Hello, World!` (the plaintext benchmark) |
//! | `GET /sleep?ms=N` | blocks N ms (I/O-bound work), N ≤ 10,000 |
//! | `GET /spin?us=N` | N µs of *CPU time* in a busy loop (CPU-bound work), N ≤ 1,000,000 |
//! | `GET /bytes?n=N` | an N-byte body (payload size), N ≤ 1 MiB |
//! | `GET /metrics` | the server's counters in Prometheus text format |
//!
//! `HEAD` and `POST` are answered like `GET` (HEAD without the body); other
//! methods get 405, other paths 404, a missing or out-of-range parameter 400
//! (the connection stays open: the request was valid HTTP).
//!
//! `/spin` counts the thread's CPU time, not the wall clock, so that a request
//! costs the same CPU however many threads share the cores: with more threads
//! than cores, a wall-clock spin would be cut short by preemption and make
//! oversubscribed strategies look faster than the cores allow.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use crate::http::{Method, Request, Response, Status};

/// Longest `/sleep`, so a client cannot hold a worker for long.
pub const MAX_SLEEP_MS: u64 = 10_000;
/// Longest `/spin`.
pub const MAX_SPIN_US: u64 = 1_000_000;
/// Largest `/bytes` body.
pub const MAX_BYTES: usize = 1024 * 1024;

const HELLO: &[u8] = b"Hello, World!";

/// Where `/metrics` gets its text. The server implements it; the workload
/// only serves it.
pub trait MetricsSource: Send + Sync {
    /// The current counters in Prometheus text exposition format.
    fn render(&self) -> String;
}

/// The request handler shared by every strategy and scope.
#[derive(Clone)]
pub struct Workload {
    metrics: Arc<dyn MetricsSource>,
    panic_route: bool,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("panic_route", &self.panic_route)
            .finish_non_exhaustive()
    }
}

impl Workload {
    /// A workload whose `/metrics` renders `metrics`.
    pub fn new(metrics: Arc<dyn MetricsSource>) -> Self {
        Self {
            metrics,
            panic_route: false,
        }
    }

    /// Also serve `/panic`, a handler that panics: for fault tests only.
    pub fn with_panic_route(mut self, enabled: bool) -> Self {
        self.panic_route = enabled;
        self
    }

    /// Runs the handler for `request` on the current thread.
    pub fn respond(&self, request: &Request) -> Response {
        if request.method == Method::Other {
            let mut response = Response::text(Status::METHOD_NOT_ALLOWED, &b"only GET, HEAD and POST\n"[..]);
            response.extra_headers = "Allow: GET, HEAD, POST\r\n";
            return response;
        }
        match request.path() {
            "/" => Response::text(Status::OK, HELLO),
            "/sleep" => with_param(request, "ms", MAX_SLEEP_MS, |ms| {
                thread::sleep(Duration::from_millis(ms));
                Response::text(Status::OK, format!("slept {ms} ms\n").into_bytes())
            }),
            "/spin" => with_param(request, "us", MAX_SPIN_US, |us| {
                spin_cpu(Duration::from_micros(us));
                Response::text(Status::OK, format!("spun {us} us\n").into_bytes())
            }),
            "/bytes" => with_param(request, "n", MAX_BYTES as u64, |n| {
                Response::text(Status::OK, &payload()[..n as usize])
            }),
            "/metrics" => {
                let mut response = Response::text(Status::OK, self.metrics.render().into_bytes());
                response.content_type = "text/plain; version=0.0.4; charset=utf-8";
                response
            }
            "/panic" if self.panic_route => panic!("the /panic route panics on purpose"),
            _ => Response::text(
                Status::NOT_FOUND,
                &b"no such route; try /, /sleep?ms=N, /spin?us=N, /bytes?n=N, /metrics\n"[..],
            ),
        }
    }
}

/// Reads `?name=N` within `0..=max` and runs `handler(N)`, or answers 400.
fn with_param(request: &Request, name: &str, max: u64, handler: impl FnOnce(u64) -> Response) -> Response {
    match request.query_param(name).map(str::parse::<u64>) {
        Some(Ok(value)) if value <= max => handler(value),
        _ => Response::text(
            Status::BAD_REQUEST,
            Cow::Owned(format!("{} needs ?{name}=N with N from 0 to {max}\n", request.path()).into_bytes()),
        ),
    }
}

/// The `/bytes` payload: printable, so that it reads well in a terminal.
fn payload() -> &'static [u8] {
    static PAYLOAD: OnceLock<Box<[u8]>> = OnceLock::new();
    PAYLOAD.get_or_init(|| {
        let line = b"dispatchlab payload 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
        line.iter().copied().cycle().take(MAX_BYTES).collect()
    })
}

/// Busy-loops until this thread has used `cpu` of CPU time.
fn spin_cpu(cpu: Duration) {
    let start = thread_cpu_time();
    while thread_cpu_time().saturating_sub(start) < cpu {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::http::Version;

    struct FixedMetrics;
    impl MetricsSource for FixedMetrics {
        fn render(&self) -> String {
            "dispatchlab_requests_total 7\n".into()
        }
    }

    fn get(target: &str) -> Request {
        Request {
            method: Method::Get,
            target: target.into(),
            version: Version::Http11,
            keep_alive: true,
            body_len: 0,
        }
    }

    fn respond(target: &str) -> Response {
        Workload::new(Arc::new(FixedMetrics)).respond(&get(target))
    }

    #[test]
    fn routes_answer_with_their_bodies() {
        assert_eq!(respond("/").body.as_ref(), b"Hello, World!");
        assert_eq!(respond("/bytes?n=1000").body.len(), 1000);
        assert_eq!(respond("/bytes?n=0").body.len(), 0);
        assert_eq!(respond("/metrics").body.as_ref(), b"dispatchlab_requests_total 7\n");
        assert_eq!(respond("/nope").status, Status::NOT_FOUND);
        assert_eq!(respond("/panic").status, Status::NOT_FOUND, "disabled unless asked for");
    }

    #[test]
    fn parameters_are_bounded() {
        for target in [
            "/sleep",
            "/sleep?ms=",
            "/sleep?ms=x",
            "/sleep?ms=10001",
            "/spin?us=-1",
            "/bytes?n=1048577",
        ] {
            assert_eq!(respond(target).status, Status::BAD_REQUEST, "{target}");
        }
    }

    #[test]
    fn sleep_blocks_at_least_the_asked_time() {
        let start = Instant::now();
        assert_eq!(respond("/sleep?ms=20").status, Status::OK);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn spin_uses_at_least_the_asked_cpu_time() {
        let before = thread_cpu_time();
        assert_eq!(respond("/spin?us=3000").status, Status::OK);
        assert!(thread_cpu_time() - before >= Duration::from_micros(3000));
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let mut request = get("/");
        request.method = Method::Other;
        let response = Workload::new(Arc::new(FixedMetrics)).respond(&request);
        assert_eq!(response.status, Status::METHOD_NOT_ALLOWED);
        assert!(response.extra_headers.starts_with("Allow: "));
    }

    #[test]
    #[should_panic(expected = "on purpose")]
    fn panic_route_panics_when_enabled() {
        Workload::new(Arc::new(FixedMetrics))
            .with_panic_route(true)
            .respond(&get("/panic"));
    }
}
