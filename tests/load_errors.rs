//! Failed requests are classified by kind, counted once each, and the run
//! goes on.

mod support;

use std::time::Duration;

use dispatchlab::load::{self, Config, ConnectionMode, Target};
use support::test_servers::{Behaviour, TestServer, closed_port};

#[test]
fn no_server_is_connect_refused() {
    for mode in [ConnectionMode::KeepAlive, ConnectionMode::Close] {
        let addr = closed_port();
        let mut config = Config::new(Target::parse(&format!("http://{addr}/")).expect("url"));
        config.mode = mode;
        config.connections = 2;
        config.threads = 1;
        config.requests_per_connection = Some(3);
        let report = load::run(&config).expect("run completes and counts the errors");
        assert_eq!(report.requests, 0, "{mode:?}");
        assert_eq!(
            report.errors.connect_refused, 6,
            "{mode:?}: one per attempted request: {report}"
        );
        assert_eq!(report.errors.total(), 6, "{mode:?}");
    }
}

#[test]
fn server_closing_after_accept_is_reset_or_protocol_error() {
    let server = TestServer::start(Behaviour::CloseAfterAccept);
    let mut config = server.config("/");
    config.connections = 2;
    config.requests_per_connection = Some(3);
    let report = load::run(&config).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.total(), 6, "{report}");
    assert_eq!(report.errors.reset + report.errors.protocol, 6, "{report}");
}

#[test]
fn not_found_is_bad_status() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/no/such");
    config.connections = 2;
    config.requests_per_connection = Some(5);
    let report = load::run(&config).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.bad_status, 10, "{report}");
    assert_eq!(report.errors.total(), 10);
    assert_eq!(server.answered(), 10);
    assert_eq!(server.accepts(), 2, "a 404 keeps the connection");
}

#[test]
fn slow_response_is_read_timeout() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/sleep?ms=2000");
    config.connections = 1;
    config.timeout = Duration::from_millis(200);
    config.requests_per_connection = Some(2);
    let report = load::run(&config).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.read_timeout, 2, "{report}");
    assert_eq!(report.errors.total(), 2);
}

#[test]
fn full_accept_queue_is_connect_timeout() {
    let server = TestServer::start(Behaviour::NeverAccept);
    let mut config = server.config("/");
    config.connections = 3;
    config.requests_per_connection = Some(1);
    config.timeout = Duration::from_millis(300);
    config.connect_timeout = Duration::from_millis(300);
    let report = load::run(&config).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.total(), 3, "{report}");
    // Backlog 0 queues one connection; the other SYNs are dropped.
    assert!(report.errors.connect_timeout >= 1, "{report}");
    assert_eq!(
        report.errors.connect_timeout + report.errors.read_timeout,
        3,
        "{report}"
    );
    if let Some(netstat) = report.netstat {
        assert!(
            netstat.listen_overflows >= 1,
            "dropped SYNs count as overflows: {netstat:?}"
        );
    }
}
