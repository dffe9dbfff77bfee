// The page: builds the controls from the model's option names, sends solve requests to the
// worker, and draws every supervision step as it arrives.
"use strict";

// Built-in puzzles, easy to hard (kaggle3m_rated_5000.txt, top95.txt and
// forum_hardest_1905_11plus.txt of the public sets; the steps are what the shipped model needs
// with halting "check", or with 8 augmented attempts and selection "check" where a single run
// fails).
const BUILTIN = [
  ["easy (solved in 1 step)", "8.....2...4...7..8..7.5.....7.9.316.6.3..1........6..5...47...3...1..6...8.3....2"],
  ["medium (2 steps)", "9.6.5..2......37.4....2............1....41.7..482......8..193....3...5..694..8..."],
  ["hard, kaggle3m Expert (18 steps with 8 attempts)", ".37..9...4...5.36.....8....3..4.1..28...2.........3..9254..6.........2........5.1"],
  ["very hard, top95 (9 steps)", "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"],
  ["forum hardest: beyond this model, even with 8 attempts", "98.7..6..5...8......7..4.8.4....32....14...3.....1...6.5...91....9.4..7....3....2"],
];

const $ = (id) => document.getElementById(id);
const cells = [];
const result = $("result");
const timings = { pageStart: performance.timeOrigin, readyMs: null, firstAnswerMs: null };
window.trmTimings = timings;

let info = null;
let wasmBytes = 0;
let current = null; // the request being solved
let previous = null; // the grid of the previous step of the same attempt
let stepTimes = [];

for (let i = 0; i < 81; i++) {
  const d = document.createElement("div");
  $("board").appendChild(d);
  cells.push(d);
}

for (const [label, p] of BUILTIN) {
  const o = document.createElement("option");
  o.value = p;
  o.textContent = label;
  $("builtin").appendChild(o);
}
const own = document.createElement("option");
own.value = "";
own.textContent = "(your puzzle)";
$("builtin").appendChild(own);
$("builtin").addEventListener("change", () => {
  if (!$("builtin").value) return;
  $("puzzle").value = $("builtin").value;
  showPuzzle();
});
$("puzzle").value = BUILTIN[0][1];
$("puzzle").addEventListener("input", () => {
  const text = $("puzzle").value.trim();
  $("builtin").value = BUILTIN.some(([, p]) => p === text) ? text : "";
  showPuzzle();
});
$("tts").addEventListener("change", syncTts);

function fill(select, names, chosen) {
  for (const n of names) {
    const o = document.createElement("option");
    o.value = n;
    o.textContent = n;
    select.appendChild(o);
  }
  select.value = chosen;
}

function syncTts() {
  const on = $("tts").checked;
  for (const id of ["attempts", "source", "select", "seed"]) $(id).disabled = !on;
  // With attempts the halting policy is full (as trm-solve --attempts).
  $("policy").disabled = on;
  if (on) $("policy").value = "full";
}

// The givens of the text as 81 digits (0 blank), or null when it is not 81 cells.
function givens(text) {
  const digits = [];
  const layout = text.includes("\n");
  for (const ch of text) {
    if (ch >= "1" && ch <= "9") digits.push(Number(ch));
    else if (ch === "." || ch === "0") digits.push(0);
    else if (/\s/.test(ch) || (layout && "|+-".includes(ch))) continue;
    else return null;
  }
  return digits.length === 81 ? digits : null;
}

function draw(grid, puzzle, changed) {
  for (let i = 0; i < 81; i++) {
    const v = grid[i];
    cells[i].textContent = v === "." || v === 0 || v === "0" ? "" : String(v);
    cells[i].className = puzzle[i] ? "given" : changed.has(i) ? "changed" : "";
  }
}

function showPuzzle() {
  const g = givens($("puzzle").value);
  $("board").classList.remove("valid");
  if (g) draw(g, g, new Set());
}

function setState(state, text) {
  result.dataset.state = state;
  if (text !== undefined) result.textContent = text;
}

