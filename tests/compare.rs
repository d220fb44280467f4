//! `dispatchlab compare` end to end, as a user runs it: the real binary,
//! real server child processes, real sockets, on a tiny matrix (two
//! strategies, one short run each).
//!
//! Checked: the files exist; `runs.csv` parses, and its header is exactly the
//! column list documented in `results/README.md` (so docs and code cannot
//! drift); every row has requests and the resource columns; every server
//! child the runner started (pids from `servers.log`) is gone; a server that
//! cannot start fails its row and the exit status, and the run goes on;
//! repeats are interleaved rows; a busy loop of the test's own on the server
//! CPU flags the run as disturbed, and `--retry-disturbed` keeps every
//! attempt with one counted; `--baseline` matches the shared cells.
//! Outside servers (`--server NAME=COMMAND`: Python's http.server and the
//! `book_server` example; `--url`) get their rows, sampled, and leave no
//! process behind; a command that dies at once fails its row with what it
//! wrote; bad `--server` values are refused before anything runs.
//! Bounded in time; no absolute-time assertion. On a busy machine any run
//! may be flagged as disturbed: that is a complete run, never a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dispatchlab::compare::CpuSet;
use dispatchlab::results::{RunRow, read_csv};

/// The longest a tiny comparison may take before the test gives up (a
/// loaded CI machine is slow; the runs themselves take about a second).
const LIMIT: Duration = Duration::from_secs(120);

/// A result directory removed when the test ends.
struct OutDir(PathBuf);

impl OutDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dispatchlab-compare-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `dispatchlab compare ARGS`, killing it if it overruns [`LIMIT`].
fn compare(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatchlab"))
        .arg("compare")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dispatchlab compare");
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("wait for compare").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "compare did not finish within {LIMIT:?}:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The column names documented in results/README.md, in order.
fn documented_columns() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("results/README.md"))
        .expect("results/README.md documents the columns");
    let start = readme.find("<!-- columns: begin -->").expect("begin marker");
    let end = readme.find("<!-- columns: end -->").expect("end marker");
    readme[start..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// The pids `servers.log` names (`pid N: command`).
fn server_pids(dir: &Path) -> Vec<u32> {
    let log = std::fs::read_to_string(dir.join("servers.log")).expect("servers.log");
    log.lines()
        .filter_map(|line| line.strip_prefix("pid ")?.split(':').next()?.parse().ok())
        .collect()
}

/// Whether `pid` is still a `dispatchlab serve` process.
fn is_running_server(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        args.iter().any(|a| a.ends_with(b"dispatchlab")) && args.contains(&&b"serve"[..])
    })
}

/// Whether a row is a complete measurement: `ok`, or flagged as disturbed
/// by other processes (this machine may be busy).
fn complete(row: &RunRow) -> bool {
    row.outcome == "ok" || row.outcome.starts_with("disturbed")
}

/// A tiny request-scope matrix of `strategies` at 4 connections into `out`,
/// with `extra` flags.
fn tiny_request_scope_run(strategies: &str, out: &OutDir, extra: &[&str]) -> Output {
    let mut args = vec![
        "--strategies",
        strategies,
        "--scopes",
        "request",
        "--connections",
        "4",
        // Long enough that a heavily shared machine still answers something
        // in every run (400 ms once got no answer at a load average of 35+).
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--no-reference",
        "--out",
        out.0.to_str().expect("UTF-8 temp path"),
    ];
    args.extend(extra);
    compare(&args)
}

