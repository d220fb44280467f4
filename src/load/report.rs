//! What a run measured ([`Report`]) and its four renderings: the table
//! (`Display`), JSON ([`Report::to_json`]), one result-schema row
//! ([`Report::to_row`]) and wrk2's `.hgrm` percentile distribution
//! ([`Report::write_hgrm`]).

use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::plan::LoadPlan;
use super::recorder::Recorder;
use super::{Config, ConnectionMode, ErrorCounts, ErrorKind, NetstatDelta};
use crate::results::{Machine, ROW_PERCENTILES, RunRow};

/// Everything one run measured, with the settings that produced it.
#[derive(Clone, Debug)]
pub struct Report {
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    /// The target URL.
    pub url: String,
    /// The request target (path and query).
    pub path: String,
    /// How connections were used.
    pub mode: ConnectionMode,
    /// Open-loop rate (requests/s in total); `None` for a closed loop.
    pub rate: Option<f64>,
    /// Connections.
    pub connections: u32,
    /// Worker threads.
    pub threads: u32,
    /// Requests in flight per connection.
    pub pipeline: u32,
    /// Warm-up before the measurement (its results are discarded).
    pub warmup: Duration,
    /// The measured time: the run's duration, or in fixed-count mode the time
    /// from the start to the last connection's last response.
    pub elapsed: Duration,
    /// Requests offered in the measured window (see the module docs of
    /// [`load`](crate::load)): `requests + errors.total() + unsent +
    /// unanswered`.
    pub offered: u64,
    /// Successful (1xx–3xx) responses.
    pub requests: u64,
    /// Bytes read, headers included.
    pub bytes: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Offered requests never written (open loop: due while their connection
    /// waited or connected).
    pub unsent: u64,
    /// Offered requests written, neither answered nor failed when the window
    /// ended.
    pub unanswered: u64,
    /// Connections (client slots) that got at least one answer in the window.
    pub connections_served: u64,
    /// Connections re-opened after the server closed a keep-alive connection.
    pub reconnects: u64,
    /// Connects started (one per request in the connection-per-request modes).
    pub connects: u64,
    /// Latencies of successful responses, µs. In open loop, from each
    /// request's intended send time (corrected for coordinated omission).
    pub latency: Histogram<u64>,
    /// Open loop only: the same responses from their actual send times
    /// (uncorrected), as wrk2 `-U` shows.
    pub uncorrected: Option<Histogram<u64>>,
    /// Lower bounds for the offered requests that got no answer (failed,
    /// unsent, unanswered): their age from the intended send time when they
    /// failed or when the window ended, µs.
    pub censored: Histogram<u64>,
    /// Successful responses in each second of the measurement.
    pub timeline: Vec<u64>,
    /// Host-wide TcpExt counter deltas (Linux).
    pub netstat: Option<NetstatDelta>,
    /// Fixed-count mode results.
    pub fixed_count: Option<FixedCount>,
    /// The percentiles to list.
    pub percentiles: Vec<f64>,
    /// The run was stopped early through [`Config::stop`].
    pub interrupted: bool,
    /// The client addresses the connections were bound to, in turn (see
    /// [`SourceAddrs`](super::SourceAddrs)); empty when the kernel picked.
    pub source_addrs: Vec<IpAddr>,
    /// This process's peak resident memory when the run ended (`VmHWM`,
    /// KiB, Linux): the load generator's own footprint, plus whatever else
    /// the process held before.
    pub own_peak_rss_kib: Option<u64>,
}

/// Fixed-count mode: the seed experiment's "time used vs theoretical minimum".
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FixedCount {
    /// Requests each connection was to make.
    pub requests_per_connection: u64,
    /// Connections that made all of them before the time limit.
    pub finished_connections: u64,
    /// Start of the run to the last response.
    pub elapsed: Duration,
    /// The handler's service time, when given.
    pub service_time: Option<Duration>,
    /// `requests_per_connection × service_time`: the elapsed time with
    /// unlimited parallelism.
    pub theoretical_min: Option<Duration>,
    /// `elapsed ÷ theoretical_min`.
    pub amplification: Option<f64>,
}

impl FixedCount {
    /// Computes the theoretical minimum and the amplification.
    pub fn new(requests_per_connection: u64, finished: u64, elapsed: Duration, service: Option<Duration>) -> Self {
        let theoretical_min =
            service.map(|s| s.saturating_mul(u32::try_from(requests_per_connection).unwrap_or(u32::MAX)));
        let amplification = theoretical_min
            .filter(|t| !t.is_zero())
            .map(|t| elapsed.as_secs_f64() / t.as_secs_f64());
        Self {
            requests_per_connection,
            finished_connections: finished,
            elapsed,
            service_time: service,
            theoretical_min,
            amplification,
        }
    }
}

/// A histogram reduced to the figures the reports print, µs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// Smallest.
    pub min_us: u64,
    /// Largest.
    pub max_us: u64,
    /// (percentile in percent, value).
    pub percentiles: Vec<(f64, u64)>,
}

