//! Open loop at a constant rate: latency counts from the intended send time,
//! so a stalled server shows in the percentiles (coordinated omission).

mod support;

use std::time::Duration;

use dispatchlab::load;
use support::test_servers::{Behaviour, TestServer};

#[test]
fn a_one_second_stall_shows_in_the_corrected_p99() {
    let server = TestServer::start(Behaviour::StallOnce { nth: 20 });
    let mut config = server.config("/");
    config.connections = 1;
    config.rate = Some(100.0);
    config.duration = Duration::from_secs(3);
    config.timeout = Duration::from_secs(5);
    let report = load::run(&config).expect("run");
    assert_eq!(report.errors.total(), 0, "{report}");
    let corrected = report.latency.value_at_percentile(99.0);
    let uncorrected_histogram = report
        .uncorrected
        .as_ref()
        .expect("open loop keeps the uncorrected histogram");
    let uncorrected = uncorrected_histogram.value_at_percentile(99.0);
    assert!(corrected >= 500_000, "corrected p99 {corrected} us: {report}");
    assert!(
        uncorrected < corrected,
        "the correction adds the requests the stall held back: {report}"
    );
    assert!(
        uncorrected_histogram.max() >= 1_000_000,
        "the stalled request itself took a second"
    );
    let table = report.to_string();
    assert!(
        table.contains("constant rate") && table.contains("uncorrected"),
        "{table}"
    );
    assert_eq!(report.to_json()["loop_mode"], "constant-rate");
}

#[test]
fn the_schedule_caps_the_request_count() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 4;
    config.threads = 2;
    config.rate = Some(200.0);
    config.duration = Duration::from_secs(1);
    let report = load::run(&config).expect("run");
    assert!(report.requests > 0, "{report}");
    // Request k of a connection is due at g/rate + k*C/rate: within one
    // second at most rate + C are due, however fast the server is.
    assert!(report.requests <= 204, "{report}");
    assert_eq!(report.latency.len(), report.requests);
}

#[test]
fn closed_loop_reports_its_mode_and_no_uncorrected_histogram() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 1;
    config.requests_per_connection = Some(3);
    let report = load::run(&config).expect("run");
    assert!(report.uncorrected.is_none());
    assert!(report.to_string().contains("closed loop"));
    assert_eq!(report.to_json()["loop_mode"], "closed");
}
