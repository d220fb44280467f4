//! What real clients need from the server, checked over real sockets for
//! every strategy in every scope it supports, and for the tokio reference
//! server: keep-alive, pipelining,
//! `Connection: close`, HTTP/1.0, split requests, bodies, and bad input
//! answered with its status and a closed connection while the server keeps
//! serving.

mod support;

use std::time::Duration;

use dispatchlab::Strategy;
use dispatchlab::server::Engine;
use support::{Client, eventually, metric, servers, start_with};

#[test]
fn a_hundred_requests_on_one_keep_alive_connection() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        for i in 0..100 {
            let response = client.get("/");
            assert_eq!(response.status, 200, "{target} request {i}");
            assert_eq!(response.body, b"Hello, World!", "{target}");
            assert!(!response.says_close(), "{target}: keep-alive is the HTTP/1.1 default");
            assert!(response.header("date").is_some() && response.header("server").is_some());
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        let burst: String = (1..=20)
            .map(|n| format!("GET /bytes?n={n} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .collect();
        client.send(burst.as_bytes());
        for n in 1..=20 {
            let response = client.read_response();
            assert_eq!(
                (response.status, response.body.len()),
                (200, n),
                "{target}: response {n} out of order"
            );
        }
    }
}

/// A pipeline longer than request scope's per-connection limit (64 in
/// flight) is decoded in rounds as answers leave. No round may wait for a
/// timer. A loop that slept until its next timeout sweep between rounds took
/// 250 ms per round (2.25 s here); the bound is relative to the same number
/// of requests sent one round trip at a time on the same server, with room
/// for strategies that are slower when 64 jobs arrive at once (a thread per
/// request: about 2x).
#[test]
fn a_pipeline_longer_than_the_in_flight_limit_is_not_held_back() {
    const REQUESTS: usize = 10 * 64;
    let burst: String = (0..REQUESTS).map(|_| "GET / HTTP/1.1\r\nHost: t\r\n\r\n").collect();
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        let started = std::time::Instant::now();
        for _ in 0..REQUESTS {
            assert_eq!(client.get("/").status, 200, "{target}");
        }
        let one_at_a_time = started.elapsed();

        let started = std::time::Instant::now();
        client.send(burst.as_bytes());
        for n in 0..REQUESTS {
            assert_eq!(client.read_response().status, 200, "{target}: response {n}");
        }
        let pipelined = started.elapsed();
        assert!(
            pipelined < 4 * one_at_a_time,
            "{target}: {REQUESTS} pipelined requests took {pipelined:?}, \
             {REQUESTS} round trips {one_at_a_time:?}: a pipeline round waited for a timer"
        );
    }
}

#[test]
fn connection_close_is_honoured() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = client.read_response();
        assert_eq!(response.status, 200, "{target}");
        assert!(response.says_close(), "{target}: response must say close");
        assert!(client.is_closed(), "{target}: socket must close");
    }
}

#[test]
fn http_1_0_keeps_the_connection_only_when_asked() {
    for target in servers() {
        let server = target.start();
        let mut plain = Client::connect(server.local_addr());
        plain.send(b"GET / HTTP/1.0\r\n\r\n");
        let response = plain.read_response();
        assert_eq!(response.status, 200, "{target}");
        assert!(
            response.says_close() && plain.is_closed(),
            "{target}: HTTP/1.0 closes by default"
        );

        let mut keep = Client::connect(server.local_addr());
        for _ in 0..3 {
            keep.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            let response = keep.read_response();
            assert_eq!(response.header("connection"), Some("keep-alive"), "{target}: echoed");
        }
    }
}

#[test]
fn a_request_sent_one_byte_at_a_time() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        for byte in b"GET /bytes?n=7 HTTP/1.1\r\nHost: t\r\nUser-Agent: slow\r\n\r\n" {
            client.send(&[*byte]);
        }
        let response = client.read_response();
        assert_eq!((response.status, response.body.len()), (200, 7), "{target}");
    }
}

#[test]
fn request_bodies_are_read_and_discarded() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
        assert_eq!(client.read_response().status, 200, "{target}");
        client
            .send(b"POST /bytes?n=3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        assert_eq!(client.read_response().body.len(), 3, "{target}: chunked body discarded");
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
        let interim = client.read_one().expect("interim response");
        assert_eq!(interim.status, 100, "{target}: 100 Continue before the body");
        client.send(b"body");
        assert_eq!(client.read_response().status, 200, "{target}");
        assert_eq!(client.get("/").status, 200, "{target}: still in step after the bodies");
    }
}

#[test]
fn head_gets_the_length_without_the_body() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        client.send(b"HEAD /bytes?n=50 HTTP/1.1\r\nHost: t\r\n\r\nGET /bytes?n=2 HTTP/1.1\r\nHost: t\r\n\r\n");
        // The HEAD response carries a Content-Length but no body; the next
        // response must follow its head directly.
        let head = client.read_head_only();
        assert_eq!(
            (head.status, head.header("content-length")),
            (200, Some("50")),
            "{target}"
        );
        assert_eq!(client.read_response().body.len(), 2, "{target}");
    }
}

