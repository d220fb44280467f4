//! What a comparison leaves behind: `runs.csv` and `runs.json` (the result
//! schema, documented in `results/README.md`), one `.hgrm` per run,
//! `summary.md`, and the ranking tables printed on standard output.
//!
//! Tables are built once ([`tables`]) and rendered twice: as aligned text
//! for the terminal (kept within 100 columns) and as Markdown for the
//! summary (with more columns).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::matrix::Cell;
use super::scenario::Plan;
use crate::load::Report;
use crate::results::{self, RunRow};

/// A measured cell: its definition and its row.
#[derive(Clone, Debug)]
pub struct Measured {
    /// What was measured.
    pub cell: Cell,
    /// What came out.
    pub row: RunRow,
}

impl Measured {
    /// Whether the row is a complete measurement.
    pub fn ok(&self) -> bool {
        self.row.outcome == "ok"
    }
}

/// The context every file records.
#[derive(Clone, Debug, Serialize)]
pub struct Header {
    /// `dispatchlab compare`.
    pub tool: String,
    /// The crate version.
    pub version: String,
    /// The plan's name (`default`, `custom`, a scenario).
    pub scenario: String,
    /// The plan's title.
    pub title: String,
    /// What the plan varies.
    pub varies: String,
    /// What it shows.
    pub shows: String,
    /// The exact command.
    pub command: String,
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    /// When it ended (empty while it runs).
    pub finished: String,
    /// Host name.
    pub host: String,
    /// Kernel release.
    pub kernel: String,
    /// CPUs online.
    pub cpus: u32,
    /// `rustc --version` of the build.
    pub rustc: String,
    /// Git revision of the build.
    pub git_rev: String,
    /// CPUs the servers were pinned to (empty: unpinned).
    pub server_cpus: String,
    /// CPUs the load generator was pinned to (empty: unpinned).
    pub load_cpus: String,
    /// Load-generator threads.
    pub load_threads: u32,
    /// Cells planned.
    pub cells: usize,
    /// Rows whose outcome is not `ok`.
    pub failed: usize,
    /// Remarks on reading the results (also in `summary.md`).
    pub notes: Vec<String>,
}

/// Writes `runs.csv`.
pub fn write_csv(dir: &Path, rows: &[RunRow]) -> io::Result<()> {
    let file = std::fs::File::create(dir.join("runs.csv"))?;
    results::write_csv(io::BufWriter::new(file), rows).map_err(io::Error::other)
}

/// Writes `runs.json`: `{"header": {...}, "rows": [...]}`.
pub fn write_json(dir: &Path, header: &Header, rows: &[RunRow]) -> io::Result<()> {
    #[derive(Serialize)]
    struct Json<'a> {
        header: &'a Header,
        rows: &'a [RunRow],
    }
    let file = std::fs::File::create(dir.join("runs.json"))?;
    let mut out = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, &Json { header, rows }).map_err(io::Error::other)?;
    writeln!(out)?;
    out.flush()
}

/// Writes the run's latency distribution in wrk2's `.hgrm` format, then the
/// row's context as `#` comment lines (after the distribution, where the
/// plotters that read the format skip them).
pub fn write_hgrm(path: &Path, report: &Report, row: &RunRow, header: &Header) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    report.write_hgrm(&mut out)?;
    writeln!(out, "# run {} ({}), {}", row.run_id, row.scenario, row.timestamp)?;
    writeln!(
        out,
        "# server {} {} workers {} backlog {}; load {} {} connections, pipeline {}, rate {}",
        row.strategy,
        row.scope,
        opt(row.workers),
        opt(row.backlog),
        row.workload,
        row.connections,
        row.pipeline,
        row.target_rate.map_or("closed loop".into(), |r| format!("{r}/s")),
    )?;
    writeln!(
        out,
        "# machine {} ({} CPUs, kernel {}), server CPUs {}, load CPUs {}; {}; git {}",
        header.host,
        header.cpus,
        header.kernel,
        empty_dash(&row.server_cpus),
        empty_dash(&row.load_cpus),
        header.rustc,
        header.git_rev
    )?;
    writeln!(out, "# command: {}", header.command)?;
    out.flush()
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn empty_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// A file-name-safe form of a label.
pub fn slug(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

/// One table: a title and aligned cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The group the rows share.
    pub title: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Whether a column is right-aligned (numbers).
    pub right: Vec<bool>,
    /// The cells.
    pub rows: Vec<Vec<String>>,
    /// Lines under the table (rows that failed).
    pub footnotes: Vec<String>,
}

