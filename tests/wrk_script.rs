//! `scripts/wrk/run.sh` end to end, when wrk is installed: the real script,
//! the real binary as a server child, real wrk over loopback, one cell.
//!
//! Checked: `runs.csv` has exactly the header the runner writes and parses
//! as [`RunRow`]s; the row says `wrk`, carries the cell's settings, counts
//! the requests wrk made with no error, and has the server columns the
//! script samples; the `.hgrm` spectrum ends at the 100th percentile. Without
//! wrk (or bash, python3) the test fails under `CI` (which installs wrk) and
//! otherwise prints a loud skip line. Bounded in time; no absolute-time
//! assertion.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dispatchlab::results::{RunRow, read_csv, write_csv};

/// The longest the one-cell run may take (it takes about two seconds).
const LIMIT: Duration = Duration::from_secs(90);

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs the script for `inline` in request scope, 4 connections, 1 s.
fn run_script(out: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/wrk/run.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .args(["--quick", "--strategies", "inline", "--scopes", "request", "-c", "4"])
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_dispatchlab"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash scripts/wrk/run.sh");
    let started = Instant::now();
    while child.try_wait().expect("poll the script").is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("scripts/wrk/run.sh did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the script's output")
}

#[test]
fn one_cell_writes_a_runner_row() {
    if !["wrk", "python3", "bash"].iter().all(|tool| installed(tool)) {
        support::prerequisite_missing("wrk, python3 or bash (apt-get install wrk)");
        return;
    }
    let out: PathBuf = std::env::temp_dir().join(format!("dispatchlab-wrk-script-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = run_script(&out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the script failed:\n{stdout}\n{stderr}");

    let csv_path = out.join("runs.csv");
    let text = std::fs::read_to_string(&csv_path).expect("runs.csv is written");
    let mut runner_header = Vec::new();
    write_csv(&mut runner_header, &[RunRow::default()]).expect("serialise a row");
    let runner_header = String::from_utf8(runner_header).expect("CSV is UTF-8");
    assert_eq!(
        text.lines().next(),
        runner_header.lines().next(),
        "the header must be the runner's"
    );

    let rows = read_csv(&csv_path).expect("runs.csv parses as RunRow");
    assert_eq!(rows.len(), 1, "{text}");
    let row = &rows[0];
    assert_eq!(row.outcome, "ok", "{row:?}");
    assert_eq!(
        (row.load_tool.as_str(), row.strategy.as_str(), row.scope.as_str()),
        ("wrk", "inline", "request")
    );
    assert_eq!(
        (row.connections, row.pipeline, row.connection_mode.as_str()),
        (4, 1, "keepalive")
    );
    assert!(row.requests > 0 && row.rps > 0.0, "{row:?}");
    assert_eq!(row.errors_total, 0, "{row:?}");
    assert!(row.latency_p50_us.is_some_and(|p50| p50 > 0.0), "{row:?}");
    assert!(row.server_peak_rss_kib.is_some_and(|kib| kib > 0), "{row:?}");
    assert!(row.server_peak_threads.is_some_and(|threads| threads >= 1), "{row:?}");
    assert!(
        row.command.contains("wrk") && row.server_command.contains("serve"),
        "{row:?}"
    );

    let hgrm = std::fs::read_dir(out.join("hgrm"))
        .expect("hgrm directory")
        .filter_map(Result::ok)
        .next()
        .expect("one .hgrm file");
    let spectrum = std::fs::read_to_string(hgrm.path()).expect("read the .hgrm file");
    assert!(
        spectrum.contains(" 1.000000000000 "),
        "the spectrum reaches 100 %:\n{spectrum}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
