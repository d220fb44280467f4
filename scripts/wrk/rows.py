#!/usr/bin/env python3
"""The measuring half of scripts/wrk/run.sh (Python 3 standard library only).

  rows.py sample PID OUT.json
      Watches the server PID while wrk runs: CPU time and the host-wide TcpExt
      counters at the start and at the end, the most threads seen (every
      100 ms) and the peak resident set (VmHWM). Ends on SIGTERM, or when the
      process ends, and writes OUT.json.

  rows.py row --csv OUT.csv --wrk WRK.txt --sample SAMPLE.json \
              [--hgrm FILE.hgrm] [--label TEXT] KEY=VALUE...
      Turns wrk's output (the DISPATCHLAB_WRK_JSON line that report.lua
      prints) and the sample into one row of the result schema, appended to
      OUT.csv (the header is written with the first row). KEY=VALUE pairs give
      the run's context columns (strategy, scope, connections, command, ...).
      With --hgrm, writes the latency spectrum in wrk2's .hgrm format; with
      --label, prints a one-line summary of the row under that label.

The columns are read from results/README.md (between the `columns` markers),
which tests/compare.rs checks against the Rust `RunRow`: the CSV header is
the runner's, column for column.
"""

import csv
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "results" / "README.md"
NETSTAT_FIELDS = {
    "ListenOverflows": "listen_overflows",
    "ListenDrops": "listen_drops",
    "TCPSynRetrans": "syn_retransmits",
}
# The columns that are never empty (plain numbers in the Rust `RunRow`).
COUNT_COLUMNS = (
    "duration_s", "requests", "bytes", "errors_connect_refused", "errors_connect_timeout", "errors_reset",
    "errors_read_timeout", "errors_bad_status", "errors_protocol", "errors_total", "reconnects", "rps",
    "errors_other",
)
SAMPLE_EVERY_S = 0.1
SAMPLE_AT_MOST_S = 3600.0


def schema_columns():
    """The runs.csv columns, in order, from results/README.md."""
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    table = re.search(r"<!-- columns: begin -->(.*?)<!-- columns: end -->", text, re.S)
    if table is None:
        sys.exit(f"rows.py: no column table between the markers in {SCHEMA_DOC}")
    return re.findall(r"^\| `([a-z0-9_]+)` \|", table.group(1), re.M)


