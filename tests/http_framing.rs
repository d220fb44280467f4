//! Request smuggling, checked over real sockets for every strategy in every
//! scope and the tokio reference server: each request that two parsers
//! could frame differently is sent with a second request behind it in the
//! same write. The first must get its 4xx and a closed connection, and the
//! second must never be answered. Valid requests at the edges of the same
//! rules must still be served, so strictness refuses nothing valid.

mod support;

use support::{Client, Target, metric, servers};

/// The request hidden behind each ambiguous one.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

const CHUNKED: &str = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Chunked bodies outside the grammar of RFC 9112 §7.1: each → 400.
const BAD_CHUNKED_BODIES: &[(&str, &str)] = &[
    ("bare LF in a chunk extension", "2;a\nAB\r\nCD\r\n0\r\n\r\n"),
    ("empty chunk size", "\r\n\r\n"),
    ("extension without a size", ";ext\r\n\r\n"),
    ("unbalanced quote in an extension", "5;a=\"b\r\nhello\r\n0\r\n\r\n"),
    ("whitespace after the size", "a \r\n0123456789\r\n0\r\n\r\n"),
    ("bare LF after the size", "5\nhello\r\n0\r\n\r\n"),
    ("bare CR in a size line", "5\rx\r\nhello\r\n0\r\n\r\n"),
    ("control byte in an extension", "5;a\u{1}\r\nhello\r\n0\r\n\r\n"),
    ("extension value missing", "5;a=\r\nhello\r\n0\r\n\r\n"),
    ("size overflowing 64 bits", "10000000000000000\r\nhello\r\n0\r\n\r\n"),
    ("data ended by a bare LF", "5\r\nhello\n0\r\n\r\n"),
    ("bare LF in a trailer", "0\r\nX: y\nContent-Length: 5\r\n\r\n"),
    ("trailer section ended by a bare LF", "0\r\n\n"),
    ("folded trailer", "0\r\nX: y\r\n folded\r\n\r\n"),
    ("space before a trailer colon", "0\r\nX : y\r\n\r\n"),
];

