"""The playground's page: HTML, and the script that draws what the server trains (it never trains itself).

The script asks ``/api/state`` for the latest snapshot as soon as it has
drawn the previous one, draws the decision surface on a canvas with the
train (filled) and test (ringed) points, the loss curves, the doctor's last
per-layer sample and its findings, each with a button that applies its
remedy. The knobs live in the URL's fragment, so a link is the experiment.
Text from the server is set with ``textContent``, never parsed as HTML.
"""

from __future__ import annotations

__all__ = ["PAGE", "SCRIPT"]

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>trainwell playground</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:.5em 1em;background:#263238;color:#fff;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
header button{font-size:1em;padding:.2em .8em} main{display:flex;gap:1em;padding:1em;flex-wrap:wrap}
#knobs{width:17em;font-size:90%} #knobs label{display:block;margin:.25em 0} #knobs input,#knobs select{width:100%}
fieldset{border:1px solid #ccc;margin:0 0 .6em 0} canvas{background:#fff;border:1px solid #ccc}
#right{flex:1;min-width:22em} .finding{border-left:4px solid #999;padding:.2em .6em;margin:.4em 0;background:#fff}
.finding.error{border-color:#c0392b}.finding.warning{border-color:#e67e22}.finding.info{border-color:#2980b9}
table{border-collapse:collapse;font-size:85%} td,th{padding:.1em .5em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left} #error{color:#b00;font-weight:bold} .muted{color:#777}
</style></head><body>
<header><b>trainwell playground</b>
<button id="play">play</button><button id="pause">pause</button><button id="step">step</button>
<button id="reset">reset</button>
<select id="preset"><option value="">presets...</option></select>
<a id="export" href="/api/export" download="config.yaml" style="color:#fff">export config.yaml</a>
<span id="status" class="muted"></span></header>
<main>
<form id="knobs"><fieldset><legend>your data</legend>
<input type="file" id="upload" accept=".csv,text/csv"><button type="button" id="clear">embedded set</button>
</fieldset></form>
<div><canvas id="surface" width="420" height="420"></canvas>
<p id="claim" class="muted" style="max-width:420px"></p><p id="error"></p></div>
<div id="right"><canvas id="curves" width="460" height="200"></canvas>
<h3>Per layer (the doctor's last sample)</h3><table id="layers"></table>
<h3>The doctor</h3><div id="findings" class="muted">nothing found</div></div>
</main><script src="/play.js"></script></body></html>
"""

SCRIPT = r"""(() => {
const $ = (id) => document.getElementById(id);
const COLORS = [[31,119,180],[214,39,40],[44,160,44],[255,127,14],[148,103,189],[140,86,75]];
let knobs = {}, schema = [], presets = [], points = null, pointsGen = -1, last = null;

async function api(path, body) {
  const r = await fetch(path, body === undefined ? {cache: "no-store"} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const text = await r.text();
  let data = {};
  try { data = JSON.parse(text); } catch (e) { data = {error: text}; }
  if (!r.ok) throw new Error(data.error || r.status);
  return data;
}
function say(err) { $("error").textContent = err ? String(err.message || err) : ""; }

function fromHash() {
  const out = {};
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) {
    const knob = schema.find((s) => s.key === k);
    if (!knob) continue;
    out[k] = knob.kind === "choice" ? v : (v === "" ? null : Number(v));
  }
  return out;
}
function toHash() { history.replaceState(null, "", "#" + new URLSearchParams(
  Object.entries(knobs).filter(([, v]) => v !== null && v !== undefined)).toString()); }

function drawKnobs(defaults) {
  const form = $("knobs");
  form.querySelectorAll("fieldset.k").forEach((f) => f.remove());
  const groups = {};
  for (const knob of schema) {
    if (!groups[knob.group]) {
      const fs = document.createElement("fieldset"); fs.className = "k";
      const lg = document.createElement("legend"); lg.textContent = knob.group; fs.appendChild(lg);
      form.appendChild(fs); groups[knob.group] = fs;
    }
    const label = document.createElement("label"); label.textContent = knob.key + " ";
    let input;
    if (knob.kind === "choice") {
      input = document.createElement("select");
      for (const c of knob.choices) { const o = document.createElement("option"); o.value = c; o.textContent = c; input.appendChild(o); }
    } else {
      input = document.createElement("input"); input.type = "number";
      if (knob.min !== undefined) input.min = knob.min; if (knob.max !== undefined) input.max = knob.max;
      input.step = knob.kind === "int" ? 1 : (knob.step || "any");
      if (knob.optional) input.placeholder = "default";
    }
    const value = knob.key in knobs ? knobs[knob.key] : defaults[knob.key];
    input.value = value === null || value === undefined ? "" : value;
    input.dataset.key = knob.key;
    input.addEventListener("change", () => {
      const v = input.value;
      if (knob.kind === "choice") knobs[knob.key] = v;
      else knobs[knob.key] = v === "" ? null : Number(v);
      configure();
    });
    label.appendChild(input);
    label.style.display = (!knob.when || Object.entries(knob.when).every(([k, v]) =>
      (k in knobs ? knobs[k] : defaults[k]) === v)) ? "block" : "none";
    groups[knob.group].appendChild(label);
  }
}

async function configure() {
  const sent = Object.fromEntries(Object.entries(knobs).filter(([k, v]) => {
    const knob = schema.find((s) => s.key === k);
    return knob && (!knob.when || Object.entries(knob.when).every(([kk, vv]) => knobs[kk] === vv));
  }));
  toHash();
  try { await api("/api/config", {knobs: sent}); say(null); } catch (e) { say(e); }
  drawKnobs(window.defaults);
}

function drawSurface(snap) {
  const c = $("surface"), g = c.getContext("2d"), W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  const s = snap.surface;
  if (s) {
    const img = g.createImageData(s.n, s.n);
    for (let i = 0; i < s.n * s.n; i++) {
      const col = COLORS[s["class"][i] % COLORS.length], a = s.p[i];
      for (let k = 0; k < 3; k++) img.data[4 * i + k] = Math.round(255 - (255 - col[k]) * 0.55 * a);
      img.data[4 * i + 3] = 255;
    }
    const off = document.createElement("canvas"); off.width = s.n; off.height = s.n;
    off.getContext("2d").putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true; g.drawImage(off, 0, 0, W, H);
  }
  if (!points) return;
  const [x0, x1, y0, y1] = points.range;
  const px = (x) => (x - x0) / (x1 - x0) * W, py = (y) => (y1 - y) / (y1 - y0) * H;
  for (const [name, ring] of [["train", false], ["test", true]]) {
    for (const [x, y, k] of points[name]) {
      const col = COLORS[k % COLORS.length];
      g.beginPath(); g.arc(px(x), py(y), 3.2, 0, 2 * Math.PI);
      if (ring) { g.strokeStyle = `rgb(${col})`; g.lineWidth = 1.5; g.stroke(); }
      else { g.fillStyle = `rgb(${col})`; g.fill(); g.strokeStyle = "#fff"; g.lineWidth = 0.5; g.stroke(); }
    }
  }
}

function drawCurves(snap) {
  const c = $("curves"), g = c.getContext("2d"), W = c.width, H = c.height, h = snap.history || {};
  g.clearRect(0, 0, W, H); g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
  const series = [["train_loss", "#1f77b4"], ["val_loss", "#d62728"], ["test_loss", "#2ca02c"]];
  const vals = series.flatMap(([k]) => (h[k] || []).filter((v) => typeof v === "number"));
  g.fillStyle = "#222"; g.font = "12px sans-serif";
  g.fillText("loss by epoch: train (blue), validation (red), test (green)", 8, 14);
  if (!vals.length) return;
  const lo = Math.min(...vals), hi = Math.max(...vals), n = (h.epoch || []).length;
  const ex = (i) => 30 + i / Math.max(1, n - 1) * (W - 40), ey = (v) => H - 20 - (v - lo) / Math.max(1e-12, hi - lo) * (H - 45);
  for (const [k, col] of series) {
    const ys = h[k] || []; g.beginPath(); g.strokeStyle = col; let pen = false;
    ys.forEach((v, i) => { if (typeof v !== "number") { pen = false; return; }
      if (pen) g.lineTo(ex(i), ey(v)); else { g.moveTo(ex(i), ey(v)); pen = true; } });
    g.stroke();
  }
  g.fillStyle = "#555"; g.fillText(hi.toPrecision(3), 2, 30); g.fillText(lo.toPrecision(3), 2, H - 22);
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
function fmt(v) { return typeof v === "number" ? (Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1)) : (v == null ? "-" : String(v)); }

const hists = {};
function histogram(counts) {  // the input's distribution over 40 bins, -4 to 4 (the doctor's histogram)
  const c = document.createElement("canvas"); c.width = 80; c.height = 18; c.className = "hist";
  if (!counts) return c;
  const g = c.getContext("2d"), top = Math.max(1, ...counts);
  g.fillStyle = "#5b8fd0";
  counts.forEach((v, i) => { const h = Math.round(v / top * 18); g.fillRect(i * 2, 18 - h, 2, h); });
  g.fillStyle = "#c0392b"; g.fillRect(40, 0, 1, 18);  // 0: below it a ReLU is dead
  return c;
}

function drawLayers(snap) {
  const t = $("layers"); t.textContent = "";
  const s = snap.layers;
  if (!s) { t.textContent = "no sample yet"; return; }
  const head = document.createElement("tr");
  for (const h of ["activation", "kind", "input -4 to 4", "input std", "dead", "saturated", "state grad"]) { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); }
  t.appendChild(head);
  for (const [name, a] of Object.entries(s.activations || {})) {
    if (a.hist) hists[name] = a.hist;  // every 5th sample has one: the last is kept
    const r = document.createElement("tr");
    cell(r, name); cell(r, a.kind);
    const td = document.createElement("td"); td.appendChild(histogram(hists[name])); r.appendChild(td);
    [fmt(a.pre_std), fmt(a.dead_batch), fmt(a.saturated), fmt(a.state_grad)].forEach((v) => cell(r, v));
    t.appendChild(r);
  }
  const head2 = document.createElement("tr");
  for (const h of ["layer", "", "", "grad RMS", "|dw|/|w|", "", ""]) { const th = document.createElement("th"); th.textContent = h; head2.appendChild(th); }
  t.appendChild(head2);
  for (const [name, l] of Object.entries(s.layers || {})) {
    const r = document.createElement("tr");
    [name, "", "", fmt(l.grad_rms), fmt(l.update), "", ""].forEach((v) => cell(r, v));
    t.appendChild(r);
  }
}

function drawFindings(snap) {
  const box = $("findings"); box.textContent = "";
  const list = snap.findings || [];
  if (!list.length) { box.textContent = "nothing found"; box.className = "muted"; return; }
  box.className = "";
  list.forEach((f, i) => {
    const d = document.createElement("div"); d.className = "finding " + f.severity;
    const p = document.createElement("p"); p.textContent = f.text; d.appendChild(p);
    if (f.repairable) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = "apply the remedy";
      b.className = "apply"; b.addEventListener("click", async () => {
        try { const r = await api("/api/apply", {index: i}); knobs = r.knobs; toHash(); drawKnobs(window.defaults); say(null); }
        catch (e) { say(e); } });
      d.appendChild(b);
    }
    box.appendChild(d);
  });
}

async function loop() {
  try {
    const snap = await api("/api/state");
    if (snap.generation !== undefined && snap.generation !== pointsGen) {
      points = await api("/api/points"); pointsGen = points.generation;
      for (const k in hists) delete hists[k];  // a new run: the last one's distributions are not its
    }
    if (!last || snap.generation !== last.generation || snap.step !== last.step || snap.state !== last.state ||
        (snap.findings || []).length !== (last.findings || []).length) {
      drawSurface(snap); drawCurves(snap); drawLayers(snap); drawFindings(snap);
      window.drawn = (window.drawn || 0) + 1;
    }
    $("status").textContent = `${snap.state} · epoch ${snap.epoch ?? 0} of ${snap.planned_epochs ?? "?"} · step ${snap.step ?? 0}`;
    if (snap.error) say(snap.error);
    last = snap;
  } catch (e) { $("status").textContent = "the server does not answer: " + e.message; }
  setTimeout(loop, 30);
}

async function start() {
  const k = await api("/api/knobs");
  schema = k.knobs; presets = k.presets; window.defaults = k.defaults;
  presets.forEach((p, i) => { const o = document.createElement("option"); o.value = i; o.textContent = p.name; $("preset").appendChild(o); });
  knobs = fromHash();
  drawKnobs(window.defaults);
  if (Object.keys(knobs).length) await configure();
  for (const a of ["play", "pause", "step", "reset"]) $(a).addEventListener("click", () => api("/api/control", {action: a}).catch(say));
  $("preset").addEventListener("change", async (e) => {
    const p = presets[Number(e.target.value)]; if (!p) return;
    knobs = {...p.knobs}; $("claim").textContent = p.claim + " ";
    const link = document.createElement("a"); link.id = "lab-link"; link.target = "_blank";
    link.href = "/lab/" + encodeURIComponent(p.lab); link.textContent = "lab: " + p.lab; $("claim").appendChild(link);
    await configure();
  });
  $("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0]; if (!file) return;
    try { await api("/api/upload", {csv: await file.text(), knobs}); say(null); } catch (err) { say(err); }
  });
  $("clear").addEventListener("click", () => api("/api/clear-upload", {knobs}).then(() => say(null)).catch(say));
  loop();
}
start();
})();
"""
