//! The load generator against dispatchlab's own server, in-process: its
//! counts agree exactly with what the server says it answered, latency lower
//! bounds hold, and error statuses are classified.

mod support;

use std::time::Duration;

use dispatchlab::Strategy;
use dispatchlab::load::{self, Config, ErrorKind, Target};
use dispatchlab::server::Scope;
use support::{metric, start};

fn config(addr: std::net::SocketAddr, path: &str) -> Config {
    let target = Target::parse(&format!("http://{addr}{path}")).expect("target");
    let mut config = Config::new(target);
    config.connections = 8;
    config.threads = 2;
    config
}

#[test]
fn successful_count_equals_what_the_server_answered() {
    for scope in Scope::ALL {
        let server = start(Strategy::ThreadPerTask, scope);
        let mut timed = config(server.local_addr(), "/");
        timed.duration = Duration::from_millis(500);
        let first = load::run(&timed).expect("timed run");
        let mut fixed = config(server.local_addr(), "/");
        fixed.requests_per_connection = Some(250);
        let second = load::run(&fixed).expect("fixed-count run");
        assert_eq!(second.requests, 8 * 250, "{scope}: fixed count is exact");
        // Requests still in flight when a timed run ends are answered by the
        // server but not counted by the client; wait for the server to say so.
        let answered = metric(server.local_addr(), "dispatchlab_responses_total{class=\"2xx\"}");
        let in_flight_at_end = u64::from(timed.connections);
        assert!(
            answered >= first.requests + second.requests
                && answered <= first.requests + second.requests + in_flight_at_end,
            "{scope}: server answered {answered}, client counted {} + {} (at most {in_flight_at_end} in flight at the end)",
            first.requests,
            second.requests
        );
        assert_eq!(first.errors.total() + second.errors.total(), 0, "{scope}");
    }
}

#[test]
fn fixed_count_runs_agree_exactly_with_metrics() {
    for scope in Scope::ALL {
        let server = start(Strategy::MutexQueue, scope);
        let mut fixed = config(server.local_addr(), "/bytes?n=100");
        fixed.connections = 4;
        fixed.requests_per_connection = Some(300);
        let report = load::run(&fixed).expect("run");
        let answered = metric(server.local_addr(), "dispatchlab_responses_total{class=\"2xx\"}");
        assert_eq!((report.requests, answered), (1200, 1200), "{scope}");
    }
}

#[test]
fn latency_of_a_20ms_handler_is_at_least_20ms() {
    let server = start(Strategy::ThreadPerTask, Scope::Request);
    let mut fixed = config(server.local_addr(), "/sleep?ms=20");
    fixed.connections = 4;
    fixed.requests_per_connection = Some(10);
    let report = load::run(&fixed).expect("run");
    assert_eq!(report.requests, 40);
    let p50_us = report.latency.value_at_percentile(50.0);
    assert!(p50_us >= 20_000, "p50 {p50_us} µs is below the handler's 20 ms");
    assert!(report.latency.min() >= 20_000, "min {} µs", report.latency.min());
}

#[test]
fn a_404_is_a_bad_status() {
    let server = start(Strategy::MutexQueue, Scope::Request);
    let mut fixed = config(server.local_addr(), "/no/such");
    fixed.connections = 2;
    fixed.requests_per_connection = Some(5);
    let report = load::run(&fixed).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.get(ErrorKind::BadStatus), 10);
    assert_eq!(report.errors.total(), 10);
}