#[test]
fn a_tiny_matrix_writes_every_file_and_leaves_no_server_behind() {
    let out = OutDir::new("tiny");
    let output = tiny_request_scope_run("thread-per-task,mutex-queue", &out, &[]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "compare failed:\n{stdout}\n{stderr}");

    for file in ["runs.csv", "runs.json", "summary.md", "servers.log"] {
        assert!(out.0.join(file).is_file(), "{file} missing; stdout:\n{stdout}");
    }
    let hgrm: Vec<_> = std::fs::read_dir(out.0.join("hgrm"))
        .expect("hgrm directory")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "hgrm"))
        .collect();
    assert_eq!(hgrm.len(), 2, "one .hgrm per run");

    // The CSV header is the documented column list.
    let csv_text = std::fs::read_to_string(out.0.join("runs.csv")).expect("runs.csv");
    let header: Vec<String> = csv_text
        .lines()
        .next()
        .expect("header line")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(header, documented_columns(), "results/README.md and RunRow disagree");

    let rows: Vec<RunRow> = read_csv(&out.0.join("runs.csv")).expect("runs.csv parses as RunRow");
    assert_eq!(rows.len(), 2);
    let mut strategies: Vec<&str> = rows.iter().map(|r| r.strategy.as_str()).collect();
    strategies.sort_unstable();
    assert_eq!(strategies, ["mutex-queue", "thread-per-task"]);
    for row in &rows {
        let what = format!("{} / {}", row.strategy, row.scope);
        assert!(complete(row), "{what}: {}", row.outcome);
        assert_eq!((row.repeat, row.counted), (Some(1), Some(true)), "{what}");
        assert!(row.load_average.is_some(), "{what}: load average");
        assert!(!row.disturbance.is_empty(), "{what}: disturbance");
        assert_eq!((row.scope.as_str(), row.connections), ("request", 4), "{what}");
        assert!(row.requests > 0 && row.rps > 0.0, "{what}: no requests");
        assert!(row.server_peak_rss_kib.is_some_and(|kib| kib > 0), "{what}: RSS");
        assert!(row.server_peak_threads.is_some_and(|n| n >= 2), "{what}: threads");
        assert!(row.server_cpu_s.is_some(), "{what}: CPU seconds");
        assert!(row.latency_p99_us.is_some(), "{what}: latency");
        assert!(row.server_command.contains(" serve "), "{what}: {}", row.server_command);
        assert!(row.command.contains("compare"), "{what}: {}", row.command);
        assert!(!row.git_rev.is_empty() && row.rustc.starts_with("rustc ") && row.cpus >= 1);
        if row.cpus >= 2 {
            assert!(
                !row.server_cpus.is_empty() && !row.load_cpus.is_empty(),
                "{what}: pinned"
            );
            assert_ne!(row.server_cpus, row.load_cpus);
        }
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.0.join("runs.json")).expect("runs.json"))
            .expect("runs.json parses");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(2));
    for key in ["command", "rustc", "git_rev", "kernel", "cpus"] {
        assert!(!json["header"][key].is_null(), "runs.json header lacks {key}");
    }
    let summary = std::fs::read_to_string(out.0.join("summary.md")).expect("summary.md");
    assert!(
        summary.contains("mutex-queue/request") && summary.contains("rustc"),
        "{summary}"
    );
    assert!(
        stdout.contains("req/s") && stdout.contains("thread-per-task/request"),
        "{stdout}"
    );

    let pids = server_pids(&out.0);
    assert_eq!(pids.len(), 2, "servers.log names each child");
    for pid in pids {
        assert!(!is_running_server(pid), "server child {pid} is still running");
    }
}

#[test]
fn sched_runs_each_cell_under_each_policy_and_says_so_in_its_row() {
    let out = OutDir::new("sched");
    let output = tiny_request_scope_run("mutex-queue", &out, &["--sched", "other,batch"]);
    assert!(output.status.success(), "compare failed:\n{}", text(&output.stderr));
    let rows: Vec<RunRow> = read_csv(&out.0.join("runs.csv")).expect("runs.csv parses as RunRow");
    let policies: Vec<&str> = rows.iter().map(|row| row.sched.as_str()).collect();
    assert_eq!(policies, ["other", "batch"]);
    for row in &rows {
        assert!(complete(row), "{}: {}", row.sched, row.outcome);
        let asked = row.server_command.contains("--sched batch");
        assert_eq!(asked, row.sched == "batch", "{}", row.server_command);
    }
    // Each server announces the policy its threads run under.
    let log = std::fs::read_to_string(out.0.join("servers.log")).expect("servers.log");
    assert!(log.contains("sched other") && log.contains("sched batch"), "{log}");
}

