#!/usr/bin/env bash
# Runs Pincer's whole test suite on a fresh machine: installs what the tests need
# (a Docker Engine for `pincer doctor` and the sandbox tests), then runs every test of
# the workspace. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

ensure_docker() {
  if ! command -v dockerd >/dev/null 2>&1; then
    log "dockerd missing: installing Debian's docker.io"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if docker info >/dev/null 2>&1; then
    log "docker engine answers"
    return 0
  fi
  log "starting dockerd in the background (log: /tmp/pincer-dockerd.log)"
  as_root sh -c 'nohup dockerd >/tmp/pincer-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      log "docker engine is up"
      return 0
    fi
    sleep 1
  done
  log "dockerd did not answer within 60 s; see /tmp/pincer-dockerd.log"
  return 1
}

if [ "${PINCER_SKIP_DOCKER:-0}" = 1 ]; then
  log "PINCER_SKIP_DOCKER=1: not starting a Docker engine (tests that need it report it)"
elif ! ensure_docker; then
  log "continuing without Docker: tests that need it will say so"
fi

# Tests bind 127.0.0.1 only and start their own fake servers; nothing leaves the machine.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

# The debug build of the whole workspace takes about 4 GB (more with incremental
# compilation); say so up front instead of failing mid-link with ENOSPC.
avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((6 * 1024 * 1024)) ]; then
  log "warning: only $((avail_kb / 1024)) MiB free here; the build needs about 4 GiB (try cargo clean)"
fi

log "building the workspace (tests and benches compile too)"
cargo build --workspace --all-targets --locked

log "running the tests"
if command -v cargo-nextest >/dev/null 2>&1 && [ "${PINCER_NO_NEXTEST:-0}" != 1 ]; then
  # nextest does not run doctests: run them first so nextest's summary closes the log
  cargo test --workspace --doc --locked
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
