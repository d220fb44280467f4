//! `dispatchlab load` from the outside: help, output formats, exit status.

mod support;

use std::process::{Command, Output};

use support::test_servers::{Behaviour, TestServer, closed_port};

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispatchlab"))
        .arg("load")
        .args(args)
        .output()
        .expect("run dispatchlab")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help_explains_every_flag_with_examples() {
    let output = load(&["--help"]);
    assert!(output.status.success());
    let help = stdout(&output);
    for flag in [
        "--connections",
        "--threads",
        "--duration",
        "--warmup",
        "--timeout",
        "--connect-timeout",
        "--header",
        "--pipeline",
        "--rate",
        "--mode",
        "--requests",
        "--service-time",
        "--percentiles",
        "--json",
        "--csv",
        "--hgrm",
        "Examples:",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn table_json_csv_and_hgrm() {
    let server = TestServer::start(Behaviour::ContentLength);
    let url = server.url("/");
    let table = load(&["-t1", "-c2", "--requests", "5", &url]);
    assert!(table.status.success(), "{table:?}");
    let text = stdout(&table);
    assert!(
        text.contains("closed loop") && text.contains("10 requests in"),
        "{text}"
    );

    let json = load(&["-t1", "-c2", "--requests", "5", "--json", &url]);
    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert_eq!(value["requests"], 10);
    assert_eq!(value["loop_mode"], "closed");

    let csv = load(&["-t1", "-c2", "--requests", "5", "--csv", &url]);
    assert!(csv.status.success());
    let mut reader = csv::Reader::from_reader(csv.stdout.as_slice());
    let rows: Vec<dispatchlab::results::RunRow> = reader.deserialize().collect::<Result<_, _>>().expect("schema rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].requests, rows[0].connections, rows[0].errors_total),
        (10, 2, 0)
    );
    assert_eq!(rows[0].load_tool, "dispatchlab");
    assert_eq!(rows[0].connection_mode, "keepalive");
    assert!(rows[0].command.contains("--csv"));

    let dir = std::env::temp_dir().join(format!("dispatchlab-hgrm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hgrm = dir.join("run.hgrm");
    let out = load(&[
        "-t1",
        "-c1",
        "-R",
        "200",
        "-d",
        "300ms",
        "--hgrm",
        hgrm.to_str().expect("utf-8"),
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(text.contains("1/(1-Percentile)") && text.contains("#[Mean"), "{text}");
    assert!(
        dir.join("run.uncorrected.hgrm").exists(),
        "open loop writes the uncorrected distribution too"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exit_status_tells_a_dead_target_and_bad_arguments() {
    let dead = format!("http://{}/", closed_port());
    let output = load(&["-t1", "-c1", "--requests", "2", &dead]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no request succeeded"), "{stderr}");
    assert!(
        stdout(&output).contains("connect refused 2"),
        "the report is still printed"
    );

    let output = load(&["--mode", "close", "--pipeline", "4", &dead]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--pipeline"));

    let output = load(&["-d", "soon", &dead]);
    assert_eq!(output.status.code(), Some(2), "clap rejects unparseable values");
}
