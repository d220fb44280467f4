//! The routes every strategy serves, identically.
//!
//! | route | what it costs the thread that runs it |
//! |---|---|
//! | `GET /` | nothing: `Hello, World!` (the plaintext benchmark) |
//! | `GET /sleep?ms=N` | waits N ms (I/O-bound work: the thread blocks, a task awaits), N ≤ 10,000 |
//! | `GET /spin?us=N` | N µs of *CPU time* in a busy loop (CPU-bound work), N ≤ 1,000,000 |
//! | `GET /bytes?n=N` | an N-byte body (payload size), N ≤ 1 MiB, a slice of one shared pattern |
//! | `GET /metrics` | the server's counters in Prometheus text format |
//!
//! `HEAD` and `POST` are answered like `GET` (HEAD without the body); other
//! methods get 405, other paths 404, a missing or out-of-range parameter 400
//! (the connection stays open: the request was valid HTTP).
//!
//! A handler says how long its answer must wait instead of waiting itself
//! ([`Reply::After`]): `/sleep` is the one route that waits. The blocking
//! servers wait with `thread::sleep` on the thread that runs the job
//! ([`Reply::wait_blocking`]); the tokio reference server awaits its timer.
//! Every server runs the same route code, so a route costs the same work
//! everywhere and only how the wait is spent differs.
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

/// A handler's answer: a response now, or a response due after a wait that
/// costs no work (the I/O-bound route).
#[derive(Debug)]
pub enum Reply {
    /// The response, ready.
    Now(Response),
    /// The response, to be sent once `wait` has passed.
    After {
        /// How long the answer waits.
        wait: Duration,
        /// The response to send then.
        response: Response,
    },
}

impl Reply {
    /// Spends the wait blocked on this thread (what a thread-per-job server
    /// does with I/O-bound work) and returns the response.
    pub fn wait_blocking(self) -> Response {
        match self {
            Reply::Now(response) => response,
            Reply::After { wait, response } => {
                thread::sleep(wait);
                response
            }
        }
    }
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

    /// Runs the handler for `request` on the current thread, except for the
    /// wait, which the caller spends as it can.
    pub fn reply(&self, request: &Request) -> Reply {
        if request.method == Method::Other {
            let mut response = Response::text(Status::METHOD_NOT_ALLOWED, &b"only GET, HEAD and POST\n"[..]);
            response.extra_headers = "Allow: GET, HEAD, POST\r\n";
            return Reply::Now(response);
        }
        match request.path() {
            "/sleep" => match param(request, "ms", MAX_SLEEP_MS) {
                Ok(ms) => Reply::After {
                    wait: Duration::from_millis(ms),
                    response: Response::text(Status::OK, format!("slept {ms} ms\n").into_bytes()),
                },
                Err(bad) => Reply::Now(bad),
            },
            _ => Reply::Now(self.respond_now(request)),
        }
    }

    /// The routes that answer at once.
    fn respond_now(&self, request: &Request) -> Response {
        match request.path() {
            "/" => Response::text(Status::OK, HELLO),
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
    param(request, name, max).map_or_else(|bad| bad, handler)
}

/// Reads `?name=N` within `0..=max`, or gives the 400 that says what is wrong.
fn param(request: &Request, name: &str, max: u64) -> Result<u64, Response> {
    match request.query_param(name).map(str::parse::<u64>) {
        Some(Ok(value)) if value <= max => Ok(value),
        _ => Err(Response::text(
            Status::BAD_REQUEST,
            Cow::Owned(format!("{} needs ?{name}=N with N from 0 to {max}\n", request.path()).into_bytes()),
        )),
    }
}

/// The `/bytes` payload: printable, so that it reads well in a terminal.
///
/// Made once and shared: an answer's body is a `'static` slice of it, which
/// the servers write from where it lies as the socket drains (see
/// `server::output`), so no connection copies it.
pub(crate) fn payload() -> &'static [u8] {
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
        Workload::new(Arc::new(FixedMetrics))
            .reply(&get(target))
            .wait_blocking()
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
    fn sleep_says_how_long_to_wait_instead_of_blocking() {
        let workload = Workload::new(Arc::new(FixedMetrics));
        let start = Instant::now();
        let Reply::After { wait, response } = workload.reply(&get("/sleep?ms=500")) else {
            panic!("/sleep must leave the wait to the caller");
        };
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "reply() itself must not sleep"
        );
        assert_eq!(
            (wait, response.body.as_ref()),
            (Duration::from_millis(500), &b"slept 500 ms\n"[..])
        );
        assert!(matches!(workload.reply(&get("/sleep?ms=x")), Reply::Now(r) if r.status == Status::BAD_REQUEST));
        assert!(matches!(workload.reply(&get("/")), Reply::Now(_)));
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
        let response = Workload::new(Arc::new(FixedMetrics)).reply(&request).wait_blocking();
        assert_eq!(response.status, Status::METHOD_NOT_ALLOWED);
        assert!(response.extra_headers.starts_with("Allow: "));
    }

    #[test]
    #[should_panic(expected = "on purpose")]
    fn panic_route_panics_when_enabled() {
        Workload::new(Arc::new(FixedMetrics))
            .with_panic_route(true)
            .reply(&get("/panic"))
            .wait_blocking();
    }
}
