//! The live progress line, drawn on standard error by the calling thread of
//! [`run`](super::run) when [`Config::progress`](super::Config::progress) is
//! set (the CLI sets it only when standard error is a terminal).

use std::io::Write;
use std::time::Duration;

use super::Config;

/// The state of the progress line.
#[derive(Debug)]
pub(crate) struct Progress {
    total: Duration,
    fixed: Option<u64>,
    last_requests: u64,
}

impl Progress {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            total: config.warmup + config.duration,
            fixed: config
                .requests_per_connection
                .map(|r| r * u64::from(config.connections)),
            last_requests: 0,
        }
    }

    /// Redraws the line (called about once a second).
    pub(crate) fn draw(&mut self, elapsed: Duration, requests: u64, errors: u64) {
        let recent = requests.saturating_sub(self.last_requests);
        self.last_requests = requests;
        let of = match self.fixed {
            Some(total) => format!("{requests}/{total} requests"),
            None => format!(
                "{:>4.0}s/{:.0}s, {requests} requests",
                elapsed.as_secs_f64(),
                self.total.as_secs_f64()
            ),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K  [{of}, ~{recent} req/s, {errors} errors]");
        let _ = err.flush();
    }

    /// Removes the line.
    pub(crate) fn clear(self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}
