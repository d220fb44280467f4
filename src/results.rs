//! The result schema: one row per measured run, the same columns whoever
//! produced it (the runner, `dispatchlab load --csv`, the wrk scripts).
//!
//! The columns are documented once, in `results/README.md`, and the notebooks
//! read them by name: add columns at the end, never rename or reorder.
//!
//! Every row carries its context (machine, kernel, rustc, commit, command)
//! because a number without the settings that produced it cannot be compared.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One measured run. Empty cells (`None`) mean "not measured by this tool",
/// never zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// Identifies the run inside its result directory (`<run>-<index>`).
    pub run_id: String,
    /// When the measurement started, RFC 3339 UTC.
    pub timestamp: String,
    /// `git describe`-style revision of the binary that measured (`-dirty` when
    /// it was built from uncommitted changes).
    pub git_rev: String,
    /// `rustc --version` of the build.
    pub rustc: String,
    /// Host name.
    pub host: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPUs online on the machine.
    pub cpus: u32,
    /// CPUs the server was pinned to (`taskset` list), empty when unpinned.
    pub server_cpus: String,
    /// CPUs the load generator was pinned to, empty when unpinned.
    pub load_cpus: String,
    /// `dispatchlab` or `wrk`.
    pub load_tool: String,
    /// The named scenario, or `custom`.
    pub scenario: String,
    /// Strategy name, `nginx`/`tokio` for reference servers, or an outside
    /// server's name (`external` when it has none).
    pub strategy: String,
    /// `connection` or `request`; empty for nginx; `external` for outside
    /// servers.
    pub scope: String,
    /// Worker threads given to the strategy.
    pub workers: Option<u32>,
    /// Event-loop threads (request scope) or acceptor threads (connection
    /// scope) the server was told to run; empty when it was left to its default.
    pub io_threads: Option<u32>,
    /// Listen backlog requested by the server.
    pub backlog: Option<u32>,
    /// The request target, e.g. `/` or `/sleep?ms=40`.
    pub workload: String,
    /// `keepalive`, `close` (a connection per request) or `http10`.
    pub connection_mode: String,
    /// Concurrent connections (closed loop) or client slots.
    pub connections: u32,
    /// Load-generator threads.
    pub load_threads: u32,
    /// Requests in flight per connection (1 = no pipelining).
    pub pipeline: u32,
    /// Target requests/s of an open-loop run; empty for closed loop.
    pub target_rate: Option<f64>,
    /// Requests per connection in fixed-count mode; empty for timed runs.
    pub requests_per_connection: Option<u64>,
    /// Measured seconds (excluding warm-up).
    pub duration_s: f64,
    /// Successful responses (2xx/3xx).
    pub requests: u64,
    /// Response bytes read, headers included.
    pub bytes: u64,
    /// Connections refused (RST to SYN, ECONNREFUSED).
    pub errors_connect_refused: u64,
    /// Connects that did not complete within the timeout.
    pub errors_connect_timeout: u64,
    /// Connections reset or closed by the server mid-response.
    pub errors_reset: u64,
    /// Responses that did not arrive within the timeout.
    pub errors_read_timeout: u64,
    /// Responses with a 4xx/5xx status.
    pub errors_bad_status: u64,
    /// Responses that could not be parsed.
    pub errors_protocol: u64,
    /// Sum of the error columns.
    pub errors_total: u64,
    /// Reconnects after the server closed a keep-alive connection.
    pub reconnects: u64,
    /// Successful responses per measured second.
    pub rps: f64,
    /// Latency mean, µs (corrected for coordinated omission in open loop).
    pub latency_mean_us: Option<f64>,
    /// Latency standard deviation, µs.
    pub latency_stdev_us: Option<f64>,
    /// Median latency, µs.
    pub latency_p50_us: Option<f64>,
    /// 90th percentile latency, µs.
    pub latency_p90_us: Option<f64>,
    /// 99th percentile latency, µs.
    pub latency_p99_us: Option<f64>,
    /// 99.9th percentile latency, µs.
    pub latency_p999_us: Option<f64>,
    /// Maximum latency, µs.
    pub latency_max_us: Option<f64>,
    /// Server peak resident set (VmHWM), KiB.
    pub server_peak_rss_kib: Option<u64>,
    /// Most threads the server had at one sample.
    pub server_peak_threads: Option<u64>,
    /// Server user + system CPU seconds during the measured run.
    pub server_cpu_s: Option<f64>,
    /// Host-wide TcpExt ListenOverflows delta over the run.
    pub listen_overflows: Option<u64>,
    /// Host-wide TcpExt ListenDrops delta over the run.
    pub listen_drops: Option<u64>,
    /// Host-wide TcpExt TCPSynRetrans delta over the run.
    pub syn_retransmits: Option<u64>,
    /// Known handler service time, ms (fixed-count mode).
    pub service_time_ms: Option<f64>,
    /// Requests per connection × service time, ms: the elapsed time with
    /// unlimited parallelism.
    pub theoretical_min_ms: Option<f64>,
    /// Elapsed ÷ theoretical minimum.
    pub amplification: Option<f64>,
    /// `ok`, or what went wrong with this row (server failed to start, exited
    /// non-zero, load error).
    pub outcome: String,
    /// The exact command that produced the row.
    pub command: String,
    /// Requests that failed locally: no ephemeral port (`EADDRNOTAVAIL`), no
    /// descriptor (`EMFILE`), other I/O errors. Included in `errors_total`.
    pub errors_other: u64,
    /// The command line that started the measured server (`dispatchlab serve
    /// …`, `nginx -c …`, an outside server's command); empty when the row's
    /// producer did not start it.
    pub server_command: String,
    /// Requests offered in the measured window: `requests + errors_total +
    /// unsent + unanswered`. Empty when the load tool does not know (wrk).
    pub offered: Option<u64>,
    /// Offered requests never written (open loop: due while their connection
    /// waited or connected). Empty when unknown (wrk).
    pub unsent: Option<u64>,
    /// Offered requests written and neither answered nor failed when the
    /// window ended. Empty when unknown (wrk).
    pub unanswered: Option<u64>,
    /// Connections (client slots) that got at least one answer in the
    /// window, out of `connections`. Empty when unknown (wrk).
    pub connections_served: Option<u64>,
    /// Share of the all-offered latencies that are lower bounds (failed,
    /// unsent, unanswered requests at their age), 0 to 1.
    pub latency_all_censored_share: Option<f64>,
    /// Median over every offered request, lower bounds included, µs.
    pub latency_all_p50_us: Option<f64>,
    /// 90th percentile over every offered request, µs.
    pub latency_all_p90_us: Option<f64>,
    /// 99th percentile over every offered request, µs.
    pub latency_all_p99_us: Option<f64>,
    /// 99.9th percentile over every offered request, µs.
    pub latency_all_p999_us: Option<f64>,
    /// Largest value over every offered request, µs.
    pub latency_all_max_us: Option<f64>,
    /// Which `latency_all_*` columns hold a lower bound ("at least"), space
    /// separated: e.g. `p99 p999 max`. Empty when all are exact.
    pub latency_all_lower_bounds: String,
    /// The server's `--keep-alive` policy (`on`, `off`, `adaptive`); empty
    /// for a server the runner does not configure (nginx, wrk's targets).
    pub keep_alive: String,
    /// Which repeat of its cell the row is, from 1 (`compare --repeat N`);
    /// empty when the producer does not repeat.
    pub repeat: Option<u32>,
    /// The share of the pinned CPUs' time that went to other processes (and
    /// to steal) during the run, 0 to 1, as `server=0.012 load=0.000` (or
    /// `all=…` when server and load share their CPUs); empty when not
    /// measured. See `compare::disturbance`.
    pub disturbance: String,
    /// The 1-minute load average just before the run; empty when unknown.
    pub load_average: Option<f64>,
    /// Whether this attempt is the one that counts for its cell and repeat:
    /// `false` for an attempt `--retry-disturbed` measured again; empty when
    /// the producer does not retry.
    pub counted: Option<bool>,
    /// The server's `--sched` policy (`other`, `batch`); empty for a server
    /// the runner does not configure (nginx, outside servers, wrk's targets).
    pub sched: String,
}

