#!/usr/bin/env bash
# Starts a fresh configd on a temporary data dir and loads it from a separate
# process with bench/cmd/configd-load. Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(mktemp -d)
LOG=$(mktemp)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DATA" "$LOG"' EXIT
ADDR=127.0.0.1:${PORT:-17700}
./bin/configd --data-dir "$DATA" --http-addr "$ADDR" --log-level warn 2>"$LOG" &
PID=$!
for _ in $(seq 100); do curl -fs "http://$ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
(cd bench && go build -o ../bin/configd-load ./cmd/configd-load)
for c in 1 16 64; do ./bin/configd-load --addr "$ADDR" --mode put --clients "$c" --duration "${DURATION:-10s}"; done
./bin/configd-load --addr "$ADDR" --mode get --clients 64 --duration "${DURATION:-10s}"