impl Table {
    /// Aligned text.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain(std::iter::once(self.columns[i].chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                if self.right[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < cells.len() {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out
        };
        let mut text = format!("== {} ==\n{}\n", self.title, line(&self.columns));
        for row in &self.rows {
            text.push_str(&line(row));
            text.push('\n');
        }
        for note in &self.footnotes {
            text.push_str(&format!("  {note}\n"));
        }
        text
    }

    /// A Markdown table under a `###` heading.
    pub fn to_markdown(&self) -> String {
        let mut text = format!("### {}\n\n| {} |\n|", self.title, self.columns.join(" | "));
        for &right in &self.right {
            text.push_str(if right { "---:|" } else { "---|" });
        }
        text.push('\n');
        for row in &self.rows {
            text.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        if !self.footnotes.is_empty() {
            text.push('\n');
            for note in &self.footnotes {
                text.push_str(&format!("- {note}\n"));
            }
        }
        text
    }
}

/// The answered share (requests / offered) below which a ranking row is
/// marked: its latency and throughput describe the few it served. A row is
/// marked too when some connection got no answer at all: in a closed loop a
/// starved connection offers one request, so 255 starved connections of 256
/// may weigh less than 1 % of the requests.
pub const ANSWERED_SHARE_MARK: f64 = 0.99;

/// The marker of a row answered below [`ANSWERED_SHARE_MARK`] or with a
/// connection never served.
const UNDER_ANSWERED: &str = "‡";

/// The headline latency of a row at column suffix `name` (`p50`, `max`):
/// over every offered request, `≥ 2.00s` where a lower bound may have
/// decided it; the answered-only column when the all-offered one is unknown
/// (wrk rows).
fn fmt_headline(r: &RunRow, name: &str) -> String {
    let (all, answered) = match name {
        "p50" => (r.latency_all_p50_us, r.latency_p50_us),
        "p90" => (r.latency_all_p90_us, r.latency_p90_us),
        "p99" => (r.latency_all_p99_us, r.latency_p99_us),
        "p999" => (r.latency_all_p999_us, r.latency_p999_us),
        _ => (r.latency_all_max_us, r.latency_max_us),
    };
    match all {
        Some(us) if r.is_lower_bound(name) => format!("≥ {}", fmt_us(Some(us))),
        Some(us) => fmt_us(Some(us)),
        None => fmt_us(answered),
    }
}

/// `1/8`: connections that got an answer, of those opened; `-` when unknown.
fn fmt_served(r: &RunRow) -> String {
    r.connections_served
        .map_or_else(|| "-".into(), |s| format!("{s}/{}", r.connections))
}

/// The footnote of a row answered below [`ANSWERED_SHARE_MARK`], or with
/// connections that got no answer, if it is one.
fn under_answered_note(label: &str, r: &RunRow) -> Option<String> {
    let share = r.answered_share()?;
    let unserved = r
        .connections_served
        .is_some_and(|served| served < u64::from(r.connections));
    if share >= ANSWERED_SHARE_MARK && !unserved {
        return None;
    }
    Some(format!(
        "{label} {UNDER_ANSWERED} answered {:.1} % of {} offered ({} failed, {} unsent, {} unanswered); \
         connections served {}: its latencies are over every offered request, lower bounds marked ≥",
        share * 100.0,
        opt(r.offered),
        r.errors_total,
        opt(r.unsent),
        opt(r.unanswered),
        fmt_served(r),
    ))
}

/// Latency in µs as `812us`, `1.23ms`, `2.50s`.
pub fn fmt_us(us: Option<f64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1000.0 => format!("{us:.0}us"),
        Some(us) if us < 1_000_000.0 => format!("{:.2}ms", us / 1e3),
        Some(us) => format!("{:.2}s", us / 1e6),
    }
}

