//! Property tests of the HTTP codec: whatever way a socket splits a valid
//! pipelined stream, the same requests come out; strict framing refuses no
//! chunk extension the grammar allows, and every bare LF in a head; and no
//! input, however malformed, panics the decoder, the connection state
//! machine or makes either hold more than its limits allow. (The fuzz targets in `fuzz/`
//! search the same space with coverage guidance; these run in `cargo test`.)

use std::sync::Arc;

use dispatchlab::http::{Decoded, HttpError, Limits, Request, RequestDecoder};
use dispatchlab::server::exchange::{Exchange, Step};
use dispatchlab::server::output::{STREAM_AT, WINDOW};
use dispatchlab::workload::{MAX_BYTES, MetricsSource, Workload};
use proptest::prelude::*;

/// One request of a generated pipeline, with the bytes that encode it.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let path = "/[a-z0-9]{0,12}(\\?[a-z]=[0-9]{1,3})?";
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    (path, body, 0..4u8, 1..8usize).prop_map(|(path, body, kind, chunk)| match kind {
        0 => format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        1 => {
            let mut bytes = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            bytes.extend_from_slice(&body);
            bytes
        }
        2 => {
            let mut bytes =
                format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
            for piece in body.chunks(chunk) {
                bytes.extend_from_slice(format!("{:x};e=1\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
            bytes
        }
        _ => format!("HEAD {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").into_bytes(),
    })
}

/// `BWS`: optional spaces and tabs.
fn bws() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(b' '), Just(b'\t')], 0..3)
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,8}".prop_map(String::into_bytes)
}

/// `quoted-string`: qdtext and quoted pairs (RFC 9110 §5.6.4), obs-text included.
fn quoted_string() -> impl Strategy<Value = Vec<u8>> {
    let qdtext = any::<u8>().prop_filter(
        "qdtext",
        |&b| matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF),
    );
    let pair = any::<u8>()
        .prop_filter("quoted-pair", |&b| matches!(b, b'\t' | b' '..=0x7E | 0x80..=0xFF))
        .prop_map(|b| vec![b'\\', b]);
    let piece = prop_oneof![qdtext.prop_map(|b| vec![b]), pair];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| [&b"\""[..], &pieces.concat(), b"\""].concat())
}

/// One chunk extension, `BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ]`.
fn chunk_extension() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![token(), quoted_string()];
    let assignment = proptest::option::of((bws(), bws(), value));
    (bws(), bws(), token(), assignment).prop_map(|(before, after, name, assignment)| {
        let mut bytes = [before, b";".to_vec(), after, name].concat();
        if let Some((before, after, value)) = assignment {
            bytes.extend([before, b"=".to_vec(), after, value].concat());
        }
        bytes
    })
}

/// Decodes `stream` delivered in pieces whose sizes cycle through `splits`.
fn decode_split(stream: &[u8], splits: &[usize]) -> Result<Vec<Request>, HttpError> {
    let mut decoder = RequestDecoder::new(Limits::default());
    let (mut pending, mut requests) = (Vec::new(), Vec::new());
    let mut rest = stream;
    for &size in splits.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        pending.extend_from_slice(piece);
        loop {
            let (used, decoded) = decoder.decode(&pending)?;
            pending.drain(..used);
            match decoded {
                Decoded::Request(request) => requests.push(request),
                Decoded::Continue => {}
                Decoded::NeedMore => break,
            }
        }
        assert!(
            pending.len() <= Limits::default().max_header_bytes + 1024,
            "decoder left {} bytes",
            pending.len()
        );
    }
    Ok(requests)
}

struct NoMetrics;

impl MetricsSource for NoMetrics {
    fn render(&self) -> String {
        String::new()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_a_valid_pipeline_parses_to_the_same_requests(
        requests in proptest::collection::vec(request(), 1..8),
        splits in proptest::collection::vec(1..64usize, 1..6),
    ) {
        let stream = requests.concat();
        let whole = decode_split(&stream, &[stream.len()]).expect("a generated pipeline is valid");
        prop_assert_eq!(whole.len(), requests.len());
        prop_assert_eq!(decode_split(&stream, &splits).expect("still valid when split"), whole);
    }

    #[test]
    fn every_chunk_extension_the_grammar_allows_is_accepted(
        extensions in proptest::collection::vec(proptest::collection::vec(chunk_extension(), 0..4), 3),
        splits in proptest::collection::vec(1..64usize, 1..6),
    ) {
        let mut stream = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for (size, data) in [(b"3", &b"abc"[..]), (b"2", b"de")].iter().zip(&extensions) {
            stream.extend([&size.0[..], &data.concat(), b"\r\n", size.1, b"\r\n"].concat());
        }
        stream.extend([&b"0"[..], &extensions[2].concat(), b"\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"].concat());
        let requests = decode_split(&stream, &splits);
        let read: Vec<(String, u64)> = requests
            .map_err(|err| TestCaseError::fail(format!("{}: {err}", stream.escape_ascii())))?
            .into_iter()
            .map(|r| (r.target, r.body_len))
            .collect();
        prop_assert_eq!(read, vec![("/".to_owned(), 5), ("/next".to_owned(), 0)]);
    }

    #[test]
    fn a_bare_lf_anywhere_in_a_head_is_refused(
        request in request(),
        at in any::<prop::sample::Index>(),
        splits in proptest::collection::vec(1..64usize, 1..6),
    ) {
        let head_len = request.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 2;
        let at = at.index(head_len);
        prop_assume!(at == 0 || request[at - 1] != b'\r');
        let mut stream = request.clone();
        stream.insert(at, b'\n');
        stream.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
        let outcome = decode_split(&stream, &splits).map(|requests| requests.len());
        prop_assert_eq!(outcome.map_err(|err| err.status().code), Err(400), "{}", stream.escape_ascii());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        splits in proptest::collection::vec(1..256usize, 1..6),
    ) {
        // Either requests or a refusal with a 4xx/5xx status; never a panic.
        if let Err(error) = decode_split(&bytes, &splits) {
            prop_assert!((400..600).contains(&error.status().code));
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_head_keep_the_connection_bounded(
        prefix in request(),
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1..512usize,
    ) {
        let mut stream = prefix;
        stream.extend_from_slice(&bytes);
        let mut exchange = Exchange::detached(Workload::new(Arc::new(NoMetrics)), Limits::default());
        for piece in stream.chunks(chunk) {
            let mut piece = piece;
            while !piece.is_empty() {
                let taken = exchange.receive(piece);
                piece = &piece[taken..];
                prop_assert!(exchange.buffered_input() <= exchange.input_capacity());
                let turn = loop {
                    let turn = exchange.answer_now();
                    prop_assert!(exchange.output().len() <= WINDOW + MAX_BYTES + 4096);
                    // Doubling growth and the spare buffer: at most twice the window and an answer.
                    prop_assert!(exchange.output().held() <= 2 * (WINDOW + STREAM_AT + 4096));
                    exchange.clear_output();
                    if !matches!(turn, Step::Flush) {
                        break turn;
                    }
                };
                if matches!(turn, Step::Close(_)) {
                    return Ok(());
                }
                if taken == 0 {
                    prop_assert!(exchange.is_full(), "no progress although the buffer has room");
                    return Ok(());
                }
            }
        }
        prop_assert!(exchange.requests_answered() >= 1, "the valid first request was answered");
    }
}
