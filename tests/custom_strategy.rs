//! The example strategy (`examples/custom_strategy/lifo_idle.rs`) held to
//! what a user's own tests would hold a strategy written outside the crate
//! to: the public dispatch contract, and HTTP over real sockets from the
//! crate's server in both scopes, with its name where a strategy's shows.

#[path = "../examples/custom_strategy/lifo_idle.rs"]
mod lifo_idle;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use dispatchlab::dispatch::{DispatchConfig, RejectReason, contract};
use dispatchlab::server::{Scope, ServeConfig, Server};
use dispatchlab::{DispatchStats, Dispatcher};
use lifo_idle::{LifoIdle, NAME};
use support::{Client, eventually};

fn lifo_idle(workers: usize) -> Arc<dyn Dispatcher> {
    Arc::new(LifoIdle::new(workers).unwrap_or_else(|err| panic!("{NAME}: {err}")))
}

#[test]
fn lifo_idle_keeps_the_dispatch_contract_as_a_pool() {
    assert!(!contract::runs_on_caller(NAME, lifo_idle));
    contract::all(NAME, lifo_idle);
}

#[test]
fn the_server_serves_http_with_it_in_both_scopes_and_shuts_it_down() {
    for scope in Scope::ALL {
        let config = ServeConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            scope,
            dispatch: DispatchConfig::with_workers(2),
            ..ServeConfig::default()
        };
        let dispatcher = lifo_idle(2);
        let server = Server::start_with(config, NAME, Arc::clone(&dispatcher))
            .unwrap_or_else(|err| panic!("{scope}: server did not start: {err}"));
        assert_eq!(server.strategy_name(), NAME);
        let addr = server.local_addr();
        let mut client = Client::connect(addr);
        for _ in 0..3 {
            let response = client.get("/");
            assert_eq!(
                (response.status, response.text().as_str()),
                (200, "Hello, World!"),
                "{scope}"
            );
        }
        drop(client);
        let metrics = Client::connect(addr).get("/metrics").text();
        let info = format!("dispatchlab_info{{strategy=\"{NAME}\",scope=\"{scope}\",workers=\"2\"}} 1");
        assert!(
            metrics.lines().any(|line| line == info),
            "{scope}: no {info:?} in:\n{metrics}"
        );
        // A job is a connection in connection scope, a request in request
        // scope: the dispatcher ran them, and the server reads its counters.
        let jobs = match scope {
            Scope::Connection => 1,
            Scope::Request => 3,
        };
        eventually("the jobs to complete", || server.dispatch_stats().completed >= jobs);
        assert_eq!(server.dispatch_stats(), dispatcher.stats(), "{scope}");
        server.shutdown().unwrap_or_else(|err| panic!("{scope}: {err}"));
        let stats: DispatchStats = dispatcher.stats();
        assert_eq!(
            (stats.threads_alive, stats.queued, stats.busy),
            (0, 0, 0),
            "{scope}: {stats:?}"
        );
        let refused = dispatcher.dispatch(Box::new(|| {}));
        assert!(
            matches!(refused, Err(ref rejected) if matches!(rejected.reason(), RejectReason::ShutDown)),
            "{scope}: the server's shutdown did not shut the dispatcher down"
        );
    }
}
