//! What a run does ([`Config`]) and the command line that builds one
//! ([`LoadArgs`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use super::{LoadError, SourceAddrs, Target};

/// How connections are used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConnectionMode {
    /// HTTP/1.1 keep-alive: a connection serves request after request.
    #[default]
    KeepAlive,
    /// A new TCP connection for every request (`Connection: close`); the
    /// connect is part of the latency.
    Close,
    /// `HTTP/1.0` requests without `Connection: keep-alive`: the server closes
    /// after each response, so every request has its own connection.
    Http10,
}

impl ConnectionMode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: &'static [ConnectionMode] =
        &[ConnectionMode::KeepAlive, ConnectionMode::Close, ConnectionMode::Http10];

    /// The name used on the command line and in result rows.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionMode::KeepAlive => "keepalive",
            ConnectionMode::Close => "close",
            ConnectionMode::Http10 => "http10",
        }
    }

    /// One line for `--help`.
    pub fn description(self) -> &'static str {
        match self {
            ConnectionMode::KeepAlive => "reuse connections (HTTP/1.1 keep-alive)",
            ConnectionMode::Close => "a new connection per request (Connection: close); the connect counts",
            ConnectionMode::Http10 => "HTTP/1.0 requests, which the server closes after each response",
        }
    }

    /// Whether every request opens its own connection.
    pub fn connection_per_request(self) -> bool {
        !matches!(self, ConnectionMode::KeepAlive)
    }
}

impl ValueEnum for ConnectionMode {
    fn value_variants<'a>() -> &'a [Self] {
        ConnectionMode::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.description()))
    }
}

/// Everything a run needs. Build one with [`Config::new`] and change fields,
/// or from the command line with `Config::try_from(LoadArgs)`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the requests go.
    pub target: Target,
    /// Concurrent connections (client slots in `close` mode). Default 10.
    pub connections: u32,
    /// Worker threads; the connections are split between them. Default 2,
    /// never more than `connections`.
    pub threads: u32,
    /// Timed mode: how long to measure (after the warm-up). Fixed-count mode:
    /// the most the run may take; it ends earlier when every connection has
    /// made its requests. Default 10 s.
    pub duration: Duration,
    /// Fixed-count mode: requests per connection instead of a duration.
    pub requests_per_connection: Option<u64>,
    /// Load before the measurement whose results are discarded. Default none.
    pub warmup: Duration,
    /// How long a response may take, from its send (or the connect's
    /// completion in `close` mode) to its last byte. Default 2 s, as wrk.
    pub timeout: Duration,
    /// How long a connect may take. Default 10 s: long enough for a SYN
    /// dropped by a full listen queue to be retransmitted (after ~1 s, 3 s,
    /// 7 s) and succeed, so that it shows as a slow request, not an error.
    pub connect_timeout: Duration,
    /// Extra request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Requests in flight per connection (keep-alive only). Default 1.
    pub pipeline: u32,
    /// Open loop: total requests per second over all connections. `None`
    /// runs a closed loop.
    pub rate: Option<f64>,
    /// How connections are used.
    pub mode: ConnectionMode,
    /// The handler's known service time (fixed-count mode): enables the
    /// theoretical minimum and the delay amplification in the report.
    pub service_time: Option<Duration>,
    /// Percentiles the report lists, in percent (e.g. `99.9`).
    pub percentiles: Vec<f64>,
    /// Which client addresses the connections are bound to. Default
    /// [`SourceAddrs::Auto`]: several loopback addresses when one has too
    /// few ephemeral ports for `connections` (see [`SourceAddrs`]).
    pub source_addrs: SourceAddrs,
    /// Opens the connections evenly over this time at the start instead of
    /// all at once: connection *g* of *C* makes its first connect at
    /// `ramp · g / C`. A server takes new connections from a listen queue of
    /// at most `backlog` (and `net.core.somaxconn`); when more SYNs arrive
    /// than it accepts, Linux drops them and the client retransmits after
    /// 1 s, 3 s, 7 s. A ramp of `C / ramp` connections per second that the
    /// server can accept keeps the queue short. Default zero (all at once,
    /// as wrk).
    pub ramp: Duration,
    /// Draw a live progress line on standard error (the CLI sets it when
    /// standard error is a terminal). Default off.
    pub progress: bool,
    /// Set to `true` to end the run early (the CLI sets it on Ctrl-C); the
    /// report then covers the time until the stop. Workers look at it at
    /// least every 100 ms.
    pub stop: Option<Arc<AtomicBool>>,
}

