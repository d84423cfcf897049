#!/usr/bin/env bash
# Issue 3's upload benchmark against the real server: builds ferry, starts
# `ferry serve` on a fresh data directory with a portal "bench", and runs
# bench/ingest (LAN: ferry send 1 and 4 streams vs curl into an io.Copy server
# and stock tusd + tus-js-client; WAN: 1 vs 8 streams through a 50 ms, 20 MB/s
# per-connection proxy) with that portal as the target.
# With -pin, ferry serve runs on core 1 (taskset) and the pinned comparison
# (senders on core 0) runs before the unpinned one.
# Usage: bench/ingest/run.sh [bench/ingest flags, e.g. -size 1073741824 -rounds 2 -pin]
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=local PATH="${FERRY_CACHE:-$HOME/.cache/ferry}/bin:$PATH"
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/ferry" ./cmd/ferry
data=$work/data
printf 'bench-password-123\n' | "$work/ferry" admin create-user --data "$data" --email bench@example.com --password-file - >/dev/null 2>&1
token=$("$work/ferry" admin create-token --data "$data" --email bench@example.com 2>/dev/null | tail -n 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pin=()
for a in "$@"; do [[ $a == -pin || $a == --pin || $a == -pin=true ]] && pin=(taskset -c 1); done
"${pin[@]}" "$work/ferry" serve --data "$data" --addr "127.0.0.1:$port" --log-level warn >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Bench","slug":"bench","active":true}' "http://127.0.0.1:$port/api/v1/portals" >/dev/null
echo "ferry serve (pid $pid) on 127.0.0.1:$port, portal /p/bench"
go build -o "$work/bench-ingest" ./bench/ingest
"$work/bench-ingest" -ferry "$work/ferry" -target "http://127.0.0.1:$port/p/bench" "$@"
grep -m1 -iE 'level=(error|warn)' "$work/serve.log" || true
