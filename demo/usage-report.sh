#!/bin/sh
# Demo action: a slow, read-only check that reports on the demo environment line by line
# (about one line a second), to watch a job's live log and to try cancelling it.
set -eu
steps="${1:-30}"
data="${DEMO_DATA:-demo-data}/${STEWARD_ENVIRONMENT:-dev}"
mkdir -p "$data"
echo "Usage report for ${STEWARD_ENVIRONMENT:-dev} ($data), $steps checks"
i=1
while [ "$i" -le "$steps" ]; do
  echo "check $i of $steps: $(find "$data" -type f | wc -l) files, $(du -sk "$data" | cut -f1) KiB"
  echo "::progress:: $i/$steps"
  i=$((i + 1))
  sleep 1
done
echo "Report complete."
