#!/usr/bin/env bash
# Installs what building and testing Steward needs, idempotently: each step checks first and
# does nothing when its tool is already there at the right version.
#
#   scripts/setup.sh            build tools: wasm target, cargo-leptos, wasm-bindgen, npm packages
#   scripts/setup.sh --browser  also Debian's Chromium for the browser tests
#
# Every run also makes .tools/python, a Python venv with aiosmtpd and moto: the SMTP server the
# engine's mail notification tests start and the S3 server its repository tests write to (Python 3
# with its venv module is needed for that), and installs Debian's restic and borgbackup, which the
# repository tests and the bench run to read what Steward wrote.
#
# Versions are pinned to what builds on Rust 1.95 without downloads from GitHub
# (see shared/TOOLCHAIN.md). Sourced by run.sh and test.sh (it then changes no shell option of
# theirs); safe to run by hand.

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130
AIOSMTPD_VERSION=1.4.6
MOTO_VERSION=5.2.6
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# Puts the tools on PATH in the calling shell, then installs what is missing (in a subshell
# that stops at the first failure).
steward_setup() {
  export PATH="$repo/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
  (set -euo pipefail; steward_install "$@")
}

steward_install() {
  local browser=no
  [ "${1:-}" = "--browser" ] && browser=yes

  for tool in cargo rustup node npm; do
    command -v "$tool" >/dev/null || { say "$tool is missing: install Rust (rustup) and Node.js first"; return 1; }
  done

  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi

  if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (once per machine, about 15 minutes)"
    cargo install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked --features no_downloads
  fi

  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once per machine, about 4 minutes)"
    # Not --locked: its lockfile names a crate version the registry here does not serve.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi

  # npm packages: wasm-opt (binaryen) for release builds, Playwright for the browser tests.
  local stamp="$repo/end2end/node_modules/.steward-lock"
  if ! cmp -s "$repo/end2end/package-lock.json" "$stamp" 2>/dev/null; then
    say "installing npm packages in end2end/"
    (cd "$repo/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp "$repo/end2end/package-lock.json" "$stamp"
  fi

  steward_install_test_servers
  steward_install_backup_tools

  if [ "$browser" = yes ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing Debian's chromium for the browser tests"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      say "the browser tests need /usr/bin/chromium: run 'sudo apt-get install chromium'"
      return 1
    fi
  fi
}

# .tools/python: a venv with aiosmtpd, the real SMTP server the mail notification tests send to
# (engine/src/notifications/send/tests.rs), and moto, the S3 server the repository tests write to
# (engine/src/testing/s3_server.rs). The stamp names the versions installed, so a new pin
# reinstalls and an unchanged one does nothing.
steward_install_test_servers() {
  local venv="$repo/.tools/python"
  local wanted=("aiosmtpd==$AIOSMTPD_VERSION" "moto[server]==$MOTO_VERSION")
  local stamp="$venv/.steward-stamp"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${wanted[*]}" ]; then
    return 0
  fi
  command -v python3 >/dev/null || {
    say "python3 is missing: install it (with its venv module) for the mail and S3 tests"
    return 1
  }
  say "installing ${wanted[*]} in .tools/python (the tests' SMTP and S3 servers)"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${wanted[@]}"
  echo "${wanted[*]}" >"$stamp"
}

# Debian's restic and borg: the repository tests check that restic reads what Steward wrote, and
# the bench compares both with Steward. Installed only when missing, as Chromium is.
steward_install_backup_tools() {
  local missing=()
  command -v restic >/dev/null || missing+=(restic)
  command -v borg >/dev/null || missing+=(borgbackup)
  [ "${#missing[@]}" = 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's ${missing[*]} for the repository tests and the bench"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "the repository tests and the bench need Debian's ${missing[*]}:" \
      "run 'sudo apt-get install ${missing[*]}'"
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  steward_setup "$@"
fi