fn fmt_rps(rps: f64) -> String {
    if rps >= 100.0 {
        format!("{rps:.0}")
    } else {
        format!("{rps:.1}")
    }
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

fn fmt_mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// Connections from which a ranking table shows the server's peak RSS per
/// connection (`KiB/conn`, the fixed part included).
const PER_CONNECTION_FROM: u32 = 1000;

/// The groups of `measured`, in the order they first appear.
fn groups(measured: &[Measured]) -> Vec<&str> {
    let mut groups: Vec<&str> = Vec::new();
    for m in measured {
        if !groups.contains(&m.cell.group.as_str()) {
            groups.push(&m.cell.group);
        }
    }
    groups
}

/// The tables of a run, one per group. `wide` adds the columns that do not
/// fit in 100 terminal columns.
pub fn tables(measured: &[Measured], wide: bool) -> Vec<Table> {
    groups(measured)
        .into_iter()
        .map(|group| {
            let members: Vec<&Measured> = measured.iter().filter(|m| m.cell.group == group).collect();
            if members.iter().all(|m| m.cell.load.requests_per_connection.is_some()) {
                fixed_count_table(group, &members, wide)
            } else {
                ranking_table(group, &members, wide)
            }
        })
        .collect()
}

/// A timed group: one line per server, most answered requests per second
/// first; a row answered below [`ANSWERED_SHARE_MARK`] of what was offered
/// is marked and footnoted, and every latency is over all offered requests,
/// so a starved row cannot show a flattering p99.
fn ranking_table(group: &str, members: &[&Measured], wide: bool) -> Table {
    let mut sorted: Vec<&Measured> = members.to_vec();
    sorted.sort_by(|a, b| b.row.rps.total_cmp(&a.row.rps));
    let best = sorted.iter().filter(|m| m.ok()).map(|m| m.row.rps).fold(0.0, f64::max);
    let reference = members
        .iter()
        .find(|m| m.cell.is_reference() && m.ok())
        .map(|m| m.row.rps);
    let ideal = members.iter().any(|m| m.cell.ideal_rps.is_some());
    let mut columns = vec!["server", "w", "req/s", "p50", "p99", "max", "errors", "served"];
    if wide {
        columns.extend(["timeouts", "offered", "unsent", "unansw", "p90", "p99.9", "CPU s"]);
    }
    // Memory per connection, where a table holds enough connections for the
    // server's fixed part to fade (c10k, c100k).
    let per_connection = members.iter().all(|m| m.row.connections >= PER_CONNECTION_FROM);
    columns.extend(["RSS MiB", "thr"]);
    if per_connection {
        columns.push("KiB/conn");
    }
    columns.push("xbest");
    if let Some(name) = members.iter().find(|m| m.cell.is_reference()).map(|m| &m.row.strategy) {
        columns.push(if name == "nginx" { "xnginx" } else { "xref" });
    }
    if ideal {
        columns.push("xideal");
    }
    let mut rows = Vec::new();
    let mut footnotes = Vec::new();
    for m in sorted {
        let r = &m.row;
        let mut server = m.cell.server.label();
        if !m.ok() {
            server.push_str(" (!)");
            footnotes.push(format!("{} failed: {}", m.cell.server.label(), r.outcome));
        }
        if let Some(note) = under_answered_note(&m.cell.server.label(), r) {
            server.push(' ');
            server.push_str(UNDER_ANSWERED);
            footnotes.push(note);
        }
        let mut cells = vec![
            server,
            opt(r.workers),
            fmt_rps(r.rps),
            fmt_headline(r, "p50"),
            fmt_headline(r, "p99"),
            fmt_headline(r, "max"),
            r.errors_total.to_string(),
            fmt_served(r),
        ];
        if wide {
            cells.extend([
                r.errors_read_timeout.to_string(),
                opt(r.offered),
                opt(r.unsent),
                opt(r.unanswered),
                fmt_headline(r, "p90"),
                fmt_headline(r, "p999"),
                r.server_cpu_s.map_or_else(|| "-".into(), |s| format!("{s:.2}")),
            ]);
        }
        cells.extend([fmt_mib(r.server_peak_rss_kib), opt(r.server_peak_threads)]);
        if per_connection {
            cells.push(r.server_peak_rss_kib.map_or_else(
                || "-".into(),
                |kib| format!("{:.2}", kib as f64 / f64::from(r.connections.max(1))),
            ));
        }
        cells.push(fmt_ratio((best > 0.0).then(|| r.rps / best)));
        if columns.contains(&"xnginx") || columns.contains(&"xref") {
            cells.push(fmt_ratio(reference.filter(|&n| n > 0.0).map(|n| r.rps / n)));
        }
        if ideal {
            cells.push(fmt_ratio(m.cell.ideal_rps.filter(|&i| i > 0.0).map(|i| r.rps / i)));
        }
        rows.push(cells);
    }
    let mut right = vec![true; columns.len()];
    right[0] = false;
    Table {
        title: group.to_owned(),
        columns: columns.into_iter().map(str::to_owned).collect(),
        right,
        rows,
        footnotes,
    }
}

/// A fixed-count group (the backlog scenario): one line per client count,
/// in plan order, with the seed experiment's columns.
fn fixed_count_table(group: &str, members: &[&Measured], wide: bool) -> Table {
    let mut columns = vec![
        "P",
        "repeats",
        "time ms",
        "min ms",
        "xmin",
        "p50",
        "p99",
        "max",
        "overflows",
        "SYN rtx",
        "conn err",
    ];
    if wide {
        columns.extend(["drops", "errors", "RSS MiB", "thr"]);
    }
    let mut rows = Vec::new();
    let mut footnotes = Vec::new();
    for m in members {
        let r = &m.row;
        let mut p = r.connections.to_string();
        if !m.ok() {
            p.push_str(" (!)");
            footnotes.push(format!("P={} failed: {}", r.connections, r.outcome));
        }
        let mut cells = vec![
            p,
            opt(r.requests_per_connection),
            format!("{:.0}", r.duration_s * 1e3),
            r.theoretical_min_ms.map_or_else(|| "-".into(), |t| format!("{t:.0}")),
            r.amplification.map_or_else(|| "-".into(), |a| format!("{a:.2}")),
            fmt_us(r.latency_p50_us),
            fmt_us(r.latency_p99_us),
            fmt_us(r.latency_max_us),
            opt(r.listen_overflows),
            opt(r.syn_retransmits),
            (r.errors_connect_refused + r.errors_connect_timeout).to_string(),
        ];
        if wide {
            cells.extend([
                opt(r.listen_drops),
                r.errors_total.to_string(),
                fmt_mib(r.server_peak_rss_kib),
                opt(r.server_peak_threads),
            ]);
        }
        rows.push(cells);
    }
    Table {
        title: group.to_owned(),
        columns: columns.into_iter().map(str::to_owned).collect(),
        right: vec![true; if wide { 15 } else { 11 }],
        rows,
        footnotes,
    }
}

/// Remarks that help read the rows: starvation, counters that are
/// host-wide, coordinated-omission correction, failures.
pub fn notes(measured: &[Measured]) -> Vec<String> {
    let mut notes = Vec::new();
    let starved: Vec<&Measured> = measured
        .iter()
        .filter(|m| {
            // Starvation needs keep-alive connections (a connection per
            // request is one job of one request) and a bounded pool.
            let r = &m.row;
            r.scope == "connection"
                && r.connection_mode == "keepalive"
                && r.strategy != "thread-per-task"
                && r.errors_read_timeout > 0
                && r.workers.is_some_and(|w| w < r.connections)
        })
        .collect();
    if let Some(first) = starved.first() {
        let labels: Vec<String> = starved.iter().map(|m| m.cell.label()).collect();
        notes.push(format!(
            "Read timeouts in connection scope are keep-alive starvation, not a fault of the runner: a job there is a \
             whole connection, so a pool of N workers serves N connections and the others wait (head-of-line \
             blocking) until the load generator's request timeout ({}) gives up on them, reconnects, and waits \
             again. Rows: {}.",
            humantime::format_duration(first.cell.load.timeout),
            labels.join("; ")
        ));
    }
    let hidden: Vec<String> = measured
        .iter()
        .filter(|m| {
            let (cell, r) = (&m.cell, &m.row);
            r.scope == "connection"
                && r.connection_mode == "keepalive"
                && r.workers.is_some_and(|w| w < r.connections)
                && r.strategy != "thread-per-task"
                && cell.load.requests_per_connection.is_none()
                && cell.load.warmup + cell.load.duration <= cell.load.timeout
        })
        .map(|m| m.cell.label())
        .collect();
    if !hidden.is_empty() {
        notes.push(format!(
            "Runs shorter than the request timeout end before a starved connection times out, so starvation shows \
             only as lower throughput there (lengthen --duration to see the timeouts): {}.",
            hidden.join("; ")
        ));
    }
    if measured.iter().any(|m| m.row.target_rate.is_some()) {
        notes.push(
            "Open-loop rows (a target rate): latency counts from each request's intended send time, so a stalled \
             server is charged for the requests it delayed (coordinated-omission correction, as wrk2)."
                .into(),
        );
    }
    if measured
        .iter()
        .any(|m| m.row.listen_overflows.is_some_and(|n| n > 0) || m.row.syn_retransmits.is_some_and(|n| n > 0))
    {
        notes.push(
            "Listen overflows, drops and SYN retransmits are host-wide TcpExt counters (/proc/net/netstat) over the \
             run: on a busy machine other processes' connections count too."
                .into(),
        );
    }
    if measured.iter().any(Measured::ok) {
        notes.push(
            "RSS is the server's VmHWM (peak resident set, KiB in the CSV; for nginx the sum over its master and \
             workers); KiB/conn that peak over the connections (from 1,000 connections on); threads the most seen at one 100 ms sample; CPU s the server's user + system time during \
             the measurement."
                .into(),
        );
    }
    notes
}

/// The whole `summary.md`.
pub fn summary_markdown(header: &Header, plan: &Plan, measured: &[Measured], regenerate: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# dispatchlab compare: {}\n", plan.title);
    let _ = writeln!(text, "- **scenario**: `{}`", plan.name);
    let _ = writeln!(text, "- **varies**: {}", plan.varies);
    let _ = writeln!(text, "- **shows**: {}", plan.shows);
    let _ = writeln!(
        text,
        "- **machine**: {} ({} CPUs, kernel {}); server CPUs {}, load CPUs {}, {} load thread(s)",
        header.host,
        header.cpus,
        header.kernel,
        empty_dash(&header.server_cpus),
        empty_dash(&header.load_cpus),
        header.load_threads
    );
    let _ = writeln!(text, "- **build**: {}, git {}", header.rustc, header.git_rev);
    let _ = writeln!(text, "- **command**: `{}`", header.command);
    let _ = writeln!(text, "- **regenerate**: `{regenerate}`");
    let _ = writeln!(
        text,
        "- **time**: {} to {}; {} runs, {} failed\n",
        header.started,
        header.finished,
        measured.len(),
        header.failed
    );
    let _ = writeln!(
        text,
        "Columns: w = workers given to the strategy; req/s = answered requests (successful responses) per \
         measured second, the ranking order; p50/p99/max latency over every offered request: a failed, unsent or \
         unanswered one counts at its age (a lower bound), and a percentile a lower bound may have decided \
         reads `≥`; {UNDER_ANSWERED} = fewer than {:.0} % of the offered requests answered, or a connection never served \
         (footnoted); errors = \
         failed requests (all kinds; timeouts = read timeouts); offered = requests + errors + unsent (due but never \
         written) + unanswered (written, still open when the window ended); served = connections that got an \
         answer, of all; RSS = server peak \
         resident set; thr = server peak threads; xbest = req/s over the group's best; xnginx = over nginx's; \
         xideal = over the scenario's model. Fixed-count tables: P clients x repeats, time used, theoretical \
         minimum, xmin = amplification, listen overflows, SYN retransmits, connect errors. Every column of \
         runs.csv is documented in results/README.md.\n",
        ANSWERED_SHARE_MARK * 100.0
    );
    let _ = writeln!(text, "## Results\n");
    for table in tables(measured, true) {
        let _ = writeln!(text, "{}", table.to_markdown());
    }
    let notes = &header.notes;
    if !notes.is_empty() {
        let _ = writeln!(text, "## Notes\n");
        for note in notes {
            let _ = writeln!(text, "- {note}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Strategy;
    use crate::compare::matrix::{LoadSpec, ServerKind, ServerSpec};
    use crate::server::Scope;

    fn measured(strategy: Strategy, scope: Scope, rps: f64, timeouts: u64) -> Measured {
        let load = LoadSpec::closed("/", 256, Duration::from_secs(2), Duration::from_millis(300));
        Measured {
            cell: Cell {
                group: "/ c=256".into(),
                server: ServerSpec {
                    kind: ServerKind::Dispatchlab(crate::server::Target {
                        engine: strategy.into(),
                        scope,
                    }),
                    workers: None,
                    backlog: 1024,
                    io_threads: None,
                    keep_alive: crate::server::KeepAlive::default(),
                },
                load,
                ideal_rps: None,
            },
            row: RunRow {
                strategy: strategy.name().into(),
                scope: scope.name().into(),
                workers: Some(1),
                connections: 256,
                connection_mode: "keepalive".into(),
                rps,
                errors_read_timeout: timeouts,
                errors_total: timeouts,
                latency_p50_us: Some(95.0),
                latency_p99_us: Some(1234.0),
                latency_max_us: Some(2_500_000.0),
                server_peak_rss_kib: Some(4096),
                server_peak_threads: Some(3),
                outcome: "ok".into(),
                ..RunRow::default()
            },
        }
    }

    #[test]
    fn ranking_is_fastest_first_with_ratios_and_fits_100_columns() {
        let rows = vec![
            measured(Strategy::MutexQueue, Scope::Connection, 1_000.0, 255),
            measured(Strategy::ThreadPerTask, Scope::Request, 40_000.0, 0),
            measured(Strategy::MutexQueue, Scope::Request, 50_000.0, 0),
        ];
        let table = &tables(&rows, false)[0];
        assert_eq!(table.rows[0][0], "mutex-queue/request");
        assert_eq!(table.rows[0].last().unwrap(), "1.00");
        assert_eq!(table.rows[1].last().unwrap(), "0.80");
        let text = table.to_text();
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(
            text.contains("2.50s") && text.contains("1.23ms") && text.contains("95us"),
            "{text}"
        );
        let notes = notes(&rows);
        assert!(
            notes[0].contains("head-of-line") && notes[0].contains("mutex-queue/connection"),
            "{notes:?}"
        );
    }

    #[test]
    fn failed_rows_are_marked_and_footnoted() {
        let mut failed = measured(Strategy::MutexQueue, Scope::Request, 0.0, 0);
        failed.row.outcome = "server exited with status 1 after SIGTERM".into();
        let table = &tables(&[failed], true)[0];
        assert!(table.rows[0][0].ends_with("(!)"));
        assert!(table.to_markdown().contains("status 1 after SIGTERM"));
    }

    #[test]
    fn ranking_sorts_by_answered_rate_and_marks_starved_rows_with_lower_bounds() {
        let mut starved = measured(Strategy::MutexQueue, Scope::Connection, 60_000.0, 10);
        starved.row.requests = 900;
        starved.row.offered = Some(1000);
        starved.row.unsent = Some(60);
        starved.row.unanswered = Some(30);
        starved.row.connections_served = Some(1);
        starved.row.latency_all_p99_us = Some(2_000_000.0);
        starved.row.latency_all_max_us = Some(2_500_000.0);
        starved.row.latency_all_lower_bounds = "p99 max".into();
        let mut healthy = measured(Strategy::MutexQueue, Scope::Request, 50_000.0, 0);
        healthy.row.requests = 995;
        healthy.row.offered = Some(1000);
        healthy.row.latency_all_p99_us = Some(1234.0);
        let table = &tables(&[healthy, starved], true)[0];
        assert_eq!(table.rows[0][0], "mutex-queue/connection ‡", "{}", table.to_text());
        assert_eq!(table.rows[1][0], "mutex-queue/request");
        let p99 = table.columns.iter().position(|c| c == "p99").expect("p99 column");
        assert_eq!(table.rows[0][p99], "≥ 2.00s");
        assert_eq!(table.rows[1][p99], "1.23ms");
        let served = table.columns.iter().position(|c| c == "served").expect("served column");
        assert_eq!(table.rows[0][served], "1/256");
        assert_eq!(table.footnotes.len(), 1, "{:?}", table.footnotes);
        assert!(
            table.footnotes[0].contains("answered 90.0 % of 1000 offered"),
            "{:?}",
            table.footnotes
        );
    }

    #[test]
    fn a_closed_loop_pool_that_serves_one_connection_is_marked_though_it_answered_almost_every_request() {
        // 15 starved connections offer one request each: 0.07 % of the total.
        let mut starved = measured(Strategy::MutexQueue, Scope::Connection, 11_000.0, 0);
        starved.row.connections = 16;
        starved.row.requests = 22_000;
        starved.row.offered = Some(22_015);
        starved.row.unanswered = Some(15);
        starved.row.connections_served = Some(1);
        let table = &tables(&[starved], false)[0];
        assert_eq!(table.rows[0][0], "mutex-queue/connection ‡", "{}", table.to_text());
        let served = table
            .columns
            .iter()
            .position(|c| c == "served")
            .expect("served in the narrow table");
        assert_eq!(table.rows[0][served], "1/16");
        assert!(
            table.footnotes[0].contains("connections served 1/16"),
            "{:?}",
            table.footnotes
        );
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("mutex-queue/request /sleep?ms=40 c=8"),
            "mutex-queue-request-sleep-ms-40-c-8"
        );
    }
}
