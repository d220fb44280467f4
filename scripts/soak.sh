#!/usr/bin/env bash
# Soak: serves one strategy in one scope for a bounded time under a cycle of
# mixed workloads (keep-alive, pipelined, close and HTTP/1.0 modes; tiny,
# payload, sleeping and spinning routes) with a connection storm every few
# phases, all driven by `dispatchlab load` over loopback. It samples the
# server's RSS (VmRSS) and open descriptors (/proc/<pid>/fd) every few
# seconds, and fails when
#   * any load phase reports an error (connect, timeout, reset, bad status,
#     protocol) or the server dies;
#   * RSS drifts up: the peak of the last third of the samples is more than
#     RSS_TOLERANCE_PCT % (plus RSS_SLACK_KIB) above the peak of the first
#     third (the phases cycle, so both thirds hold the same mix);
#   * descriptors drift up: at the quiet point after each phase (load gone,
#     half a second to settle) the count exceeds the first quiet point's by
#     more than FD_TOLERANCE.
#
#   scripts/soak.sh [--quick] [--duration SECONDS] [--strategy NAME] [--scope connection|request]
#                   [--bin PATH] [--out DIR]
#
# Default: 10 minutes, work-stealing, request scope, target/release/dispatchlab.
# --quick: 1 minute. Samples and per-phase reports land in --out (default a
# temporary directory, printed at the end).
set -euo pipefail

duration=600
strategy=work-stealing
scope=request
bin=target/release/dispatchlab
out=
RSS_TOLERANCE_PCT=20
RSS_SLACK_KIB=8192
FD_TOLERANCE=4
SAMPLE_EVERY=3

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=60 ;;
    --duration) duration=$2; shift ;;
    --strategy) strategy=$2; shift ;;
    --scope) scope=$2; shift ;;
    --bin) bin=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) usage ;;
    *) echo "soak: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[ -x "$bin" ] || { echo "soak: no binary at $bin: run cargo build --release first" >&2; exit 2; }
out=${out:-$(mktemp -d /tmp/dispatchlab-soak.XXXXXX)}
mkdir -p "$out"

# Short phases in a quick run, so that it still sees every workload and storms.
if [ "$duration" -le 120 ]; then phase=4; else phase=10; fi
# Connection scope serves one connection per worker: give the pools more
# workers than the load has connections, so that waiting is not an error.
if [ "$scope" = connection ]; then workers=160; else workers=4; fi

server_pid=
sampler_pid=
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT

