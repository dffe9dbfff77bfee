#!/usr/bin/env bash
# Builds the training file of the mixed stage of configs/sudoku-edge.toml (the data of
# models/checkpoint/ from step 13813 on): 50,500 generated puzzles, the same bytes on every
# machine, written to runs/cache/mix-e15-s30-h5.csv (or OUT):
#   15,000 with 17..30 givens and any rating (seed 21; median rating 0, like kaggle3m),
#   30,500 of stage 3's set (17..30 givens, rated >= 10 solver guesses; seed 11),
#    5,000 of stage 5's pool (17..26 givens, rated >= 30; seed 11).
# The run shuffles them and holds 500 out. Parts already in runs/cache (the names `train` gives
# its generated sets) are reused; the rated >= 30 part takes about 10 minutes to generate.
#
#   scripts/mix-data.sh [OUT]
#
# Then: `trm-train train --resume RUN --set data.source=file --set data.path=OUT`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/cache/mix-e15-s30-h5.csv}
cache=runs/cache
cargo build --release -q -p trm-train
train=target/release/trm-train
mkdir -p "$cache" "$(dirname "$out")"

part() { # file count seed clues min-rating
  if [ ! -f "$cache/$1" ]; then
    "$train" data generate --count "$2" --seed "$3" --clues "$4" --min-rating "$5" \
      --out "$cache/$1"
  fi
}
part mix-easy-c17-30-r0-n15000-s21.csv 15000 21 17..30 0
part gen-c17-30-r10-n50500-s11.csv 50500 11 17..30 10
part gen-c17-26-r30-n5500-s11.csv 5500 11 17..26 30

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  cat "$cache/mix-easy-c17-30-r0-n15000-s21.csv"
  sed -n 2,30501p "$cache/gen-c17-30-r10-n50500-s11.csv"
  sed -n 2,5001p "$cache/gen-c17-26-r30-n5500-s11.csv"
} > "$tmp"
mv "$tmp" "$out"
trap - EXIT
"$train" data check --threads 1 "$out"
