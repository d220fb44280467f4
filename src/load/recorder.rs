//! What one worker counts while it runs; merged into the report at the end.
//!
//! Every request the recorder is told about has an intended send time. Only
//! requests intended inside the measured window `[since, until)` are
//! *offered*; the recorder ignores the outcome of any other (a warm-up
//! request answered after the boundary, say), so that each offered request
//! ends in exactly one bucket: answered, failed (by kind), unsent or
//! unanswered. An outcome that arrives at or after `until` is not an answer
//! or a failure inside the window: the request was unanswered when the
//! window ended.

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
    /// Lower bounds of the offered requests that were not answered (failed,
    /// unsent, unanswered): their age, from the intended send time, when they
    /// failed or when the window ended.
    pub censored: Histogram<u64>,
    /// Requests offered: intended (open loop) or issued (closed loop) inside
    /// the window. Counted as they are issued, apart from the buckets.
    pub offered: u64,
    /// Successful responses.
    pub requests: u64,
    /// Bytes read, headers included.
    pub bytes: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Offered requests never written: due while their connection waited,
    /// connected or retried, or still being written when the window ended.
    pub unsent: u64,
    /// Offered requests written and neither answered nor failed by the end of
    /// the window.
    pub unanswered: u64,
    /// Connections (client slots) that got at least one answer in the window.
    pub connections_served: u64,
    /// Connections re-opened after the server closed a keep-alive connection.
    pub reconnects: u64,
    /// Connects started.
    pub connects: u64,
    /// Successful responses per second since `since`.
    pub timeline: Vec<u64>,
    /// Start of the measured window (the end of the warm-up).
    pub since: Instant,
    /// End of the measured window: a response completing later counts as
    /// unanswered, like one still in flight.
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
            censored: new_histogram(),
            offered: 0,
            requests: 0,
            bytes: 0,
            errors: ErrorCounts::default(),
            unsent: 0,
            unanswered: 0,
            connections_served: 0,
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

    /// The warm-up ended: forgets the counters that are not per request.
    /// (Per-request counts never held a warm-up request: they are filtered by
    /// intended time.)
    pub(crate) fn restart(&mut self) {
        self.bytes = 0;
        self.reconnects = 0;
        self.connects = 0;
    }

    /// Whether a request intended at `intended` belongs to the window.
    fn in_window(&self, intended: Instant) -> bool {
        intended >= self.since && intended < self.until
    }

    /// A request intended at `intended` was issued (or, in open loop, its
    /// turn came and went with a failure): counts it as offered when it
    /// belongs to the window.
    pub(crate) fn offer(&mut self, intended: Instant) {
        if self.in_window(intended) {
            self.offered += 1;
        }
    }

    /// A successful response completed at `now`; `true` when it counted as an
    /// answer inside the window.
    #[inline]
    pub(crate) fn success(&mut self, now: Instant, intended: Instant, sent: Instant) -> bool {
        if !self.in_window(intended) {
            return false;
        }
        if now >= self.until {
            self.unfinished(intended, true, self.until);
            return false;
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
        true
    }

    /// The request intended at `intended` failed with `kind` at `now`.
    pub(crate) fn fail(&mut self, kind: ErrorKind, intended: Instant, now: Instant) {
        if !self.in_window(intended) {
            return;
        }
        if now >= self.until {
            return self.unfinished(intended, true, self.until);
        }
        self.errors.add(kind, 1);
        self.censored
            .saturating_record(micros(now.saturating_duration_since(intended)));
    }

    /// The window ended at `end` with the request intended at `intended`
    /// neither answered nor failed: `unanswered` when it was written,
    /// `unsent` otherwise.
    pub(crate) fn unfinished(&mut self, intended: Instant, written: bool, end: Instant) {
        if !self.in_window(intended) || intended >= end {
            return;
        }
        if written {
            self.unanswered += 1;
        } else {
            self.unsent += 1;
        }
        self.censored
            .saturating_record(micros(end.saturating_duration_since(intended)));
    }

    /// Adds another worker's measurements to these.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.corrected.add(&other.corrected);
        if let (Some(mine), Some(theirs)) = (&mut self.uncorrected, &other.uncorrected) {
            let _ = mine.add(theirs);
        }
        let _ = self.censored.add(&other.censored);
        self.offered += other.offered;
        self.unsent += other.unsent;
        self.unanswered += other.unanswered;
        self.connections_served += other.connections_served;
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
