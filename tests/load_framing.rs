//! Responses framed by chunked encoding or by the server's close are read
//! correctly, byte for byte, and a server's close is followed by a counted
//! reconnect.

mod support;

use dispatchlab::load;
use support::{Behaviour, TestServer};

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
