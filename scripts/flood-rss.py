#!/usr/bin/env python3
"""Never-reading flood: peak RSS of each server, and a reading client's p99.

For each server, starts `dispatchlab serve` on a free port, measures the p99
of a keep-alive client's `GET /` round trips, then opens CLIENTS connections
that each pipeline PIPELINE x `GET /bytes?n=1048576` and never read, holds
them for HOLD seconds while the same client measures again, and prints the
server's peak resident set (VmHWM from /proc), both p99s and the slowest
flooded round trip (an unanswered one counts at 3 s; the probe then
reconnects). This is issue 14's target ("1,000 never-reading clients x 4
pipelined 1 MiB answers: peak RSS <= 100 MiB; a well-behaved client's p99
within 2x") as a script, for a quiet machine; it is not a test (it asserts
nothing).

`--attack slow-read` replaces the flood with `slowhttptest -X` (Debian's
slowhttptest: CLIENTS connections opened at CLIENTS per second, each
pipelining PIPELINE requests for the same 1 MiB answer and reading it 32
bytes a second through a 512-1,024-byte receive window), and adds its verdict
("service available") to the line.

    scripts/flood-rss.py [--bin PATH] [--clients N] [--pipeline N] [--hold S]
                         [--probes N] [--attack flood|slow-read]
                         [--server NAME ...] [-- EXTRA SERVE FLAGS]

Servers are named as the runner names them: `mutex-queue/connection`,
`work-stealing/request`, `tokio`. Default: every server, connection scope
with 64 workers, request scope and tokio with 4. Bounded in time: each
probe waits at most 3 seconds, and a server that answers none of the first
3 is not probed further, so a server takes about HOLD + 10 seconds at most
beyond its answered probes.
"""

import argparse
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

PATH = "/bytes?n=1048576"
REQUEST = f"GET {PATH} HTTP/1.1\r\nHost: flood\r\n\r\n".encode()
HELLO = b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n"
PROBE_TIMEOUT = 3.0
GIVE_UP_AFTER = 3


