#!/usr/bin/env bash
# Runs Steward: installs what is missing, builds a release, writes a demo configuration on the
# first run, and serves the console on http://127.0.0.1:3000 (the `listen` of steward.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
steward_setup

cargo leptos build --release

if [ ! -f steward.toml ]; then
  cp steward.example.toml steward.toml
  echo "Wrote the demo configuration steward.toml (environments dev, test, prod and demo; data in ./data)."
fi
# The demo environment backs up real content: a small site and its database (made once).
if grep -q '"data/demo-shop/' steward.toml; then
  target/release/steward --config steward.toml demo init data/demo-shop
fi
exec target/release/steward --config steward.toml serve
