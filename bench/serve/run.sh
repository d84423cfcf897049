#!/usr/bin/env bash
# Peak RSS of the real `ferry serve` while it receives one large file over tus
# (issue 3: VmHWM <= 200 MB for 10 GiB), with a direct-write reference in the
# same run. Usage: bench/serve/run.sh [-size 10GiB] [-ref-size 2GiB] [-limit-mb 200]
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=local
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/ferry" ./cmd/ferry
go run ./bench/serve -ferry "$out/ferry" "$@"