def targets(binary):
    """`dispatchlab targets`: each server's label with the serve flags that choose it."""
    listed = subprocess.run([binary, "targets"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split()[1:] for line in listed.splitlines() if line.strip()}


def serve_args(flags, extra):
    workers = "64" if "connection" in flags else "4"
    return flags + ["--workers", workers] + extra


def start(binary, server, flags, extra):
    child = subprocess.Popen(
        [binary, "serve", "--addr", "127.0.0.1:0"] + serve_args(flags, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = child.stdout.readline()
    found = re.search(r"http://([\d.]+):(\d+)/", line)
    if not found:
        child.kill()
        sys.exit(f"flood-rss: {server} did not start: {line!r}")
    return child, (found.group(1), int(found.group(2)))


def p99_round_trips(addr, probes):
    """p99 and max of `probes` sequential GET / round trips, each as (seconds,
    whether it is only a lower bound), and how many went unanswered within
    PROBE_TIMEOUT: each counts at the time it was given up (a lower bound),
    and the probe reconnects for the next one. When the first GIVE_UP_AFTER
    all go unanswered (every worker held), the rest are counted unanswered
    without waiting for each."""
    times, unanswered, probe = [], 0, None
    for _ in range(probes):
        if unanswered == GIVE_UP_AFTER == len(times):
            unanswered = probes
            times += [(PROBE_TIMEOUT, True)] * (probes - len(times))
            break
        sent = time.monotonic()
        try:
            if probe is None:
                probe = socket.create_connection(addr, timeout=PROBE_TIMEOUT)
                probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            probe.sendall(HELLO)
            if not read_hello(probe):
                raise OSError("closed")
            times.append((time.monotonic() - sent, False))
        except OSError:
            unanswered += 1
            times.append((max(PROBE_TIMEOUT, time.monotonic() - sent), True))
            if probe is not None:
                probe.close()
            probe = None
    if probe is not None:
        probe.close()
    times.sort()
    return times[len(times) * 99 // 100], times[-1], unanswered


def ms(round_trip):
    """A round trip from p99_round_trips in ms, `>=` when it is a lower bound."""
    seconds, bound = round_trip
    return f"{'>=' if bound else ''}{seconds * 1e3:.2f}"


def read_hello(probe):
    """Reads one `Hello, World!` answer (its head says Content-Length: 13)."""
    data = b""
    while not (b"\r\n\r\n" in data and data.endswith(b"Hello, World!")):
        chunk = probe.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


class Flood:
    """CLIENTS connections that pipeline their requests and never read."""

    def __init__(self, addr, clients, pipeline):
        self.sockets, self.clients = [], clients
        for _ in range(clients):
            try:
                client = socket.create_connection(addr, timeout=PROBE_TIMEOUT)
                client.setblocking(False)
                client.send(REQUEST * pipeline)
                self.sockets.append(client)
            except OSError:
                break

    def end(self):
        for client in self.sockets:
            client.close()
        return "" if len(self.sockets) == self.clients else f"  (only {len(self.sockets)} connected)"


class SlowRead:
    """`slowhttptest -X`: CLIENTS slow readers, run for the hold and probe."""

    def __init__(self, addr, clients, pipeline, length):
        command = ["slowhttptest", "-X", "-c", str(clients), "-r", str(clients), "-l", str(int(length))]
        command += ["-k", str(pipeline), "-n", "1", "-z", "32", "-w", "512", "-y", "1024", "-p", "3"]
        command += ["-u", f"http://{addr[0]}:{addr[1]}{PATH}"]
        self.child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2.0)  # connections opened at CLIENTS per second, then a second to settle

    def end(self):
        try:
            output, _ = self.child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            output, _ = self.child.communicate()
        plain = re.sub(r"\x1b\[[0-9;]*m", "", output)  # its terminal colours
        verdicts = re.findall(r"service available:\s*(\S+)", plain)
        return f"  slowhttptest: service available {verdicts[-1] if verdicts else '?'}"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def stop(child):
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="target/release/dispatchlab")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--pipeline", type=int, default=4)
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--probes", type=int, default=1000, help="round trips per p99 (default: 1000)")
    parser.add_argument("--attack", choices=["flood", "slow-read"], default="flood")
    parser.add_argument("--server", action="append", help="a label of `dispatchlab targets` (repeatable; default: all)")
    parser.add_argument("extra", nargs="*", help="more `serve` flags, after --")
    args = parser.parse_args()
    known = targets(args.bin)
    unknown = [s for s in args.server or [] if s not in known]
    if unknown:
        sys.exit(f"unknown server {unknown}; `{args.bin} targets` lists them")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    reads = "never read" if args.attack == "flood" else "read slowly (slowhttptest -X)"
    print(f"{args.clients} clients x {args.pipeline} x 1 MiB, {reads}, held {args.hold} s ({os.uname().nodename})")
    print(f"{'server':<28} {'VmHWM MiB':>10} {'p99 alone ms':>13} {'p99 flooded ms':>15} {'max flooded ms':>15} {'unanswered':>11}")
    for server in args.server or list(known):
        child, addr = start(args.bin, server, known[server], args.extra)
        try:
            alone, _, _ = p99_round_trips(addr, args.probes)
            if args.attack == "flood":
                attack = Flood(addr, args.clients, args.pipeline)
            else:
                attack = SlowRead(addr, args.clients, args.pipeline, args.hold + 2)
            deadline = time.monotonic() + args.hold
            flooded, worst, unanswered = p99_round_trips(addr, args.probes)
            time.sleep(max(0.0, deadline - time.monotonic()))
            peak = status_kib(child.pid, "VmHWM")
            note = attack.end()
            print(f"{server:<28} {peak / 1024:>10.1f} {ms(alone):>13} {ms(flooded):>15} {ms(worst):>15} {unanswered:>11}{note}")
        finally:
            stop(child)


if __name__ == "__main__":
    main()
