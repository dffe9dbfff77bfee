#!/usr/bin/env bash
# Test-time scaling: exact accuracy vs total supervision steps per puzzle for every
# attempt source (aug, noise, steps, mixed) and selection rule (check, q, vote) at K = 1, 2, 4,
# 8, 16 attempts, against the single run given the same steps, on top1465, forum_hardest_1106
# and kaggle3m Expert (lines 4001-5000 of kaggle3m_rated_5000.txt).
# Writes OUT/table.md, OUT/results.csv, OUT/accuracy_vs_compute.png, OUT/sweep.json and
# OUT/outcomes.jsonl (one line per puzzle; an interrupted run resumes where it stopped).
#
#   scripts/scaling-measure.sh [COUNT]     # COUNT: puzzles per set, spread evenly (default: all)
#
# Per-set sizes override COUNT: N_TOP1465, N_FORUM, N_EXPERT.
# Environment: MODEL (default models/sudoku-int8.trm), TRM_DATA (default ../shared/data/sudoku),
# OUT (default target/scaling), THREADS (default 0 = all cores), KS (default 1,2,4,8,16),
# SEED (default 0), NOISE (default 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-}
model=${MODEL:-models/sudoku-int8.trm}
data=${TRM_DATA:-../shared/data/sudoku}
out=${OUT:-target/scaling}
cargo build --release -q -p trm-scaling
args=(sweep --model "$model" --out "$out" --threads "${THREADS:-0}" --ks "${KS:-1,2,4,8,16}"
  --seed "${SEED:-0}" --noise "${NOISE:-0.5}"
  --set "top1465=$data/top1465.txt${N_TOP1465:+@$N_TOP1465}"
  --set "forum_hardest_1106=$data/forum_hardest_1106.txt${N_FORUM:+@$N_FORUM}"
  --set "kaggle3m_expert=$data/kaggle3m_rated_5000.txt:4001-5000${N_EXPERT:+@$N_EXPERT}")
if [ -n "$count" ]; then
  args+=(--count "$count")
fi
target/release/trm-scaling "${args[@]}"
