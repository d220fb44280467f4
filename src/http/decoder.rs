//! The request decoder: bytes in, complete requests out, bodies read and
//! discarded, whatever way the bytes are split.
//!
//! The decoder owns no buffer. Each call gets the bytes received and not yet
//! consumed, and says how many it consumed; the caller keeps the rest for the
//! next call. Both scopes drive it the same way: connection scope from a
//! blocking socket, request scope from an event loop.

use super::chunked::parse_size_line;
use super::request::{BodyFraming, Method, Request, method_of, parse_head, parse_trailers};
use super::{HttpError, Limits};

/// What one call to [`RequestDecoder::decode`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A complete request (head parsed, body discarded).
    Request(Request),
    /// The client sent `Expect: 100-continue` and is waiting: send
    /// [`CONTINUE`](super::CONTINUE) now, then keep decoding.
    Continue,
    /// The bytes so far are a valid prefix; read more.
    NeedMore,
}

/// Turns a byte stream into requests: bytes in any split, complete requests
/// out, bodies read and discarded.
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
}

#[derive(Debug)]
enum State {
    Head,
    Body { request: Request, body: Body },
}

#[derive(Debug)]
enum Body {
    Remaining(u64),
    Chunked { step: ChunkStep, total: u64 },
}

#[derive(Debug, Clone, Copy)]
enum ChunkStep {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// The outcome of one step over the body.
enum Step {
    Done,
    NeedMore,
    Continue,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Head,
        }
    }

    /// Whether the decoder is between requests (no head or body half read).
    pub fn at_message_start(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// The method of the request half received, so that a refusal made
    /// without it (a timeout, a head too large) can still answer `HEAD` with
    /// the head alone: from the head already decoded, else from the method
    /// token at the start of `buffered` once the space after it is in;
    /// [`Method::Other`] before that.
    pub fn pending_method(&self, buffered: &[u8]) -> Method {
        if let State::Body { request, .. } = &self.state {
            return request.method;
        }
        let line = buffered.trim_ascii_start();
        let token = line.iter().position(|&b| b == b' ').map(|end| &line[..end]);
        token
            .and_then(|token| std::str::from_utf8(token).ok())
            .map_or(Method::Other, method_of)
    }

    /// Decodes from `input`, returning how many bytes were consumed and what
    /// they produced. Call again with the unconsumed rest after a
    /// [`Decoded::Request`] or [`Decoded::Continue`]: more may follow.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Decoded), HttpError> {
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            match &mut self.state {
                State::Head => {
                    let Some(head) = parse_head(rest, &self.limits)? else {
                        return Ok((consumed, Decoded::NeedMore));
                    };
                    consumed += head.len;
                    let mut request = head.request;
                    let body = match head.framing {
                        BodyFraming::Length(0) => return Ok((consumed, Decoded::Request(request))),
                        BodyFraming::Length(length) => {
                            request.body_len = length;
                            Body::Remaining(length)
                        }
                        BodyFraming::Chunked => Body::Chunked {
                            step: ChunkStep::Size,
                            total: 0,
                        },
                    };
                    self.state = State::Body { request, body };
                    if head.expects_continue && consumed == input.len() {
                        return Ok((consumed, Decoded::Continue));
                    }
                }
                State::Body { request, body } => {
                    let method = request.method;
                    let (used, step) = body.discard(rest, &self.limits).map_err(|err| err.of(method))?;
                    consumed += used;
                    match step {
                        Step::NeedMore => return Ok((consumed, Decoded::NeedMore)),
                        Step::Continue => continue,
                        Step::Done => return Ok((consumed, Decoded::Request(self.finish_request()))),
                    }
                }
            }
        }
    }

    fn finish_request(&mut self) -> Request {
        match std::mem::replace(&mut self.state, State::Head) {
            State::Body { mut request, body } => {
                if let Body::Chunked { total, .. } = body {
                    request.body_len = total;
                }
                request
            }
            State::Head => unreachable!("finish_request is only called from the body state"),
        }
    }
}

