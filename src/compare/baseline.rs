//! `--baseline DIR`: the cells two result directories share, side by side.
//!
//! This is criterion's `--baseline` for the whole server: measure, change a
//! strategy, measure again, and read for every cell whether req/s, p50 and
//! p99 moved beyond the noise of the repeats. A cell is the same cell in
//! both runs when every column of [`CELL_KEY`] is equal; its repeats (and
//! only the attempts that count, see `counted`) give each side a [`Spread`].
//! A change is reported as better or worse only when the two ranges do not
//! overlap; a cell measured once on either side is never more than
//! "within noise". Cells found on one side only are listed, never invented.
//!
//! The files are read by column name, so a baseline written by an older
//! version of the crate (fewer columns) still compares on what it has.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use clap::Args;

use super::repeat::Spread;

/// The command line of `dispatchlab baseline`.
#[derive(Clone, Debug, Args)]
pub struct BaselineArgs {
    /// The earlier result directory (written by `compare` or the wrk script).
    pub baseline: PathBuf,
    /// The result directory to judge against it.
    pub current: PathBuf,
    /// Also write the comparison as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

/// Prints the comparison of `args.current` against `args.baseline` (and
/// writes it where `--markdown` says).
pub fn run(args: &BaselineArgs) -> io::Result<Comparison> {
    let comparison = compare_dirs(&args.baseline, &args.current)?;
    let text = format!(
        "# {} against the baseline {}\n\n{}",
        args.current.display(),
        args.baseline.display(),
        comparison.markdown()
    );
    print!("{text}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &text)?;
    }
    Ok(comparison)
}

/// The columns that identify a cell: what was served, how, under which load.
pub const CELL_KEY: &[&str] = &[
    "strategy",
    "scope",
    "workers",
    "backlog",
    "keep_alive",
    "sched",
    "workload",
    "connection_mode",
    "connections",
    "load_threads",
    "pipeline",
    "target_rate",
    "requests_per_connection",
];

/// A figure compared across the two runs.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// How the tables name it.
    pub label: &'static str,
    /// The runs.csv columns it is read from, the first present one wins
    /// (the latency over every offered request, else the answered-only one).
    pub columns: &'static [&'static str],
    /// Whether a larger value is better (req/s) or worse (latency).
    pub higher_is_better: bool,
}

/// The figures `--baseline` compares.
pub const METRICS: &[Metric] = &[
    Metric {
        label: "req/s",
        columns: &["rps"],
        higher_is_better: true,
    },
    Metric {
        label: "p50 µs",
        columns: &["latency_all_p50_us", "latency_p50_us"],
        higher_is_better: false,
    },
    Metric {
        label: "p99 µs",
        columns: &["latency_all_p99_us", "latency_p99_us"],
        higher_is_better: false,
    },
];

/// What the change did to one figure of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The ranges of the repeats overlap.
    WithinNoise,
    /// Beyond the noise, in the better direction.
    Better,
    /// Beyond the noise, in the worse direction.
    Worse,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::WithinNoise => "within noise",
            Verdict::Better => "better",
            Verdict::Worse => "worse",
        }
    }
}

/// One figure of one shared cell.
#[derive(Clone, Debug)]
pub struct MetricChange {
    /// The metric's label.
    pub label: &'static str,
    /// Over the baseline's repeats.
    pub baseline: Spread,
    /// Over the current run's repeats.
    pub current: Spread,
    /// Current median ÷ baseline median.
    pub ratio: Option<f64>,
    /// Whether the change is beyond the noise.
    pub verdict: Verdict,
}

/// Every shared cell, and the cells found on one side only.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Shared cells in the current run's order, each with its figures.
    pub shared: Vec<(String, Vec<MetricChange>)>,
    /// Cells only the baseline has.
    pub only_in_baseline: Vec<String>,
    /// Cells only the current run has.
    pub only_in_current: Vec<String>,
}

/// One runs.csv, by column name.
type Record = BTreeMap<String, String>;

/// Compares the `runs.csv` of `current` against that of `baseline`.
pub fn compare_dirs(baseline: &Path, current: &Path) -> io::Result<Comparison> {
    Ok(compare(&read_runs(baseline)?, &read_runs(current)?))
}