impl LatencySummary {
    /// Summarises `histogram` at `percentiles`.
    pub fn of(histogram: &Histogram<u64>, percentiles: &[f64]) -> Self {
        Self {
            count: histogram.len(),
            mean_us: histogram.mean(),
            stdev_us: histogram.stdev(),
            min_us: histogram.min(),
            max_us: histogram.max(),
            percentiles: percentiles
                .iter()
                .map(|&p| (p, histogram.value_at_percentile(p)))
                .collect(),
        }
    }
}

/// Latency over every offered request: answered ones at their latency, the
/// others at a lower bound (see [`LatencyAll::of`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyAll {
    /// The summary of answered latencies and lower bounds together. `mean_us`
    /// is a lower bound whenever `censored_share` > 0.
    #[serde(flatten)]
    pub summary: LatencySummary,
    /// The share of the values that are lower bounds (0 to 1).
    pub censored_share: f64,
    /// The listed percentiles (in percent) whose value may have been decided
    /// by a lower bound: read them as "at least".
    pub lower_bound_percentiles: Vec<f64>,
    /// Whether `max_us` is a lower bound.
    pub max_is_lower_bound: bool,
}

impl LatencyAll {
    /// Summarises the answered latencies `answered` and the lower bounds
    /// `censored` at `percentiles`.
    ///
    /// The value at percentile p of both together is exact when at least
    /// rank(p) = ⌈p·N⌉ answered values are at or below it: then the true
    /// rank-p value is at most that value, and no lower bound can move it
    /// (each true latency is at least its bound). Otherwise a censored value
    /// sits at or below rank p, and the value is only a lower bound.
    pub fn of(answered: &Histogram<u64>, censored: &Histogram<u64>, percentiles: &[f64]) -> Self {
        let mut all = answered.clone();
        // Same bounds on both sides, so adding cannot fail.
        let _ = all.add(censored);
        let summary = LatencySummary::of(&all, percentiles);
        let total = all.len();
        let lower_bound_percentiles = percentiles
            .iter()
            .copied()
            .filter(|&p| is_lower_bound(answered, censored, all.value_at_percentile(p), rank(p, total)))
            .collect();
        Self {
            censored_share: if total == 0 {
                0.0
            } else {
                censored.len() as f64 / total as f64
            },
            lower_bound_percentiles,
            // Any lower bound may hide a value above every other one.
            max_is_lower_bound: !censored.is_empty(),
            summary,
        }
    }

    /// The value at `percentile` and whether it is a lower bound.
    pub fn at(&self, percentile: f64) -> Option<(u64, bool)> {
        let (_, value) = self.summary.percentiles.iter().find(|(p, _)| *p == percentile)?;
        Some((*value, self.lower_bound_percentiles.contains(&percentile)))
    }
}

/// ⌈p·N⌉, at least 1: the rank of percentile `p` (in percent) of `total`.
fn rank(percentile: f64, total: u64) -> u64 {
    ((percentile / 100.0 * total as f64).ceil() as u64).clamp(1, total.max(1))
}

