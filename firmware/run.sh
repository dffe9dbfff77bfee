#!/bin/sh
# Cargo runner: flashes/runs the ELF with the runner of the board it was built for (the board
# name is embedded in the image as `TRM_BOARD=<name>`; the command is in boards/<name>/board.toml).
set -eu
elf="$1"; shift
here=$(dirname "$0")
board=$(grep -a -o 'TRM_BOARD=[a-z0-9-]*;' "$elf" | head -n 1 | sed 's/TRM_BOARD=//; s/;$//')
[ -n "$board" ] || { echo "run.sh: no TRM_BOARD marker in $elf" >&2; exit 2; }
runner=$(sed -n 's/^runner *= *"\(.*\)".*/\1/p' "$here/../boards/$board/board.toml")
[ -n "$runner" ] || { echo "run.sh: no runner in boards/$board/board.toml" >&2; exit 2; }
# shellcheck disable=SC2086
exec $runner "$elf" "$@"