/// The percentiles (in percent) of the `latency_*_us` and `latency_all_*_us`
/// columns, with their column suffixes.
pub const ROW_PERCENTILES: [(f64, &str); 4] = [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p999")];

impl RunRow {
    /// Offered requests that were answered, 0 to 1; `None` when the offered
    /// count is unknown or zero.
    pub fn answered_share(&self) -> Option<f64> {
        self.offered
            .filter(|&offered| offered > 0)
            .map(|offered| self.requests as f64 / offered as f64)
    }

    /// Whether the `latency_all_*` column with suffix `name` (`p99`, `max`)
    /// holds a lower bound.
    pub fn is_lower_bound(&self, name: &str) -> bool {
        self.latency_all_lower_bounds.split(' ').any(|n| n == name)
    }
}

/// What the row's producer knows about the machine and the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// Kernel release.
    pub kernel: String,
    /// CPUs online.
    pub cpus: u32,
    /// `rustc --version` at build time.
    pub rustc: String,
    /// Revision at build time.
    pub git_rev: String,
}

impl Machine {
    /// Reads the machine (uname, CPU count) and the build facts baked in by
    /// `build.rs`.
    pub fn detect() -> Self {
        let (host, kernel) = uname();
        Self {
            host,
            kernel,
            cpus: online_cpus(),
            rustc: env!("DISPATCHLAB_RUSTC").to_owned(),
            git_rev: env!("DISPATCHLAB_GIT_REV").to_owned(),
        }
    }

