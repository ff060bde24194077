#!/usr/bin/env bash
# Proves the browser bundle carries no server code, and reports its size.
#
# Two independent checks, because either alone could miss something:
#   1. the dependency tree of the frontend for wasm32 contains no sqlx, engine, tokio or axum;
#   2. the built .wasm contains no sqlx symbol or source path.
# Prints one "ok:"/"FAIL:" line per check; exits non-zero if any failed.
# Expects a finished `cargo leptos build --release`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

wasm=target/site/pkg/steward.wasm
failed=0

forbidden=$(cargo tree -p frontend --target wasm32-unknown-unknown -e normal --prefix none 2>/dev/null \
  | grep -E '^(sqlx|sqlx-[a-z]+|engine|tokio|axum|leptos_axum) v' | sort -u)
if [ -z "$forbidden" ]; then
  echo "ok: the frontend's dependency tree for wasm32 has no sqlx, engine, tokio or axum"
else
  echo "FAIL: the frontend's dependency tree for wasm32 pulls in: $(echo "$forbidden" | tr '\n' ' ')"
  failed=1
fi

if [ ! -f "$wasm" ]; then
  echo "FAIL: $wasm does not exist (run cargo leptos build --release first)"
  exit 1
fi
if grep -qa -E 'sqlx|sqlite3_|libsqlite' "$wasm"; then
  echo "FAIL: $wasm contains sqlx/SQLite code"
  failed=1
else
  echo "ok: $wasm contains no sqlx or SQLite code"
fi

raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "info: wasm bundle $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzip -9"
exit $failed