/// Whether `value`, found at `rank`, may be a lower bound: fewer than `rank`
/// answered values lie at or below it.
fn is_lower_bound(answered: &Histogram<u64>, censored: &Histogram<u64>, value: u64, rank: u64) -> bool {
    if censored.is_empty() {
        return false;
    }
    let exact_at_or_below = if answered.is_empty() {
        0
    } else {
        answered.count_between(0, value)
    };
    exact_at_or_below < rank
}

impl Report {
    pub(crate) fn new(config: &Config, plan: &LoadPlan, rec: Recorder, netstat: Option<NetstatDelta>) -> Self {
        let fixed_count = config.requests_per_connection.map(|per_connection| {
            let last = rec.finished_at.unwrap_or(rec.stopped_at);
            FixedCount::new(
                per_connection,
                rec.finished_connections,
                last.saturating_duration_since(plan.start),
                config.service_time,
            )
        });
        let elapsed = match &fixed_count {
            Some(fixed) => fixed.elapsed,
            None => rec.stopped_at.saturating_duration_since(plan.measure_start),
        };
        let started = std::time::SystemTime::now() - plan.start.elapsed();
        Self {
            started: humantime::format_rfc3339_seconds(started).to_string(),
            url: config.target.url.clone(),
            path: config.target.path.clone(),
            mode: config.mode,
            rate: config.rate,
            connections: config.connections,
            threads: config.effective_threads(),
            pipeline: config.pipeline,
            warmup: config.warmup,
            elapsed,
            offered: rec.offered,
            requests: rec.requests,
            bytes: rec.bytes,
            errors: rec.errors,
            unsent: rec.unsent,
            unanswered: rec.unanswered,
            connections_served: rec.connections_served,
            reconnects: rec.reconnects,
            connects: rec.connects,
            latency: rec.corrected,
            uncorrected: rec.uncorrected,
            censored: rec.censored,
            timeline: rec.timeline,
            netstat,
            fixed_count,
            percentiles: config.percentiles.clone(),
            interrupted: config
                .stop
                .as_ref()
                .is_some_and(|stop| stop.load(std::sync::atomic::Ordering::Relaxed)),
            source_addrs: plan.sources.clone(),
            own_peak_rss_kib: own_peak_rss_kib(),
        }
    }

