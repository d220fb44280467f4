//! The connection state machine both blocking and tokio connections step
//! ([`Exchange`]) fed arbitrary bytes in arbitrary chunks, the way a socket
//! delivers them, with the real workload answering and every wait a handler
//! asks for skipped ([`Exchange::answer_now`]). It must never panic, keep both buffers bounded, write only
//! HTTP responses, and stop at the first answer that closes.
//!
//! Input layout: the first byte says how many chunk sizes follow (1 to 8),
//! each size byte gives a chunk of 1 to 256 bytes, and the sizes repeat over
//! the rest of the input, which is the byte stream.
//!
//! `/panic` is served: its panic must be caught and answered 500. libFuzzer's
//! panic hook aborts on *any* panic, caught or not, so the target installs a
//! hook that lets that one panic through silently and aborts on every other.
//!
//! `/sleep` is served: its wait is the driver's, and this driver skips it.
//! Inputs naming `/spin` are skipped: that handler burns up to a second of
//! CPU itself, which would only slow the fuzzer down.
#![no_main]

use std::panic;
use std::sync::{Arc, Once};

use dispatchlab::http::{HttpError, Limits};
use dispatchlab::server::exchange::{Exchange, Step};
use dispatchlab::server::output::{STREAM_AT, WINDOW};
use dispatchlab::workload::{MAX_BYTES, MetricsSource, Workload};
use libfuzzer_sys::fuzz_target;

/// The largest response the workload encodes: a `/bytes` body plus a head.
const LARGEST_RESPONSE: usize = MAX_BYTES + 4096;

/// The message of the `/panic` route's deliberate panic.
const DELIBERATE: &str = "the /panic route panics on purpose";

struct NoMetrics;

impl MetricsSource for NoMetrics {
    fn render(&self) -> String {
        String::new()
    }
}

fuzz_target!(|data: &[u8]| {
    static HOOK: Once = Once::new();
    HOOK.call_once(allow_the_deliberate_panic);
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8) + 1;
    if rest.len() < count {
        return;
    }
    let (sizes, stream) = rest.split_at(count);
    if contains(stream, b"spin") {
        return;
    }
    let workload = Workload::new(Arc::new(NoMetrics)).with_panic_route(true);
    let mut exchange = Exchange::detached(workload, Limits::default());
    let mut stream = stream;
    for &size in sizes.iter().cycle() {
        if stream.is_empty() {
            return;
        }
        let chunk = &stream[..stream.len().min(usize::from(size) + 1)];
        let taken = exchange.receive(chunk);
        stream = &stream[taken..];
        assert!(
            exchange.buffered_input() <= exchange.input_capacity(),
            "input past its capacity"
        );
        let step = loop {
            let step = exchange.answer_now();
            check_output(&exchange);
            exchange.clear_output();
            if !matches!(step, Step::Flush) {
                break step;
            }
        };
        match step {
            Step::Close(_) => return,
            Step::NeedMore if taken == 0 && exchange.is_full() => {
                // What the server does with a head that does not fit.
                exchange.refuse(HttpError::HeadersTooLarge);
                check_output(&exchange);
                return;
            }
            Step::NeedMore => assert!(taken > 0 || chunk.is_empty(), "no progress on a non-full buffer"),
            Step::Flush | Step::Answer(_) => unreachable!("answer_now answers and the loop above flushes"),
        }
    }
});

fn allow_the_deliberate_panic() {
    let abort_on_others = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE) {
            abort_on_others(info);
        }
    }));
}

fn check_output(exchange: &Exchange) {
    let output = exchange.output();
    assert!(
        output.len() <= WINDOW + LARGEST_RESPONSE,
        "{} bytes of output unwritten",
        output.len()
    );
    // Doubling growth and the spare buffer: at most twice the window and an
    // answer whose body is copied; larger bodies are streamed.
    assert!(
        output.held() <= 2 * (WINDOW + STREAM_AT + 4096),
        "{} bytes of output held",
        output.held()
    );
    assert!(
        output.is_empty() || output.piece().starts_with(b"HTTP/1.1 "),
        "output is not a response"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
