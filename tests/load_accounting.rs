//! Every offered request ends in exactly one bucket (answered, failed by
//! kind, unsent, unanswered), against stand-in servers that stall, over real
//! sockets; the all-offered latency counts the unanswered ones at a lower
//! bound and says so; `connections_served` shows a starved pool.

mod support;

use std::time::Duration;

use dispatchlab::Strategy;
use dispatchlab::dispatch::DispatchConfig;
use dispatchlab::load::{self, Report, Target};
use dispatchlab::server::Scope;
use support::test_servers::{Behaviour, TestServer};

/// Asserts the accounting identity and returns the report.
fn balanced(report: Report, what: &str) -> Report {
    let buckets = report.requests + report.errors.total() + report.unsent + report.unanswered;
    assert_eq!(
        report.offered, buckets,
        "{what}: offered = requests + errors + unsent + unanswered\n{report}"
    );
    let json = report.to_json();
    for key in ["offered", "unsent", "unanswered"] {
        assert!(json[key].is_u64(), "{what}: JSON key {key}: {json}");
    }
    assert_eq!(json["offered"], report.offered, "{what}");
    report
}

#[test]
fn constant_rate_against_a_server_that_stalls_accounts_for_every_intended_send() {
    let server = TestServer::start(Behaviour::AnswerThenStall { answers: 20 });
    let mut config = server.config("/");
    config.connections = 4;
    config.rate = Some(200.0);
    config.duration = Duration::from_millis(1500);
    config.timeout = Duration::from_millis(400);
    let report = balanced(load::run(&config).expect("load runs"), "open loop");
    // Intended times are start + 5 ms · i: exactly 300 fall in 1.5 s.
    assert_eq!(report.offered, 300, "{report}");
    assert!(report.requests >= 1, "{report}");
    assert!(report.errors.read_timeout > 0, "stalled requests time out\n{report}");
    assert!(report.unsent > 0, "sends due while a connection waited\n{report}");
    assert!(report.unanswered > 0, "requests still waiting at the end\n{report}");
    let row = report.to_row(&dispatchlab::results::Machine::detect());
    assert_eq!(
        (row.offered, row.unsent, row.unanswered),
        (Some(300), Some(report.unsent), Some(report.unanswered))
    );
}

#[test]
fn closed_loop_against_a_server_that_stalls_counts_what_connections_issued() {
    let server = TestServer::start(Behaviour::AnswerThenStall { answers: 10 });
    let mut config = server.config("/");
    config.connections = 4;
    config.duration = Duration::from_secs(1);
    config.timeout = Duration::from_millis(400);
    let report = balanced(load::run(&config).expect("load runs"), "closed loop");
    assert!(report.requests >= 1, "{report}");
    assert!(report.errors.read_timeout > 0, "{report}");
    assert!(report.unanswered > 0, "{report}");
    assert_eq!(
        report.unsent, 0,
        "keep-alive closed loop issues only on open connections\n{report}"
    );
}

#[test]
fn a_run_that_ends_while_answers_are_outstanding() {
    let server = TestServer::start(Behaviour::ContentLength);
    // Closed loop: each connection's first request is still being served.
    let mut config = server.config("/sleep?ms=3000");
    config.connections = 3;
    config.duration = Duration::from_millis(500);
    let report = balanced(load::run(&config).expect("load runs"), "closed loop, outstanding");
    assert_eq!(
        (report.offered, report.requests, report.unanswered),
        (3, 0, 3),
        "{report}"
    );

    // Open loop, 20 intended sends: one written per connection, the rest
    // due while it waited.
    let mut config = server.config("/sleep?ms=3000");
    config.connections = 2;
    config.rate = Some(20.0);
    config.duration = Duration::from_secs(1);
    let report = balanced(load::run(&config).expect("load runs"), "open loop, outstanding");
    assert_eq!(
        (report.offered, report.unanswered, report.unsent, report.requests),
        (20, 2, 18, 0),
        "{report}"
    );
}

#[test]
fn a_server_that_never_answers_has_an_all_offered_median_of_at_least_the_timeout() {
    let server = TestServer::start(Behaviour::AnswerThenStall { answers: 0 });
    let timeout = Duration::from_millis(250);
    let mut config = server.config("/");
    config.connections = 2;
    config.duration = Duration::from_secs(2);
    config.timeout = timeout;
    let report = balanced(load::run(&config).expect("load runs"), "never answers");
    assert_eq!(report.requests, 0, "{report}");
    let all = report.latency_all();
    let (p50, lower_bound) = all.at(50.0).expect("p50 listed");
    assert!(
        p50 >= timeout.as_micros() as u64,
        "p50 {p50} us is at least the timeout\n{report}"
    );
    assert!(lower_bound, "p50 is a lower bound\n{report}");
    assert_eq!(all.censored_share, 1.0);
    let text = report.to_string();
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with("50.000%"))
        .expect("a p50 line");
    assert!(line.contains('≥'), "printed as a lower bound: {line}\n{text}");
}

#[test]
fn one_worker_in_connection_scope_serves_one_connection_of_eight() {
    let mut config = support::config(Strategy::MutexQueue, Scope::Connection);
    config.dispatch = DispatchConfig::with_workers(1);
    // The worker keeps the first connection for the whole run: its idle
    // timeout is longer than the run.
    config.timeouts.idle = Duration::from_secs(30);
    let server = support::start_with(config);
    let target = Target::parse(&format!("http://{}/", server.local_addr())).expect("URL");
    let mut load_config = load::Config::new(target);
    load_config.connections = 8;
    load_config.threads = 1;
    load_config.duration = Duration::from_millis(1500);
    load_config.timeout = Duration::from_secs(1);
    let report = balanced(load::run(&load_config).expect("load runs"), "one worker");
    assert_eq!((report.connections_served, report.connections), (1, 8), "{report}");
    assert!(report.requests > 0, "{report}");
    let row = report.to_row(&dispatchlab::results::Machine::detect());
    assert_eq!(row.connections_served, Some(1));
}