/// The percentiles listed by default.
pub const DEFAULT_PERCENTILES: [f64; 6] = [50.0, 75.0, 90.0, 99.0, 99.9, 99.99];

impl Config {
    /// Default [`Config::connections`].
    pub const DEFAULT_CONNECTIONS: u32 = 10;
    /// Default [`Config::threads`].
    pub const DEFAULT_THREADS: u32 = 2;
    /// Default [`Config::duration`] of a timed run.
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
    /// Default [`Config::duration`] in fixed-count mode: the most it may take.
    pub const DEFAULT_FIXED_COUNT_LIMIT: Duration = Duration::from_secs(600);
    /// Default [`Config::warmup`].
    pub const DEFAULT_WARMUP: Duration = Duration::ZERO;
    /// Default [`Config::timeout`] (wrk's).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default [`Config::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`Config::pipeline`].
    pub const DEFAULT_PIPELINE: u32 = 1;
    /// Default [`Config::ramp`].
    pub const DEFAULT_RAMP: Duration = Duration::ZERO;

    /// The defaults (wrk's where wrk has one) for `target`.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            connections: Self::DEFAULT_CONNECTIONS,
            threads: Self::DEFAULT_THREADS,
            duration: Self::DEFAULT_DURATION,
            requests_per_connection: None,
            warmup: Self::DEFAULT_WARMUP,
            timeout: Self::DEFAULT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            headers: Vec::new(),
            pipeline: Self::DEFAULT_PIPELINE,
            rate: None,
            mode: ConnectionMode::KeepAlive,
            service_time: None,
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            source_addrs: SourceAddrs::Auto,
            ramp: Self::DEFAULT_RAMP,
            progress: false,
            stop: None,
        }
    }

    /// What the load is, in a few words: `c=256`, `c=16 pipeline 16`,
    /// `c=400 @1000/s`, `close c=8 x20` (not where it goes).
    pub fn label(&self) -> String {
        let mut label = String::new();
        if self.mode != ConnectionMode::KeepAlive {
            label.push_str(self.mode.name());
            label.push(' ');
        }
        label.push_str(&format!("c={}", self.connections));
        if let Some(n) = self.requests_per_connection {
            label.push_str(&format!(" x{n}"));
        }
        if self.pipeline > 1 {
            label.push_str(&format!(" pipeline {}", self.pipeline));
        }
        if let Some(rate) = self.rate {
            label.push_str(&format!(" @{rate}/s"));
        }
        label
    }

    /// Threads actually used: `threads`, at most one per connection.
    pub fn effective_threads(&self) -> u32 {
        self.threads.clamp(1, self.connections.max(1))
    }

    /// Checks the settings against each other. [`run`](super::run) calls it.
    pub fn validate(&self) -> Result<(), LoadError> {
        let invalid = |message: &str| Err(LoadError::InvalidConfig(message.to_owned()));
        if self.connections == 0 {
            return invalid("--connections must be at least 1");
        }
        if self.threads == 0 {
            return invalid("--threads must be at least 1");
        }
        if self.pipeline == 0 {
            return invalid("--pipeline must be at least 1");
        }
        if self.pipeline > 1 && self.mode.connection_per_request() {
            return invalid("--pipeline needs --mode keepalive: a connection per request carries one request");
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid("--rate must be a positive number of requests per second");
        }
        if self.requests_per_connection == Some(0) {
            return invalid("--requests must be at least 1");
        }
        if self.requests_per_connection.is_some() && !self.warmup.is_zero() {
            return invalid(
                "--warmup cannot be combined with --requests: a fixed-count run counts every request from a cold start",
            );
        }
        if self.duration.is_zero() {
            return invalid("--duration must be longer than zero");
        }
        for (name, what) in [(self.timeout, "--timeout"), (self.connect_timeout, "--connect-timeout")] {
            if name.is_zero() {
                return invalid(&format!("{what} must be longer than zero"));
            }
        }
        self.source_addrs.resolve(self.target.addr, self.connections)?;
        if self.service_time.is_some_and(|t| t.is_zero()) {
            return invalid("--service-time must be longer than zero");
        }
        if self
            .percentiles
            .iter()
            .any(|p| !(p.is_finite() && *p > 0.0 && *p <= 100.0))
        {
            return invalid("--percentiles must lie in (0, 100]");
        }
        for (name, value) in &self.headers {
            let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
            if name.is_empty() || name.bytes().any(|b| b == b':' || b.is_ascii_whitespace()) || bad(value) {
                return invalid(&format!("bad header {name:?}: write it as 'Name: value' on one line"));
            }
        }
        Ok(())
    }
}

