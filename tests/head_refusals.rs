//! Refusals made before the request is fully in still answer `HEAD` with the
//! head alone (RFC 9110 §9.3.2): a 408 for a `HEAD` head that stalls (every
//! server), a 503 for a `HEAD` request the strategy cannot take (request
//! scope, where the request is decoded before it is dispatched). A body
//! after the head would be read by the client as the start of the next
//! response; here it would show up as bytes before the close.

mod support;

use std::time::Duration;

use dispatchlab::Strategy;
use dispatchlab::server::Scope;
use support::{Client, eventually, servers, start_with};

#[test]
fn a_stalled_head_request_gets_a_408_head_without_a_body() {
    for target in servers() {
        let mut config = target.config();
        config.timeouts.header = Duration::from_millis(300);
        let server = start_with(config);
        let mut client = Client::connect(server.local_addr());
        client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n");
        let response = client.read_head_only();
        assert_eq!(response.status, 408, "{target}");
        assert!(response.says_close(), "{target}");
        assert!(client.is_closed(), "{target}: closed right after the head, no body");
    }
}

#[test]
fn a_head_request_the_strategy_refuses_gets_a_503_head_without_a_body() {
    let mut config = support::config(Strategy::ThreadPerTask, Scope::Request);
    config.dispatch.max_threads = Some(1);
    let server = start_with(config);
    let addr = server.local_addr();
    let mut holder = Client::connect(addr);
    holder.send(b"GET /sleep?ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n");
    eventually("the one thread is busy", || server.dispatch_stats().threads_alive == 1);
    let mut refused = Client::connect(addr);
    refused.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = refused.read_head_only();
    assert_eq!(response.status, 503);
    assert!(response.says_close());
    assert!(refused.is_closed(), "closed right after the head, no body");
    assert_eq!(
        holder.read_response().status,
        200,
        "the request that got the thread is served"
    );
}