    /// Successful responses per measured second.
    pub fn rps(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// `closed loop` or `constant rate N req/s`.
    pub fn loop_name(&self) -> String {
        match self.rate {
            None => "closed loop".to_owned(),
            Some(rate) => format!("constant rate {rate} req/s (open loop)"),
        }
    }

    /// The latency summary (corrected in open loop).
    pub fn latency_summary(&self) -> LatencySummary {
        LatencySummary::of(&self.latency, &self.percentiles)
    }

    /// Latency over every offered request, lower bounds included: the
    /// headline.
    pub fn latency_all(&self) -> LatencyAll {
        LatencyAll::of(&self.latency, &self.censored, &self.percentiles)
    }

    /// Offered requests that were answered, 0 to 1 (1 when none was offered).
    pub fn answered_share(&self) -> f64 {
        if self.offered == 0 {
            1.0
        } else {
            self.requests as f64 / self.offered as f64
        }
    }

    /// The uncorrected latency summary (open loop only).
    pub fn uncorrected_summary(&self) -> Option<LatencySummary> {
        self.uncorrected
            .as_ref()
            .map(|h| LatencySummary::of(h, &self.percentiles))
    }

    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Json<'a> {
            started: &'a str,
            url: &'a str,
            loop_mode: &'static str,
            rate: Option<f64>,
            connection_mode: &'static str,
            connections: u32,
            threads: u32,
            pipeline: u32,
            warmup_s: f64,
            elapsed_s: f64,
            offered: u64,
            requests: u64,
            bytes: u64,
            requests_per_s: f64,
            errors: ErrorCounts,
            errors_total: u64,
            unsent: u64,
            unanswered: u64,
            connections_served: u64,
            reconnects: u64,
            connects: u64,
            latency_all_us: LatencyAll,
            latency_us: LatencySummary,
            uncorrected_latency_us: Option<LatencySummary>,
            timeline: &'a [u64],
            netstat_host_wide: Option<NetstatDelta>,
            fixed_count: Option<FixedCountJson>,
            source_addrs: &'a [IpAddr],
            own_peak_rss_kib: Option<u64>,
        }
        #[derive(Serialize)]
        struct FixedCountJson {
            requests_per_connection: u64,
            finished_connections: u64,
            elapsed_ms: f64,
            service_time_ms: Option<f64>,
            theoretical_min_ms: Option<f64>,
            amplification: Option<f64>,
        }
        let json = Json {
            started: &self.started,
            url: &self.url,
            loop_mode: if self.rate.is_some() { "constant-rate" } else { "closed" },
            rate: self.rate,
            connection_mode: self.mode.name(),
            connections: self.connections,
            threads: self.threads,
            pipeline: self.pipeline,
            warmup_s: self.warmup.as_secs_f64(),
            elapsed_s: self.elapsed.as_secs_f64(),
            offered: self.offered,
            requests: self.requests,
            bytes: self.bytes,
            requests_per_s: self.rps(),
            errors: self.errors,
            errors_total: self.errors.total(),
            unsent: self.unsent,
            unanswered: self.unanswered,
            connections_served: self.connections_served,
            reconnects: self.reconnects,
            connects: self.connects,
            latency_all_us: self.latency_all(),
            latency_us: self.latency_summary(),
            uncorrected_latency_us: self.uncorrected_summary(),
            timeline: &self.timeline,
            netstat_host_wide: self.netstat,
            fixed_count: self.fixed_count.map(|f| FixedCountJson {
                requests_per_connection: f.requests_per_connection,
                finished_connections: f.finished_connections,
                elapsed_ms: ms(f.elapsed),
                service_time_ms: f.service_time.map(ms),
                theoretical_min_ms: f.theoretical_min.map(ms),
                amplification: f.amplification,
            }),
            source_addrs: &self.source_addrs,
            own_peak_rss_kib: self.own_peak_rss_kib,
        };
        serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
    }

    /// One row of the result schema with the load-side columns filled; the
    /// server-side ones (strategy, scope, RSS, …) are left for the caller.
    pub fn to_row(&self, machine: &Machine) -> RunRow {
        let mut row = RunRow {
            load_tool: "dispatchlab".into(),
            scenario: "custom".into(),
            strategy: "external".into(),
            outcome: if self.interrupted { "interrupted" } else { "ok" }.into(),
            load_cpus: pinned_cpus(),
            ..RunRow::default()
        };
        self.fill_row(&mut row);
        machine.stamp(&mut row);
        row
    }

    /// Fills the columns this report measured into `row` and leaves the
    /// others (who ran, on which server, the outcome) as the caller set them.
    pub fn fill_row(&self, row: &mut RunRow) {
        row.timestamp.clone_from(&self.started);
        row.workload.clone_from(&self.path);
        row.connection_mode = self.mode.name().into();
        row.connections = self.connections;
        row.load_threads = self.threads;
        row.pipeline = self.pipeline;
        row.target_rate = self.rate;
        row.requests_per_connection = self.fixed_count.map(|f| f.requests_per_connection);
        row.duration_s = self.elapsed.as_secs_f64();
        row.requests = self.requests;
        row.bytes = self.bytes;
        row.errors_connect_refused = self.errors.connect_refused;
        row.errors_connect_timeout = self.errors.connect_timeout;
        row.errors_reset = self.errors.reset;
        row.errors_read_timeout = self.errors.read_timeout;
        row.errors_bad_status = self.errors.bad_status;
        row.errors_protocol = self.errors.protocol;
        row.errors_other = self.errors.other;
        row.errors_total = self.errors.total();
        row.reconnects = self.reconnects;
        row.rps = self.rps();
        row.listen_overflows = self.netstat.map(|n| n.listen_overflows);
        row.listen_drops = self.netstat.map(|n| n.listen_drops);
        row.syn_retransmits = self.netstat.map(|n| n.syn_retransmits);
        if let Some(service) = self.fixed_count.and_then(|f| f.service_time) {
            row.service_time_ms = Some(ms(service));
        }
        row.theoretical_min_ms = self.fixed_count.and_then(|f| f.theoretical_min).map(ms);
        row.amplification = self.fixed_count.and_then(|f| f.amplification);
        if !self.latency.is_empty() {
            let h = &self.latency;
            row.latency_mean_us = Some(h.mean());
            row.latency_stdev_us = Some(h.stdev());
            row.latency_p50_us = Some(h.value_at_percentile(50.0) as f64);
            row.latency_p90_us = Some(h.value_at_percentile(90.0) as f64);
            row.latency_p99_us = Some(h.value_at_percentile(99.0) as f64);
            row.latency_p999_us = Some(h.value_at_percentile(99.9) as f64);
            row.latency_max_us = Some(h.max() as f64);
        }
        self.fill_accounting(row);
    }

    /// The columns of every offered request: the buckets and the all-offered
    /// latencies.
    fn fill_accounting(&self, row: &mut RunRow) {
        row.offered = Some(self.offered);
        row.unsent = Some(self.unsent);
        row.unanswered = Some(self.unanswered);
        row.connections_served = Some(self.connections_served);
        if self.latency.is_empty() && self.censored.is_empty() {
            return;
        }
        let percentiles: Vec<f64> = ROW_PERCENTILES.iter().map(|(p, _)| *p).collect();
        let all = LatencyAll::of(&self.latency, &self.censored, &percentiles);
        let value = |p: f64| all.at(p).map(|(v, _)| v as f64);
        row.latency_all_censored_share = Some(all.censored_share);
        row.latency_all_p50_us = value(50.0);
        row.latency_all_p90_us = value(90.0);
        row.latency_all_p99_us = value(99.0);
        row.latency_all_p999_us = value(99.9);
        row.latency_all_max_us = Some(all.summary.max_us as f64);
        let mut bounds: Vec<&str> = ROW_PERCENTILES
            .iter()
            .filter(|(p, _)| all.lower_bound_percentiles.contains(p))
            .map(|(_, name)| *name)
            .collect();
        if all.max_is_lower_bound {
            bounds.push("max");
        }
        row.latency_all_lower_bounds = bounds.join(" ");
    }

    /// Writes the latency distribution over every offered request (answered
    /// ones at their corrected latency, the others at a lower bound) in
    /// wrk2's `.hgrm` format, values in ms, which HdrHistogram's plotter
    /// reads. Two footer lines say which part is censored:
    /// `#[Censored = …]` (how many values are lower bounds) and
    /// `#[Lower bounds from percentile = q]`: the first listed quantile whose
    /// value may be a lower bound (`none` when every value is exact).
    pub fn write_hgrm<W: Write>(&self, mut out: W) -> io::Result<()> {
        let mut all = self.latency.clone();
        // Same bounds on both sides, so adding cannot fail.
        let _ = all.add(&self.censored);
        write_distribution(&all, &mut out)?;
        writeln!(
            out,
            "#[Censored = {:12}, Offered        = {:12}]",
            self.censored.len(),
            all.len()
        )?;
        match first_lower_bound(&self.latency, &self.censored, &all) {
            Some(quantile) => writeln!(out, "#[Lower bounds from percentile = {quantile:2.12}]")?,
            None => writeln!(out, "#[Lower bounds from percentile = none]")?,
        }
        out.flush()
    }

    /// The answered requests only (corrected in open loop), in the same
    /// format without the censored lines.
    pub fn write_answered_hgrm<W: Write>(&self, mut out: W) -> io::Result<()> {
        write_distribution(&self.latency, &mut out)?;
        out.flush()
    }

    /// The same for the uncorrected histogram (open loop only).
    pub fn write_uncorrected_hgrm<W: Write>(&self, out: W) -> Option<io::Result<()>> {
        self.uncorrected.as_ref().map(|h| {
            let mut out = out;
            write_distribution(h, &mut out)?;
            out.flush()
        })
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` of
/// `/proc/self/status`) when that is fewer than all of them, else empty.
fn pinned_cpus() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return String::new();
    };
    let Some(list) = status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:")) else {
        return String::new();
    };
    let list = list.trim();
    let count: Option<u32> = list
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((first, last)) => (last.parse::<u32>().ok()? + 1).checked_sub(first.parse::<u32>().ok()?),
            None => part.parse::<u32>().ok().map(|_| 1),
        })
        .sum();
    match count {
        Some(count) if count < crate::results::online_cpus() => list.to_owned(),
        _ => String::new(),
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Sub-buckets of a histogram with 3 significant digits: 2 × 10³ rounded up
/// to a power of two.
const SUB_BUCKETS: u32 = 2048;

/// The quantile steps [`write_distribution`] lists.
const TICKS_PER_HALF: u32 = 5;

/// The first quantile step of `all` whose value may be a lower bound.
fn first_lower_bound(answered: &Histogram<u64>, censored: &Histogram<u64>, all: &Histogram<u64>) -> Option<f64> {
    if censored.is_empty() {
        return None;
    }
    all.iter_quantiles(TICKS_PER_HALF)
        .map(|step| (step.quantile_iterated_to(), step.value_iterated_to()))
        .find(|&(quantile, value)| is_lower_bound(answered, censored, value, rank(quantile * 100.0, all.len())))
        .map(|(quantile, _)| quantile)
}

/// HdrHistogram's `outputPercentileDistribution`, 5 ticks per half distance,
/// µs scaled to ms (what wrk2 prints), without flushing.
fn write_distribution<W: Write>(histogram: &Histogram<u64>, out: &mut W) -> io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0_u64;
    if !histogram.is_empty() {
        for step in histogram.iter_quantiles(TICKS_PER_HALF) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / 1000.0;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                writeln!(
                    out,
                    "{value:12.3} {quantile:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - quantile)
                )?;
            } else {
                writeln!(out, "{value:12.3} {quantile:2.12} {total:10}")?;
            }
        }
    }
    writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0
    )?;
    writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        histogram.max() as f64 / 1000.0,
        histogram.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        SUB_BUCKETS
    )
}

/// µs as wrk prints them: `812.00us`, `1.23ms`, `2.50s`.
struct Micros(f64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if us < 1_000.0 {
            write!(f, "{us:.2}us")
        } else if us < 1_000_000.0 {
            write!(f, "{:.2}ms", us / 1e3)
        } else {
            write!(f, "{:.2}s", us / 1e6)
        }
    }
}

/// A value that may be a lower bound: `≥ 2.00s`, or plainly `812.00us`.
pub struct AtLeast {
    /// The value, µs.
    pub us: f64,
    /// Whether it is a lower bound.
    pub lower_bound: bool,
}

impl fmt::Display for AtLeast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = Micros(self.us).to_string();
        if self.lower_bound {
            f.pad(&format!("≥ {value}"))
        } else {
            f.pad(&value)
        }
    }
}

/// Bytes as wrk prints them: `1.23MB`.
struct Bytes(f64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = ["B", "KB", "MB", "GB", "TB"];
        let mut value = self.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < units.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.2}{}", units[unit])
    }
}

impl Report {
    /// The headline: latency over every offered request.
    fn fmt_latency_all(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.latency_all();
        writeln!(
            f,
            "  Latency of every offered request ({:.1}% not answered, counted at a lower bound: their age)",
            all.censored_share * 100.0
        )?;
        let censored = all.censored_share > 0.0;
        writeln!(
            f,
            "    mean {}  max {}  ({} offered)",
            AtLeast {
                us: all.summary.mean_us,
                lower_bound: censored
            },
            AtLeast {
                us: all.summary.max_us as f64,
                lower_bound: all.max_is_lower_bound
            },
            all.summary.count
        )?;
        for &(p, v) in &all.summary.percentiles {
            let lower_bound = all.lower_bound_percentiles.contains(&p);
            writeln!(
                f,
                "    {:>8}  {:>10}",
                format!("{p:.3}%"),
                AtLeast {
                    us: v as f64,
                    lower_bound
                }
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    /// The human table, in wrk's layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64();
        writeln!(f, "Running {:.2}s test @ {}", seconds, self.url)?;
        writeln!(f, "  {}, {} connections", self.loop_name(), self.mode.name())?;
        writeln!(
            f,
            "  {} threads and {} connections, pipeline {}",
            self.threads, self.connections, self.pipeline
        )?;
        if !self.warmup.is_zero() {
            writeln!(f, "  after a {:.1}s warm-up (discarded)", self.warmup.as_secs_f64())?;
        }
        if self.interrupted {
            writeln!(f, "  stopped early (interrupted)")?;
        }
        self.fmt_latency_all(f)?;
        let summary = self.latency_summary();
        let uncorrected = self.uncorrected_summary();
        let title = if uncorrected.is_some() {
            "Latency of answered requests (corrected for coordinated omission)"
        } else {
            "Latency of answered requests"
        };
        writeln!(f, "  {title}")?;
        writeln!(
            f,
            "    mean {}  stdev {}  max {}  ({} samples)",
            Micros(summary.mean_us),
            Micros(summary.stdev_us),
            Micros(summary.max_us as f64),
            summary.count
        )?;
        match &uncorrected {
            None => {
                for (p, v) in &summary.percentiles {
                    writeln!(f, "    {:>8}  {}", format!("{p:.3}%"), Micros(*v as f64))?;
                }
            }
            Some(raw) => {
                writeln!(f, "    {:>8}  {:>10}  {:>10}", "", "corrected", "uncorrected")?;
                for ((p, v), (_, u)) in summary.percentiles.iter().zip(&raw.percentiles) {
                    writeln!(
                        f,
                        "    {:>8}  {:>10}  {:>10}",
                        format!("{p:.3}%"),
                        Micros(*v as f64).to_string(),
                        Micros(*u as f64).to_string()
                    )?;
                }
                writeln!(
                    f,
                    "    {:>8}  {:>10}  {:>10}",
                    "mean",
                    Micros(summary.mean_us).to_string(),
                    Micros(raw.mean_us).to_string()
                )?;
            }
        }
        writeln!(
            f,
            "  {} requests in {:.2}s, {} read",
            self.requests,
            seconds,
            Bytes(self.bytes as f64)
        )?;
        writeln!(
            f,
            "  Offered {}: {} answered, {} failed, {} unsent, {} unanswered; connections served {}/{}",
            self.offered,
            self.requests,
            self.errors.total(),
            self.unsent,
            self.unanswered,
            self.connections_served,
            self.connections
        )?;
        let total = self.errors.total();
        if total > 0 {
            let kinds: Vec<String> = ErrorKind::ALL
                .iter()
                .filter(|&&k| self.errors.get(k) > 0)
                .map(|&k| format!("{} {}", k.name(), self.errors.get(k)))
                .collect();
            writeln!(f, "  Errors: {total} ({})", kinds.join(", "))?;
        } else {
            writeln!(f, "  Errors: 0")?;
        }
        writeln!(
            f,
            "  Connects: {}, reconnects after a server close: {}",
            self.connects, self.reconnects
        )?;
        if let [first, .., last] = self.source_addrs[..] {
            writeln!(
                f,
                "  Source addresses: {} ({first} ... {last}, in turn)",
                self.source_addrs.len()
            )?;
        }
        if let Some(kib) = self.own_peak_rss_kib {
            writeln!(f, "  Load generator peak RSS: {:.1} MiB", kib as f64 / 1024.0)?;
        }
        writeln!(f, "Requests/sec: {:>12.2}", self.rps())?;
        writeln!(
            f,
            "Transfer/sec: {:>12}",
            Bytes(if seconds > 0.0 {
                self.bytes as f64 / seconds
            } else {
                0.0
            })
        )?;
        if !self.timeline.is_empty() {
            writeln!(f, "Requests per second, second by second:")?;
            for chunk in self.timeline.chunks(10) {
                let line: Vec<String> = chunk.iter().map(|n| format!("{n:>8}")).collect();
                writeln!(f, "  {}", line.join(""))?;
            }
        }
        if let Some(n) = self.netstat {
            writeln!(
                f,
                "TcpExt over the run (host-wide, all processes): ListenOverflows +{}, ListenDrops +{}, TCPSynRetrans +{}",
                n.listen_overflows, n.listen_drops, n.syn_retransmits
            )?;
        }
        if let Some(fixed) = &self.fixed_count {
            writeln!(
                f,
                "Fixed count: {} connections x {} requests, {} connections finished, elapsed {:.1} ms",
                self.connections,
                fixed.requests_per_connection,
                fixed.finished_connections,
                ms(fixed.elapsed)
            )?;
            if let (Some(service), Some(min), Some(amp)) =
                (fixed.service_time, fixed.theoretical_min, fixed.amplification)
            {
                writeln!(
                    f,
                    "  service time {:.1} ms, theoretical minimum {:.1} ms (requests x service time, unlimited parallelism), delay amplification {amp:.3}x",
                    ms(service),
                    ms(min)
                )?;
            }
        }
        Ok(())
    }
}

/// `VmHWM` of this process, KiB; `None` where `/proc` has no such field.
fn own_peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::new_histogram;

    #[test]
    fn a_percentile_is_a_lower_bound_only_where_a_censored_value_may_decide_it() {
        let (mut answered, mut censored) = (new_histogram(), new_histogram());
        answered.record_n(1_000, 90).expect("in range");
        censored.record_n(2_000_000, 10).expect("in range");
        let all = LatencyAll::of(&answered, &censored, &[50.0, 90.0, 99.0]);
        assert_eq!(all.censored_share, 0.1);
        assert!(matches!(all.at(50.0), Some((_, false))), "{all:?}");
        assert!(matches!(all.at(90.0), Some((_, false))), "rank 90 is answered: {all:?}");
        assert!(matches!(all.at(99.0), Some((_, true))), "{all:?}");
        assert!(all.max_is_lower_bound);

        // Small lower bounds: below rank 90 they decide, and above it too (a
        // true latency may exceed every answer); rank 50 has 90 answers at
        // or below it, so no bound can move it.
        let mut early = new_histogram();
        early.record_n(100, 10).expect("in range");
        let all = LatencyAll::of(&answered, &early, &[5.0, 50.0, 99.0]);
        assert!(matches!(all.at(5.0), Some((_, true))), "{all:?}");
        assert!(matches!(all.at(50.0), Some((_, false))), "{all:?}");
        assert!(matches!(all.at(99.0), Some((_, true))), "{all:?}");
        assert!(all.max_is_lower_bound, "a bound may hide a larger latency");

        let all = LatencyAll::of(&answered, &new_histogram(), &[50.0, 99.0]);
        assert!(all.lower_bound_percentiles.is_empty() && !all.max_is_lower_bound);
    }

    #[test]
    fn fixed_count_arithmetic_matches_the_seed_experiment() {
        // 1 process x 160 repeats of a 40 ms handler took 6742 ms: 1.053x.
        let fixed = FixedCount::new(160, 1, Duration::from_millis(6742), Some(Duration::from_millis(40)));
        assert_eq!(fixed.theoretical_min, Some(Duration::from_millis(6400)));
        let amp = fixed.amplification.unwrap();
        assert!((amp - 6742.0 / 6400.0).abs() < 1e-12, "{amp}");
        let none = FixedCount::new(5, 1, Duration::from_millis(10), None);
        assert_eq!((none.theoretical_min, none.amplification), (None, None));
    }

    #[test]
    fn hgrm_has_wrk2s_shape() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us * 10).unwrap();
        }
        let mut out = Vec::new();
        write_distribution(&h, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"),
            "{text}"
        );
        assert!(lines[2].trim_start().starts_with("0.010"), "{text}");
        let last = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(
            last.contains("1.000000000000") && last.trim_end().ends_with("1000"),
            "{last}"
        );
        assert!(
            text.contains("#[Max     =       10.0") && text.contains("Total count    =         1000]"),
            "{text}"
        );
    }

    #[test]
    fn micros_print_like_wrk() {
        assert_eq!(Micros(812.0).to_string(), "812.00us");
        assert_eq!(Micros(1234.0).to_string(), "1.23ms");
        assert_eq!(Micros(2_500_000.0).to_string(), "2.50s");
        assert_eq!(Bytes(1536.0).to_string(), "1.50KB");
    }
}
