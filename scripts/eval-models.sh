#!/usr/bin/env bash
# Evaluates the shipped models (models/sudoku-{f32,f16,int8}.trm) with trm-solve on every public
# set in ../shared/data/sudoku and on a freshly generated held-out set, at budget 16:
# the int8 file with every halting policy, f32 and f16 with `full` (the dtype differences).
# Writes results/shipped-model/results.csv and table.md (the table in models/README.md).
#
#   scripts/eval-models.sh [LIMIT]     # LIMIT: puzzles per set at most (default 1000)
#
# Environment: TRM_DATA (default ../shared/data/sudoku), MODELS (default models),
# RESULTS (default results/shipped-model), THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-1000}
data=${TRM_DATA:-../shared/data/sudoku}
models=${MODELS:-models}
out=${RESULTS:-results/shipped-model}
mkdir -p "$out/sets"
cargo build --release -q -p trm-solve -p trm-train
solve=target/release/trm-solve

# The sets: name, file, first line, last line (kaggle3m is grouped by level, 1000 lines each).
sets=(
  "kaggle3m Beginner|$data/kaggle3m_rated_5000.txt|1|1000"
  "kaggle3m Easy|$data/kaggle3m_rated_5000.txt|1001|2000"
  "kaggle3m Medium|$data/kaggle3m_rated_5000.txt|2001|3000"
  "kaggle3m Hard|$data/kaggle3m_rated_5000.txt|3001|4000"
  "kaggle3m Expert|$data/kaggle3m_rated_5000.txt|4001|5000"
  "top95|$data/top95.txt|1|95"
  "top1465|$data/top1465.txt|1|1465"
  "forum_hardest_1106|$data/forum_hardest_1106.txt|1|375"
  "forum_hardest_1905_11plus|$data/forum_hardest_1905_11plus.txt|1|48766"
  "17clue|$data/17clue.txt|1|49158"
  "generated held-out (22..30 givens, seed 20261129)|$out/sets/heldout.csv|1|1000"
)
if [ ! -f "$out/sets/heldout.csv" ]; then
  target/release/trm-train data generate --count 1000 --seed 20261129 --clues 22..30 \
    --out "$out/sets/heldout.csv"
fi

echo "set,puzzles,dtype,halt,exact_pct,valid_pct,mean_steps,puzzles_per_s" > "$out/results.csv"
run() { # name file first last dtype halt
  local name=$1 file=$2 first=$3 last=$4 dtype=$5 halt=$6 n input log
  n=$(( last - first + 1 )); [ "$n" -gt "$limit" ] && last=$(( first + limit - 1 ))
  input=$out/sets/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')-$first-$last.txt
  if [[ $file == *.csv ]]; then
    # Sudoku-Extreme CSV: keep the header, then the data rows.
    { head -n 1 "$file"; sed -n "$(( first + 1 )),$(( last + 1 ))p" "$file"; } > "$input"
  else
    sed -n "${first},${last}p" "$file" > "$input"
  fi
  log=$(mktemp)
  "$solve" --model "$models/sudoku-$dtype.trm" --budget 16 --halt "$halt" \
    ${THREADS:+--threads $THREADS} --format csv "$input" > /dev/null 2> "$log"
  local puzzles exact valid steps rate
  puzzles=$(sed -n 's/^puzzles: //p' "$log")
  exact=$(sed -n 's/^exact: \([0-9.]*\)%.*/\1/p' "$log")
  valid=$(sed -n 's/^valid answers: [0-9]* (\([0-9.]*\)%)/\1/p' "$log")
  steps=$(sed -n 's/^mean steps: //p' "$log")
  rate=$(sed -n 's/^puzzles\/s: //p' "$log")
  rm -f "$log"
  echo "\"$name\",$puzzles,$dtype,$halt,$exact,$valid,$steps,$rate" | tee -a "$out/results.csv"
}
for entry in "${sets[@]}"; do
  IFS='|' read -r name file first last <<< "$entry"
  for halt in full q check q+check; do run "$name" "$file" "$first" "$last" int8 "$halt"; done
  for dtype in f32 f16; do run "$name" "$file" "$first" "$last" "$dtype" full; done
done

# The markdown table: one row per set, and kaggle3m's five levels together (the mean of the
# level rows, which hold the same number of puzzles each).
{
  echo "| set | puzzles | int8 full | int8 q | int8 check | int8 q+check | f32 full | f16 full |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F, 'NR > 1 {
      name = $1; for (i = 2; i <= NF - 7; i++) name = name "," $i
      o = NF - 7
      key = name; if (!(key in seen)) { seen[key] = 1; order[++k] = key; n[key] = $(o + 1) }
      cell[key, $(o + 2), $(o + 3)] = sprintf("%s%% (%s st.)", $(o + 4), $(o + 6))
      if (name ~ /kaggle3m (Beginner|Easy|Medium|Hard|Expert)/) {
        kn[$(o + 2), $(o + 3)] += 1; ke[$(o + 2), $(o + 3)] += $(o + 4)
        ks[$(o + 2), $(o + 3)] += $(o + 6); kp += ($(o + 2) == "int8" && $(o + 3) == "full") ? $(o + 1) : 0
      }
    } END {
      if (kp > 0) {
        printf "| kaggle3m, all five levels | %d |", kp
        split("int8 full,int8 q,int8 check,int8 q+check,f32 full,f16 full", cols, ",")
        for (c = 1; c <= 6; c++) { split(cols[c], dh, " ")
          printf " %.2f%% (%.2f st.) |", ke[dh[1], dh[2]] / kn[dh[1], dh[2]], ks[dh[1], dh[2]] / kn[dh[1], dh[2]] }
        printf "\n"
      }
      for (i = 1; i <= k; i++) { s = order[i]; gsub(/"/, "", s)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s, n[order[i]],
          cell[order[i], "int8", "full"], cell[order[i], "int8", "q"],
          cell[order[i], "int8", "check"], cell[order[i], "int8", "q+check"],
          cell[order[i], "f32", "full"], cell[order[i], "f16", "full"] }
    }' "$out/results.csv"
} > "$out/table.md"
cat "$out/table.md"
