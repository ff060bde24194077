#!/bin/sh
# Demo maintenance hook (enter): a real one would put up a maintenance page and stop the
# application's services. What it prints on standard output (JSON) is kept by Steward and handed
# to the leave hook, so that only what was running is started again.
# DEMO_SHOP comes from the hook's `env` in steward.toml.
set -eu
shop="${DEMO_SHOP:?DEMO_SHOP is not set}"
echo "maintenance page on for ${STEWARD_ENVIRONMENT:-demo}; stopping shop-web" >&2
date -u +%Y-%m-%dT%H:%M:%SZ > "${shop}maintenance.flag"
echo '{"stopped": ["shop-web"]}'
