//! Responses framed by chunked encoding or by the server's close are read
//! correctly, byte for byte, and a server's close is followed by a counted
//! reconnect.

mod support;

use dispatchlab::load;
use support::test_servers::{Behaviour, TestServer};

#[test]
fn chunked_responses_are_successes_with_all_their_bytes() {
    let server = TestServer::start(Behaviour::Chunked);
    let mut config = server.config("/");
    config.connections = 2;
    config.pipeline = 3;
    config.requests_per_connection = Some(20);
    let report = load::run(&config).expect("run");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.requests, 40);
    assert_eq!(report.bytes, server.bytes());
    assert_eq!(server.accepts(), 2, "chunked responses keep the connection");
}

#[test]
fn close_delimited_responses_are_successes_followed_by_reconnects() {
    let server = TestServer::start(Behaviour::CloseDelimited);
    let mut config = server.config("/");
    config.connections = 2;
    config.requests_per_connection = Some(10);
    let report = load::run(&config).expect("run");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.requests, 20);
    assert_eq!(report.bytes, server.bytes());
    assert_eq!(server.accepts(), 20);
    // Each connection reconnects after every response but its last.
    assert_eq!(report.reconnects, 18, "{report}");
}

#[test]
fn connection_close_from_the_server_is_followed_by_a_counted_reconnect() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/bye");
    config.connections = 3;
    config.requests_per_connection = Some(4);
    let report = load::run(&config).expect("run");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.requests, 12);
    assert_eq!(server.accepts(), 12);
    assert_eq!(report.reconnects, 9, "{report}");
}

#[test]
fn large_bodies_spanning_many_reads_are_counted_whole() {
    for behaviour in [Behaviour::ContentLength, Behaviour::Chunked, Behaviour::CloseDelimited] {
        let server = TestServer::start(behaviour);
        let mut config = server.config("/big");
        config.connections = 2;
        config.requests_per_connection = Some(5);
        let report = load::run(&config).expect("run");
        assert_eq!(report.errors.total(), 0, "{behaviour:?}: {report}");
        assert_eq!(report.requests, 10, "{behaviour:?}");
        assert_eq!(report.bytes, server.bytes(), "{behaviour:?}");
        assert!(report.bytes > 10 * 300_000, "{behaviour:?}");
    }
}

#[test]
fn a_server_closing_a_pipelined_connection_loses_the_unanswered_requests_as_resets() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/bye");
    config.connections = 1;
    config.pipeline = 4;
    config.requests_per_connection = Some(8);
    let report = load::run(&config).expect("run");
    // Every request issued ends once: as a success or as an error.
    assert_eq!(report.requests + report.errors.total(), 8, "{report}");
    assert!(report.requests >= 2, "each connection gets one answer: {report}");
    assert_eq!(report.errors.total(), report.errors.reset, "{report}");
    assert_eq!(report.reconnects + 1, server.accepts(), "{report}");
}
