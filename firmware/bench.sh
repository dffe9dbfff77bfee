#!/bin/sh
# Exact executed-instruction counts of the firmware on Cortex-M4 (QEMU mps2-an386 + a TCG
# plugin counting instructions between the trm_mark_start/trm_mark_stop markers), per
# supervision step, for one packed model:
#
#   firmware/bench.sh MODEL.trm [STEPS]
#
# Builds the firmware for qemu-mps2-an386 with MODEL embedded, runs `bench STEPS` with the
# target's kernels (`kernel simd`: DSP int8 on Cortex-M4) and with the scalar ones
# (`kernel generic`), and prints one line per kernel set: instructions per supervision step
# (each step counted exactly, all steps must agree), multiply-accumulates per step,
# instructions per MAC, static RAM and the measured peak stack. Needs qemu-system-arm and gcc.
set -eu
model=$(realpath "$1")
steps=${2:-1}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
mkdir -p target/insncount
plugin=target/insncount/libinsncount.so
if [ ! -f "$plugin" ] || [ tools/qemu-insncount.c -nt "$plugin" ]; then
  gcc -shared -fPIC -O2 -o "$plugin" tools/qemu-insncount.c
fi
TRM_MODEL="$model" cargo build --release --features qemu-mps2-an386 -q 2>/dev/null \
  || TRM_MODEL="$model" cargo build --release --features qemu-mps2-an386
elf=target/thumbv7em-none-eabihf/release/trm-firmware
start=$(nm "$elf" | sed -n 's/^\([0-9a-f]*\) T trm_mark_start$/0x\1/p')
stop=$(nm "$elf" | sed -n 's/^\([0-9a-f]*\) T trm_mark_stop$/0x\1/p')
log=target/insncount/plugin.log
out=$(printf 'info\nkernel simd\nbench %s\nkernel generic\nbench %s\nstack\n' "$steps" "$steps" |
  qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -display none -monitor none -serial none \
    -semihosting-config enable=on,target=native \
    -plugin "$plugin,start=$start,stop=$stop" -d plugin -D "$log" -kernel "$elf" 2>/dev/null)
field() { printf '%s\n' "$out" | grep "^ok $1" | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
macs=$(field info macs_per_step)
kernels=$(printf '%s\n' "$out" | grep '^ok kernel ' | awk '{print $3}')
echo "model $1: $(field info dtype) hidden $(field info hidden), $(field info model_bytes) bytes, $macs MACs/step; static RAM $(field info static_ram) B; peak stack $(field stack peak) B"
i=0
for k in $kernels; do
  counts=$(grep '^insncount: region' "$log" | awk '{print $5}' | sed -n "$((i * steps + 1)),$(((i + 1) * steps))p")
  first=$(printf '%s\n' $counts | head -n 1)
  spread=$(printf '%s\n' $counts | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print hi - lo }')
  [ "$spread" = 0 ] || echo "  note: the $steps steps differ by up to $spread instructions (data-dependent branches)"
  awk -v k="$k" -v n="$first" -v m="$macs" \
    'BEGIN { printf "  %-8s %12.0f instructions/step  %.3f instructions/MAC\n", k, n, n / m }'
  i=$((i + 1))
done