"$bin" serve --addr 127.0.0.1:0 --strategy "$strategy" --scope "$scope" --workers "$workers" \
  >"$out/server.out" 2>"$out/server.err" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'http://[0-9.:]*' "$out/server.out" | head -1 | sed 's#http://##') && [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "$addr" ] || { echo "soak: the server did not start (see $out/server.err)" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
fds() { find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
alive() { kill -0 "$server_pid" 2>/dev/null; }

sample_forever() {
  local start=$SECONDS
  while alive; do
    echo "$((SECONDS - start)) $(rss_kib) $(fds)" >>"$out/samples.txt"
    sleep "$SAMPLE_EVERY"
  done
}

# name | load arguments (the URL path last)
workloads=(
  "keepalive-hello|--mode keepalive -c32 /"
  "pipelined|--mode keepalive --pipeline 8 -c8 /"
  "payload-64k|--mode keepalive -c16 /bytes?n=65536"
  "sleep-5ms|--mode keepalive -c64 /sleep?ms=5"
  "close-hello|--mode close -c16 /"
  "http10-spin|--mode http10 -c8 /spin?us=200"
)
storm="storm|--mode close -c300 --connect-timeout 10s /"

failures=0
run_phase() {
  local name=$1 args=$2 seconds=$3 index=$4
  local path=${args##* } flags=${args% *}
  local report="$out/phase-$(printf %03d "$index")-$name.json"
  # shellcheck disable=SC2086 # flags is a list of words on purpose
  if ! "$bin" load -t1 $flags -d "${seconds}s" --timeout 5s --json "http://$addr$path" >"$report" 2>>"$out/load.err"; then
    echo "FAIL phase $index $name: load exited non-zero (see $report)" >&2
    failures=$((failures + 1))
  fi
  local errors requests
  errors=$(grep -o '"errors_total": *[0-9]*' "$report" | grep -o '[0-9]*$' || echo missing)
  requests=$(grep -o '"requests": *[0-9]*' "$report" | head -1 | grep -o '[0-9]*$' || echo 0)
  if [ "$errors" != 0 ]; then
    echo "FAIL phase $index $name: $errors errors (see $report)" >&2
    failures=$((failures + 1))
  fi
  alive || { echo "FAIL phase $index $name: the server died (see $out/server.err)" >&2; exit 1; }
  sleep 0.5
  printf '%s %s %s %s %s\n' "$index" "$name" "$requests" "$(rss_kib)" "$(fds)" >>"$out/quiet.txt"
}

echo "soak: $strategy/$scope at http://$addr for ${duration}s (phases of ${phase}s), output in $out"
# Warm-up pass (not sampled): the allocator, thread stacks and buffers reach
# their working size before the first third of the samples is taken.
for entry in "${workloads[@]}"; do
  run_phase "warmup-${entry%%|*}" "${entry#*|}" 1 0
done
: >"$out/quiet.txt"
sample_forever &
sampler_pid=$!
end=$((SECONDS + duration))
index=1
while [ $SECONDS -lt "$end" ]; do
  if [ $((index % 4)) -eq 0 ]; then entry=$storm; else entry=${workloads[$(((index - 1) % ${#workloads[@]}))]}; fi
  left=$((end - SECONDS))
  seconds=$((left < phase ? (left > 0 ? left : 1) : phase))
  run_phase "${entry%%|*}" "${entry#*|}" "$seconds" "$index"
  index=$((index + 1))
done
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=

# Drift: RSS peaks of the first and last thirds; descriptors at quiet points.
read -r rss_first rss_last count < <(awk '{ v[NR] = $2 } END {
  third = int(NR / 3); if (third < 1) third = 1;
  for (i = 1; i <= third; i++) if (v[i] > a) a = v[i];
  for (i = NR - third + 1; i <= NR; i++) if (v[i] > b) b = v[i];
  print a, b, NR }' "$out/samples.txt")
read -r fd_first fd_max < <(awk 'NR == 1 { f = $5 } { if ($5 > m) m = $5 } END { print f, m }' "$out/quiet.txt")
rss_allowed=$((rss_first + rss_first * RSS_TOLERANCE_PCT / 100 + RSS_SLACK_KIB))
fd_allowed=$((fd_first + FD_TOLERANCE))
requests=$(awk '{ s += $3 } END { print s }' "$out/quiet.txt")
fd_peak=$(awk '{ if ($3 > m) m = $3 } END { print m }' "$out/samples.txt")
echo "soak: $((index - 1)) phases, $requests requests, $count samples"
echo "soak: RSS peak first third ${rss_first} KiB, last third ${rss_last} KiB (allowed ${rss_allowed} KiB)"
echo "soak: descriptors at quiet points: first ${fd_first}, highest ${fd_max} (allowed ${fd_allowed}); peak under load ${fd_peak}"
if [ "$rss_last" -gt "$rss_allowed" ]; then
  echo "FAIL RSS drifted up: ${rss_first} -> ${rss_last} KiB" >&2
  failures=$((failures + 1))
fi
if [ "$fd_max" -gt "$fd_allowed" ]; then
  echo "FAIL descriptors drifted up at quiet points: ${fd_first} -> ${fd_max}" >&2
  failures=$((failures + 1))
fi
kill -TERM "$server_pid"
if ! timeout 20 tail --pid="$server_pid" -f /dev/null; then
  echo "FAIL the server did not exit within 20 s of SIGTERM" >&2
  failures=$((failures + 1))
fi
server_pid=
if [ -s "$out/server.err" ]; then echo "soak: server stderr:"; sed 's/^/  /' "$out/server.err"; fi
if [ "$failures" -gt 0 ]; then echo "soak: FAILED ($failures)"; exit 1; fi
echo "soak: OK"
