#!/usr/bin/env bash
# Scripted wrk runs over strategies x scopes x connection counts, written as
# rows of the runner's result schema (results/README.md), so that wrk's
# numbers and `dispatchlab compare`'s load into the same notebook.
#
# For every cell it starts `dispatchlab serve` on a free loopback port (port
# 0; the server prints the one it got), pinned to the first half of the CPUs,
# runs wrk pinned to the other half (when there are at least 2 CPUs and
# taskset exists) with report.lua, whose done() prints the percentiles and
# errors as JSON, samples the server's CPU time, threads and peak RSS while
# wrk runs (rows.py), stops the server with SIGTERM, and appends one row to
# OUT/runs.csv. Also written: OUT/hgrm/NNN-<cell>.hgrm (wrk's percentile
# spectrum in wrk2's format), OUT/wrk/NNN-<cell>.txt (wrk's own output) and
# OUT/servers.log. Needs bash, wrk, python3 (standard library only).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="$repo/target/release/dispatchlab"
strategies=""
scopes="connection,request"
connections=""
duration=""
warmup=""
workload="/"
workers=""
load_threads=""
timeout="2s"
mode="keepalive"
out=""
quick=0

usage() {
  cat <<'EOF'
Usage: scripts/wrk/run.sh [OPTIONS]

Runs wrk against `dispatchlab serve` for every strategy x scope x connection
count and writes the rows in the runner's result schema (results/README.md).

Options:
  --strategies LIST   comma-separated strategies [default: every compiled-in one; not the
                      reference servers, which take no --scope]
  --scopes LIST       connection,request [default: both]
  -c, --connections LIST
                      connection counts [default: 1,16,64,256]
  -d, --duration D    measured time per cell, wrk syntax (3s, 500ms) [default: 3s]
  --warmup D          an unrecorded wrk run before each cell, 0 for none [default: 1s]
  --workload PATH     request target, e.g. /sleep?ms=40 [default: /]
  -w, --workers N     pool workers [default: the server's, one per server CPU]
  -t, --threads N     wrk threads [default: one per load CPU, at most the connections]
  --timeout D         wrk's request timeout [default: 2s]
  --close             send `Connection: close`: a new connection per request
  --quick             a smoke run: defaults of 16 connections, 1 s, no warm-up (numbers not for reading)
  --out DIR           result directory [default: results/wrk-TIMESTAMP]
  --bin PATH          the dispatchlab binary [default: target/release/dispatchlab]
  -h, --help          this help

Example:
  cargo build --release && scripts/wrk/run.sh --strategies mutex-queue,inline -c 16,256
EOF
}

die() {
  echo "scripts/wrk/run.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --strategies) strategies="${2:?--strategies needs a list}"; shift ;;
    --scopes) scopes="${2:?--scopes needs a list}"; shift ;;
    -c | --connections) connections="${2:?--connections needs a list}"; shift ;;
    -d | --duration) duration="${2:?--duration needs a value}"; shift ;;
    --warmup) warmup="${2:?--warmup needs a value}"; shift ;;
    --workload) workload="${2:?--workload needs a path}"; shift ;;
    -w | --workers) workers="${2:?--workers needs a number}"; shift ;;
    -t | --threads) load_threads="${2:?--threads needs a number}"; shift ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift ;;
    --close) mode="close" ;;
    --quick) quick=1 ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    --bin) bin="${2:?--bin needs a path}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
  shift
done

# --quick changes only the defaults: -c, -d and --warmup still apply.
if [ "$quick" = 1 ]; then
  : "${connections:=16}" "${duration:=1s}" "${warmup:=0}"
else
  : "${connections:=1,16,64,256}" "${duration:=3s}" "${warmup:=1s}"
fi

command -v wrk >/dev/null 2>&1 || die "wrk is not installed. Install it with 'sudo apt-get install wrk' (Debian/Ubuntu), 'sudo dnf install wrk' (Fedora), 'brew install wrk' (macOS), or build it from https://github.com/wg/wrk"
command -v python3 >/dev/null 2>&1 || die "python3 is needed to write the rows (standard library only)"
[ -x "$bin" ] || die "no dispatchlab binary at $bin: build it with 'cargo build --release' or pass --bin PATH"
[ -n "$strategies" ] || strategies="$("$bin" strategies | awk '!/reference server/ {print $1}' | paste -sd, -)"
# Every STRATEGY/SCOPE pair a server runs (inline: request scope only).
servable="$("$bin" targets | awk '{print $1}')"

# Server on the first half of the CPUs, wrk on the rest.
cpus="$(nproc)"
server_cpus=""
load_cpus=""
pin_server=()
pin_load=()
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  half=$((cpus / 2))
  server_cpus="$([ "$half" = 1 ] && echo 0 || echo "0-$((half - 1))")"
  load_cpus="$([ "$half" = $((cpus - 1)) ] && echo "$half" || echo "$half-$((cpus - 1))")"
  pin_server=(taskset -c "$server_cpus")
  pin_load=(taskset -c "$load_cpus")
  [ -n "$load_threads" ] || load_threads=$((cpus - half))
else
  echo "note: fewer than 2 CPUs or no taskset: server and wrk share the CPUs (unpinned)" >&2
  [ -n "$load_threads" ] || load_threads=1
fi