/// Reads `dir/runs.csv` by column name.
fn read_runs(dir: &Path) -> io::Result<Vec<Record>> {
    let path = dir.join("runs.csv");
    let mut reader =
        csv::Reader::from_path(&path).map_err(|err| io::Error::other(format!("{}: {err}", path.display())))?;
    reader
        .deserialize()
        .collect::<Result<Vec<Record>, _>>()
        .map_err(|err| io::Error::other(format!("{}: {err}", path.display())))
}

/// Compares two runs' rows (exposed for tests on known rows).
fn compare(baseline: &[Record], current: &[Record]) -> Comparison {
    let (baseline, current) = (cells(baseline), cells(current));
    let mut comparison = Comparison::default();
    for (label, rows) in &current {
        match baseline.iter().find(|(other, _)| other == label) {
            Some((_, before)) => comparison.shared.push((label.clone(), changes(before, rows))),
            None => comparison.only_in_current.push(label.clone()),
        }
    }
    comparison.only_in_baseline = baseline
        .iter()
        .filter(|(label, _)| !current.iter().any(|(other, _)| other == label))
        .map(|(label, _)| label.clone())
        .collect();
    comparison
}

/// The rows that count, grouped by cell, in first-seen order.
fn cells(rows: &[Record]) -> Vec<(String, Vec<&Record>)> {
    let mut cells: Vec<(String, Vec<&Record>)> = Vec::new();
    for row in rows.iter().filter(|row| counts(row)) {
        let label = cell_label(row);
        match cells.iter_mut().find(|(other, _)| *other == label) {
            Some((_, members)) => members.push(row),
            None => cells.push((label, vec![row])),
        }
    }
    cells
}

/// A row counts when it measured (`outcome` ok or flagged as disturbed) and,
/// where attempts were retried, it is the attempt that counts.
fn counts(row: &Record) -> bool {
    let field = |name: &str| row.get(name).map(String::as_str).unwrap_or("");
    let measured = field("outcome") == "ok" || field("outcome").starts_with("disturbed");
    measured && field("counted") != "false"
}

/// Key values that rows written before their column existed had without
/// saying so: every run before the `sched` column was measured under
/// `other`. Left out of the label, so old and new rows of a cell match.
const UNSTATED: &[(&str, &str)] = &[("sched", "other")];

/// The cell a row belongs to, as the tables print it: the key columns that
/// are set (and not [`UNSTATED`]), by name.
fn cell_label(row: &Record) -> String {
    let mut label = String::new();
    for &column in CELL_KEY {
        let stated = |value: &&String| !value.is_empty() && !UNSTATED.contains(&(column, value.as_str()));
        if let Some(value) = row.get(column).filter(stated) {
            if !label.is_empty() {
                label.push(' ');
            }
            let _ = write!(label, "{column}={value}");
        }
    }
    label
}

fn changes(baseline: &[&Record], current: &[&Record]) -> Vec<MetricChange> {
    METRICS
        .iter()
        .filter_map(|metric| {
            let baseline = spread(baseline, metric)?;
            let current = spread(current, metric)?;
            Some(MetricChange {
                label: metric.label,
                ratio: (baseline.median != 0.0).then(|| current.median / baseline.median),
                verdict: verdict(metric, &baseline, &current),
                baseline,
                current,
            })
        })
        .collect()
}

fn spread(rows: &[&Record], metric: &Metric) -> Option<Spread> {
    let column = metric
        .columns
        .iter()
        .find(|column| rows.iter().any(|row| row.contains_key(**column)))?;
    Spread::of(rows.iter().filter_map(|row| row.get(*column)?.parse::<f64>().ok()))
}

fn verdict(metric: &Metric, baseline: &Spread, current: &Spread) -> Verdict {
    if current.within_noise_of(baseline) {
        Verdict::WithinNoise
    } else if (current.median > baseline.median) == metric.higher_is_better {
        Verdict::Better
    } else {
        Verdict::Worse
    }
}

