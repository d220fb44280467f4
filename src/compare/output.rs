//! What a comparison leaves behind: `runs.csv` and `runs.json` (the result
//! schema, documented in `results/README.md`), one `.hgrm` per run,
//! `summary.md`, and the ranking tables printed on standard output.
//!
//! Tables are built once ([`tables`]) and rendered twice: as aligned text
//! for the terminal (kept within 100 columns) and as Markdown for the
//! summary (with more columns).
//!
//! With `--repeat N` a table line is a cell over its repeats ([`CellSummary`]):
//! req/s, p50 and p99 are the medians of the repeats that count, with their
//! min–max range (the terminal shows the req/s range relative to the
//! median in place of the max latency, and no latency ranges, to stay
//! within 100 columns); the other columns are the median repeat's (by req/s, or by
//! time in fixed-count tables). Min–max rather than a bootstrap interval:
//! with three repeats a bootstrap interval of the median is no narrower,
//! and a range can be checked by eye (see [`Spread`]). Two cells whose
//! req/s ranges overlap are "within noise": `xbest`/`xnginx` carry `≈`, and
//! a footnote names the neighbours a ranking cannot tell apart.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::disturbance::{BUSY_LOAD_AVERAGE, DISTURBED};
use super::matrix::Cell;
use super::repeat::Spread;
use super::scenario::Plan;
use crate::load::Report;
use crate::results::{self, RunRow};

/// A measured cell: its definition and its row.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The cell's index in the plan: a cell's repeats and attempts share it.
    pub index: usize,
    /// What was measured.
    pub cell: Cell,
    /// What came out.
    pub row: RunRow,
}

impl Measured {
    /// Whether the row is a complete measurement: `ok`, or flagged as
    /// disturbed (which is not a failure).
    pub fn ok(&self) -> bool {
        self.row.outcome == "ok" || self.disturbed()
    }

    /// Whether the run was complete but its CPUs were disturbed.
    pub fn disturbed(&self) -> bool {
        self.row.outcome.starts_with(DISTURBED)
    }

    /// Whether the row counts for its cell (not an attempt measured again).
    pub fn counts(&self) -> bool {
        self.row.counted != Some(false)
    }
}

/// A cell over its repeats: what one table line shows.
#[derive(Clone, Debug)]
pub struct CellSummary<'a> {
    /// Every repeat that counts, in the order measured.
    pub repeats: Vec<&'a Measured>,
    /// The median repeat (by the table's key), whose other columns are shown.
    pub median: &'a Measured,
}

impl<'a> CellSummary<'a> {
    /// The cells of `measured` (only the attempts that count), in the order
    /// they first appear; `key` picks the median repeat.
    pub fn of(measured: impl IntoIterator<Item = &'a Measured>, key: fn(&RunRow) -> f64) -> Vec<CellSummary<'a>> {
        let mut cells: Vec<Vec<&Measured>> = Vec::new();
        for m in measured.into_iter().filter(|m| m.counts()) {
            match cells.iter_mut().find(|repeats| repeats[0].index == m.index) {
                Some(repeats) => repeats.push(m),
                None => cells.push(vec![m]),
            }
        }
        cells
            .into_iter()
            .map(|repeats| {
                let mut ok: Vec<&Measured> = repeats.iter().copied().filter(|m| m.ok()).collect();
                ok.sort_by(|a, b| key(&a.row).total_cmp(&key(&b.row)));
                // The lower middle for an even count; the last repeat when none completed.
                let median = ok.get(ok.len().saturating_sub(1) / 2).copied();
                CellSummary {
                    median: median.unwrap_or(repeats[repeats.len() - 1]),
                    repeats,
                }
            })
            .collect()
    }

    /// The spread of a figure over the complete repeats.
    pub fn spread(&self, figure: impl Fn(&RunRow) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.repeats.iter().filter(|m| m.ok()).filter_map(|m| figure(&m.row)))
    }

    /// req/s over the repeats.
    pub fn rps(&self) -> Option<Spread> {
        self.spread(|r| Some(r.rps))
    }

    /// Whether the cell completed at least once.
    pub fn ok(&self) -> bool {
        self.median.ok()
    }
}

