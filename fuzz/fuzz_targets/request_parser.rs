//! The request decoder on arbitrary bytes: it must never panic, must consume
//! only what it was given, and must stop (a request, `NeedMore` or an error)
//! rather than loop. The input is decoded as one stream, the way a connection
//! would: each request's unconsumed rest is decoded again.
#![no_main]

use dispatchlab::http::{Decoded, Limits, RequestDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut decoder = RequestDecoder::new(limits);
    let mut rest = data;
    // Each request consumes at least one byte, so a stream of n bytes holds
    // at most n requests; a bound past that would be a loop.
    for _ in 0..=data.len() {
        match decoder.decode(rest) {
            Ok((used, decoded)) => {
                assert!(used <= rest.len(), "consumed {used} of {} bytes", rest.len());
                rest = &rest[used..];
                match decoded {
                    Decoded::Request(request) => {
                        assert!(
                            request.target.starts_with('/'),
                            "target {:?} not in origin form",
                            request.target
                        );
                        assert!(
                            request.body_len <= limits.max_body,
                            "body of {} bytes accepted",
                            request.body_len
                        );
                    }
                    Decoded::Continue => {}
                    Decoded::NeedMore => {
                        // A partial head larger than the limits must have been refused.
                        if decoder.at_message_start() {
                            assert!(
                                rest.len() <= limits.max_header_bytes,
                                "{} bytes of head buffered",
                                rest.len()
                            );
                        }
                        return;
                    }
                }
            }
            Err(error) => {
                let code = error.status().code;
                assert!((400..600).contains(&code), "refusal with status {code}");
                return;
            }
        }
    }
    panic!("decoder produced more requests than the input has bytes");
});
