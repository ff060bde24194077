#!/bin/sh
# Demo action: deletes draft files older than N days from the demo environment's data.
# Steward passes STEWARD_ENVIRONMENT; DEMO_DATA comes from the action's `env` in steward.toml.
set -eu
days="${1:-30}"
drafts="${DEMO_DATA:-demo-data}/${STEWARD_ENVIRONMENT:-dev}/drafts"
mkdir -p "$drafts"
# A fresh demo has no drafts: make a few, some of them old, so there is something to do.
if [ -z "$(ls -A "$drafts")" ]; then
  for i in 1 2 3 4 5; do
    echo "draft $i" > "$drafts/page-$i.draft"
  done
  touch -d "60 days ago" "$drafts/page-1.draft" "$drafts/page-2.draft"
fi
echo "Looking for drafts older than $days days in $drafts"
found=$(find "$drafts" -name '*.draft' -mtime +"$days" | wc -l)
echo "::progress:: 0/$((found > 0 ? found : 1))"
n=0
for file in $(find "$drafts" -name '*.draft' -mtime +"$days"); do
  rm -- "$file"
  n=$((n + 1))
  echo "deleted $(basename "$file")"
  echo "::progress:: $n/$found"
  sleep 0.5
done
echo "Deleted $n drafts; $(find "$drafts" -name '*.draft' | wc -l) newer ones kept."