/// The headline latency at `name` (`p50`, `p99`) of a row: over every
/// offered request, the answered-only figure where that is unknown (wrk).
fn headline_us(r: &RunRow, name: &str) -> Option<f64> {
    let (all, answered) = match name {
        "p50" => (r.latency_all_p50_us, r.latency_p50_us),
        "p90" => (r.latency_all_p90_us, r.latency_p90_us),
        "p99" => (r.latency_all_p99_us, r.latency_p99_us),
        "p999" => (r.latency_all_p999_us, r.latency_p999_us),
        _ => (r.latency_all_max_us, r.latency_max_us),
    };
    all.or(answered)
}

/// A cell's figure for runs.json: its repeats' median and range.
#[derive(Clone, Debug, Serialize)]
pub struct CellJson {
    /// The table the cell is in.
    pub group: String,
    /// The cell, as the progress bar names it.
    pub label: String,
    /// Repeats that count (complete or not).
    pub repeats: usize,
    /// Of those, flagged as disturbed.
    pub disturbed: usize,
    /// Answered requests per second over the complete repeats.
    pub rps: Option<Spread>,
    /// Median latency (over every offered request), µs.
    pub p50_us: Option<Spread>,
    /// 99th percentile latency (over every offered request), µs.
    pub p99_us: Option<Spread>,
}

/// Every cell's medians and ranges.
pub fn cells_json(measured: &[Measured]) -> Vec<CellJson> {
    CellSummary::of(measured, |r| r.rps)
        .iter()
        .map(|c| CellJson {
            group: c.median.cell.group.clone(),
            label: c.median.cell.label(),
            repeats: c.repeats.len(),
            disturbed: c.repeats.iter().filter(|m| m.disturbed()).count(),
            rps: c.rps(),
            p50_us: c.spread(|r| headline_us(r, "p50")),
            p99_us: c.spread(|r| headline_us(r, "p99")),
        })
        .collect()
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
    /// Repeats of every cell (`--repeat`).
    pub repeats: usize,
    /// Times a disturbed run is measured again at most (`--retry-disturbed`).
    pub retry_disturbed: u32,
    /// The 1-minute load average when the comparison started.
    pub load_average: Option<f64>,
    /// Remarks on reading the results (also in `summary.md`).
    pub notes: Vec<String>,
}

/// Writes `runs.csv`.
pub fn write_csv(dir: &Path, rows: &[RunRow]) -> io::Result<()> {
    let file = std::fs::File::create(dir.join("runs.csv"))?;
    results::write_csv(io::BufWriter::new(file), rows).map_err(io::Error::other)
}

/// Writes `runs.json`: `{"header": {...}, "rows": [...], "cells": [...]}`,
/// the cells with the medians and ranges of their repeats.
pub fn write_json(dir: &Path, header: &Header, measured: &[Measured]) -> io::Result<()> {
    #[derive(Serialize)]
    struct Json<'a> {
        header: &'a Header,
        rows: Vec<&'a RunRow>,
        cells: Vec<CellJson>,
    }
    let json = Json {
        header,
        rows: measured.iter().map(|m| &m.row).collect(),
        cells: cells_json(measured),
    };
    let file = std::fs::File::create(dir.join("runs.json"))?;
    let mut out = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, &json).map_err(io::Error::other)?;
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
    lower_bound_mark(r.is_lower_bound(name), fmt_us(headline_us(r, name)))
}

fn lower_bound_mark(bound: bool, text: String) -> String {
    if bound { format!("≥ {text}") } else { text }
}

/// A cell's headline latency: the median over its repeats, with the range
/// when `range`; `≥` when a lower bound may have decided any repeat's.
fn fmt_cell_latency(cell: &CellSummary, name: &str, range: bool) -> String {
    let Some(spread) = cell.spread(|r| headline_us(r, name)) else {
        return fmt_headline(&cell.median.row, name);
    };
    let bound = cell.repeats.iter().any(|m| m.ok() && m.row.is_lower_bound(name));
    lower_bound_mark(bound, fmt_spread(&spread, range, |us| fmt_us(Some(us))))
}

