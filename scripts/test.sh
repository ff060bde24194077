#!/usr/bin/env bash
# Runs every test of Steward and ends with one line "N passed, N failed" summing all suites:
#   0. the lint gate, each step one test: `cargo fmt --check`, and `cargo clippy --all-targets
#      -- -D warnings` for every crate and feature set that is built (engine, app with ssr,
#      server, bench; the frontend with app's hydrate feature for wasm32);
#   1. unit and integration tests of engine, app (with its ssr feature), server and bench; the database
#      tests on SQLite and on PostgreSQL (STEWARD_TEST_POSTGRES_URL, default the local server);
#   2. a release build with cargo-leptos, and the check that the wasm bundle has no server code;
#   3. the Playwright tests in Debian's Chromium against that build, JavaScript on and off.
# Installs what is missing first (scripts/setup.sh --browser). Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
steward_setup --browser || exit 1

out=target/test-output
mkdir -p "$out"
passed=0
failed=0
section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# --- PostgreSQL must be there in CI: the db tests would otherwise test only SQLite. ---
pg_url="${STEWARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if [ "${CI:-}" = "true" ]; then
  pg_hostport=$(sed -E 's|^[a-z]+://([^@/]*@)?([^/:?]+)(:([0-9]+))?.*|\2 \4|' <<<"$pg_url")
  read -r pg_host pg_port <<<"$pg_hostport"
  if ! timeout 5 bash -c "exec 3<>/dev/tcp/$pg_host/${pg_port:-5432}" 2>/dev/null; then
    echo "CI=true and PostgreSQL at $pg_host:${pg_port:-5432} is unreachable: the database tests must run on it." >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

# --- 0. Lint: formatting and clippy, each step counted as one test ---
section "Lint (cargo fmt, cargo clippy -D warnings)"
# Runs one lint step (a log name, what it checks, the command), shows its diagnostics when it
# fails, and counts it as one test passed or failed.
lint() {
  local name=$1 what=$2; shift 2
  local log="$out/lint-$name.log" started=$SECONDS
  if "$@" >"$log" 2>&1; then
    echo "ok: $what ($((SECONDS - started)) s)"
    passed=$((passed + 1))
  else
    grep -v -E '^ *(Compiling|Checking|Blocking|Finished|Fresh|Updating|Downloaded?) ' "$log" | tail -n 80
    echo "FAIL: $what ($((SECONDS - started)) s; the whole output: $log)"
    failed=$((failed + 1))
  fi
}
lint fmt "cargo fmt --check: the workspace is formatted" \
  cargo fmt --all --check
lint clippy-server "cargo clippy -D warnings: engine, app (ssr), server, bench, all targets" \
  cargo clippy -p engine -p app -p server -p bench --features app/ssr --all-targets -- -D warnings
lint clippy-wasm "cargo clippy -D warnings: frontend and app (hydrate) for wasm32, all targets" \
  cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets -- -D warnings

# --- 1. Rust tests ---
section "Rust tests (engine, app, server; SQLite and PostgreSQL)"
cargo test -p engine -p app -p server -p bench --features app/ssr 2>&1 | tee "$out/cargo-test.log"
cargo_status=${PIPESTATUS[0]}
read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
                     END { print p + 0, f + 0 }' "$out/cargo-test.log")
passed=$((passed + p)); failed=$((failed + f))
if [ "$cargo_status" -ne 0 ] && [ "$f" -eq 0 ]; then
  echo "cargo test failed before running its tests (see above)"; failed=$((failed + 1))
fi

# --- 2. Release build and the wasm bundle ---
section "Release build (cargo leptos build --release)"
echo "building (log: $out/build.log)…"
if cargo leptos build --release >"$out/build.log" 2>&1; then
  grep -a 'Finished' "$out/build.log"
  section "The wasm bundle"
  scripts/check-wasm.sh | tee "$out/check-wasm.log"
  passed=$((passed + $(grep -c '^ok:' "$out/check-wasm.log")))
  failed=$((failed + $(grep -c '^FAIL:' "$out/check-wasm.log")))
  built=yes
else
  tail -n 40 "$out/build.log"
  echo "the release build failed: the browser tests cannot run"
  failed=$((failed + 1)); built=no
fi

# --- 3. Browser tests against the release build ---
if [ "$built" = yes ]; then
  section "Browser tests (Playwright, /usr/bin/chromium)"
  e2e="$out/e2e"
  rm -rf "$e2e"; mkdir -p "$e2e"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed -e "s|^data_dir = .*|data_dir = \"$PWD/$e2e/data\"|" \
      -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
      -e "s|^site_root = .*|site_root = \"$PWD/target/site\"|" \
      -e "s|\"demo/|\"$PWD/demo/|" \
      -e "s|\"data/demo-shop/|\"$PWD/$e2e/data/demo-shop/|" \
      -e 's|^cron = "0 2 \* \* \*"|cron = "0 2 1 1 *"|' \
      steward.example.toml >"$e2e/steward.toml"
  # A webhook target for the notification spec, whose receiver listens on this port.
  hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf '\n[notifications]\nretry_seconds = 1\n[notifications.targets.e2e-hook]\ntype = "webhook"\nurl = "http://127.0.0.1:%s/hook"\n' \
    "$hook_port" >>"$e2e/steward.toml"
  target/release/steward --config "$e2e/steward.toml" demo init "$e2e/data/demo-shop" >/dev/null
  target/release/steward --config "$e2e/steward.toml" serve >"$e2e/steward.log" 2>&1 &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null' EXIT

  ready=no
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ready=yes; break; fi
    kill -0 $server_pid 2>/dev/null || break
    sleep 0.5
  done
  # The first start creates an admin and prints its password once; the browser tests sign in with it.
  admin_password=$(sed -n 's/^ *password: *//p' "$e2e/steward.log" | head -n 1)
  if [ "$ready" = yes ] && [ -z "$admin_password" ]; then
    echo "Steward did not print the first admin's password; its log:"; cat "$e2e/steward.log"; ready=no
  fi
  if [ "$ready" = yes ]; then
    # The demo shop's files: the restore spec breaks one to see a smoke check fail and Undo.
    demo_shop="$PWD/$e2e/data/demo-shop"
    (cd end2end && rm -f results.json &&
      STEWARD_E2E_URL="http://127.0.0.1:$port" STEWARD_E2E_ADMIN_PASSWORD="$admin_password" \
      STEWARD_E2E_DEMO_SHOP="$demo_shop" STEWARD_E2E_HOOK_PORT="$hook_port" npx playwright test)
    if [ -f end2end/results.json ]; then
      read -r p f < <(node -e 'const s = require("./end2end/results.json").stats;
        console.log(s.expected + s.flaky, s.unexpected)')
      passed=$((passed + p)); failed=$((failed + f))
    else
      echo "Playwright produced no results"; failed=$((failed + 1))
    fi
  else
    echo "Steward did not become healthy on port $port; its log:"; cat "$e2e/steward.log"
    failed=$((failed + 1))
  fi
  kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null
  trap - EXIT
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
