#!/usr/bin/env bash
# Serves every compiled-in strategy in both scopes, and each reference
# server (tokio) in its own scope, as `dispatchlab targets` lists them, and
# checks that real clients get correct answers: curl, Python's http.client (keep-alive and
# HTTP/1.0), ab -k, httperf and wrk; then, with `--keep-alive off`, curl,
# http.client, ab without -k and wrk against a pool in each scope and tokio.
# Loopback only; each check is bounded.
#
#   scripts/real-clients.sh [path/to/dispatchlab]
#
# Clients that are not installed are skipped with a note (Debian:
# apt-get install curl apache2-utils httperf wrk). Exits non-zero on the
# first wrong answer, naming the strategy, scope and client.
set -euo pipefail

bin=${1:-target/release/dispatchlab}
[ -x "$bin" ] || { echo "no binary at $bin: run cargo build --release first" >&2; exit 2; }
workers=16      # >= client concurrency, so connection-scope pools do not starve
concurrency=8
failures=0
server_pid=

fail() { echo "FAIL [$label] $*" >&2; failures=$((failures + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

start_server() {
  local out; out=$(mktemp)
  # "$@": the flags `dispatchlab targets` gives for one server.
  "$bin" serve --addr 127.0.0.1:0 "$@" --workers "$workers" >"$out" 2>/dev/null &
  server_pid=$!
  for _ in $(seq 100); do
    addr=$(grep -o 'http://[0-9.:]*' "$out" | head -1 | sed 's#http://##') && [ -n "$addr" ] && break
    sleep 0.05
  done
  rm -f "$out"
  [ -n "$addr" ] || { fail "server did not start"; return 1; }
  port=${addr##*:}
}

stop_server() {
  kill -TERM "$server_pid"
  if ! timeout 20 tail --pid="$server_pid" -f /dev/null; then fail "no exit within 20 s of SIGTERM"; fi
  wait "$server_pid" || fail "exit status $? after SIGTERM"
  server_pid=
}

check_curl() {
  have curl || return 0
  [ "$(curl -sf --max-time 5 "http://$addr/")" = "Hello, World!" ] || fail "curl: wrong body"
  [ "$(curl -sf --max-time 5 "http://$addr/bytes?n=100000" | wc -c)" = 100000 ] || fail "curl: /bytes size"
  [ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$addr/nope")" = 404 ] || fail "curl: 404"
}

check_python() {
  have python3 || return 0
  python3 - "$addr" <<'PY' || fail "python http.client"
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=5)
for _ in range(50):
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"Hello, World!"), "keep-alive GET"
conn.request("POST", "/bytes?n=7", body=b"x" * 5000)
r = conn.getresponse(); assert (r.status, len(r.read())) == (200, 7), "POST with body"
conn.close()
old = http.client.HTTPConnection(host, int(port), timeout=5)
old._http_vsn, old._http_vsn_str = 10, "HTTP/1.0"
old.request("GET", "/")
r = old.getresponse(); assert r.status == 200 and r.getheader("Connection") == "close", "HTTP/1.0"
PY
}

check_ab() {
  have ab || return 0
  local report; report=$(timeout 60 ab -q -k -n 4000 -c "$concurrency" "http://$addr/" 2>&1) || { fail "ab -k exited $?"; return; }
  grep -q "^Failed requests: *0" <<<"$report" || fail "ab -k: failed requests"
  grep -q "^Non-2xx" <<<"$report" && fail "ab -k: non-2xx responses"
  grep -q "^Keep-Alive requests: *4000" <<<"$report" || fail "ab -k: not every request kept alive"
}

check_httperf() {
  have httperf || return 0
  local report; report=$(timeout 60 httperf --server 127.0.0.1 --port "$port" --uri / \
    --num-conns 200 --num-calls 10 --rate 400 --timeout 5 2>&1) || { fail "httperf exited $?"; return; }
  grep -q "2xx=2000 " <<<"$report" || fail "httperf: expected 2000 2xx replies"
  grep -q "^Errors: total 0 " <<<"$report" || fail "httperf: errors"
}

check_wrk() {
  have wrk || return 0
  local report; report=$(timeout 30 wrk -t1 -c"$concurrency" -d2s "http://$addr/" 2>&1) || { fail "wrk exited $?"; return; }
  grep -q "Non-2xx" <<<"$report" && fail "wrk: non-2xx responses"
  grep -q "Socket errors" <<<"$report" && fail "wrk: socket errors: $(grep 'Socket errors' <<<"$report")"
  grep -q "Requests/sec" <<<"$report" || fail "wrk: no result"
}

# `--keep-alive off` (one request per connection, the Rust Book's server):
# every answer says Connection: close and each client still gets all its
# answers, reconnecting as it must.
check_keep_alive_off() {
  if have curl; then
    local head; head=$(curl -si --max-time 5 "http://$addr/") || fail "off: curl"
    grep -qi '^Connection: close' <<<"$head" || fail "off: curl saw no Connection: close"
    grep -q 'Hello, World!' <<<"$head" || fail "off: curl: wrong body"
  fi
  if have python3; then
    python3 - "$addr" <<'PY' || fail "off: python http.client"
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=5)
for _ in range(20):
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.status, r.read(), r.getheader("Connection")) == (200, b"Hello, World!", "close"), "off: GET"
PY
  fi
  if have ab; then
    local report; report=$(timeout 60 ab -q -n 2000 -c "$concurrency" "http://$addr/" 2>&1) || { fail "off: ab exited $?"; return; }
    grep -q "^Complete requests: *2000" <<<"$report" || fail "off: ab: not every request completed"
    grep -q "^Failed requests: *0" <<<"$report" || fail "off: ab: failed requests"
  fi
  if have wrk; then
    local report; report=$(timeout 30 wrk -t1 -c"$concurrency" -d1s "http://$addr/" 2>&1) || { fail "off: wrk exited $?"; return; }
    grep -q "Non-2xx" <<<"$report" && fail "off: wrk: non-2xx responses"
    grep -q "Requests/sec" <<<"$report" || fail "off: wrk: no result"
  fi
  return 0
}

# Every server `serve` can run (`dispatchlab targets`: each valid strategy x
# scope pair, then the reference servers in their own scope): label, flags.
# (Read on fd 3, so that no client can swallow the list from stdin.)
while read -r label flags <&3; do
  # shellcheck disable=SC2086 # the flags are words: --strategy S [--scope C]
  start_server $flags || continue
  check_curl; check_python; check_ab; check_httperf; check_wrk
  stop_server
  echo "ok   [$label]"
done 3< <("$bin" targets)
off_servers=("--strategy mutex-queue --scope connection" "--strategy mutex-queue --scope request")
"$bin" targets | grep -q '^tokio' && off_servers+=("--strategy tokio")
for flags in "${off_servers[@]}"; do
  label="$flags --keep-alive off"
  # shellcheck disable=SC2086 # the flags are words
  start_server $flags --keep-alive off || continue
  check_keep_alive_off
  stop_server
  echo "ok   [$label]"
done
for client in curl python3 ab httperf wrk; do have "$client" || echo "note: $client not installed; its checks were skipped"; done
[ "$failures" = 0 ] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "all real-client checks passed"