#[test]
fn a_server_that_cannot_start_fails_its_row_and_the_exit_status() {
    let out = OutDir::new("failing");
    // 0 workers: `serve` refuses to start, before announcing its address.
    let output = compare(&[
        "--strategies",
        "mutex-queue",
        "--scopes",
        "connection,request",
        "--connections",
        "2",
        "--workers",
        "0",
        "--duration",
        "200ms",
        "--no-reference",
        "--out",
        out.0.to_str().expect("UTF-8 temp path"),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 of 2 runs failed"), "{stderr}");
    let rows = read_csv(&out.0.join("runs.csv")).expect("runs.csv is written all the same");
    assert_eq!(rows.len(), 2, "the run goes on after a failed row");
    for row in &rows {
        assert!(row.outcome.contains("failed to start"), "{}", row.outcome);
        assert_eq!(row.requests, 0);
    }
    let log = std::fs::read_to_string(out.0.join("servers.log")).expect("servers.log");
    assert!(log.contains("--workers"), "the server's own error is kept: {log}");
}

/// The rows of `out` whose strategy is `name`.
fn rows_named(out: &OutDir, name: &str) -> Vec<RunRow> {
    let rows: Vec<RunRow> = read_csv(&out.0.join("runs.csv")).expect("runs.csv parses as RunRow");
    rows.into_iter().filter(|row| row.strategy == name).collect()
}

/// Whether `pid` is still a process whose command line contains `needle`.
fn is_running(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
}

/// Checks an outside server's row: measured, sampled, recorded as `name`
/// in scope `external` with the command that ran, and no process left.
fn assert_outside_row(output: &Output, out: &OutDir, name: &str, needle: &str) {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "compare failed:\n{stdout}\n{stderr}");
    let rows = rows_named(out, name);
    assert_eq!(rows.len(), 1, "one {name} row:\n{stdout}");
    let row = &rows[0];
    assert_eq!(row.scope, "external");
    assert!(complete(row), "{name}: {}", row.outcome);
    assert!(row.requests > 0, "{name}: no requests");
    assert!(
        row.server_peak_threads.is_some_and(|n| n >= 1),
        "{name}: threads {row:?}"
    );
    assert!(
        row.server_peak_rss_kib.is_some_and(|kib| kib > 0),
        "{name}: VmHWM {row:?}"
    );
    assert!(row.server_cpu_s.is_some(), "{name}: CPU seconds");
    assert!(row.server_command.contains(needle), "{name}: {}", row.server_command);
    assert!(
        !row.server_command.contains("{port}"),
        "the port is filled in: {}",
        row.server_command
    );
    assert_eq!((row.workers, row.backlog, row.keep_alive.as_str()), (None, None, ""));
    assert!(stdout.contains(name), "the table has {name}:\n{stdout}");
    let pids = server_pids(&out.0);
    assert_eq!(pids.len(), 2, "servers.log names each child");
    for pid in pids {
        assert!(!is_running(pid, needle), "{name} ({pid}) is still running");
    }
}

/// Whether `python3` runs; under `CI` its absence fails the test.
fn have_python3() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        support::prerequisite_missing("python3");
    }
    found
}

#[test]
fn python_http_server_gets_its_row_sampled_and_stopped() {
    if !have_python3() {
        return;
    }
    let out = OutDir::new("python");
    let output = tiny_request_scope_run(
        "mutex-queue",
        &out,
        &["--server", "py=python3 -m http.server {port} --bind 127.0.0.1"],
    );
    assert_outside_row(&output, &out, "py", "http.server");
}

/// `target/<profile>/examples/book_server`, built by `cargo test` (which
/// builds the examples) or `cargo build --example book_server`.
fn book_server() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("this test's path");
    // target/<profile>/deps/compare-HASH
    let profile = exe.parent()?.parent()?;
    let binary = profile.join("examples").join("book_server");
    if binary.is_file() {
        return Some(binary);
    }
    support::prerequisite_missing(&format!(
        "{} (cargo test builds it; so does cargo build --example book_server)",
        binary.display()
    ));
    None
}

#[test]
fn the_book_server_example_gets_its_row_sampled_and_stopped() {
    let Some(binary) = book_server() else {
        return;
    };
    let out = OutDir::new("book");
    let server = format!("book={} {{port}}", binary.display());
    let output = tiny_request_scope_run("mutex-queue", &out, &["--server", &server]);
    assert_outside_row(&output, &out, "book", "book_server");
}