    /// Copies the machine facts into a row.
    pub fn stamp(&self, row: &mut RunRow) {
        row.host.clone_from(&self.host);
        row.kernel.clone_from(&self.kernel);
        row.cpus = self.cpus;
        row.rustc.clone_from(&self.rustc);
        row.git_rev.clone_from(&self.git_rev);
    }
}

/// CPUs online (not the affinity mask: a pinned process still reports the
/// machine).
pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(online).unwrap_or(1).max(1)
}

fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it or fails.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return ("unknown".into(), "unknown".into());
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&name.nodename), field(&name.release))
}

/// The current time as RFC 3339 UTC with seconds (`2026-11-25T05:02:59Z`).
pub fn timestamp_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A compact, sortable run name for directory names (`20261125-050259`).
pub fn run_name_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string();
    stamp
        .replace(['-', ':'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_owned()
}

/// Writes rows as CSV with the header line.
pub fn write_csv<W: io::Write>(out: W, rows: &[RunRow]) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Reads rows written by [`write_csv`].
pub fn read_csv(path: &Path) -> csv::Result<Vec<RunRow>> {
    csv::Reader::from_path(path)?.deserialize().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_and_keeps_empty_cells_empty() {
        let row = RunRow {
            run_id: "r-1".into(),
            strategy: "mutex-queue".into(),
            requests: 42,
            latency_p99_us: Some(812.5),
            ..RunRow::default()
        };
        let mut out = Vec::new();
        write_csv(&mut out, std::slice::from_ref(&row)).unwrap();
        let text = String::from_utf8(out).unwrap();
        let header = text.lines().next().unwrap();
        assert!(header.starts_with("run_id,timestamp,git_rev,"), "{header}");
        assert!(text.contains(",,"), "None must serialise as an empty cell: {text}");
        let back: Vec<RunRow> = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![row]);
    }

    #[test]
    fn run_name_is_compact_and_sortable() {
        let name = run_name_now();
        assert_eq!(name.len(), "20261125-050259".len(), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_digit() || c == '-'), "{name}");
    }

    #[test]
    fn machine_facts_are_filled() {
        let machine = Machine::detect();
        assert!(machine.cpus >= 1);
        assert!(machine.rustc.starts_with("rustc "), "{}", machine.rustc);
        assert!(!machine.kernel.is_empty());
    }
}
