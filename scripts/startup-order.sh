#!/usr/bin/env bash
# Regenerates deploy/startup-order.txt: the functions the gateway runs from exec to
# listening and idle, which build.rs hands to the linker (--symbol-ordering-file) so that
# they sit together at the front of .text. Scattered, they made the kernel map about 10 MB
# of the binary at start (each first touch faults in a 64 KB window); packed, about 3 MB.
# See docs/PERFORMANCE.md. Run it after large changes to what start-up does; functions it
# does not list still work, they are just placed as the linker likes.
#
# Usage: scripts/startup-order.sh [path/to/pincer]   (default: builds target/release/pincer)
# Needs valgrind (apt-get install valgrind) and binutils' nm.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

bin="${1:-}"
if [ -z "$bin" ]; then
  log "building the release binary"
  cargo build --release --locked --bin pincer
  bin=target/release/pincer
fi
command -v valgrind >/dev/null || { log "valgrind is missing: apt-get install valgrind"; exit 1; }
[ -n "$(nm "$bin" 2>/dev/null | head -1)" ] || {
  log "$bin has no symbol table (strip = true?): the release profile must keep symbols"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
log "running the gateway under callgrind until it listens, then 2 s idle"
PINCER_HOME="$work/home" PINCER_GATEWAY_TOKEN=startup-order \
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" \
  "$bin" gateway --port 0 --log-level warn >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 300); do
  grep -q "listening on" "$work/out" 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" "$work/out" || { log "the gateway did not start:"; cat "$work/err" >&2; exit 1; }
sleep 2
# SIGTERM to the gateway (valgrind's child has the same pid): a clean stop writes the profile.
kill -TERM "$pid"
wait "$pid" || true

# Every function callgrind saw (fn= and cfn= lines name them once, then by number), kept
# when it is a code symbol of the binary, in first-seen order.
nm "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$work/syms"
sed -n 's/^c\{0,1\}fn=([0-9]*) \(.*\)$/\1/p' "$work/cg.out" | awk '!seen[$0]++' >"$work/ran"
awk 'NR == FNR {sym[$0] = 1; next} ($0 in sym)' "$work/syms" "$work/ran" >deploy/startup-order.txt
log "deploy/startup-order.txt: $(wc -l <deploy/startup-order.txt) functions"