run_name="$(date -u +%Y%m%d-%H%M%S)"
[ -n "$out" ] || out="results/wrk-$run_name"
mkdir -p "$out/hgrm" "$out/wrk"
csv="$out/runs.csv"
: >"$csv"
: >"$out/servers.log"
scratch="$out/.work"
mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT

git_rev="$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$git_rev" != unknown ] && ! git -C "$repo" diff --quiet HEAD 2>/dev/null; then
  git_rev="$git_rev-dirty"
fi
context=(
  "git_rev=$git_rev"
  "rustc=$(rustc --version 2>/dev/null || echo unknown)"
  "host=$(hostname)"
  "kernel=$(uname -r)"
  "cpus=$cpus"
  "server_cpus=$server_cpus"
  "load_cpus=$load_cpus"
  "load_tool=wrk"
  "scenario=custom"
  "workload=$workload"
  "connection_mode=$mode"
  "pipeline=1"
)
wrk_headers=()
[ "$mode" = close ] && wrk_headers=(-H "Connection: close")

# Starts the server for one cell; sets server_pid, url, announced.
start_server() {
  local log="$1"
  shift
  : >"$log"
  "${pin_server[@]}" "$@" >>"$log" 2>&1 &
  server_pid=$!
  url=""
  announced=""
  for _ in $(seq 100); do
    announced="$(grep -m1 'listening on http://' "$log" || true)"
    if [ -n "$announced" ]; then
      url="$(grep -o 'http://[^ ]*/' <<<"$announced")"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# SIGTERM, then SIGKILL after 20 s; sets `ended` to how the server ended.
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    ended="killed after SIGTERM did not stop it within 20 s"
    return
  fi
  local status=0
  wait "$server_pid" 2>/dev/null || status=$?
  ended="exit status $status"
}

index=0
failed=0
for strategy in ${strategies//,/ }; do
  for scope in ${scopes//,/ }; do
    grep -qxF "$strategy/$scope" <<<"$servable" || continue
    for conns in ${connections//,/ }; do
      number="$(printf '%03d' "$index")"
      cell="$number-$strategy-$scope-c-$conns"
      run_id="$run_name-$number"
      index=$((index + 1))
      serve=("$bin" serve --addr 127.0.0.1:0 --strategy "$strategy" --scope "$scope")
      [ -n "$workers" ] && serve+=(--workers "$workers")
      threads=$((load_threads < conns ? load_threads : conns))
      server_log="$scratch/$cell.log" # one per cell: never a previous server's address
      wrk_out="$out/wrk/$cell.txt"
      : >"$wrk_out"
      outcome=()
      timestamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
      if start_server "$server_log" "${serve[@]}"; then
        base="${url%/}"
        wrk_cmd=(wrk -t"$threads" -c"$conns" -d"$duration" --timeout "$timeout" "${wrk_headers[@]}"
          -s "$here/report.lua" "$base$workload")
        if [ "$warmup" != 0 ]; then
          "${pin_load[@]}" wrk -t"$threads" -c"$conns" -d"$warmup" --timeout "$timeout" "${wrk_headers[@]}" \
            "$base$workload" >/dev/null 2>&1 || true
        fi
        python3 "$here/rows.py" sample "$server_pid" "$scratch/sample.json" &
        sampler_pid=$!
        "${pin_load[@]}" "${wrk_cmd[@]}" >"$wrk_out" 2>&1 || outcome=("outcome=load error: wrk exited non-zero (see wrk/$cell.txt)")
        kill -TERM "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        if ! kill -0 "$server_pid" 2>/dev/null; then
          outcome=("outcome=server died during the run (see servers.log)")
        fi
        stop_server
        case "$ended" in "exit status 0") ;; *) [ ${#outcome[@]} -gt 0 ] || outcome=("outcome=server $ended") ;; esac
      else
        stop_server
        outcome=("outcome=server failed to start (see servers.log)")
        wrk_cmd=(wrk)
      fi
      {
        echo "== $cell: ${serve[*]}"
        cat "$server_log"
        echo "-- $ended"
      } >>"$out/servers.log"
      [ -f "$scratch/sample.json" ] || echo '{}' >"$scratch/sample.json"
      announced_workers="$(grep -o 'workers [0-9]*' <<<"${announced:-}" | awk '{print $2}' || true)"
      announced_backlog="$(grep -o 'backlog [0-9]*' <<<"${announced:-}" | awk '{print $2}' || true)"
      printf -v load_line '%q ' "${pin_load[@]}" "${wrk_cmd[@]}"
      printf -v serve_line '%q ' "${pin_server[@]}" "${serve[@]}"
      if ! python3 "$here/rows.py" row --csv "$csv" --wrk "$wrk_out" --sample "$scratch/sample.json" \
        --hgrm "$out/hgrm/$cell.hgrm" --label "$strategy/$scope c=$conns" "${context[@]}" "${outcome[@]}" \
        "run_id=$run_id" "timestamp=$timestamp" "strategy=$strategy" "scope=$scope" \
        "workers=$announced_workers" "io_threads=" "backlog=$announced_backlog" \
        "connections=$conns" "load_threads=$threads" \
        "command=${load_line% }" "server_command=${serve_line% }"; then
        failed=$((failed + 1))
      fi
      rm -f "$scratch/sample.json"
    done
  done
done

echo "$index cells, $failed not ok; rows in $csv (columns: results/README.md)"
[ "$failed" = 0 ]