$("solve").addEventListener("click", () => {
  if (!info || result.dataset.state === "running") return;
  const tts = $("tts").checked;
  const req = {
    puzzle: $("puzzle").value,
    budget: Number($("budget").value),
    policy: info.policies.indexOf($("policy").value),
    attempts: tts ? Number($("attempts").value) : 0,
    source: info.sources.indexOf($("source").value),
    select: info.selections.indexOf($("select").value),
    seed: Number($("seed").value),
  };
  const g = givens(req.puzzle);
  if (!g) {
    $("message").textContent = "the puzzle needs 81 cells: digits, and . or 0 for blanks";
    return;
  }
  $("message").textContent = "";
  current = { ...req, givens: g, options: tts
    ? `${req.attempts} attempts, ${$("source").value}, select ${$("select").value}, seed ${req.seed}, budget ${req.budget}`
    : `budget ${req.budget}, halt ${$("policy").value}` };
  previous = null;
  stepTimes = [];
  $("board").classList.remove("valid");
  $("solve").disabled = true;
  $("answer").textContent = "";
  setState("running", "");
  worker.postMessage(req);
});

function onStep(s, ms) {
  const grid = s.grid.split("");
  if (s.step === 1) previous = current.givens.map((v) => (v ? String(v) : "."));
  const changed = new Set();
  grid.forEach((v, i) => { if (previous[i] !== v) changed.add(i); });
  previous = grid;
  stepTimes.push(ms);
  draw(grid, current.givens, changed);
  $("step").textContent = current.attempts
    ? `${s.total_steps} (attempt ${s.attempt}, ${s.kind}: step ${s.step})`
    : String(s.step);
  const p = 1 / (1 + Math.exp(-s.q_halt));
  $("qhalt").textContent = `${s.q_halt.toFixed(3)} (p = ${p.toFixed(3)})`;
  $("check").innerHTML = s.valid ? '<span class="ok">passes</span>' : '<span class="no">fails</span>';
  $("board").classList.toggle("valid", s.valid);
}

function onDone(a, ms) {
  if (timings.firstAnswerMs === null) timings.firstAnswerMs = performance.now();
  draw(a.answer.split(""), current.givens, new Set());
  $("board").classList.toggle("valid", a.valid);
  $("check").innerHTML = a.valid ? '<span class="ok">passes</span>' : '<span class="no">fails</span>';
  const pick = a.pick ? `, picked by ${a.pick}${a.attempt === null ? "" : ` (attempt ${a.attempt})`}` : "";
  const perStep = ms / Math.max(1, a.steps);
  $("answer").textContent = `answer ${a.answer}: ${a.steps} steps, stop ${a.stop}${pick}`;
  $("timing").textContent =
    `${ms.toFixed(0)} ms, ${perStep.toFixed(1)} ms per step (${info.kernels} kernels, wasm + model ${(wasmBytes / 1024).toFixed(0)} KiB)`;
  const row = document.createElement("tr");
  for (const [text, cls] of [
    [current.puzzle.replace(/\s/g, ""), "grid"], [current.options, ""], [a.answer, "grid"],
    [String(a.steps), ""], [a.stop, ""], [a.valid ? "passes" : "fails", a.valid ? "ok" : "no"],
    [perStep.toFixed(1), ""],
  ]) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  $("history").tBodies[0].appendChild(row);
  setState("done", JSON.stringify({ ...a, ms, stepMs: stepTimes }));
  $("solve").disabled = false;
}

const worker = new Worker("worker.js");
worker.onmessage = (e) => {
  const m = e.data;
  if (m.type === "ready") {
    info = m.info;
    wasmBytes = m.wasmBytes;
    timings.readyMs = performance.now();
    timings.wasmLoadMs = m.loadMs;
    fill($("policy"), info.policies, "check");
    fill($("source"), info.sources, "aug");
    fill($("select"), info.selections, "check");
    $("budget").value = info.budget;
    syncTts();
    $("solve").disabled = false;
    $("timing").textContent = `model loaded: wasm + model ${(wasmBytes / 1024).toFixed(0)} KiB in ${m.loadMs.toFixed(0)} ms`;
    setState("ready");
  } else if (m.type === "step") {
    onStep(m.step, m.ms);
  } else if (m.type === "done") {
    onDone(m.answer, m.ms);
  } else if (m.type === "error") {
    $("message").textContent = m.message;
    $("solve").disabled = !info;
    setState("error", m.message);
  }
};

showPuzzle();
