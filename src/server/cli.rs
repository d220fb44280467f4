//! `dispatchlab serve`: start a server, report while it runs, stop on
//! SIGINT/SIGTERM.
//!
//! The first signal starts a graceful shutdown; a second one exits at once.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::rlimit::raise_open_file_limit;

use super::listener::somaxconn;
use super::stats::{budget_report, report_line};
use super::{Announce, ServeArgs, ServeConfig, ServeError, Server};

/// Runs the server the arguments describe until a signal stops it.
pub fn run(args: &ServeArgs) -> Result<(), ServeError> {
    let config = args.config();
    if config.engine.strategy().is_none() {
        let scope = args.scope.is_some().then_some("--scope");
        let flags: Vec<&'static str> = scope.into_iter().chain(args.dispatcher_flags_given()).collect();
        if !flags.is_empty() {
            return Err(ServeError::NotForReference {
                server: config.engine.name(),
                flags,
            });
        }
    }
    serve_until_signal(args, config, Server::start)
}

/// Starts the server `start` makes of `config`, announces it, reports every
/// `--stats-interval` and stops it gracefully on SIGINT/SIGTERM.
pub(super) fn serve_until_signal(
    args: &ServeArgs,
    config: ServeConfig,
    start: impl FnOnce(ServeConfig) -> Result<Server, ServeError>,
) -> Result<(), ServeError> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(ServeError::Setup)?;
    if let Err(err) = raise_open_file_limit() {
        eprintln!("dispatchlab: note: could not raise the open-file limit ({err}); see `ulimit -n`");
    }
    if let Some(cap) = somaxconn().filter(|&cap| cap < config.backlog) {
        eprintln!(
            "dispatchlab: note: --backlog {} is capped by net.core.somaxconn = {cap}",
            config.backlog
        );
    }
    let server = start(config)?;
    announce(&server);
    let stopping = Arc::new(AtomicBool::new(false));
    if let Some(interval) = args.stats_interval {
        spawn_reporter(&server, interval, Arc::clone(&stopping));
    }
    signals.forever().next();
    stopping.store(true, Ordering::Release);
    eprintln!("dispatchlab: stopping: finishing requests in flight (signal again to exit at once)");
    thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("dispatchlab: second signal: exiting without waiting");
            std::process::exit(crate::signals::FORCED_EXIT);
        }
    });
    let served = server.stats();
    server.shutdown()?;
    eprintln!(
        "dispatchlab: stopped after {} connections and {} requests",
        served.connections_total, served.requests_total
    );
    Ok(())
}

/// Prints the address (scripts that asked for port 0 read it from stdout).
fn announce(server: &Server) {
    println!("{}", Announce::of(server));
    let _ = std::io::stdout().flush();
}

fn spawn_reporter(server: &Server, interval: Duration, stopping: Arc<AtomicBool>) {
    let stats = Arc::clone(&server.service.stats);
    let dispatch = server.dispatch.clone();
    let budget = Arc::clone(&server.service.budget);
    thread::spawn(move || {
        let mut before = stats.snapshot();
        let mut since = Instant::now();
        while !stopping.load(Ordering::Acquire) {
            thread::sleep(interval);
            let now = stats.snapshot();
            eprintln!(
                "{} | {}",
                report_line(&now, &before, since.elapsed().as_secs_f64(), &dispatch),
                budget_report(&budget)
            );
            (before, since) = (now, Instant::now());
        }
    });
}
