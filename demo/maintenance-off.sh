#!/bin/sh
# Demo maintenance hook (leave): starts again what the enter hook stopped (Steward hands over
# what enter printed as STEWARD_MAINTENANCE_STATE) and takes the maintenance page down.
set -eu
shop="${DEMO_SHOP:?DEMO_SHOP is not set}"
echo "starting again: ${STEWARD_MAINTENANCE_STATE:-null}" >&2
rm -f "${shop}maintenance.flag"