/// The examples `dispatchlab load --help` ends with.
const EXAMPLES: &str = "\
Examples:
  dispatchlab load -t1 -c100 -d10s http://127.0.0.1:8080/
      closed loop, as `wrk -t1 -c100 -d10s`
  dispatchlab load -c100 -d30s -R2000 --hgrm run.hgrm http://127.0.0.1:8080/
      open loop at 2000 requests/s, as `wrk2 -R2000`; corrected and uncorrected latencies
  dispatchlab load --mode close -c80 --requests 2 --service-time 40ms --timeout 60s http://127.0.0.1:8080/sleep?ms=40
      80 clients x 2 requests, a new connection each: time used, theoretical minimum, amplification
  dispatchlab load -c10 -d5s --warmup 2s --csv http://127.0.0.1:8080/ > run.csv
      one row of the result schema
  dispatchlab load -c100000 -t2 -R10000 --ramp 10s --warmup 12s -d20s http://127.0.0.1:8080/
      100,000 keep-alive connections (spread over 127.0.0.1-127.0.0.5 by themselves), opened
      at 10,000/s, each sending a request every 10 s; see the README for the system settings";

/// The command line of `dispatchlab load`: an HTTP/1.x load generator in the
/// manner of wrk (closed loop) and wrk2 (`-R`, constant rate).
#[derive(Clone, Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct LoadArgs {
    /// Target URL: http://HOST:PORT/PATH?QUERY (port, path and query optional).
    pub url: String,
    /// Concurrent connections (in close mode: concurrent clients).
    #[arg(short = 'c', long, default_value_t = Config::DEFAULT_CONNECTIONS)]
    pub connections: u32,
    /// Worker threads; the connections are split between them (never more
    /// threads than connections).
    #[arg(short = 't', long, default_value_t = Config::DEFAULT_THREADS)]
    pub threads: u32,
    /// How long to measure, e.g. 10s, 500ms, 2m (a bare number is seconds).
    /// With --requests: the most the run may take [default there: 10m].
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Load to run first and discard (counters restart at its end), e.g. 2s.
    #[arg(long, value_parser = parse_human_duration, default_value_t = Config::DEFAULT_WARMUP.into())]
    pub warmup: humantime::Duration,
    /// Per request: longest wait for the complete response.
    #[arg(long, value_parser = parse_human_duration, default_value_t = Config::DEFAULT_TIMEOUT.into())]
    pub timeout: humantime::Duration,
    /// Longest wait for a connect. Long on purpose: SYNs dropped by a full
    /// listen queue are retransmitted after ~1 s and 3 s, and such connects
    /// should show as slow requests, not errors.
    #[arg(long, value_parser = parse_human_duration, default_value_t = Config::DEFAULT_CONNECT_TIMEOUT.into())]
    pub connect_timeout: humantime::Duration,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Requests in flight per connection (keepalive mode only).
    #[arg(long, default_value_t = Config::DEFAULT_PIPELINE)]
    pub pipeline: u32,
    /// Open loop at this many requests/s in total (as wrk2 -R): latency counts
    /// from each request's intended send time (coordinated-omission
    /// correction). Without it: closed loop, as wrk.
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// How connections are used.
    #[arg(long, value_enum, default_value_t = ConnectionMode::default())]
    pub mode: ConnectionMode,
    /// Fixed-count mode: each connection makes N requests, then the run ends
    /// (C connections × N requests: the seed experiment's "P processes × R
    /// repeats"). Every attempt counts, failed or not.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Known handler time, e.g. 40ms: with --requests, report the theoretical
    /// minimum (requests × service time) and the delay amplification.
    #[arg(long, value_parser = parse_duration)]
    pub service_time: Option<Duration>,
    /// Percentiles to list, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_PERCENTILES)]
    pub percentiles: Vec<f64>,
    /// Client addresses to bind the connections to: `auto` (for a 127.x
    /// target, as many loopback addresses as the count needs: one has about
    /// 28,000 ephemeral ports, see net.ipv4.ip_local_port_range), a count N
    /// (127.0.0.1 ... 127.0.0.N), or a comma-separated list of addresses.
    #[arg(long, value_name = "auto|N|LIST", default_value = "auto")]
    pub source_addrs: SourceAddrs,
    /// Open the connections evenly over this time instead of all at once
    /// (e.g. 10s for 100,000 connections: 10,000 connects/s), so that the
    /// server's listen queue is not overrun.
    #[arg(long, value_parser = parse_human_duration, default_value_t = Config::DEFAULT_RAMP.into())]
    pub ramp: humantime::Duration,
    /// Print the report as JSON instead of the table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the report as one CSV row of the result schema (with header).
    #[arg(long)]
    pub csv: bool,
    /// Also write the latency distribution of every offered request to FILE
    /// in wrk2's .hgrm format (footer lines say which part is lower bounds);
    /// the answered requests alone go to FILE's stem + .answered.hgrm, and
    /// with -R the uncorrected ones to FILE's stem + .uncorrected.hgrm.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<std::path::PathBuf>,
}