#[test]
fn a_command_that_dies_at_once_fails_its_row_with_what_it_wrote() {
    let out = OutDir::new("dies");
    let output = tiny_request_scope_run(
        "mutex-queue",
        &out,
        &[
            "--server",
            "boom=sh -c 'echo boom: no such config >&2; exit 3' sh {port}",
        ],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let rows = rows_named(&out, "boom");
    assert_eq!(rows.len(), 1);
    let outcome = &rows[0].outcome;
    assert!(
        outcome.contains("status 3") && outcome.contains("boom: no such config"),
        "{outcome}"
    );
    assert!(
        stderr.contains("boom: no such config"),
        "shown on the terminal: {stderr}"
    );
    assert!(rows_named(&out, "mutex-queue").iter().all(complete), "the run goes on");
}

#[test]
fn url_loads_a_running_server_samples_it_with_pid_and_leaves_it_running() {
    let mut server = support::ServerProcess::spawn(&["--strategy", "mutex-queue", "--scope", "request"]);
    let url = format!("http://{}", server.addr);
    let pid = server.child.id().to_string();

    let sampled = OutDir::new("url-pid");
    let output = tiny_request_scope_run(
        "mutex-queue",
        &sampled,
        &["--url", &format!("mine={url}"), "--pid", &pid],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rows = rows_named(&sampled, "mine");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.scope, "external");
    assert!(complete(row), "{}", row.outcome);
    assert!(row.requests > 0);
    assert!(row.server_peak_threads.is_some_and(|n| n >= 1), "{row:?}");
    assert!(row.server_peak_rss_kib.is_some_and(|kib| kib > 0), "{row:?}");
    assert_eq!(row.server_command, "", "the runner did not start it");

    let unsampled = OutDir::new("url");
    let output = tiny_request_scope_run("mutex-queue", &unsampled, &["--url", &url]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rows = rows_named(&unsampled, "external");
    assert_eq!(rows.len(), 1, "a --url row without a name is `external`");
    let row = &rows[0];
    assert!(row.requests > 0);
    assert_eq!(
        (row.server_peak_rss_kib, row.server_peak_threads, row.server_cpu_s),
        (None, None, None),
        "without --pid the resource columns are empty, not zero"
    );

    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "compare leaves a --url server running"
    );
}

#[test]
fn bad_outside_servers_are_refused_before_anything_runs() {
    for (server, expected) in [
        ("py=python3 -m http.server 8000", "{port}"),
        ("mutex-queue=./srv {port}", "built-in"),
        ("no-name-here", "NAME=COMMAND"),
    ] {
        let out = OutDir::new("refused");
        let output = tiny_request_scope_run("mutex-queue", &out, &["--server", server]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{server}: {stderr}");
        assert!(stderr.contains(expected), "{server}: {stderr}");
        assert!(!out.0.exists(), "{server}: nothing ran");
    }
    let out = OutDir::new("refused-twice");
    let output = tiny_request_scope_run(
        "mutex-queue",
        &out,
        &["--server", "a=./x {port}", "--server", "a=./y {port}"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("two outside servers"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn help_lists_every_scenario_and_dry_run_prints_the_plan() {
    let output = Command::new(env!("CARGO_BIN_EXE_dispatchlab"))
        .args(["compare", "--help"])
        .output()
        .expect("compare --help");
    let help = text(&output.stdout);
    for scenario in [
        "keepalive-starvation",
        "backlog",
        "io-bound",
        "cpu-bound",
        "c10k",
        "c100k",
        "plaintext",
    ] {
        assert!(help.contains(scenario), "--help lacks {scenario}");
    }
    for flag in [
        "--server-cpus",
        "--load-cpus",
        "--no-pin",
        "--out",
        "--quick",
        "--duration",
        "--server <NAME=COMMAND>",
        "--url",
        "--pid",
        "http.server {port}",
        "--repeat",
        "--retry-disturbed",
        "--baseline",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let output = compare(&["--scenario", "backlog", "--dry-run"]);
    let plan = text(&output.stdout);
    assert!(output.status.success(), "{plan}");
    assert!(
        plan.contains("48 cells x 3 repeats = 144 runs") && plan.contains("backlog=5"),
        "{plan}"
    );
}

/// Runs `dispatchlab baseline ARGS`.
fn baseline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispatchlab"))
        .arg("baseline")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dispatchlab baseline")
}

#[test]
fn a_baseline_matches_the_shared_cells_and_reports_the_missing_ones() {
    let (before, after) = (OutDir::new("baseline-before"), OutDir::new("baseline-after"));
    let output = tiny_request_scope_run("mutex-queue,inline", &before, &["--repeat", "2"]);
    assert!(output.status.success(), "compare failed:\n{}", text(&output.stderr));
    let rows = read_csv(&before.0.join("runs.csv")).expect("runs.csv");
    let order: Vec<(&str, Option<u32>)> = rows.iter().map(|r| (r.strategy.as_str(), r.repeat)).collect();
    assert_eq!(order.len(), 4, "two cells, two repeats: {order:?}");
    let (first, second) = (order[0].0, order[1].0);
    assert_ne!(first, second);
    assert_eq!(
        order,
        [(first, Some(1)), (second, Some(1)), (second, Some(2)), (first, Some(2))],
        "every cell once, then again in reverse order"
    );

    let before_dir = before.0.to_str().expect("UTF-8 temp path");
    let output = tiny_request_scope_run("mutex-queue,thread-per-task", &after, &["--baseline", before_dir]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "compare failed:\n{stdout}\n{}",
        text(&output.stderr)
    );
    let written = std::fs::read_to_string(after.0.join("baseline.md")).expect("compare --baseline writes baseline.md");
    assert!(stdout.contains(&written), "the comparison is printed too:\n{stdout}");

    let report_file = after.0.join("against-baseline.md");
    let paths = [before.0.to_str(), after.0.to_str(), report_file.to_str()].map(|p| p.expect("UTF-8 temp path"));
    let output = baseline(&[paths[0], paths[1], "--markdown", paths[2]]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "baseline failed:\n{stdout}\n{}",
        text(&output.stderr)
    );
    let shared: Vec<&str> = stdout.lines().filter(|line| line.starts_with("| strategy=")).collect();
    assert_eq!(shared.len(), 3, "req/s, p50 and p99 of the one shared cell:\n{stdout}");
    assert!(
        shared
            .iter()
            .all(|line| line.contains("strategy=mutex-queue scope=request")),
        "{stdout}"
    );
    assert!(
        shared.iter().all(|line| line.ends_with("| within noise |")),
        "one repeat on each side is never beyond noise:\n{stdout}"
    );
    assert!(
        stdout.contains("only in the baseline: strategy=inline scope=request"),
        "{stdout}"
    );
    assert!(
        stdout.contains("only in this run: strategy=thread-per-task scope=request"),
        "{stdout}"
    );
    let markdown = std::fs::read_to_string(&report_file).expect("--markdown file");
    assert_eq!(markdown, stdout);
    assert_eq!(markdown, written, "compare --baseline and the subcommand agree");

    let missing = baseline(&[paths[0], "/nonexistent/dispatchlab-results"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("runs.csv"),
        "the error names the missing file"
    );
}

#[test]
fn a_busy_loop_on_the_server_cpu_flags_the_run_and_every_retry_is_kept_with_one_counted() {
    let allowed = CpuSet::of_current_thread().expect("this process's CPUs");
    let server_cpu = allowed.cpus()[0];
    // Pinned apart where there are two CPUs; on one, server and load share it
    // and the loop disturbs the shared CPU.
    let pins: Vec<String> = match allowed.cpus() {
        [server, load, ..] => vec![
            "--server-cpus".into(),
            server.to_string(),
            "--load-cpus".into(),
            load.to_string(),
        ],
        _ => Vec::new(),
    };
    // Our own busy loop on the server CPU for the whole comparison, so that
    // the flag is set by it whatever else the machine runs.
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = Arc::clone(&stop);
    let spinner = std::thread::spawn(move || {
        CpuSet::new(vec![server_cpu])
            .pin_current_thread()
            .expect("pin the busy loop");
        while !spinning.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    let out = OutDir::new("disturbed");
    let mut args = vec![
        "--strategies",
        "mutex-queue",
        "--scopes",
        "request",
        "-c",
        "2",
        "-d",
        "500ms",
        "--warmup",
        "100ms",
        "--retry-disturbed",
        "1",
        "--no-reference",
        "--out",
        out.0.to_str().expect("UTF-8 temp path"),
    ];
    args.extend(pins.iter().map(String::as_str));
    let output = compare(&args);
    stop.store(true, Ordering::Relaxed);
    spinner.join().expect("the busy loop ends");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "a disturbed run is not a failure:\n{stderr}");
    let rows = read_csv(&out.0.join("runs.csv")).expect("runs.csv");
    assert_eq!(rows.len(), 2, "the disturbed run and its retry, both kept: {rows:#?}");
    for row in &rows {
        assert!(
            row.outcome.starts_with("disturbed"),
            "{} ({})",
            row.outcome,
            row.disturbance
        );
        assert_eq!(row.repeat, Some(1));
    }
    let counted: Vec<Option<bool>> = rows.iter().map(|r| r.counted).collect();
    assert_eq!(
        counted.iter().filter(|&&c| c == Some(true)).count(),
        1,
        "one attempt counts: {counted:?}"
    );
    assert!(counted.iter().all(Option::is_some), "{counted:?}");
}
