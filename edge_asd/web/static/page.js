// edge-asd's page: polls the daemon's /api (see edge_asd/web/__init__.py) and draws it.
// Plain script, no library, no build step. Text from the daemon is set with textContent.
"use strict";

const POLL_MS = 1000;       // status, machines, the selected machine's trace
const SPECTRUM_MS = 2000;   // the latest window's spectrogram
const EVENTS_MS = 5000;     // the events list
const TRACE_SECONDS = 600;  // the detail trace's width
const OVERVIEW_SECONDS = 120;  // each card's small trace
const STATE_COLOURS = { normal: "#2e7d32", anomaly: "#c62828", unknown: "#757575",
                        maintenance: "#1565c0" };

let selected = null;   // the machine shown in detail
let trace = [];        // its [time, score, threshold] rows, oldest first
let eventFilter = "";
const cards = new Map();  // machine name -> its card's elements
const sparks = new Map();  // machine name -> its last OVERVIEW_SECONDS of trace rows
let overviewSince = "";    // the newest window the overview has, Unix s

const $ = (id) => document.getElementById(id);

// Every URL the page asks for is made on location.origin: a page opened as
// http://user:password@host/ has the credentials in its own URL, and the browser refuses a
// fetch or a subresource whose URL, resolved against it, would carry them.
const onOrigin = (path) => new URL(path, location.origin).href;