impl Body {
    /// Consumes body bytes from `input`; `Step::Continue` means "call again
    /// with the rest" (a chunk boundary was crossed).
    fn discard(&mut self, input: &[u8], limits: &Limits) -> Result<(usize, Step), HttpError> {
        match self {
            Body::Remaining(remaining) => {
                let used = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= used as u64;
                let step = if *remaining == 0 { Step::Done } else { Step::NeedMore };
                Ok((used, step))
            }
            Body::Chunked { step, total } => discard_chunked(step, total, input, limits),
        }
    }
}

fn discard_chunked(
    step: &mut ChunkStep,
    total: &mut u64,
    input: &[u8],
    limits: &Limits,
) -> Result<(usize, Step), HttpError> {
    match *step {
        ChunkStep::Size => match parse_size_line(input)? {
            None => Ok((0, Step::NeedMore)),
            Some((used, 0)) => {
                *step = ChunkStep::Trailers;
                Ok((used, Step::Continue))
            }
            Some((used, size)) => {
                *total = total.checked_add(size).ok_or(HttpError::BodyTooLarge)?;
                if *total > limits.max_body {
                    return Err(HttpError::BodyTooLarge);
                }
                *step = ChunkStep::Data(size);
                Ok((used, Step::Continue))
            }
        },
        ChunkStep::Data(remaining) => {
            let used = input.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let left = remaining - used as u64;
            *step = if left == 0 {
                ChunkStep::DataEnd
            } else {
                ChunkStep::Data(left)
            };
            Ok((used, if left == 0 { Step::Continue } else { Step::NeedMore }))
        }
        ChunkStep::DataEnd => match input {
            [b'\r', b'\n', ..] => {
                *step = ChunkStep::Size;
                Ok((2, Step::Continue))
            }
            [] | [b'\r'] => Ok((0, Step::NeedMore)),
            _ => Err(HttpError::BadRequest("chunk data not followed by CRLF")),
        },
        ChunkStep::Trailers => match parse_trailers(input, limits)? {
            None => Ok((0, Step::NeedMore)),
            Some(used) => Ok((used, Step::Done)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_method_is_known_once_its_token_is_in() {
        let mut decoder = RequestDecoder::new(Limits::default());
        assert_eq!(decoder.pending_method(b"HEA"), Method::Other, "token not finished");
        assert_eq!(decoder.pending_method(b"\r\nHEAD /slow"), Method::Head);
        assert_eq!(decoder.pending_method(b"GET / HT"), Method::Get);
        let head = b"HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab";
        let (used, decoded) = decoder.decode(head).expect("a valid prefix");
        assert_eq!((used, decoded), (head.len(), Decoded::NeedMore));
        assert_eq!(
            decoder.pending_method(b""),
            Method::Head,
            "the head is decoded, the body not"
        );
    }

    /// Feeds `stream` in pieces of `piece` bytes, as a socket might deliver
    /// it, and collects the requests (or the first error).
    fn decode_all(stream: &[u8], piece: usize) -> Result<Vec<Request>, HttpError> {
        let mut decoder = RequestDecoder::new(Limits::default());
        let (mut pending, mut requests) = (Vec::new(), Vec::new());
        for chunk in stream.chunks(piece) {
            pending.extend_from_slice(chunk);
            loop {
                let (used, decoded) = decoder.decode(&pending)?;
                pending.drain(..used);
                match decoded {
                    Decoded::Request(request) => requests.push(request),
                    Decoded::Continue => {}
                    Decoded::NeedMore => break,
                }
            }
        }
        Ok(requests)
    }

    const PIPELINE: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
        POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n\
        GET /d HTTP/1.0\r\n\r\n";

    #[test]
    fn any_split_of_a_pipeline_gives_the_same_requests() {
        let whole = decode_all(PIPELINE, PIPELINE.len()).expect("valid");
        let targets: Vec<&str> = whole.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["/a", "/b", "/c", "/d"]);
        assert_eq!((whole[1].body_len, whole[2].body_len), (5, 5));
        for piece in 1..40 {
            assert_eq!(decode_all(PIPELINE, piece).expect("valid"), whole, "piece size {piece}");
        }
    }

    #[test]
    fn continue_is_asked_for_only_before_the_body_arrives() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(decoder.decode(head), Ok((head.len(), Decoded::Continue)));
        assert!(!decoder.at_message_start());
        assert!(matches!(decoder.decode(b"ok"), Ok((2, Decoded::Request(_)))));
        assert!(decoder.at_message_start());
        let mut with_body = head.to_vec();
        with_body.extend_from_slice(b"ok");
        let mut decoder = RequestDecoder::new(Limits::default());
        assert!(matches!(decoder.decode(&with_body), Ok((_, Decoded::Request(_)))));
    }

    #[test]
    fn chunked_bodies_are_bounded_and_checked() {
        let limits = Limits {
            max_body: 4,
            ..Limits::default()
        };
        let mut decoder = RequestDecoder::new(limits);
        let big = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\n";
        assert_eq!(decoder.decode(big).map(|(_, d)| d), Err(HttpError::BodyTooLarge));
        let bad_size = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let err = decode_all(bad_size, bad_size.len()).expect_err("bad size");
        assert_eq!(err.status().code, 400);
        let no_crlf = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX";
        assert_eq!(decode_all(no_crlf, 1).expect_err("missing CRLF").status().code, 400);
    }

    const CHUNKED_HEAD: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

    /// The chunked bodies a lenient parser frames one way and a strict one
    /// another (or not at all): each is refused, whatever the split, before
    /// the request behind it is read.
    #[test]
    fn ambiguous_chunked_bodies_are_refused_in_any_split() {
        let bodies: [&[u8]; 12] = [
            b"2;a\nAB\r\nCD\r\n0\r\n\r\n",
            b"\r\n\r\n",
            b";ext\r\n\r\n",
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
            b"a \r\n0123456789\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\r\nhello\r\n0\r\nX: y\nZ: w\r\n\r\n",
            b"5\r\nhello\r\n0\r\n folded\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX: \x01\r\n\r\n",
        ];
        for body in bodies {
            let stream = [CHUNKED_HEAD, body, SMUGGLED].concat();
            for piece in [1, 2, 7, stream.len()] {
                let err = decode_all(&stream, piece).expect_err(&body.escape_ascii().to_string());
                assert_eq!(err.status().code, 400, "{} piece {piece}: {err}", body.escape_ascii());
            }
        }
    }

    #[test]
    fn valid_chunk_extensions_and_trailers_are_accepted() {
        let bodies: [&[u8]; 5] = [
            b"5;name\r\nhello\r\n0\r\n\r\n",
            b"5 ; a = b ; c=\"quoted; \\\" \\\\ x\"\r\nhello\r\n0;last\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: tab\there\r\n\r\n",
            b"00005\r\nhello\r\n000\r\n\r\n",
            b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        ];
        for body in bodies {
            let stream = [CHUNKED_HEAD, body, SMUGGLED].concat();
            for piece in [1, 3, stream.len()] {
                let requests =
                    decode_all(&stream, piece).unwrap_or_else(|err| panic!("{}: {err}", body.escape_ascii()));
                let read: Vec<(&str, u64)> = requests.iter().map(|r| (r.target.as_str(), r.body_len)).collect();
                assert_eq!(
                    read,
                    [("/", 5), ("/smuggled", 0)],
                    "{} piece {piece}",
                    body.escape_ascii()
                );
            }
        }
    }

    #[test]
    fn a_refused_body_of_a_head_request_is_answered_without_a_body() {
        let stream = b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let err = decode_all(stream, stream.len()).expect_err("bad size");
        assert_eq!((err.status().code, err.head_only()), (400, true));
    }

    #[test]
    fn content_length_body_split_across_reads() {
        let stream =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
        for piece in [1, 3, 7, 64] {
            let requests = decode_all(stream, piece).expect("valid");
            assert_eq!(requests.len(), 2, "piece {piece}");
            assert_eq!(requests[1].target, "/next");
        }
    }
}
