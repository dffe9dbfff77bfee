#!/usr/bin/env bash
# Builds the page: trm-web for wasm32-unknown-unknown (release) and the static files, into
# web/target/site (or $TRM_WEB_OUT). With --serve [PORT], then serves it on http://localhost:PORT
# (default 8000) with python3's static server.
#
#   web/build.sh --serve        # then open http://localhost:8000
set -euo pipefail
cd "$(dirname "$0")"
out="${TRM_WEB_OUT:-target/site}"
if ! rustc --print sysroot >/dev/null 2>&1 \
  || [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]; then
  echo "error: the wasm32-unknown-unknown target is missing: rustup target add wasm32-unknown-unknown" >&2
  exit 1
fi
cargo build --release --target wasm32-unknown-unknown --target-dir target
mkdir -p "$out"
cp static/index.html static/app.js static/worker.js static/style.css "$out/"
cp target/wasm32-unknown-unknown/release/trm_web.wasm "$out/"
echo "built $out ($(wc -c < "$out/trm_web.wasm") bytes of wasm, model included)"
if [ "${1:-}" = "--serve" ]; then
  port="${2:-8000}"
  echo "serving on http://localhost:$port (Ctrl-C to stop)"
  cd "$out" && exec python3 -m http.server "$port" --bind 127.0.0.1
fi
