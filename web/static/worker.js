// Runs the model off the page's thread: loads trm_web.wasm, solves on request, and posts every
// supervision step as it happens ({type: "step"}), then the answer ({type: "done"}).
"use strict";

let wasm = null;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function io() {
  return new Uint8Array(wasm.exports.memory.buffer, wasm.exports.trm_io(), wasm.exports.trm_io_len());
}

function read(len) {
  return decoder.decode(io().slice(0, Math.abs(len)));
}

let solveStart = 0;
let lastStep = 0;

const imports = {
  env: {
    trm_on_step(len) {
      const now = performance.now();
      postMessage({ type: "step", step: JSON.parse(read(len)), ms: now - lastStep });
      lastStep = now;
    },
  },
};

async function load() {
  const t0 = performance.now();
  const bytes = await (await fetch("trm_web.wasm")).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  wasm = instance;
  const len = wasm.exports.trm_info();
  if (len < 0) {
    postMessage({ type: "error", message: read(len) });
    return;
  }
  postMessage({
    type: "ready",
    info: JSON.parse(read(len)),
    wasmBytes: bytes.byteLength,
    loadMs: performance.now() - t0,
  });
}

onmessage = (e) => {
  const r = e.data;
  const text = encoder.encode(r.puzzle);
  if (text.length > wasm.exports.trm_io_len()) {
    postMessage({ type: "error", message: "the puzzle text is too long" });
    return;
  }
  io().set(text);
  solveStart = performance.now();
  lastStep = solveStart;
  const len = wasm.exports.trm_solve(
    text.length, r.budget, r.policy, r.attempts, r.source, r.select, r.seed);
  const ms = performance.now() - solveStart;
  if (len < 0) {
    postMessage({ type: "error", message: read(len) });
  } else {
    postMessage({ type: "done", answer: JSON.parse(read(len)), ms });
  }
};

load().catch((err) => postMessage({ type: "error", message: String(err) }));
