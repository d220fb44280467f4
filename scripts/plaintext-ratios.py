#!/usr/bin/env python3
"""Plaintext ratios against nginx, measured the way issue 16 is checked.

For every server (a `dispatchlab serve` target, optionally with extra serve
flags such as `--sched batch`) and every connection count, the script
measures nginx right before the server, with the same client: the crate's
own load generator (`dispatchlab load`, one thread, pinned to the load CPU;
`wrk -t1` saturates near nginx's rate on one core, so it cannot rank
servers that are faster than nginx). Servers run pinned to the server CPU
with their defaults (one worker per server CPU), nginx with one worker
process. Rounds alternate the order of the servers (reversed every other
round), so a slow phase of the machine does not land on one server.

Each measurement is a row of the CSV (round, server, flags, connections,
req/s of the server, req/s of nginx just before it, ratio); the summary
gives, per server and connection count, the median ratio and its min-max
over the rounds, and the median req/s.

    scripts/plaintext-ratios.py [--bin target/release/dispatchlab]
        [--servers mutex-queue/request,tokio,...] [--variant "--sched batch"]
        [-c 16,100,256] [--rounds 3] [-d 2s] [--warmup 500ms]
        [--server-cpu 0] [--load-cpu 1] [--out DIR]

Traffic goes to loopback only; every run is bounded by its duration and a
timeout.
"""

import argparse
import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 65536; }}
http {{
    access_log off;
    keepalive_requests 1000000000;
    server {{
        listen 127.0.0.1:{port} backlog=1024 reuseport;
        location / {{ return 200 "Hello, World!"; }}
    }}
}}
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="target/release/dispatchlab")
    parser.add_argument("--servers", default=None, help="comma-separated targets (default: every request-scope target and tokio, from `dispatchlab targets`)")
    parser.add_argument("--variant", action="append", default=None, help="extra serve flags; repeatable; each is measured as its own server (default: none)")
    parser.add_argument("-c", "--connections", default="16,100,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-d", "--duration", default="2s")
    parser.add_argument("--warmup", default="500ms")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--out", default=None)
    return parser.parse_args()


def targets(binary):
    """`dispatchlab targets`: each label with the serve flags that choose it."""
    listed = subprocess.run([binary, "targets"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split()[1:] for line in listed.splitlines() if line.strip()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_open(port, proc, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {limit} s")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_dispatchlab(args, target, flags):
    port = free_port()
    cmd = ["taskset", "-c", args.server_cpu, args.bin, "serve", "--addr", f"127.0.0.1:{port}"]
    cmd += args.targets[target]
    cmd += flags.split()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_open(port, proc)
    return proc, port


def start_nginx(args, workdir):
    port = free_port()
    conf = Path(workdir) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    nginx = next((p for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] if os.path.exists(p)), "nginx")
    proc = subprocess.Popen(["taskset", "-c", args.server_cpu, nginx, "-c", str(conf), "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_open(port, proc)
    return proc, port


def load(args, port, connections):
    cmd = ["taskset", "-c", args.load_cpu, args.bin, "load", f"http://127.0.0.1:{port}/",
           "-c", str(connections), "-t", "1", "-d", args.duration, "--warmup", args.warmup, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"load failed: {out.stderr.strip()}")
    report = json.loads(out.stdout)
    errors = report.get("errors_total", 0)
    return report["requests_per_s"], errors


def main():
    args = parse_args()
    args.targets = targets(args.bin)
    default = [t for t in args.targets if t.endswith("/request") or t == "tokio"]
    servers = args.servers.split(",") if args.servers else default
    unknown = [s for s in servers if s not in args.targets]
    if unknown:
        sys.exit(f"unknown server {unknown}; `{args.bin} targets` lists them")
    variants = args.variant or [""]
    cells = [(s, v) for s in servers for v in variants]
    counts = [int(c) for c in args.connections.split(",")]
    out = Path(args.out or tempfile.mkdtemp(prefix="plaintext-ratios-"))
    out.mkdir(parents=True, exist_ok=True)
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    print(f"load average before: {loadavg}; writing {out}", file=sys.stderr)
    rows = []
    workdir = tempfile.mkdtemp(prefix="nginx-")
    for round_ in range(1, args.rounds + 1):
        order = cells if round_ % 2 == 1 else list(reversed(cells))
        for server, flags in order:
            for c in counts:
                nginx, nport = start_nginx(args, workdir)
                try:
                    nginx_rps, nginx_errors = load(args, nport, c)
                finally:
                    stop(nginx)
                proc, port = start_dispatchlab(args, server, flags)
                try:
                    rps, errors = load(args, port, c)
                finally:
                    stop(proc)
                row = dict(round=round_, server=server, flags=flags, connections=c, rps=round(rps),
                           errors=errors, nginx_rps=round(nginx_rps), nginx_errors=nginx_errors,
                           ratio=round(rps / nginx_rps, 3) if nginx_rps else "")
                rows.append(row)
                print(f"round {round_} {server} {flags} c={c}: {rps:,.0f} req/s, nginx {nginx_rps:,.0f}, "
                      f"x{row['ratio']}", file=sys.stderr)
    with open(out / "ratios.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    with open("/proc/loadavg") as f:
        after = f.read().split()[0]
    lines = [f"load average before {loadavg}, after {after}; {args.rounds} rounds, -d {args.duration}, "
             f"server CPU {args.server_cpu}, load CPU {args.load_cpu}", "",
             "| server | flags | c | req/s (median) | × nginx median (min–max) | errors |", "|---|---|---|---|---|---|"]
    for server, flags in cells:
        for c in counts:
            mine = [r for r in rows if r["server"] == server and r["flags"] == flags and r["connections"] == c]
            ratios = [r["ratio"] for r in mine if r["ratio"] != ""]
            rps = statistics.median(r["rps"] for r in mine)
            errs = sum(r["errors"] for r in mine)
            lines.append(f"| {server} | {flags or '-'} | {c} | {rps:,.0f} | {statistics.median(ratios):.2f} "
                         f"({min(ratios):.2f}–{max(ratios):.2f}) | {errs} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
