//! What one worker counts while it runs; merged into the report at the end.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{ErrorCounts, ErrorKind};

/// Highest latency the histograms hold: one hour, in µs.
const HIGHEST_US: u64 = 3_600_000_000;

/// A latency histogram at µs resolution, 1 µs … 1 hour, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, HIGHEST_US, 3) {
        Ok(histogram) => histogram,
        // The bounds are constants that hdrhistogram accepts.
        Err(err) => unreachable!("histogram bounds are valid: {err}"),
    }
}

/// One worker's measurements.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Latency from the intended send time (the send time in closed loop).
    pub corrected: Histogram<u64>,
    /// Open loop only: latency from the actual send time.
    pub uncorrected: Option<Histogram<u64>>,
    /// Successful responses.
    pub requests: u64,
    /// Bytes read, headers included.
    pub bytes: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Connections re-opened after the server closed a keep-alive connection.
    pub reconnects: u64,
    /// Connects started.
    pub connects: u64,
    /// Successful responses per second since `since`.
    pub timeline: Vec<u64>,
    /// Start of the measurement.
    pub since: Instant,
    /// End of the measurement: responses completing later are not counted,
    /// like those still in flight.
    pub until: Instant,
    /// When the last connection of this worker finished (fixed-count mode).
    pub finished_at: Option<Instant>,
    /// Connections that made all their requests (fixed-count mode).
    pub finished_connections: u64,
    /// When the worker stopped.
    pub stopped_at: Instant,
}

impl Recorder {
    pub(crate) fn new(open_loop: bool, since: Instant, until: Instant, seconds: usize) -> Self {
        Self {
            corrected: new_histogram(),
            uncorrected: open_loop.then(new_histogram),
            requests: 0,
            bytes: 0,
            errors: ErrorCounts::default(),
            reconnects: 0,
            connects: 0,
            timeline: Vec::with_capacity(seconds + 2),
            since,
            until,
            finished_at: None,
            finished_connections: 0,
            stopped_at: since,
        }
    }

    /// Forgets everything recorded so far: the warm-up ended at `since`.
    pub(crate) fn restart(&mut self, since: Instant) {
        self.corrected.reset();
        if let Some(uncorrected) = &mut self.uncorrected {
            uncorrected.reset();
        }
        self.requests = 0;
        self.bytes = 0;
        self.errors = ErrorCounts::default();
        self.reconnects = 0;
        self.connects = 0;
        self.timeline.clear();
        self.since = since;
    }

    /// A successful response completed at `now`.
    #[inline]
    pub(crate) fn success(&mut self, now: Instant, intended: Instant, sent: Instant) {
        if now >= self.until {
            return;
        }
        self.requests += 1;
        self.corrected
            .saturating_record(micros(now.saturating_duration_since(intended)));
        if let Some(uncorrected) = &mut self.uncorrected {
            uncorrected.saturating_record(micros(now.saturating_duration_since(sent)));
        }
        let second = now.saturating_duration_since(self.since).as_secs() as usize;
        if second >= self.timeline.len() {
            self.timeline.resize(second + 1, 0);
        }
        self.timeline[second] += 1;
    }

    /// `n` requests failed with `kind`.
    pub(crate) fn error(&mut self, kind: ErrorKind, n: u64) {
        self.errors.add(kind, n);
    }

    /// Adds another worker's measurements to these.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.corrected.add(&other.corrected);
        if let (Some(mine), Some(theirs)) = (&mut self.uncorrected, &other.uncorrected) {
            let _ = mine.add(theirs);
        }
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.errors.merge(&other.errors);
        self.reconnects += other.reconnects;
        self.connects += other.connects;
        if other.timeline.len() > self.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            *mine += theirs;
        }
        self.finished_at = self.finished_at.max(other.finished_at);
        self.finished_connections += other.finished_connections;
        self.stopped_at = self.stopped_at.max(other.stopped_at);
    }
}

/// A duration in whole µs, at least 1 (the histogram's lowest value).
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}
