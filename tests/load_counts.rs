//! The load generator counts exactly what the server answered, over real
//! loopback sockets, in every connection mode; latency lower bounds hold.

mod support;

use std::time::Duration;

use dispatchlab::load::{self, ConnectionMode};
use support::test_servers::{Behaviour, TestServer};

#[test]
fn fixed_count_successes_equal_what_the_server_answered() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 4;
    config.threads = 2;
    config.requests_per_connection = Some(50);
    let report = load::run(&config).expect("run");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.requests, 200, "{report}");
    assert_eq!(server.answered(), 200);
    assert_eq!(report.bytes, server.bytes(), "every byte the server wrote was read");
    assert_eq!(server.accepts(), 4, "keep-alive reuses its connections");
    assert_eq!((report.connects, report.reconnects), (4, 0));
    assert_eq!(report.latency.len(), 200);
    let fixed = report.fixed_count.expect("fixed-count results");
    assert_eq!((fixed.requests_per_connection, fixed.finished_connections), (50, 4));
}

#[test]
fn pipelined_requests_are_paired_with_their_responses() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 2;
    config.pipeline = 8;
    config.requests_per_connection = Some(101);
    let report = load::run(&config).expect("run");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.requests, 202);
    assert_eq!(server.answered(), 202);
    assert_eq!(report.bytes, server.bytes());
}

#[test]
fn timed_run_counts_no_more_than_the_server_answered() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 3;
    config.duration = Duration::from_millis(500);
    let report = load::run(&config).expect("run");
    assert!(report.requests > 0, "{report}");
    // Requests in flight at the end are answered but not counted.
    assert!(
        report.requests <= server.answered(),
        "{} > {}",
        report.requests,
        server.answered()
    );
    assert!(server.answered() <= report.requests + 3);
    assert_eq!(report.timeline.iter().sum::<u64>(), report.requests);
}

#[test]
fn close_mode_opens_one_connection_per_request() {
    for mode in [ConnectionMode::Close, ConnectionMode::Http10] {
        let server = TestServer::start(Behaviour::ContentLength);
        let mut config = server.config("/");
        config.mode = mode;
        config.connections = 3;
        config.requests_per_connection = Some(10);
        let report = load::run(&config).expect("run");
        assert_eq!(report.errors.total(), 0, "{mode:?}: {report}");
        assert_eq!(report.requests, 30, "{mode:?}");
        assert_eq!(server.accepts(), 30, "{mode:?}: one accept per request");
        assert_eq!(report.connects, 30, "{mode:?}");
        assert_eq!(report.reconnects, 0, "{mode:?}: closing is the mode, not a reconnect");
    }
}

#[test]
fn latency_lower_bound_holds_for_a_sleeping_handler() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/sleep?ms=20");
    config.connections = 2;
    config.requests_per_connection = Some(5);
    let report = load::run(&config).expect("run");
    assert_eq!(report.requests, 10, "{report}");
    let summary = report.latency_summary();
    let p50 = summary
        .percentiles
        .iter()
        .find(|(p, _)| *p == 50.0)
        .expect("p50 listed")
        .1;
    assert!(p50 >= 20_000, "p50 {p50} us < 20 ms");
    assert!(summary.min_us >= 20_000, "min {} us < 20 ms", summary.min_us);
}

#[test]
fn fixed_count_reports_theoretical_minimum_and_amplification() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/sleep?ms=20");
    config.connections = 2;
    config.requests_per_connection = Some(5);
    config.service_time = Some(Duration::from_millis(20));
    let report = load::run(&config).expect("run");
    let fixed = report.fixed_count.expect("fixed-count results");
    assert_eq!(
        fixed.theoretical_min,
        Some(Duration::from_millis(100)),
        "5 requests x 20 ms"
    );
    let amplification = fixed.amplification.expect("amplification");
    let expected = fixed.elapsed.as_secs_f64() / 0.100;
    assert!((amplification - expected).abs() < 1e-9, "{amplification} vs {expected}");
    // Five sequential 20 ms requests cannot take less than 100 ms.
    assert!(fixed.elapsed >= Duration::from_millis(100), "{:?}", fixed.elapsed);
    assert!(amplification >= 1.0, "{amplification}");
    assert_eq!(report.elapsed, fixed.elapsed);
    let row = report.to_row(&dispatchlab::results::Machine::detect());
    assert_eq!(row.theoretical_min_ms, Some(100.0));
    assert_eq!(row.amplification, Some(amplification));
    assert_eq!(row.requests_per_connection, Some(5));
}

#[test]
fn warmup_samples_are_discarded() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/sleep?ms=5");
    config.connections = 1;
    config.warmup = Duration::from_millis(300);
    config.duration = Duration::from_millis(300);
    let report = load::run(&config).expect("run");
    assert!(report.requests > 0, "{report}");
    // At most one 5 ms request per 5 ms over both phases; the first phase's
    // responses (at least one) are not in the report.
    assert!(
        report.requests < server.answered(),
        "{} vs {}",
        report.requests,
        server.answered()
    );
    assert_eq!(report.latency.len(), report.requests);
}

#[test]
fn the_stop_flag_ends_a_run_early() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 2;
    config.duration = Duration::from_secs(60);
    let stop = Arc::new(AtomicBool::new(false));
    config.stop = Some(Arc::clone(&stop));
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    let report = load::run(&config).expect("run");
    stopper.join().expect("stopper");
    assert!(report.interrupted);
    assert!(report.elapsed < Duration::from_secs(60), "{:?}", report.elapsed);
    assert!(report.requests > 0, "{report}");
    assert!(report.to_string().contains("stopped early"));
}
