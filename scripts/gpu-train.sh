#!/usr/bin/env bash
# Continues a training run on a GPU machine for a fixed number of minutes, with a trm-train
# binary built elsewhere with `--features wgpu` (burn-wgpu over Vulkan), and leaves a compact
# checkpoint to copy back.
#
#   scripts/gpu-train.sh BINARY RUN_DIR MINUTES [OUT_DIR] [-- extra trm-train --set arguments]
#
# BINARY    trm-train built with `cargo build --release -p trm-train --features wgpu`
#           (burn 0.22.1's CUDA backend needs network access at build time; wgpu does not).
# RUN_DIR   a run directory to continue: config.toml + checkpoint.safetensors (a full or a
#           compact checkpoint), e.g. models/checkpoint.
# MINUTES   training wall-clock budget; the run saves at the first step past it.
# OUT_DIR   where the continued run goes (default: $OUT/gpu-run when $OUT is set, else
#           runs/gpu-run). The compact checkpoint lands in OUT_DIR/compact: copy its files
#           (and OUT_DIR/train.log) into models/checkpoint/ to carry the run forward.
# BACKEND   environment variable, default wgpu (ndarray runs the same steps on the CPU, to try
#           the script anywhere).
#
# Vulkan: the machine needs the Vulkan loader (libvulkan1) and the NVIDIA ICD. When
# `ldconfig -p | grep libvulkan` prints nothing, unpack the loader packages first; when no
# device is found, point VK_DRIVER_FILES at the NVIDIA ICD json.
#
# Data: a run that trains on a file (`data.source = "file"` in its config, as models/checkpoint
# does from the mixed stage on) needs that file at the same path: build it beforehand with
# scripts/mix-data.sh and carry runs/cache/mix-e15-s30-h5.csv along (runs/ is not in git).
#
# Example (from the repository root on the GPU machine):
#   scripts/gpu-train.sh ./trm-train-wgpu models/checkpoint 8 "$OUT/gpu-run"
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,25p' "$0" >&2
  exit 2
fi
bin=$1 src=$2 minutes=$3
shift 3
out=${OUT:+$OUT/gpu-run}
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  out=$1
  shift
fi
out=${out:-runs/gpu-run}
[ "${1:-}" = "--" ] && shift
backend=${BACKEND:-wgpu}

[ -x "$bin" ] || { echo "gpu-train: $bin is not an executable trm-train" >&2; exit 2; }
for f in config.toml checkpoint.safetensors; do
  [ -f "$src/$f" ] || { echo "gpu-train: $src/$f is missing (not a run directory)" >&2; exit 2; }
done
if grep -q '^source = "file"' "$src/config.toml"; then
  data=$(sed -n 's/^path = "\(.*\)"$/\1/p' "$src/config.toml")
  [ -f "$data" ] || {
    echo "gpu-train: the run trains on $data (data.source = file), which is missing here;" \
      "build it with scripts/mix-data.sh and bring it along" >&2
    exit 2
  }
fi
if ! [[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $minutes =~ ^0+(\.0+)?$ ]]; then
  echo "gpu-train: MINUTES must be a positive number, got '$minutes'" >&2
  exit 2
fi
if [ -e "$out/checkpoint.safetensors" ]; then
  echo "gpu-train: $out already holds a run; choose another OUT_DIR" >&2
  exit 2
fi

mkdir -p "$out"
cp "$src/config.toml" "$src/checkpoint.safetensors" "$out/"
for f in metrics.jsonl train.log; do
  [ -f "$src/$f" ] && cp "$src/$f" "$out/"
done
sets=(--set "backend=$backend" --set "max_minutes=$minutes")
for s in "$@"; do sets+=(--set "$s"); done
echo "gpu-train: $(date -u +%FT%TZ) $bin train --resume $out ${sets[*]}" | tee -a "$out/train.log"
"$bin" train --resume "$out" "${sets[@]}" 2>&1 | tee -a "$out/train.log"
rm -rf "$out/compact"
"$bin" compact --checkpoint "$out" --out "$out/compact"
cp "$out/train.log" "$out/metrics.jsonl" "$out/compact/" 2>/dev/null || true
# The copy to bring back keeps the original backend and time budget (the run's own config says
# wgpu and MINUTES).
for key in backend max_minutes; do
  line=$(grep -m1 "^$key = " "$src/config.toml" || true)
  [ -n "$line" ] && sed -i "s|^$key = .*|$line|" "$out/compact/config.toml"
done
echo "gpu-train: done; copy $out/compact/* into models/checkpoint/ to carry the run forward"