/// Heads outside RFC 9112 §2–§5: each → 400.
const BAD_HEADS: &[(&str, &str)] = &[
    (
        "bare LF before Content-Length",
        "POST / HTTP/1.1\r\nHost: a\r\nDummy: x\nContent-Length: 35\r\n\r\n",
    ),
    (
        "bare LF before Transfer-Encoding",
        "POST / HTTP/1.1\r\nHost: a\r\nx:x\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"),
    ("bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n"),
    ("bare CR in a header", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
    ("bare CR ending a header", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
    ("NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"),
    (
        "control byte in a header value",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1}b\r\n\r\n",
    ),
    (
        "DEL in a header value",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7f}b\r\n\r\n",
    ),
    (
        "control byte in a header name",
        "GET / HTTP/1.1\r\nHost: a\r\nX\u{1}: b\r\n\r\n",
    ),
    ("space before a colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    ("tab before a colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"),
    ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n folded\r\n\r\n"),
    (
        "whitespace before the first header",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    ),
    ("space inside the target", "GET /foo bar/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("non-ASCII target", "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("version without a minor digit", "GET / HTTP/2\r\nHost: a\r\n\r\n"),
    ("fragment in the target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"),
    (
        "bad percent-encoding in the target",
        "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    (
        "userinfo in an absolute target",
        "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    ("Host that is not a host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    (
        "Content-Length twice, equal",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ),
    (
        "Content-Length list, equal",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    ),
];

/// Refusals of `HEAD` requests: the status of the same request as GET, and
/// no body.
const HEAD_REFUSALS: &[(&str, &str, u16)] = &[
    ("no Host", "HEAD /url HTTP/1.1\r\n\r\n", 400),
    (
        "bad Content-Length",
        "HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        400,
    ),
    (
        "gzip Transfer-Encoding",
        "HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
    ("HTTP/2.0", "HEAD / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("bare LF in the head", "HEAD / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
    (
        "bad chunk size",
        "HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    ),
];

/// Valid requests at the edges of the rules above: each → 200, and the
/// request behind it is served too.
const VALID_EDGES: &[(&str, &str)] = &[
    (
        "chunk extensions with token and quoted values",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
         5 ; a = b ;c=\"x; \\\"y\\\\\"\r\nhello\r\n0;last\r\n\r\n",
    ),
    (
        "trailers",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\tz\r\n\r\n",
    ),
    (
        "chunk sizes with leading zeros",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n00\r\n\r\n",
    ),
    (
        "HTAB in a header value",
        "GET / HTTP/1.1\r\nHost: a\r\nX: tab\there\t\r\n\r\n",
    ),
    (
        "obs-text in a header value",
        "GET / HTTP/1.1\r\nHost: a\r\nX: caf\u{e9}\r\n\r\n",
    ),
    ("empty header value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n"),
    ("leading CRLFs", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("absolute form", "GET http://a.example:80/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    (
        "absolute form with an IP literal",
        "GET http://[::1]:80?x HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    (
        "every character a target may have",
        "GET /?azAZ09-._~!$&'()*+,;=:@%2f/?/?%41 HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    (
        "HTTP/1.0 keep-alive without Host",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ),
];

/// Sends `request` with [`SMUGGLED`] behind it and checks the one answer:
/// `status`, `Connection: close`, the connection closed with nothing after it.
fn refused_alone(target: Target, client: &mut Client, name: &str, request: &[u8], status: u16, head: bool) {
    // A server may answer and close before the whole write is read.
    let _ = client.try_send(&[request, SMUGGLED].concat());
    let response = if head {
        client.read_head_only()
    } else {
        client
            .try_read_response()
            .unwrap_or_else(|err| panic!("{target} {name}: {err}"))
    };
    assert_eq!(response.status, status, "{target} {name}: {}", response.text());
    assert!(response.says_close(), "{target} {name}: must say Connection: close");
    assert!(
        client.is_closed(),
        "{target} {name}: the connection must close with nothing after the answer"
    );
}

/// Runs `cases` (name, request, status, HEAD?) against every server: each
/// alone on its connection, then the server still serves, and counted once
/// each: a smuggled request answered 404 would count too.
fn each_refused_alone(cases: &[(String, Vec<u8>, u16, bool)]) {
    for target in servers() {
        let server = target.start();
        for (name, request, status, head) in cases {
            let mut client = Client::connect(server.local_addr());
            refused_alone(target, &mut client, name, request, *status, *head);
        }
        assert_eq!(
            Client::connect(server.local_addr()).get("/").status,
            200,
            "{target}: still serving"
        );
        let counted = metric(server.local_addr(), "dispatchlab_responses_total{class=\"4xx\"}")
            + metric(server.local_addr(), "dispatchlab_responses_total{class=\"5xx\"}");
        assert_eq!(
            counted,
            cases.len() as u64,
            "{target}: one answer per case, none to /smuggled"
        );
    }
}

#[test]
fn ambiguous_chunked_bodies_are_refused_and_nothing_behind_them_is_answered() {
    let cases: Vec<_> = BAD_CHUNKED_BODIES
        .iter()
        .map(|(name, body)| (name.to_string(), format!("{CHUNKED}{body}").into_bytes(), 400, false))
        .collect();
    each_refused_alone(&cases);
}

#[test]
fn ambiguous_heads_are_refused_and_nothing_behind_them_is_answered() {
    let cases: Vec<_> = BAD_HEADS
        .iter()
        .map(|(name, head)| (name.to_string(), head.as_bytes().to_vec(), 400, false))
        .collect();
    each_refused_alone(&cases);
}

#[test]
fn refusals_of_head_requests_carry_no_body() {
    let cases: Vec<_> = HEAD_REFUSALS
        .iter()
        .map(|(name, request, status)| (name.to_string(), request.as_bytes().to_vec(), *status, true))
        .collect();
    each_refused_alone(&cases);
}

#[test]
fn a_head_refusal_keeps_the_length_the_get_refusal_has() {
    for target in servers() {
        let server = target.start();
        for (name, request, _) in HEAD_REFUSALS {
            let mut head = Client::connect(server.local_addr());
            let _ = head.try_send(request.as_bytes());
            let head = head.read_head_only();
            let mut get = Client::connect(server.local_addr());
            let _ = get.try_send(request.replacen("HEAD", "GET", 1).as_bytes());
            let get = get.read_response();
            assert_eq!(
                head.header("content-length"),
                Some(get.body.len().to_string().as_str()),
                "{target} {name}"
            );
        }
    }
}

#[test]
fn valid_requests_at_the_edges_are_served_with_the_next_behind_them() {
    for target in servers() {
        let server = target.start();
        for (name, request) in VALID_EDGES {
            let mut client = Client::connect(server.local_addr());
            client.send(&[request.as_bytes(), b"GET /bytes?n=3 HTTP/1.1\r\nHost: a\r\n\r\n"].concat());
            let first = client.read_response();
            assert_eq!(first.status, 200, "{target} {name}: {}", first.text());
            let second = client.read_response();
            assert_eq!(
                (second.status, second.body.len()),
                (200, 3),
                "{target} {name}: the next request"
            );
        }
    }
}