/// `median (min–max)`, or the median alone for one value or without `range`.
fn fmt_spread(spread: &Spread, range: bool, fmt: impl Fn(f64) -> String) -> String {
    if spread.count < 2 || !range {
        fmt(spread.median)
    } else {
        format!("{} ({}–{})", fmt(spread.median), fmt(spread.min), fmt(spread.max))
    }
}

/// `-3.1/+4.2%`: a spread's min and max relative to its median; `-` for
/// one value.
fn fmt_relative_range(spread: &Spread) -> String {
    if spread.count < 2 || spread.median == 0.0 {
        return "-".into();
    }
    let percent = |value: f64| (value / spread.median - 1.0) * 100.0;
    format!("{:.1}/+{:.1}%", percent(spread.min), percent(spread.max))
}

/// The mark of a ratio between two cells whose req/s ranges overlap.
const WITHIN_NOISE: &str = "≈";

/// `≈` when both were repeated and their ranges overlap (a single
/// measurement has no range, so it is never marked either way).
fn noise_mark(a: Option<Spread>, b: Option<Spread>) -> &'static str {
    match (a, b) {
        (Some(a), Some(b)) if a.count >= 2 && b.count >= 2 && a.within_noise_of(&b) => WITHIN_NOISE,
        _ => "",
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

/// The tables of a run, one per group, one line per cell over its repeats
/// (the attempts that count). `wide` adds the columns that do not fit in
/// 100 terminal columns.
pub fn tables(measured: &[Measured], wide: bool) -> Vec<Table> {
    groups(measured)
        .into_iter()
        .map(|group| {
            let members = measured.iter().filter(|m| m.cell.group == group);
            if measured
                .iter()
                .filter(|m| m.cell.group == group)
                .all(|m| m.cell.load.requests_per_connection.is_some())
            {
                fixed_count_table(group, &CellSummary::of(members, |r| r.duration_s), wide)
            } else {
                ranking_table(group, &CellSummary::of(members, |r| r.rps), wide)
            }
        })
        .collect()
}

/// A cell's label with its marks, and the footnotes that explain them:
/// `(!)` a failed repeat, `~` a disturbed one, [`UNDER_ANSWERED`] a starved
/// median repeat.
fn marked_label(cell: &CellSummary, shown: &str, label: &str, footnotes: &mut Vec<String>) -> String {
    let mut marked = shown.to_owned();
    let repeated = cell.repeats.len() > 1;
    let which = |m: &Measured| match (repeated, m.row.repeat) {
        (true, Some(repeat)) => format!("{label} (repeat {repeat})"),
        _ => label.to_owned(),
    };
    let failed: Vec<&&Measured> = cell.repeats.iter().filter(|m| !m.ok()).collect();
    if !failed.is_empty() {
        marked.push_str(" (!)");
    }
    footnotes.extend(failed.iter().map(|m| format!("{} failed: {}", which(m), m.row.outcome)));
    let disturbed: Vec<String> = cell
        .repeats
        .iter()
        .filter(|m| m.disturbed())
        .map(|m| match (repeated, m.row.repeat) {
            (true, Some(repeat)) => format!("repeat {repeat} {}", m.row.disturbance),
            _ => m.row.disturbance.clone(),
        })
        .collect();
    if !disturbed.is_empty() {
        marked.push_str(" ~");
        footnotes.push(format!("{label} ~ disturbed: {}", disturbed.join("; ")));
    }
    if let Some(note) = under_answered_note(label, &cell.median.row) {
        marked.push(' ');
        marked.push_str(UNDER_ANSWERED);
        footnotes.push(note);
    }
    marked
}

/// The footnote naming neighbours in the ranking whose req/s ranges
/// overlap (`a ≈ b ≈ c`), if any.
fn noise_note(sorted: &[CellSummary]) -> Option<String> {
    let mut chains: Vec<Vec<String>> = Vec::new();
    let mut previous: Option<&CellSummary> = None;
    for cell in sorted.iter().filter(|c| c.ok()) {
        let label = cell.median.cell.server.label();
        match previous {
            Some(above) if noise_mark(above.rps(), cell.rps()) == WITHIN_NOISE => match chains.last_mut() {
                Some(chain) if chain.last() == Some(&above.median.cell.server.label()) => chain.push(label),
                _ => chains.push(vec![above.median.cell.server.label(), label]),
            },
            _ => {}
        }
        previous = Some(cell);
    }
    (!chains.is_empty()).then(|| {
        let chains: Vec<String> = chains.iter().map(|chain| chain.join(" ≈ ")).collect();
        format!(
            "{WITHIN_NOISE} within noise (req/s ranges overlap, not ranked): {}",
            chains.join("; ")
        )
    })
}

/// A timed group: one line per cell, the most answered requests per second
/// (median over the repeats) first; a cell whose median repeat answered
/// below [`ANSWERED_SHARE_MARK`] of what was offered is marked and
/// footnoted, and every latency is over all offered requests, so a starved
/// cell cannot show a flattering p99.
fn ranking_table(group: &str, cells: &[CellSummary], wide: bool) -> Table {
    let mut sorted: Vec<CellSummary> = cells.to_vec();
    let median_rps = |c: &CellSummary| c.rps().map_or(0.0, |s| s.median);
    sorted.sort_by(|a, b| median_rps(b).total_cmp(&median_rps(a)));
    let best = sorted.iter().find(|c| c.ok()).and_then(CellSummary::rps);
    let reference = cells.iter().find(|c| c.median.cell.is_reference());
    let reference_rps = reference.filter(|c| c.ok()).and_then(CellSummary::rps);
    let ideal = cells.iter().any(|c| c.median.cell.ideal_rps.is_some());
    // Over repeats the terminal shows req/s's range relative to the median
    // in place of the max latency, to stay within 100 columns.
    let repeated = !wide && cells.iter().any(|c| c.repeats.len() > 1);
    let last_latency = if repeated { "range" } else { "max" };
    let mut columns = vec!["server", "w", "req/s", "p50", "p99", last_latency, "errors", "served"];
    if wide {
        columns.extend(["timeouts", "offered", "unsent", "unansw", "p90", "p99.9", "CPU s"]);
    }
    // Memory per connection, where a table holds enough connections for the
    // server's fixed part to fade (c10k, c100k).
    let per_connection = cells.iter().all(|c| c.median.row.connections >= PER_CONNECTION_FROM);
    columns.extend(["RSS MiB", "thr"]);
    if per_connection {
        columns.push("KiB/conn");
    }
    columns.push("xbest");
    if let Some(name) = reference.map(|c| &c.median.row.strategy) {
        columns.push(if name == "nginx" { "xnginx" } else { "xref" });
    }
    if ideal {
        columns.push("xideal");
    }
    let best_cell = sorted.iter().find(|c| c.ok()).map(|c| c.median.index);
    let ratio = |cell: &CellSummary, to: Option<Spread>, to_cell: Option<usize>| {
        let (rps, to) = (cell.rps(), to.filter(|s| s.median > 0.0));
        let value = fmt_ratio(rps.zip(to).map(|(rps, to)| rps.median / to.median));
        let itself = to_cell == Some(cell.median.index);
        format!("{value}{}", if itself { "" } else { noise_mark(rps, to) })
    };
    let mut rows = Vec::new();
    let mut footnotes = Vec::new();
    for cell in &sorted {
        let (m, r) = (cell.median, &cell.median.row);
        let rps = cell
            .rps()
            .map_or_else(|| fmt_rps(r.rps), |s| fmt_spread(&s, wide, fmt_rps));
        let last_latency = if repeated {
            cell.rps().map_or_else(|| "-".into(), |s| fmt_relative_range(&s))
        } else {
            fmt_headline(r, "max")
        };
        let mut cells = vec![
            marked_label(cell, &m.cell.server.label(), &m.cell.server.label(), &mut footnotes),
            opt(r.workers),
            rps,
            fmt_cell_latency(cell, "p50", wide),
            fmt_cell_latency(cell, "p99", wide),
            last_latency,
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
        cells.push(ratio(cell, best, best_cell));
        if reference.is_some() {
            cells.push(ratio(cell, reference_rps, reference.map(|c| c.median.index)));
        }
        if ideal {
            let model = m.cell.ideal_rps.filter(|&i| i > 0.0);
            cells.push(fmt_ratio(cell.rps().zip(model).map(|(rps, i)| rps.median / i)));
        }
        rows.push(cells);
    }
    footnotes.extend(noise_note(&sorted));
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
/// in plan order, with the seed experiment's columns; over repeats, the
/// time is the median with its range and the rest is the median repeat's.
fn fixed_count_table(group: &str, cells: &[CellSummary], wide: bool) -> Table {
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
    for cell in cells {
        let r = &cell.median.row;
        let time = cell
            .spread(|r| Some(r.duration_s * 1e3))
            .map_or_else(|| "-".into(), |s| fmt_spread(&s, true, |ms| format!("{ms:.0}")));
        let mut cells = vec![
            marked_label(
                cell,
                &r.connections.to_string(),
                &format!("P={}", r.connections),
                &mut footnotes,
            ),
            opt(r.requests_per_connection),
            time,
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
        right: vec![true; columns.len()],
        columns: columns.into_iter().map(str::to_owned).collect(),
        rows,
        footnotes,
    }
}

/// Remarks that help read the rows: starvation, counters that are
/// host-wide, coordinated-omission correction, failures.
pub fn notes(measured: &[Measured]) -> Vec<String> {
    let measured: Vec<Measured> = measured.iter().filter(|m| m.counts()).cloned().collect();
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
        let labels = unique_labels(starved.iter().copied());
        notes.push(format!(
            "Read timeouts in connection scope are keep-alive starvation, not a fault of the runner: a job there is a \
             whole connection, so a pool of N workers serves N connections and the others wait (head-of-line \
             blocking) until the load generator's request timeout ({}) gives up on them, reconnects, and waits \
             again. Rows: {}.",
            humantime::format_duration(first.cell.load.timeout),
            labels.join("; ")
        ));
    }
    let hidden = unique_labels(measured.iter().filter(|m| {
        let (cell, r) = (&m.cell, &m.row);
        r.scope == "connection"
            && r.connection_mode == "keepalive"
            && r.workers.is_some_and(|w| w < r.connections)
            && r.strategy != "thread-per-task"
            && cell.load.requests_per_connection.is_none()
            && cell.load.warmup + cell.load.duration <= cell.load.timeout
    }));
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
    notes.extend(repeat_notes(&measured));
    if measured.iter().any(Measured::ok) {
        notes.push(
            "RSS is the server's VmHWM (peak resident set, KiB in the CSV; for nginx and outside servers the sum \
             over the process and its children); KiB/conn that peak over the connections (from 1,000 connections \
             on); threads the most seen at one 100 ms sample; CPU s the server's user + system time during the \
             measurement."
                .into(),
        );
    }
    notes
}

/// The cell labels of `measured`, each once, in first-seen order.
fn unique_labels<'a>(measured: impl Iterator<Item = &'a Measured>) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for label in measured.map(|m| m.cell.label()) {
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels
}

/// What repeats and disturbance flags mean for reading the tables.
fn repeat_notes(measured: &[Measured]) -> Vec<String> {
    let mut notes = Vec::new();
    if measured.iter().any(Measured::disturbed) {
        notes.push(format!(
            "~ disturbed: other processes (or steal time) took more than {:.0} % of the server's or the load \
             generator's CPUs during the run (the disturbance column of runs.csv, results/README.md): its figures \
             say more about the machine than about the server. Measure on a quiet machine, or with \
             --retry-disturbed K.",
            super::disturbance::DISTURBED_ABOVE * 100.0
        ));
    }
    let cells = CellSummary::of(measured, |r| r.rps);
    if cells.iter().any(CellSummary::ok) && cells.iter().all(|c| c.repeats.len() < 2) {
        notes.push(
            "Each cell was measured once: one run has no spread, so no difference here is known to be beyond the \
             noise of the machine (compare --repeat 3 measures every cell three times, interleaved)."
                .into(),
        );
    }
    notes
}

/// The header line that warns of a busy machine, if it was.
fn busy_warning(header: &Header) -> Option<String> {
    let load = header.load_average.filter(|&load| load > BUSY_LOAD_AVERAGE)?;
    Some(format!(
        "- **warning**: the machine was busy when the run started: 1-minute load average {load:.2}, above \
         {BUSY_LOAD_AVERAGE} (`compare::disturbance::BUSY_LOAD_AVERAGE`); the figures are not for reading as \
         findings (see the disturbance column)"
    ))
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
    let load = header
        .load_average
        .map_or_else(|| "unknown".into(), |l| format!("{l:.2}"));
    let _ = writeln!(
        text,
        "- **repeats**: {} per cell, interleaved (odd rounds in reverse order); {}; 1-minute load average at the \
         start {load}",
        header.repeats,
        match header.retry_disturbed {
            0 => "a disturbed run is not measured again (--retry-disturbed 0)".to_owned(),
            k => format!("a disturbed run is measured again up to {k} time(s)"),
        }
    );
    if let Some(warning) = busy_warning(header) {
        let _ = writeln!(text, "{warning}");
    }
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
         minimum, xmin = amplification, listen overflows, SYN retransmits, connect errors. One line per cell: \
         with repeats, req/s, p50 and p99 (fixed-count: time) are the medians of its repeats that count, with \
         their (min–max), and the other columns are the median repeat's; {WITHIN_NOISE} after xbest/xnginx = \
         within noise (the req/s ranges overlap); ~ = a repeat disturbed by other processes, (!) = a failed \
         one (both footnoted). Every column of runs.csv is documented in results/README.md.\n",
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
    use crate::compare::matrix::{ServerKind, ServerSpec, closed_load, planned};
    use crate::server::Scope;

    fn measured(strategy: Strategy, scope: Scope, rps: f64, timeouts: u64) -> Measured {
        let load = closed_load(&planned("/"), 256, Duration::from_secs(2), Duration::from_millis(300));
        // One cell per strategy and scope.
        let index = Strategy::ALL.iter().position(|&s| s == strategy).unwrap_or(0) * 2 + scope as usize;
        Measured {
            index,
            cell: Cell {
                group: "/ c=256".into(),
                server: ServerSpec::new(
                    ServerKind::Dispatchlab(crate::server::Target {
                        engine: strategy.into(),
                        scope,
                    }),
                    None,
                    1024,
                ),
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

    /// Repeat `repeat` (from 1) of a cell at `rps`.
    fn repeat_of(strategy: Strategy, rps: f64, p99_us: f64, repeat: u32) -> Measured {
        let mut m = measured(strategy, Scope::Request, rps, 0);
        m.row.repeat = Some(repeat);
        m.row.counted = Some(true);
        m.row.latency_all_p99_us = Some(p99_us);
        m
    }

    /// Three repeats each of mutex-queue (100–110 req/s), inline (300–320)
    /// and thread-per-task (104–112, overlapping mutex-queue's), interleaved
    /// (std-only strategies, so the test runs without optional features).
    fn three_cells_three_repeats() -> Vec<Measured> {
        let mut rows = Vec::new();
        for (repeat, order) in [(1, [0, 1, 2]), (2, [2, 1, 0]), (3, [0, 1, 2])] {
            for cell in order {
                let r = repeat as usize - 1;
                rows.push(match cell {
                    0 => repeat_of(
                        Strategy::MutexQueue,
                        [100.0, 110.0, 105.0][r],
                        [900.0, 1000.0, 950.0][r],
                        repeat,
                    ),
                    1 => repeat_of(
                        Strategy::Inline,
                        [310.0, 300.0, 320.0][r],
                        [400.0, 500.0, 450.0][r],
                        repeat,
                    ),
                    _ => repeat_of(
                        Strategy::ThreadPerTask,
                        [112.0, 104.0, 108.0][r],
                        [700.0, 800.0, 750.0][r],
                        repeat,
                    ),
                });
            }
        }
        rows
    }

    #[test]
    fn a_cell_over_its_repeats_is_its_median_with_the_min_max_range() {
        let rows = three_cells_three_repeats();
        let cells = CellSummary::of(&rows, |r| r.rps);
        assert_eq!(cells.len(), 3, "one summary per cell, not per row");
        let mutex = &cells[0];
        assert_eq!(
            mutex.repeats.iter().map(|m| m.row.repeat).collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3)]
        );
        assert_eq!(mutex.median.row.rps, 105.0, "the median repeat by req/s");
        let rps = mutex.rps().expect("req/s");
        assert_eq!((rps.median, rps.min, rps.max, rps.count), (105.0, 100.0, 110.0, 3));

        let wide = &tables(&rows, true)[0];
        let column = |name: &str| wide.columns.iter().position(|c| c == name).expect(name);
        let names: Vec<&str> = wide.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            names,
            ["inline/request", "thread-per-task/request", "mutex-queue/request"]
        );
        assert_eq!(wide.rows[0][column("req/s")], "310 (300–320)");
        assert_eq!(wide.rows[0][column("p99")], "450us (400us–500us)");
        assert_eq!(wide.rows[0][column("xbest")], "1.00");
        assert_eq!(wide.rows[1][column("xbest")], "0.35", "disjoint from the best: no ≈");

        let json = cells_json(&rows);
        assert_eq!(json[0].label, rows[0].cell.label());
        assert_eq!((json[0].repeats, json[0].disturbed), (3, 0));
        assert_eq!(
            json[0].p99_us.map(|s| (s.median, s.min, s.max)),
            Some((950.0, 900.0, 1000.0))
        );
    }

    #[test]
    fn overlapping_ranges_are_within_noise_and_the_terminal_shows_the_relative_range() {
        let rows = three_cells_three_repeats();
        let text = &tables(&rows, false)[0];
        let column = |name: &str| text.columns.iter().position(|c| c == name).expect(name);
        let spawner = &text.rows[1];
        assert_eq!(spawner[0], "thread-per-task/request");
        assert_eq!(spawner[column("req/s")], "108");
        assert_eq!(spawner[column("range")], "-3.7/+3.7%");
        let mutex = &text.rows[2];
        assert_eq!(mutex[column("xbest")], "0.34");
        assert!(
            text.footnotes
                .iter()
                .any(|n| n.contains("within noise") && n.ends_with("thread-per-task/request ≈ mutex-queue/request")),
            "{:?}",
            text.footnotes
        );
        assert!(
            text.to_text().lines().all(|l| l.chars().count() <= 100),
            "{}",
            text.to_text()
        );
    }

    #[test]
    fn attempts_that_do_not_count_are_left_out_and_disturbed_ones_are_marked() {
        let mut rows = three_cells_three_repeats();
        let mut superseded = repeat_of(Strategy::Inline, 1.0, 1.0, 1);
        superseded.row.counted = Some(false);
        superseded.row.outcome = "disturbed: server CPUs 40.0 % to other processes (above 5 %)".into();
        rows.insert(1, superseded);
        rows[0].row.outcome = "disturbed: load CPUs 9.0 % to other processes (above 5 %)".into();
        rows[0].row.disturbance = "server=0.010 load=0.090".into();
        let table = &tables(&rows, true)[0];
        assert_eq!(
            table.rows[0][2], "310 (300–320)",
            "the superseded attempt is not a repeat"
        );
        let mutex = table
            .rows
            .iter()
            .find(|r| r[0].starts_with("mutex-queue"))
            .expect("mutex-queue");
        assert_eq!(mutex[0], "mutex-queue/request ~");
        assert!(
            table
                .footnotes
                .iter()
                .any(|n| n == "mutex-queue/request ~ disturbed: repeat 1 server=0.010 load=0.090"),
            "{:?}",
            table.footnotes
        );
        assert!(rows[0].ok(), "a disturbed run is complete, not failed");
    }

    #[test]
    fn a_single_measurement_is_never_marked_within_noise_and_is_noted() {
        let rows = vec![
            measured(Strategy::MutexQueue, Scope::Request, 100.0, 0),
            measured(Strategy::Inline, Scope::Request, 101.0, 0),
        ];
        let table = &tables(&rows, false)[0];
        assert!(
            table.columns.iter().any(|c| c == "max"),
            "no range column without repeats"
        );
        assert!(table.rows.iter().all(|r| !r.last().unwrap().contains('≈')));
        assert!(notes(&rows).iter().any(|n| n.contains("measured once")));
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("mutex-queue/request /sleep?ms=40 c=8"),
            "mutex-queue-request-sleep-ms-40-c-8"
        );
    }
}