impl TryFrom<&LoadArgs> for Config {
    type Error = LoadError;

    fn try_from(args: &LoadArgs) -> Result<Self, LoadError> {
        let mut config = Config::new(Target::parse(&args.url)?);
        config.connections = args.connections;
        config.threads = args.threads;
        config.requests_per_connection = args.requests;
        config.duration = args.duration.unwrap_or(if args.requests.is_some() {
            Config::DEFAULT_FIXED_COUNT_LIMIT
        } else {
            Config::DEFAULT_DURATION
        });
        config.warmup = args.warmup.into();
        config.timeout = args.timeout.into();
        config.connect_timeout = args.connect_timeout.into();
        config.headers = args.headers.iter().map(|h| parse_header(h)).collect::<Result<_, _>>()?;
        config.pipeline = args.pipeline;
        config.rate = args.rate;
        config.mode = args.mode;
        config.service_time = args.service_time;
        config.percentiles.clone_from(&args.percentiles);
        config.source_addrs.clone_from(&args.source_addrs);
        config.ramp = args.ramp.into();
        config.validate()?;
        Ok(config)
    }
}

/// Parses `Name: value`.
fn parse_header(header: &str) -> Result<(String, String), LoadError> {
    match header.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.trim().to_owned())),
        _ => Err(LoadError::InvalidConfig(format!(
            "bad header {header:?}: write it as 'Name: value'"
        ))),
    }
}

/// [`parse_duration`] for the flags whose default clap prints (a
/// `humantime::Duration` displays as `2s`).
fn parse_human_duration(text: &str) -> Result<humantime::Duration, String> {
    parse_duration(text).map(Into::into)
}

/// Parses `10s`, `250ms`, `1m30s`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"));
    }
    humantime::parse_duration(text).map_err(|err| format!("{text:?}: {err} (write e.g. 10s, 500ms, 2m)"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn config(args: &[&str]) -> Result<Config, LoadError> {
        let cli = Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied())).expect("arguments parse");
        Config::try_from(&cli.load)
    }

    #[test]
    fn wrk_like_flags_build_a_config() {
        let config = config(&["-t1", "-c100", "-d10s", "-H", "X-Test: a b", "http://127.0.0.1:9/"]).unwrap();
        assert_eq!((config.threads, config.connections), (1, 100));
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.headers, vec![("X-Test".to_owned(), "a b".to_owned())]);
        assert_eq!(config.rate, None);
        assert_eq!(config.percentiles, DEFAULT_PERCENTILES.to_vec());
        assert_eq!(config.timeout, Config::DEFAULT_TIMEOUT);
        assert_eq!(config.connect_timeout, Config::DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.pipeline, Config::DEFAULT_PIPELINE);
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn fixed_count_defaults_to_a_long_limit() {
        let config = config(&["--requests", "5", "--service-time", "40ms", "http://127.0.0.1:9/"]).unwrap();
        assert_eq!(config.requests_per_connection, Some(5));
        assert_eq!(config.duration, Duration::from_secs(600));
        assert_eq!(config.service_time, Some(Duration::from_millis(40)));
    }

    #[test]
    fn inconsistent_settings_are_refused_with_a_reason() {
        for args in [
            &["--mode", "close", "--pipeline", "2", "http://127.0.0.1:9/"][..],
            &["-c0", "http://127.0.0.1:9/"],
            &["-R", "0", "http://127.0.0.1:9/"],
            &["--requests", "1", "--warmup", "1s", "http://127.0.0.1:9/"],
            &["-H", "no colon", "http://127.0.0.1:9/"],
            &["--percentiles", "50,101", "http://127.0.0.1:9/"],
        ] {
            let err = config(args).expect_err("refused");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn threads_never_exceed_connections() {
        let config = config(&["-t8", "-c3", "http://127.0.0.1:9/"]).unwrap();
        assert_eq!(config.effective_threads(), 3);
    }
}