def netstat():
    """TcpExt counters of /proc/net/netstat, or {} where there is none."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:]))
            return {name: int(counters[name]) for name in NETSTAT_FIELDS if name in counters}
    return {}


def cpu_seconds(pid):
    """User + system CPU seconds of PID so far, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_field(pid, name):
    """A numeric field of /proc/PID/status (e.g. Threads, VmHWM in kB)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def sample(pid, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    start = {"cpu_s": cpu_seconds(pid), "netstat": netstat()}
    peak_threads = status_field(pid, "Threads")
    rss_kib = status_field(pid, "VmHWM")
    deadline = time.monotonic() + SAMPLE_AT_MOST_S
    while not stop and time.monotonic() < deadline:
        threads = status_field(pid, "Threads")
        if threads is None:
            break
        peak_threads = max(peak_threads or 0, threads)
        rss_kib = status_field(pid, "VmHWM") or rss_kib
        time.sleep(SAMPLE_EVERY_S)
    end = {"cpu_s": cpu_seconds(pid), "netstat": netstat()}
    result = {"peak_threads": peak_threads, "peak_rss_kib": rss_kib}
    if start["cpu_s"] is not None and end["cpu_s"] is not None:
        result["cpu_s"] = round(end["cpu_s"] - start["cpu_s"], 3)
    for name, column in NETSTAT_FIELDS.items():
        if name in start["netstat"] and name in end["netstat"]:
            result[column] = end["netstat"][name] - start["netstat"][name]
    Path(out).write_text(json.dumps(result))


def wrk_report(path):
    """The JSON line report.lua prints, or None when wrk did not get there."""
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("DISPATCHLAB_WRK_JSON "):
            return json.loads(line.split(" ", 1)[1])
    return None


def measured_columns(wrk, server):
    """The columns wrk and the sampler measured.

    wrk's error kinds map onto the schema's: connect -> errors_connect_refused
    (on loopback a failed connect is a refusal), read -> errors_reset (a read
    error or a close mid-response), timeout -> errors_read_timeout, status
    (4xx/5xx) -> errors_bad_status, write -> errors_other. wrk counts
    unparsable responses as read errors and does not count connect timeouts
    or reconnects apart, so errors_protocol, errors_connect_timeout and
    reconnects are 0 (those columns are counts, never empty).
    """
    errors = wrk["errors"]
    by_column = {
        "errors_connect_refused": errors["connect"],
        "errors_connect_timeout": 0,
        "errors_reset": errors["read"],
        "errors_read_timeout": errors["timeout"],
        "errors_bad_status": errors["status"],
        "errors_protocol": 0,
        "errors_other": errors["write"],
    }
    seconds = wrk["duration_us"] / 1e6
    successes = max(wrk["requests"] - errors["status"], 0)
    latency = wrk["latency_us"]
    row = dict(by_column)
    row.update(
        duration_s=round(seconds, 6),
        requests=successes,
        bytes=wrk["bytes"],
        errors_total=sum(by_column.values()),
        reconnects=0,
        rps=round(successes / seconds, 3) if seconds > 0 else 0,
        latency_mean_us=latency["mean"],
        latency_stdev_us=latency["stdev"],
        latency_p50_us=latency["p50"],
        latency_p90_us=latency["p90"],
        latency_p99_us=latency["p99"],
        latency_p999_us=latency["p999"],
        latency_max_us=latency["max"],
        server_peak_rss_kib=server.get("peak_rss_kib"),
        server_peak_threads=server.get("peak_threads"),
        server_cpu_s=server.get("cpu_s"),
    )
    for column in NETSTAT_FIELDS.values():
        row[column] = server.get(column)
    return row


def write_hgrm(path, wrk, context):
    """The spectrum as wrk2 prints it (values in ms), the context as # lines."""
    total = wrk["requests"]
    lines = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}", ""]
    for percentile, value_us in wrk["spectrum"]:
        fraction = percentile / 100
        inverse = f"{1 / (1 - fraction):14.2f}" if fraction < 1 else ""
        lines.append(f"{value_us / 1000:12.3f} {fraction:14.12f} {round(fraction * total):10d} {inverse}".rstrip())
    latency = wrk["latency_us"]
    lines.append(f"#[Mean    = {latency['mean'] / 1000:12.3f}, StdDeviation   = {latency['stdev'] / 1000:12.3f}]")
    lines.append(f"#[Max     = {latency['max'] / 1000:12.3f}, Total count    = {total:12d}]")
    lines.append(f"# run {context.get('run_id', '')} (wrk), {context.get('timestamp', '')}")
    lines.append(f"# server {context.get('server_command', '')}")
    lines.append(f"# command: {context.get('command', '')}")
    Path(path).write_text("\n".join(lines) + "\n")


def summary_line(label, values):
    p99 = values.get("latency_p99_us")
    p99 = "-" if p99 is None else f"{p99 / 1000:.2f} ms"
    return (
        f"{label:<40} {values.get('rps', 0):>10.0f} req/s  p99 {p99:>10}  "
        f"errors {values.get('errors_total', '-'):>6}  {values['outcome']}"
    )


def row(args):
    options, context = {}, {}
    while args:
        arg = args.pop(0)
        if arg.startswith("--"):
            if not args:
                sys.exit(f"rows.py row: {arg} needs a value")
            options[arg[2:]] = args.pop(0)
        elif "=" in arg:
            key, value = arg.split("=", 1)
            context[key] = value
        else:
            sys.exit(f"rows.py row: expected --option VALUE or KEY=VALUE, got {arg!r}")
    for required in ("csv", "wrk", "sample"):
        if required not in options:
            sys.exit(f"rows.py row: --{required} is required")
    columns = schema_columns()
    unknown = sorted(set(context) - set(columns))
    if unknown:
        sys.exit(f"rows.py row: {unknown} are not columns of {SCHEMA_DOC}")
    values = dict(context)
    wrk = wrk_report(options["wrk"])
    if wrk is None:
        # As the runner writes a failed row: the count columns 0, the rest empty.
        values.update({column: 0 for column in COUNT_COLUMNS})
        values.setdefault("outcome", "load error: wrk printed no report (see its output beside the CSV)")
    else:
        server = json.loads(Path(options["sample"]).read_text()) if Path(options["sample"]).exists() else {}
        values.update(measured_columns(wrk, server))
        if "hgrm" in options:
            write_hgrm(options["hgrm"], wrk, context)
    values.setdefault("outcome", "ok")
    out = Path(options["csv"])
    new_file = not out.exists() or out.stat().st_size == 0
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        if new_file:
            writer.writeheader()
        writer.writerow({column: "" if values.get(column) is None else values[column] for column in columns})
    if "label" in options:
        print(summary_line(options["label"], values))
    return 0 if values["outcome"] == "ok" else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "sample":
        sample(int(argv[2]), argv[3])
        return 0
    if len(argv) >= 2 and argv[1] == "row":
        return row(argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
