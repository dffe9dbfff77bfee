#!/usr/bin/env bash
# Ships a training run as the project's default model: exports the EMA weights of RUN_DIR
# (default runs/sudoku-edge) as models/sudoku-{f32,f16,int8}.trm, writes its checkpoint in
# compact form to models/checkpoint/ (`trm-train compact`: weights and EMA exact, Adam moments
# in bf16, no ACT carry; about 6 MB instead of 14 at hidden 128), draws the charts into
# results/shipped-model/plots/ and writes
# models/PROVENANCE.md.
#
#   scripts/ship-model.sh [RUN_DIR]
#
# CONFIG names the config file the run started from (default configs/NAME.toml, NAME being the
# run's config name); the provenance cites it and the committed checkpoint's config takes its
# name. Stage changes made with `--set` on resume are in the config's header and the console log.
#
# WEIGHTS=raw ships the raw optimised weights instead of their EMA (early in a run, while the
# weights still move fast, the average of their trajectory can be the worse model: compare
# both with `trm-train eval --weights ema|raw` on the held-out puzzles first).
# Safe while the run is still training: the trainer replaces its files atomically, and the
# copies are taken from one checkpoint (the step is read from it and checked afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${WEIGHTS:-ema}
run=${1:-runs/sudoku-edge}
out=${MODELS:-models}
results=${RESULTS:-results/shipped-model}
cargo build --release -q -p trm-train
train=target/release/trm-train
for f in config.toml checkpoint.safetensors model.safetensors metrics.jsonl; do
  [ -f "$run/$f" ] || { echo "ship-model: $run/$f is missing (is $run a training run directory?)" >&2; exit 2; }
done
run_name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$run/config.toml")
config=${CONFIG:-configs/$run_name.toml}
if [ ! -f "$config" ]; then
  echo "ship-model: $config does not exist (the run is named \"$run_name\"): give the config file" \
    "the run started from, e.g. CONFIG=configs/sudoku-edge.toml $0 $run" >&2
  exit 2
fi
config_name=$(basename "$config" .toml)

mkdir -p "$out/checkpoint" "$results/plots"
# One consistent snapshot of the run directory.
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
for f in config.toml checkpoint.safetensors model.safetensors metrics.jsonl; do
  cp "$run/$f" "$snap/$f"
done
for dtype in f32 f16 int8; do
  "$train" export --checkpoint "$snap" --weights "$weights" --dtype "$dtype" --out "$out/sudoku-$dtype.trm"
done
# The previous shipped checkpoint is in git; compact refuses to replace a full one otherwise.
rm -f "$out/checkpoint/checkpoint.safetensors"
"$train" compact --checkpoint "$snap" --out "$out/checkpoint"
sed -i "s/^name = \".*\"/name = \"$config_name\"/" "$out/checkpoint/config.toml"
# The console log of the run (stage changes are marked there), where it is kept beside the run.
if [ -f "$run.log" ]; then cp "$run.log" "$out/checkpoint/train.log"; fi

# Accuracy per supervision-step budget on the run's held-out generated puzzles (past N_sup up to
# 24 steps), and the learning curves.
"$train" eval --checkpoint "$snap" --weights "$weights" --max-steps 24 --count "${EVAL_COUNT:-500}" --out "$snap/eval" 2>&1 \
  | tee "$snap/eval.txt"
cp "$snap/eval/budget.png" "$snap/eval/budget.json" "$snap/eval/learning_curves.png" "$results/plots/"
cp "$snap/eval.txt" "$results/plots/budget.txt"

# The checkpoint's step (as `eval` read it): metrics.jsonl may already hold a later line, logged
# after the last checkpoint.
step=$(sed -n 's/^eval: step \([0-9]*\) of .*/\1/p' "$snap/eval.txt")
awk -v max="$step" -F'"step":' 'NF > 1 { split($2, a, ","); if (a[1] + 0 <= max) print }' \
  "$snap/metrics.jsonl" > "$out/checkpoint/metrics.jsonl"
# Wall time over every segment of the run (elapsed_s restarts at each resume).
wall=$(awk -F'"elapsed_s":' 'NF > 1 { split($2, a, ","); t = a[1] + 0;
    if (t < last) total += last; last = t } END { printf "%.0f", total + last }' "$out/checkpoint/metrics.jsonl")
{
  echo "# Provenance of the shipped model"
  echo
  echo "- Files: \`sudoku-f32.trm\`, \`sudoku-f16.trm\`, \`sudoku-int8.trm\` (${weights} weights of the run"
  echo "  below at optimiser step $step), exported by \`scripts/ship-model.sh $run\`."
  echo "- Sizes (bytes): $(for d in f32 f16 int8; do printf '%s %s; ' "$d" "$(stat -c %s "$out/sudoku-$d.trm")"; done)"
  echo "- SHA-256: "
  for d in f32 f16 int8; do echo "  - \`sudoku-$d.trm\`: \`$(sha256sum "$out/sudoku-$d.trm" | cut -d' ' -f1)\`"; done
  echo "- Git revision of the exporting tree: \`$(git rev-parse HEAD)\`$(git diff --quiet HEAD -- trm-train trm-edge || echo ' (with local changes)')"
  echo "- Training: \`cargo run --release -p trm-train -- train --config $config --out RUN\`,"
  echo "  continued with \`train --resume RUN\` after interruptions and at each stage change of"
  echo "  the config's header (\`--set\` overrides; the console log marks each resume), shipped from"
  echo "  \`$run\`. Seed, data settings (source, givens range, puzzle count, augmentations, generator"
  echo "  seed) and every hyper-parameter at this step: \`checkpoint/config.toml\` (the run's"
  echo "  resolved config)."
  if [ -f "$out/checkpoint/train.log" ]; then
    echo "- Console log (resumes and \`--set\` stage changes, held-out evaluations):"
    echo "  \`checkpoint/train.log\`."
  fi
  echo "- Wall time so far: ${wall} s ($(awk -v w="$wall" 'BEGIN { printf "%.1f", w / 3600 }') h) of training on $(nproc) cores"
  echo "  ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%F)."
  echo "- Resume elsewhere: copy \`models/checkpoint/\` to a run directory and"
  echo "  \`cargo run --release -p trm-train -- train --resume <that dir>\`. The committed checkpoint"
  echo "  is compact (\`trm-train compact\`: weights and EMA exact, Adam moments in bf16, no ACT"
  echo "  carry), so the continued run starts its batch rows afresh and is not bit-identical to"
  echo "  one that never stopped (the run directory's full checkpoint is)."
  echo
  echo "## Metrics at step $step (held-out generated puzzles, ${weights} weights)"
  echo
  echo '```'
  cat "$snap/eval.txt"
  echo '```'
  echo
  echo "Last training line: \`$(tail -1 "$out/checkpoint/metrics.jsonl" | cut -c1-400)\`"
} > "$out/PROVENANCE.md"
echo "shipped step $step into $out/"
