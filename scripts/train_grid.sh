#!/usr/bin/env bash
# Train a profile's grid one run at a time, in the order given, resuming what is there:
#   scripts/train_grid.sh PROFILE RUNS_ROOT "split:seed ..." [variants]
# e.g. scripts/train_grid.sh real224 _build/real224/runs "paper:42 dedup:42 paper:43" "se base"
# Each run is `brainlib train`; a killed run resumes from its last finished epoch.
set -euo pipefail
profile=$1 root=$2 pairs=$3 variants=${4:-"se base"}
for pair in $pairs; do
  split=${pair%%:*} seed=${pair##*:}
  for variant in $variants; do
    echo "=== $(date -u +%FT%TZ) $profile $variant $split seed $seed"
    brainlib train --profile "$profile" --set split="$split" --seed "$seed" \
      --variant "$variant" --runs "$root"
  done
done
echo "=== $(date -u +%FT%TZ) done"