async function getJSON(url) {
  const response = await fetch(onOrigin(url), { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function fmtNumber(value, digits = 3) {
  return value === null || value === undefined ? "–" : Number(value).toPrecision(digits);
}

function fmtDuration(seconds) {
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60;
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function fmtTime(unixSeconds) {
  return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "–";
}

const BADGE_KINDS = [...Object.keys(STATE_COLOURS), "ok", "degraded", "lost"];

function setBadge(element, text, kind) {
  element.textContent = text;
  element.classList.remove(...BADGE_KINDS);
  element.classList.add("badge", kind);
}

// ---- the daemon ----
function showStatus(s) {
  $("device").textContent = `${s.device_id} · ${s.version}`;
  setBadge($("health"), s.health, s.health);
  $("uptime").textContent = fmtDuration(s.uptime_seconds);
  $("engine").textContent = s.engine + (s.engine_fallback_reason
    ? ` (fallback: ${s.engine_fallback_reason})` : "");
  $("outbox").textContent = s.outbox_depth;
  $("skipped").textContent = s.windows_skipped;
  $("p95").textContent = s.inference_ms_p95 === null ? "–" : `${s.inference_ms_p95} ms`;
  $("problems").textContent = s.health_problems.join("; ");
}

// ---- the overview: one card per machine ----
function card(name) {
  if (cards.has(name)) return cards.get(name);
  const root = document.createElement("div");
  root.className = "machine";
  root.dataset.machine = name;
  const title = document.createElement("div");
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name + " ";
  const state = document.createElement("span");
  state.className = "badge state";
  title.append(label, state);
  const numbers = document.createElement("div");
  numbers.className = "numbers";
  const why = document.createElement("div");
  why.className = "why";
  const canvas = document.createElement("canvas");
  canvas.className = "spark";
  canvas.width = 220; canvas.height = 40;
  root.append(title, numbers, why, canvas);
  root.addEventListener("click", () => select(name));
  $("machines").append(root);
  const option = document.createElement("option");
  option.value = name; option.textContent = name;
  $("event-filter").append(option);
  const elements = { root, state, numbers, why, canvas };
  cards.set(name, elements);
  return elements;
}

function showMachines(machines) {
  for (const m of machines) {
    const c = card(m.name);
    c.root.className = `machine ${m.state}${m.name === selected ? " selected" : ""}`;
    setBadge(c.state, m.state, m.state);
    c.numbers.textContent = `score ${fmtNumber(m.score)} / threshold ${fmtNumber(m.threshold)}` +
      (m.level_offset_db === null ? "" : ` · level ${m.level_offset_db.toFixed(1)} dB`);
    c.why.textContent = m.why;
    c.why.title = m.why;
    const rows = appendRows(sparks.get(m.name) || [], m.trace, OVERVIEW_SECONDS);
    sparks.set(m.name, rows);
    if (rows.length) overviewSince = Math.max(overviewSince || 0, rows[rows.length - 1][0]);
    drawTrace(c.canvas, rows, OVERVIEW_SECONDS, false);
  }
  if (selected === null && machines.length) select(machines[0].name);
}

// New trace rows after those kept (a concurrent poll may have taken some), the last
// `seconds` of them kept.
function appendRows(kept, rows, seconds) {
  const last = kept.length ? kept[kept.length - 1][0] : -Infinity;
  const all = kept.concat(rows.filter((r) => r[0] > last));
  const cutoff = (all.length ? all[all.length - 1][0] : 0) - seconds;
  return all.filter((r) => r[0] >= cutoff);
}

// ---- the score trace: score line, threshold dashed, points above it red ----
function drawTrace(canvas, rows, seconds, axes) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  canvas.dataset.points = rows.length;
  canvas.dataset.lastTime = rows.length ? rows[rows.length - 1][0] : "";
  if (!rows.length) return;
  // The x axis spans `seconds`, or less while less is known (at least a minute).
  const end = rows[rows.length - 1][0];
  seconds = Math.min(seconds, Math.max(60, end - rows[0][0]));
  const start = end - seconds;
  const values = rows.flatMap((r) => [r[1], r[2]]).filter((v) => v !== null);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
  const left = axes ? 48 : 2, bottom = axes ? 18 : 2;
  const x = (t) => left + (t - start) / seconds * (w - left - 2);
  const y = (v) => (h - bottom) - (v - lo) / (hi - lo) * (h - bottom - 4);
  if (axes) {
    ctx.fillStyle = "#616161"; ctx.font = "11px sans-serif";
    for (let i = 0; i <= 4; i++) {
      const v = lo + (hi - lo) * i / 4;
      ctx.fillText(v.toPrecision(3), 2, y(v) + 4);
    }
    const step = seconds > 240 ? 120 : seconds > 90 ? 30 : 10;
    for (let ago = 0; ago <= seconds; ago += step) {
      const label = ago === 0 ? "now" : ago % 60 ? `-${ago} s` : `-${ago / 60} min`;
      ctx.fillText(label, Math.max(left, x(end - ago) - 20), h - 4);
    }
  }
  ctx.strokeStyle = "#c62828"; ctx.setLineDash([5, 4]); ctx.lineWidth = 1;
  ctx.beginPath();
  rows.forEach((r, i) => { if (r[2] === null) return;
    i ? ctx.lineTo(x(r[0]), y(r[2])) : ctx.moveTo(x(r[0]), y(r[2])); });
  ctx.stroke(); ctx.setLineDash([]);
  ctx.strokeStyle = "#1565c0"; ctx.lineWidth = 1.5;
  ctx.beginPath();
  let drawing = false;
  for (const r of rows) {
    if (r[1] === null) { drawing = false; continue; }
    drawing ? ctx.lineTo(x(r[0]), y(r[1])) : ctx.moveTo(x(r[0]), y(r[1]));
    drawing = true;
  }
  ctx.stroke();
  ctx.fillStyle = "#c62828";
  for (const r of rows) {
    if (r[1] !== null && r[2] !== null && r[1] > r[2]) ctx.fillRect(x(r[0]) - 1.5, y(r[1]) - 1.5, 3, 3);
  }
}

// ---- one machine in detail ----
function select(name) {
  selected = name;
  trace = [];
  $("detail").hidden = false;
  $("detail-name").textContent = name;
  for (const [other, c] of cards) c.root.classList.toggle("selected", other === name);
  pollDetail().catch(() => {});
  pollSpectrogram();
}

async function pollDetail() {
  if (selected === null) return;
  const name = selected;
  const since = trace.length ? trace[trace.length - 1][0] : "";
  const m = await getJSON(`/api/machines/${encodeURIComponent(name)}?since=${since}`);
  if (name !== selected) return;
  trace = appendRows(trace, m.trace, TRACE_SECONDS);
  setBadge($("detail-state"), m.state, m.state);
  $("detail-why").textContent = m.why;
  drawTrace($("trace"), trace, TRACE_SECONDS, true);
  showLevel(m);
  showCalibration(m.calibration, m.k, m.n);
}

function showLevel(m) {
  const offset = m.level_offset_db;
  $("level").textContent = m.calibration_level_db === null
    ? "the calibration recorded no level"
    : `median of recent windows ${offset === null ? "–" : offset.toFixed(1)} dB from the ` +
      `calibration's level (${m.calibration_level_db.toFixed(1)} dB); latest window ` +
      `${m.latest_level_offset_db === null ? "–" : m.latest_level_offset_db.toFixed(1)} dB`;
  const canvas = $("level-bar"), ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const span = 20, x = (db) => w / 2 + Math.max(-span, Math.min(span, db)) / span * (w / 2 - 4);
  ctx.fillStyle = "#eee"; ctx.fillRect(x(-6), 4, x(6) - x(-6), h - 8);  // ±6 dB: near calibration
  ctx.strokeStyle = "#212121"; ctx.beginPath(); ctx.moveTo(w / 2, 0); ctx.lineTo(w / 2, h); ctx.stroke();
  if (offset !== null) {
    ctx.fillStyle = Math.abs(offset) > 6 ? "#c62828" : "#2e7d32";
    ctx.fillRect(Math.min(w / 2, x(offset)), 8, Math.abs(x(offset) - w / 2) || 2, h - 16);
  }
  ctx.fillStyle = "#616161"; ctx.font = "10px sans-serif";
  ctx.fillText(`-${span} dB`, 2, h - 2); ctx.fillText(`+${span} dB`, w - 36, h - 2);
}

function showCalibration(cal, k, n) {
  $("calibration").textContent = `made ${cal.created_at} · scorer ${cal.scorer} · k-of-n ` +
    `${k} of ${n}` + (cal.expected_false_alarms_per_day === null ? ""
      : ` · expected false alarms ${fmtNumber(cal.expected_false_alarms_per_day, 2)} a day`);
  const body = $("detectability").tBodies[0];
  body.replaceChildren();
  for (const [kind, row] of Object.entries(cal.detectability || {})) {
    const tr = document.createElement("tr");
    const found = row.detected_from_db === null ? "not detected" : `${row.detected_from_db} dB`;
    const cells = row.levels_db.map((lv, i) =>
      `${lv} dB: ${Math.round(row.event_probability[i] * 100)}%`).join(", ");
    for (const text of [kind, kind === "gain" ? "(must not alarm)" : found, cells]) {
      const td = document.createElement("td"); td.textContent = text; tr.append(td);
    }
    body.append(tr);
  }
}

// A magma-like colour map: 0 (quiet) black-purple to 255 (loud) pale yellow.
const MAP = [[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]];

function colour(value) {
  const position = value / 255 * (MAP.length - 1), i = Math.min(MAP.length - 2, Math.floor(position));
  const f = position - i;
  return [0, 1, 2].map((k) => MAP[i][k] + (MAP[i + 1][k] - MAP[i][k]) * f).concat([255]);
}

async function pollSpectrogram() {
  if (selected === null) return;
  let s;
  try {
    s = await getJSON(`/api/machines/${encodeURIComponent(selected)}/spectrogram`);
  } catch (error) { return; }  // no window yet
  const canvas = $("spectrogram"), ctx = canvas.getContext("2d");
  const rows = s.values.length, cols = s.values[0].length;
  const image = ctx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = ((rows - 1 - r) * cols + c) * 4;  // low bands at the bottom
      image.data.set(colour(s.values[r][c]), i);
    }
  }
  const scratch = document.createElement("canvas");
  scratch.width = cols; scratch.height = rows;
  scratch.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  canvas.dataset.time = s.time;
  $("spec-range").textContent = `${s.seconds} s, 0-${s.max_hz / 1000} kHz mel, ` +
    `${s.range_db} dB below ${s.db_max} dB`;
}

// ---- events ----
async function pollEvents() {
  const query = eventFilter ? `?machine=${encodeURIComponent(eventFilter)}` : "";
  const { events } = await getJSON(`/api/events${query}`);
  $("events-empty").hidden = events.length > 0;
  const list = $("events");
  const shown = events.map((e) => `${e.folder}:${e.event.type}:${e.files.join()}`).join("|");
  if (list.dataset.shown === shown) return;  // unchanged: keep players as they are
  list.dataset.shown = shown;
  list.replaceChildren(...events.map(eventCard));
}

function eventCard(e) {
  const p = e.event, root = document.createElement("div");
  root.className = "event";
  root.dataset.machine = e.machine;
  const title = document.createElement("div");
  title.textContent = `${e.machine} · ${p.type === "end" ? "ended" : "open"} · peak ` +
    `${fmtNumber(p.peak_score)} (threshold ${fmtNumber(p.threshold)})`;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `start ${p.started_at || "–"} · end ${p.ended_at || "–"}` +
    (p.reason ? ` · ${p.reason}` : "");
  root.append(title, meta);
  if (e.urls["event.png"]) {
    const img = document.createElement("img");
    img.src = onOrigin(e.urls["event.png"]); img.alt = `spectrogram and score of event ${p.event_id}`;
    img.loading = "lazy";
    root.append(img);
  }
  for (const clip of ["start.flac", "peak.flac"]) {
    if (!e.urls[clip]) continue;
    const label = document.createElement("div");
    label.className = "meta"; label.textContent = clip === "start.flac" ? "start" : "peak";
    const audio = document.createElement("audio");
    audio.controls = true; audio.preload = "none"; audio.src = onOrigin(e.urls[clip]);
    root.append(label, audio);
  }
  return root;
}

// ---- polling ----
function every(ms, task) {
  const run = async () => {
    try {
      await task();
      setBadge($("connection"), "live", "ok");
    } catch (error) {
      setBadge($("connection"), "no answer from the daemon", "lost");
    }
    setTimeout(run, ms);
  };
  run();
}

document.addEventListener("DOMContentLoaded", () => {
  $("event-filter").addEventListener("change", (event) => {
    eventFilter = event.target.value;
    pollEvents().catch(() => {});
  });
  every(POLL_MS, async () => {
    const [status, machines] = await Promise.all([
      getJSON("/api/status"), getJSON(`/api/machines?since=${overviewSince}`)]);
    showStatus(status);
    showMachines(machines.machines);
  });
  every(POLL_MS, pollDetail);
  every(SPECTRUM_MS, pollSpectrogram);
  every(EVENTS_MS, pollEvents);
});
