//! The load generator's connections leave from the client addresses it was
//! told to use (the way past one address's ~28,000 ephemeral ports), and a
//! ramp opens them over time instead of all at once.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use dispatchlab::load::{self, SourceAddrs};
use support::test_servers::{Behaviour, TestServer};

#[test]
fn connections_are_spread_evenly_over_the_forced_source_addresses() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 9;
    config.threads = 2;
    config.requests_per_connection = Some(3);
    config.source_addrs = SourceAddrs::Loopback(3);
    let report = load::run(&config).expect("run");
    assert_eq!((report.errors.total(), report.requests), (0, 27), "{report}");
    let expected: Vec<IpAddr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| ip.parse().expect("an address"))
        .collect();
    assert_eq!(report.source_addrs, expected, "the report says which addresses it used");
    let mut per_address: BTreeMap<IpAddr, u32> = BTreeMap::new();
    for peer in server.peers() {
        *per_address.entry(peer).or_default() += 1;
    }
    let expected: BTreeMap<IpAddr, u32> = expected.into_iter().map(|ip| (ip, 3)).collect();
    assert_eq!(
        per_address, expected,
        "three connections from each address, as the server saw them"
    );
}

#[test]
fn a_listed_source_address_is_used_and_a_small_auto_run_binds_none() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 2;
    config.requests_per_connection = Some(1);
    config.source_addrs = "127.0.0.7".parse().expect("a list");
    let report = load::run(&config).expect("run");
    assert_eq!(report.requests, 2, "{report}");
    let seven: IpAddr = "127.0.0.7".parse().expect("an address");
    assert_eq!(server.peers(), vec![seven, seven]);

    config.source_addrs = SourceAddrs::Auto;
    let report = load::run(&config).expect("run");
    assert!(report.source_addrs.is_empty(), "two connections fit on one address");
    assert_eq!(report.requests, 2, "{report}");
}

#[test]
fn a_ramp_opens_the_connections_over_its_time() {
    let server = TestServer::start(Behaviour::ContentLength);
    let mut config = server.config("/");
    config.connections = 4;
    config.duration = Duration::from_secs(30);
    config.ramp = Duration::from_secs(20);
    // Connection g of 4 opens at 5 s · g: after a short run only the first
    // one has connected. No bound on how late it may be: the run ends by
    // the stop flag, whatever the machine's load.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    config.stop = Some(std::sync::Arc::clone(&stop));
    let run = std::thread::spawn(move || load::run(&config));
    support::eventually("the first connection to be accepted", || server.accepts() >= 1);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = run.join().expect("load thread").expect("run");
    assert!(report.interrupted);
    assert!(
        report.connects < 4,
        "the ramp held the later connections back: {report}"
    );
}