/// Each malformed or refused request, its status, and the promise that the
/// connection is closed after the answer.
const BAD_REQUESTS: &[(&str, &[u8], u16)] = &[
    ("garbage", b"GARBAGE\r\n\r\n", 400),
    ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    ("no Host in 1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (
        "bad Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        400,
    ),
    (
        "negative Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
        400,
    ),
    (
        "differing Content-Lengths",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        400,
    ),
    (
        "CL with TE",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "bad chunk size",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
        400,
    ),
    (
        "gzip TE",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    (
        "body too large",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n",
        413,
    ),
];

#[test]
fn bad_input_gets_its_status_and_a_closed_connection() {
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(9000)).into_bytes();
    let big_header = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "y".repeat(20_000)).into_bytes();
    let many_headers = format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", "X-H: 1\r\n".repeat(100)).into_bytes();
    let mut cases: Vec<(&str, &[u8], u16)> = BAD_REQUESTS.to_vec();
    cases.extend([
        ("request line too long", long_line.as_slice(), 414),
        ("header too large", big_header.as_slice(), 431),
        ("too many headers", many_headers.as_slice(), 431),
    ]);
    for target in servers() {
        let server = target.start();
        for &(name, bytes, status) in &cases {
            let mut client = Client::connect(server.local_addr());
            // A server may answer and close before the whole request is sent.
            let _ = client.try_send(bytes);
            let response = client
                .try_read_response()
                .unwrap_or_else(|err| panic!("{target} {name}: {err}"));
            assert_eq!(response.status, status, "{target} {name}: {}", response.text());
            assert!(response.says_close(), "{target} {name}: must say Connection: close");
            assert!(client.is_closed(), "{target} {name}: must close the connection");
        }
        assert_eq!(
            Client::connect(server.local_addr()).get("/").status,
            200,
            "{target}: still serving"
        );
        let client_errors = cases.iter().filter(|&&(_, _, status)| status < 500).count() as u64;
        let counted = metric(server.local_addr(), "dispatchlab_responses_total{class=\"4xx\"}");
        assert_eq!(counted, client_errors, "{target}: every refusal counted once");
    }
}

#[test]
fn a_slow_header_gets_408_and_a_closed_connection() {
    for target in servers() {
        let mut config = target.config();
        config.timeouts.header = Duration::from_millis(300);
        let server = start_with(config);
        let mut client = Client::connect(server.local_addr());
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
        let response = client.read_response();
        assert_eq!(response.status, 408, "{target}");
        assert!(response.says_close() && client.is_closed(), "{target}");
        assert_eq!(
            Client::connect(server.local_addr()).get("/").status,
            200,
            "{target}: still serving"
        );
    }
}

#[test]
fn app_level_errors_keep_the_connection() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        assert_eq!(client.get("/no/such/route").status, 404, "{target}");
        assert_eq!(client.get("/sleep?ms=99999999").status, 400, "{target}");
        client.send(b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = client.read_response();
        assert_eq!(response.status, 405, "{target}");
        assert!(response.header("allow").is_some());
        assert_eq!(client.get("/").status, 200, "{target}: same connection still served");
    }
}

#[test]
fn a_panicking_handler_gets_500_and_the_server_survives() {
    for target in servers() {
        let mut config = target.config();
        config.panic_route = true;
        let server = start_with(config);
        for _ in 0..6 {
            let mut client = Client::connect(server.local_addr());
            let response = client.get("/panic");
            assert_eq!(response.status, 500, "{target}");
            assert!(response.says_close() && client.is_closed(), "{target}");
        }
        let mut client = Client::connect(server.local_addr());
        for _ in 0..10 {
            assert_eq!(client.get("/").status, 200, "{target}: workers survived");
        }
        if let Engine::Dispatch(strategy) = target.engine
            && strategy != Strategy::ThreadPerTask
            && !strategy.runs_on_caller()
        {
            let workers = target.config().dispatch.workers as u64;
            eventually("the pool keeps its workers", || {
                server.dispatch_stats().threads_alive == workers
            });
        }
        assert_eq!(
            metric(server.local_addr(), "dispatchlab_handler_panics_total"),
            6,
            "{target}"
        );
    }
}

#[test]
fn metrics_count_what_was_served() {
    for target in servers() {
        let server = target.start();
        let mut client = Client::connect(server.local_addr());
        for _ in 0..25 {
            client.get("/");
        }
        let text = Client::connect(server.local_addr()).get("/metrics").text();
        assert!(
            text.contains("dispatchlab_responses_total{class=\"2xx\"} 25\n"),
            "{target}:\n{text}"
        );
        assert!(
            text.contains(&format!(
                "strategy=\"{}\",scope=\"{}\"",
                target.engine,
                target.scope_name()
            )),
            "{target}"
        );
        assert!(text.contains("dispatchlab_connections_open 2\n"), "{target}:\n{text}");
        // The /metrics request itself is decoded, and in flight, while it renders.
        for line in ["dispatchlab_requests_total 26\n", "dispatchlab_requests_in_flight 1\n"] {
            assert!(text.contains(line), "{target}: no {line:?} in\n{text}");
        }
    }
}