impl Comparison {
    /// The comparison as a Markdown table, then the unmatched cells.
    pub fn markdown(&self) -> String {
        let mut text = String::from(
            "| cell | figure | baseline median (range) | now median (range) | now ÷ baseline | verdict |\n|---|---|---|---|---|---|\n",
        );
        for (cell, changes) in &self.shared {
            for change in changes {
                let ratio = change
                    .ratio
                    .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×"));
                let _ = writeln!(
                    text,
                    "| {cell} | {} | {} | {} | {ratio} | {} |",
                    change.label,
                    change.baseline,
                    change.current,
                    change.verdict.name()
                );
            }
        }
        for (what, cells) in [
            ("only in the baseline", &self.only_in_baseline),
            ("only in this run", &self.only_in_current),
        ] {
            for cell in cells {
                let _ = writeln!(text, "\n{what}: {cell}");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, connections: &str, rps: &str, p99: &str) -> Record {
        [
            ("strategy", strategy),
            ("scope", "request"),
            ("connections", connections),
            ("rps", rps),
            ("latency_p99_us", p99),
            ("outcome", "ok"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn shared_cells_are_matched_and_judged_by_their_ranges() {
        let baseline = [
            row("mutex-queue", "16", "100", "900"),
            row("mutex-queue", "16", "110", "950"),
            row("mutex-queue", "16", "105", "1000"),
            row("inline", "16", "300", "500"),
        ];
        let current = [
            row("mutex-queue", "16", "150", "940"),
            row("mutex-queue", "16", "160", "960"),
            row("mutex-queue", "16", "155", "980"),
            row("rayon", "16", "200", "700"),
        ];
        let comparison = compare(&baseline, &current);
        assert_eq!(comparison.shared.len(), 1);
        let (cell, changes) = &comparison.shared[0];
        assert_eq!(cell, "strategy=mutex-queue scope=request connections=16");
        assert_eq!(changes[0].label, "req/s");
        assert_eq!(changes[0].verdict, Verdict::Better);
        assert_eq!(changes[0].ratio, Some(155.0 / 105.0));
        let p99 = changes.iter().find(|c| c.label == "p99 µs").expect("p99 compared");
        assert_eq!(p99.verdict, Verdict::WithinNoise);
        assert_eq!(
            comparison.only_in_baseline,
            ["strategy=inline scope=request connections=16"]
        );
        assert_eq!(
            comparison.only_in_current,
            ["strategy=rayon scope=request connections=16"]
        );
        let markdown = comparison.markdown();
        assert!(
            markdown.contains("| req/s | 105 (100–110) | 155 (150–160) | 1.48× | better |"),
            "{markdown}"
        );
        assert!(markdown.contains("only in the baseline: strategy=inline"), "{markdown}");
    }

    #[test]
    fn failed_rows_and_attempts_that_do_not_count_are_left_out() {
        let mut failed = row("mutex-queue", "16", "1", "1");
        failed.insert("outcome".into(), "server exited 1".into());
        let mut retried = row("mutex-queue", "16", "2", "2");
        retried.insert("counted".into(), "false".into());
        let good = row("mutex-queue", "16", "100", "900");
        let comparison = compare(std::slice::from_ref(&good), &[failed, retried, good.clone()]);
        let (_, changes) = &comparison.shared[0];
        assert_eq!(changes[0].current.count, 1);
        assert_eq!(
            changes[0].verdict,
            Verdict::WithinNoise,
            "one repeat is never beyond noise"
        );
    }

    #[test]
    fn a_worse_latency_beyond_noise_is_worse() {
        let baseline = [row("a", "1", "10", "100"), row("a", "1", "10", "110")];
        let current = [row("a", "1", "10", "200"), row("a", "1", "10", "210")];
        let comparison = compare(&baseline, &current);
        let p99 = comparison.shared[0]
            .1
            .iter()
            .find(|c| c.label == "p99 µs")
            .expect("p99");
        assert_eq!(p99.verdict, Verdict::Worse);
    }

    #[test]
    fn a_row_from_before_the_sched_column_matches_its_cell_under_other() {
        let old = row("mutex-queue", "16", "100", "900");
        let with = |sched: &str| {
            let mut new = row("mutex-queue", "16", "100", "900");
            new.insert("sched".into(), sched.into());
            new
        };
        let comparison = compare(std::slice::from_ref(&old), &[with("other"), with("batch")]);
        assert_eq!(comparison.shared.len(), 1, "old row and sched=other are one cell");
        assert_eq!(
            comparison.only_in_current,
            ["strategy=mutex-queue scope=request sched=batch connections=16"]
        );
    }
}
