// spikeline view: dashboard, stream view (unit table, drift, motion, traces), unit view, manual curation.
"use strict";

const state = {cache: new Map(), curation: null, curationKey: null, selected: new Set(), sort: {col: "unit_id", dir: 1}, filter: ""};
const app = () => document.getElementById("app");
const token = new URLSearchParams(location.search).get("token");

function esc(v) { return String(v ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }
function el(html) { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstElementChild; }
function setStatus(text, isError) { const s = document.getElementById("status"); s.textContent = text; s.className = isError ? "error" : ""; }
function fmt(v) { return v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v); }

async function api(path, params, options) {
  const url = path + "?" + new URLSearchParams(params || {}).toString();
  const headers = token ? {"X-Spikeline-Token": token} : {};
  const response = await fetch(url, {...(options || {}), headers: {...headers, ...((options || {}).headers || {})}});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
async function cached(path, params) {
  const key = path + JSON.stringify(params);
  if (!state.cache.has(key)) state.cache.set(key, api(path, params).catch(e => { state.cache.delete(key); throw e; }));
  return state.cache.get(key);
}

function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  const view = {"/": dashboard, "/stream": streamView, "/units": unitView}[path] || dashboard;
  view(params).catch(e => { app().innerHTML = `<p class="error">${esc(e.message)}</p>`; setStatus(e.message, true); });
}
window.addEventListener("hashchange", route);
window.addEventListener("load", route);
const link = (path, params) => "#" + path + "?" + new URLSearchParams(params).toString();

function crumbs(params) {
  const c = document.getElementById("crumbs");
  c.innerHTML = params && params.stream ? `<a href="${link("/stream", {session: params.session, stream: params.stream})}">${esc(params.stream)}</a>` : "";
}

// ---------------------------------------------------------------- dashboard
async function dashboard() {
  crumbs(null);
  const data = await api("/api/dashboard");
  const out = el(`<div id="dashboard"><h2>Results in ${esc(data.results_dir)}</h2></div>`);
  for (const s of data.sessions) {
    out.append(el(`<h3>Session ${esc(s.name)} <span class="muted">(${esc(s.session)})</span></h3>`));
    const table = el(`<table class="dashboard"><thead><tr><th>stream</th><th>status</th><th>steps (duration)</th><th>probe</th>
      <th>channels</th><th>duration (s)</th><th>units</th><th>pass default_qc</th><th>SUA / MUA / noise</th><th>reason</th></tr></thead><tbody></tbody></table>`);
    for (const st of s.streams) {
      const types = st.num_units_per_type || {};
      const steps = st.steps.map(x => `<span class="${x.status}" title="${esc(x.reason || "")}">${esc(x.name)} ${x.duration_s == null ? "" : x.duration_s.toFixed(1) + "s"}</span>`).join(" · ");
      const name = st.viewable ? `<a href="${link("/stream", {session: s.session, stream: st.stream})}">${esc(st.stream)}</a>` : esc(st.stream);
      table.tBodies[0].append(el(`<tr data-stream="${esc(st.stream)}"><td>${name}</td><td class="${st.status}">${esc(st.status)}</td><td>${steps}</td>
        <td>${esc(st.probe || "–")}</td><td>${fmt(st.num_channels)}</td><td>${fmt(st.duration_s)}</td><td>${fmt(st.num_units)}</td>
        <td>${fmt(st.num_units_passing_qc)}</td><td>${fmt(types.SUA || 0)} / ${fmt(types.MUA || 0)} / ${fmt(types.noise || 0)}</td>
        <td class="reason">${esc(st.reason || "")}</td></tr>`));
    }
    out.append(table);
    for (const p of s.problems || []) out.append(el(`<p class="reason">unusable input: ${esc(p.error || JSON.stringify(p))}</p>`));
  }
  app().replaceChildren(out);
  setStatus(`${data.sessions.length} session(s)`);
}

// ---------------------------------------------------------------- curation state
async function loadCuration(params) {
  const key = params.session + "/" + params.stream;
  if (state.curationKey !== key) {
    const st = await api("/api/curation", {session: params.session, stream: params.stream});
    state.curation = st; state.curationKey = key; state.selected = new Set();
  }
  return state.curation;
}
function manualLabels(doc, unit) {
  const item = doc.manual_labels.find(m => String(m.unit_id) === String(unit));
  return item ? item.labels : {};
}
function mergeGroupOf(doc, unit) { return doc.merges.findIndex(m => m.unit_ids.map(String).includes(String(unit))); }
function plainId(doc, text) { return doc.unit_ids.find(u => String(u) === String(text)); }

async function saveCuration(params, change, what) {
  const doc = JSON.parse(JSON.stringify(state.curation.curation));
  change(doc);
  try {
    state.curation = await api("/api/curation", {session: params.session, stream: params.stream, ...(what ? {change: what} : {})},
      {method: "POST", body: JSON.stringify(doc), headers: {"Content-Type": "application/json"}});
    setStatus(`saved (${state.curation.num_history_states} change(s) in history)`);
  } catch (e) { setStatus(e.message, true); }
  route();
}
function setLabel(params, unit, name, value, exclusive) {
  return saveCuration(params, doc => {
    const id = plainId(doc, unit);
    let item = doc.manual_labels.find(m => String(m.unit_id) === String(unit));
    if (!item) { item = {unit_id: id, labels: {}}; doc.manual_labels.push(item); }
    const options = doc.label_definitions[name].label_options;
    if (value && !options.includes(value)) options.push(value);
    const current = item.labels[name] || [];
    item.labels[name] = exclusive ? (value ? [value] : []) : (current.includes(value) ? current.filter(v => v !== value) : current.concat([value]));
    if (!item.labels[name].length) delete item.labels[name];
    if (!Object.keys(item.labels).length) doc.manual_labels = doc.manual_labels.filter(m => m !== item);
  }, `unit ${unit}: ${name} ${value || "cleared"}`);
}
function toggleRemoved(params, unit) {
  return saveCuration(params, doc => {
    const id = plainId(doc, unit);
    if (doc.removed.map(String).includes(String(unit))) doc.removed = doc.removed.filter(u => String(u) !== String(unit));
    else { doc.removed.push(id); doc.merges = doc.merges.map(m => ({...m, unit_ids: m.unit_ids.filter(u => String(u) !== String(unit))})).filter(m => m.unit_ids.length > 1); doc.splits = (doc.splits || []).filter(s => String(s.unit_id) !== String(unit)); }
  }, `unit ${unit}: remove/restore`);
}
function mergeUnits(params, units) {
  return saveCuration(params, doc => {
    const ids = units.map(u => plainId(doc, u));
    const groups = doc.merges.filter(m => m.unit_ids.some(u => units.map(String).includes(String(u))));
    const all = new Set(ids.map(String));
    groups.forEach(g => g.unit_ids.forEach(u => all.add(String(u))));
    doc.merges = doc.merges.filter(m => !groups.includes(m));
    doc.merges.push({unit_ids: [...all].map(t => plainId(doc, t)), new_unit_id: null});
    doc.removed = doc.removed.filter(u => !all.has(String(u)));
    doc.splits = (doc.splits || []).filter(s => !all.has(String(s.unit_id)));
  }, `merge units ${units.join(", ")}`);
}
function unmerge(params, unit) {
  return saveCuration(params, doc => { doc.merges = doc.merges.filter(m => !m.unit_ids.map(String).includes(String(unit))); }, `unmerge unit ${unit}`);
}
function isSplit(doc, unit) { return (doc.splits || []).some(s => String(s.unit_id) === String(unit)); }
function unsplit(params, unit) {
  return saveCuration(params, doc => { doc.splits = (doc.splits || []).filter(s => String(s.unit_id) !== String(unit)); }, `unsplit unit ${unit}`);
}
async function splitAt(params, unit, atS) {
  try {
    state.curation = await api("/api/curation/split", {session: params.session, stream: params.stream, unit, at_s: atS}, {method: "POST"});
    setStatus(`unit ${unit} split at ${atS} s`);
  } catch (e) { setStatus(e.message, true); }
  route();
}
function lastChange(st) {
  const h = (st.history || [])[st.history.length - 1];
  return h ? ` · last change by ${esc(h.curator || "?")} at ${esc(h.saved_at || "?")}${h.change ? " (" + esc(h.change) + ")" : ""}` : "";
}
function appliedText(a) {
  return a ? `last applied ${a.written_at}${a.applied_by ? " by " + a.applied_by : ""}: ${a.num_units_out} units${a.nwb ? ", NWB " + a.nwb.path : ""}` : "";
}

function curationBar(params) {
  const st = state.curation;
  const bar = el(`<div class="toolbar" id="curation-bar"><b>Manual curation</b>
    <span class="muted">${st.saved ? "saved in curated/" + esc(params.stream) + "/manual_curation.json" : "nothing changed yet"}; ${st.num_history_states} change(s) in history${lastChange(st)} · curator: <b id="curator">${esc(st.curator || "")}</b></span>
    <button id="undo">Undo</button><a id="download" href="/api/curation/download?${new URLSearchParams({session: params.session, stream: params.stream, ...(token ? {token} : {})})}" download>Download JSON</a>
    <button id="apply">Apply (write curated/${esc(params.stream)}/manual)</button>
    <span id="applied" class="muted">${esc(appliedText(st.applied))}</span></div>`);
  bar.querySelector("#undo").onclick = async () => {
    try { state.curation = await api("/api/curation/undo", {session: params.session, stream: params.stream}, {method: "POST"}); setStatus("undone"); }
    catch (e) { setStatus(e.message, true); }
    route();
  };
  bar.querySelector("#apply").onclick = async () => {
    setStatus("applying…");
    try {
      const record = await api("/api/apply", {session: params.session, stream: params.stream}, {method: "POST"});
      state.curation.applied = record;
      setStatus(`applied: ${record.num_units_in} → ${record.num_units_out} units in ${record.duration_s} s`);
      bar.querySelector("#applied").textContent = appliedText(record);
    } catch (e) { setStatus(e.message, true); }
  };
  return bar;
}

// ---------------------------------------------------------------- stream view
const FIRST_COLUMNS = ["unit_id", "label", "tags", "removed", "merge", "default_qc", "decoder_label", "decoder_probability", "bombcell_label"];

function tableRows(table, doc) {
  const cols = table.columns;
  return table.rows.map(row => {
    const r = Object.fromEntries(cols.map((c, i) => [c, row[i]]));
    const labels = manualLabels(doc, r.unit_id);
    r.label = (labels.quality || [])[0] || "";
    r.tags = (labels.tags || []).join(" ");
    r.removed = doc.removed.map(String).includes(String(r.unit_id));
    const g = mergeGroupOf(doc, r.unit_id);
    r.merge = g < 0 ? "" : "m" + (g + 1);
    return r;
  });
}

// Filter: clauses joined by "and"/"&&": `metric > 5`, `label == SUA`, `bombcell_label ~ mu`; plain words search text columns.
function parseFilter(text) {
  return text.split(/\s+(?:and|&&)\s+/i).map(s => s.trim()).filter(Boolean).map(clause => {
    const m = clause.match(/^([\w.]+)\s*(>=|<=|==|!=|>|<|~)\s*(.+)$/);
    if (!m) return r => Object.values(r).some(v => typeof v === "string" && v.toLowerCase().includes(clause.toLowerCase()));
    const [, col, op, raw] = m, num = Number(raw);
    return r => {
      const v = r[col];
      if (op === "~") return String(v).toLowerCase().includes(raw.toLowerCase());
      const a = typeof v === "boolean" ? String(v) : v, b = isNaN(num) || typeof v !== "number" ? raw : num;
      if (a === null || a === undefined) return false;
      return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b, "==": String(a) === String(b), "!=": String(a) !== String(b)}[op];
    };
  });
}

function renderTable(params, table) {
  const doc = state.curation.curation;
  const cols = FIRST_COLUMNS.concat(table.columns.filter(c => !FIRST_COLUMNS.includes(c)));
  let rows = tableRows(table, doc);
  let tests = [];
  try { tests = parseFilter(state.filter); } catch (e) { tests = []; }
  rows = rows.filter(r => tests.every(t => t(r)));
  const {col, dir} = state.sort;
  rows.sort((a, b) => {
    const x = a[col], y = b[col];
    if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
    const nx = Number(x), ny = Number(y);
    return (!isNaN(nx) && !isNaN(ny) && x !== "" && y !== "" ? nx - ny : String(x).localeCompare(String(y))) * dir;
  });
  const head = "<tr><th></th>" + cols.map(c => `<th data-col="${esc(c)}">${esc(c)}${c === col ? (dir > 0 ? " ▲" : " ▼") : ""}</th>`).join("") + "</tr>";
  const body = rows.map(r => `<tr data-unit="${esc(r.unit_id)}" class="${r.removed ? "removed" : ""}"><td><input type="checkbox" ${state.selected.has(String(r.unit_id)) ? "checked" : ""}></td>` +
    cols.map(c => {
      const v = r[c];
      if (c === "label") return `<td class="label-${esc(v)}">${esc(v)}</td>`;
      if (c === "default_qc") return `<td class="${v ? "pass" : "fail"}">${v ? "pass" : "fail"}</td>`;
      if (c === "unit_id") return `<td><a href="${link("/units", {...params, ids: r.unit_id})}">${esc(v)}</a></td>`;
      return `<td>${esc(fmt(v))}</td>`;
    }).join("") + "</tr>").join("");
  const wrap = document.getElementById("table-wrap");
  wrap.innerHTML = `<table id="unit-table"><thead>${head}</thead><tbody>${body}</tbody></table>`;
  document.getElementById("count").textContent = `${rows.length} of ${table.rows.length} units shown; ${state.selected.size} selected`;
  wrap.querySelector("thead").onclick = e => {
    const c = e.target.closest("th") && e.target.closest("th").dataset.col;
    if (!c) return;
    state.sort = {col: c, dir: state.sort.col === c ? -state.sort.dir : 1};
    renderTable(params, table);
  };
  wrap.querySelector("tbody").onchange = e => {
    const unit = e.target.closest("tr").dataset.unit;
    if (e.target.checked) state.selected.add(unit); else state.selected.delete(unit);
    document.getElementById("count").textContent = `${rows.length} of ${table.rows.length} units shown; ${state.selected.size} selected`;
  };
  wrap.dataset.ready = "1";
}

async function streamView(params) {
  crumbs(params);
  const [info, table] = await Promise.all([cached("/api/stream", params), cached("/api/units", params), loadCuration(params)]);
  const out = el(`<div id="stream-view"><h2>${esc(params.stream)} <span class="muted">${info.unit_ids.length} units, ${info.duration_s.toFixed(1)} s, ${info.channel_ids.length} channels</span></h2></div>`);
  out.append(curationBar(params));
  const tools = el(`<div class="toolbar"><input type="text" id="filter" placeholder="filter: snr > 5 and label == SUA, decoder_label ~ mua, or any text" value="${esc(state.filter)}">
    <button id="compare">Compare selected</button><button id="merge">Merge selected</button><button id="clear">Clear selection</button><span id="count" class="muted"></span></div>`);
  out.append(tools, el(`<div class="table-wrap" id="table-wrap"></div>`));
  out.append(el(`<h2>Drift map and motion</h2>`), el(`<div class="cards" id="drift"><span class="muted">loading…</span></div>`));
  out.append(el(`<h2>Traces</h2>`), traceControls(params, info), el(`<div id="traces" class="card"></div>`));
  if (info.figures.length) {
    const figs = el(`<div class="figs"><h2>Figures from the visualize step</h2></div>`);
    for (const f of info.figures) figs.append(el(`<a href="/api/file?path=${encodeURIComponent(f)}" target="_blank"><img loading="lazy" src="/api/file?path=${encodeURIComponent(f)}" alt="${esc(f)}"></a>`));
    out.append(figs);
  }
  app().replaceChildren(out);
  renderTable(params, table);
  let timer = null;
  tools.querySelector("#filter").oninput = e => { clearTimeout(timer); timer = setTimeout(() => { state.filter = e.target.value; renderTable(params, table); }, 120); };
  tools.querySelector("#compare").onclick = () => {
    if (state.selected.size < 1) return setStatus("select units first", true);
    location.hash = link("/units", {...params, ids: [...state.selected].join(",")});
  };
  tools.querySelector("#merge").onclick = () => {
    if (state.selected.size < 2) return setStatus("select at least two units to merge", true);
    mergeUnits(params, [...state.selected]);
  };
  tools.querySelector("#clear").onclick = () => { state.selected.clear(); renderTable(params, table); };
  setStatus(`${info.unit_ids.length} units`);
  cached("/api/drift", params).then(d => drawDrift(d)).catch(e => { document.getElementById("drift").textContent = e.message; });
  loadTraces(params);
}

function drawDrift(d) {
  const box = document.getElementById("drift");
  if (!box) return;
  box.replaceChildren();
  if (d.time_s) {
    const amps = d.amplitude_uv || d.time_s.map(() => 50), top = Math.max(1, ...amps.map(a => a || 0));
    box.append(el(`<div class="card"></div>`));
    box.lastChild.append(scatterPlot(d.time_s, d.depth_um, {width: 620, height: 260, xlabel: "time (s)", ylabel: "depth (µm)", title: "drift map (spike depth over time, darker = larger)", size: 2,
      colorOf: i => `rgba(20,40,90,${0.15 + 0.85 * Math.min(1, (amps[i] || 0) / top)})`, alpha: 1}));
  } else box.append(el(`<p class="muted">no spike_locations extension: no drift map</p>`));
  if (d.motion && d.motion.displacement_um) { box.append(el(`<div class="card"></div>`)); box.lastChild.append(motionPlot(d.motion, {})); }
  else box.append(el(`<p class="muted">${esc(d.motion && d.motion.error || "no motion estimate for this stream (motion correction skipped)")}</p>`));
}

function traceControls(params, info) {
  const t = state.traces = state.traces && state.traces.stream === params.stream ? state.traces : {stream: params.stream, kind: "preprocessed", start_s: 0, duration_s: 0.5, gain: 1};
  const bar = el(`<div class="toolbar" id="trace-controls"><select id="kind"><option>preprocessed</option>${info.has_raw ? "<option>raw</option>" : ""}</select>
    <button data-a="back">◀</button><button data-a="fwd">▶</button><button data-a="in">zoom in</button><button data-a="out">zoom out</button>
    <button data-a="gain+">gain +</button><button data-a="gain-">gain −</button>
    <span class="muted">spikes of the selected units are marked on their peak channel; wheel zooms, shift+wheel scrolls</span><span id="trace-pos"></span></div>`);
  bar.querySelector("#kind").value = t.kind;
  bar.querySelector("#kind").onchange = e => { t.kind = e.target.value; loadTraces(params); };
  bar.onclick = e => {
    const a = e.target.dataset.a; if (!a) return;
    if (a === "back") t.start_s = Math.max(0, t.start_s - t.duration_s * 0.8);
    if (a === "fwd") t.start_s = Math.min(info.duration_s - t.duration_s, t.start_s + t.duration_s * 0.8);
    if (a === "in") t.duration_s = Math.max(0.02, t.duration_s / 2);
    if (a === "out") t.duration_s = Math.min(10, t.duration_s * 2);
    if (a === "gain+") t.gain *= 1.5; if (a === "gain-") t.gain /= 1.5;
    loadTraces(params);
  };
  return bar;
}

async function loadTraces(params) {
  const t = state.traces, box = document.getElementById("traces");
  if (!box) return;
  try {
    const data = await api("/api/traces", {...params, kind: t.kind, start_s: t.start_s.toFixed(4), duration_s: t.duration_s.toFixed(4), units: [...state.selected].join(",")});
    t.start_s = data.start_s;
    const canvas = tracePlot(data, {gain: t.gain, width: Math.min(1400, window.innerWidth - 60)});
    canvas.onwheel = e => {
      e.preventDefault();
      if (e.shiftKey) t.start_s = Math.max(0, t.start_s + Math.sign(e.deltaY) * t.duration_s * 0.2);
      else t.duration_s = Math.min(10, Math.max(0.02, t.duration_s * (e.deltaY > 0 ? 1.25 : 0.8)));
      clearTimeout(t.timer); t.timer = setTimeout(() => loadTraces(params), 80);
    };
    box.replaceChildren(canvas);
    document.getElementById("trace-pos").textContent = `${data.kind}: ${data.start_s.toFixed(3)}–${data.end_s.toFixed(3)} s of ${data.duration_total_s.toFixed(1)} s`;
  } catch (e) { box.textContent = e.message; }
}

// ---------------------------------------------------------------- unit view
function labelControls(params, unit) {
  const doc = state.curation.curation, labels = manualLabels(doc, unit);
  const quality = (labels.quality || [])[0] || "", tags = labels.tags || [];
  const removed = doc.removed.map(String).includes(String(unit)), group = mergeGroupOf(doc, unit);
  const box = el(`<div class="toolbar label-controls" data-unit="${esc(unit)}">label:
    ${doc.label_definitions.quality.label_options.map(o => `<button class="${o === quality ? "on" : ""}" data-label="${esc(o)}">${esc(o)}</button>`).join("")}
    <button data-label="">clear</button>
    <button class="${removed ? "on" : ""}" data-remove="1">${removed ? "removed (restore)" : "remove"}</button>
    ${group >= 0 ? `<button data-unmerge="1">in merge m${group + 1} (unmerge)</button>` : ""}
    ${isSplit(doc, unit) ? `<button data-unsplit="1">split (undo split)</button>` : `<span>split at <input type="number" step="any" min="0" size="6" placeholder="s" data-split-at="1"> s <button data-split="1">split</button></span>`}
    <span>tags: ${doc.label_definitions.tags.label_options.map(o => `<button class="${tags.includes(o) ? "on" : ""}" data-tag="${esc(o)}">${esc(o)}</button>`).join("")}
    <input type="text" size="10" placeholder="new tag" data-newtag="1"></span>
    <span class="current-label label-${esc(quality)}">${esc(quality || "no manual label")}</span></div>`);
  box.onclick = e => {
    const b = e.target.closest("button"); if (!b) return;
    if (b.dataset.label !== undefined) setLabel(params, unit, "quality", b.dataset.label, true);
    else if (b.dataset.tag !== undefined) setLabel(params, unit, "tags", b.dataset.tag, false);
    else if (b.dataset.remove) toggleRemoved(params, unit);
    else if (b.dataset.unmerge) unmerge(params, unit);
    else if (b.dataset.unsplit) unsplit(params, unit);
    else if (b.dataset.split) {
      const v = box.querySelector("[data-split-at]").value;
      if (v !== "" && isFinite(Number(v))) splitAt(params, unit, Number(v)); else setStatus("type the time (s) to split at", true);
    }
  };
  box.querySelector("[data-newtag]").onkeydown = e => {
    const v = e.target.value.trim();
    if (e.key === "Enter" && /^[\w.-]+$/.test(v)) setLabel(params, unit, "tags", v, false);
  };
  return box;
}

function metricsTable(unit) {
  const rows = unit.qc.map(q => {
    const rule = q.less !== null && q.less !== undefined ? `< ${q.less}` : q.greater !== null && q.greater !== undefined ? `> ${q.greater}` : "";
    const verdict = q.passed === null ? "" : q.passed ? `<span class="pass">pass</span>` : `<span class="fail">fail</span>`;
    return [q.passed === false ? 0 : q.passed ? 1 : 2, `<tr><td>${esc(q.metric)}</td><td>${esc(fmt(q.value))}</td><td>${esc(rule)}</td><td>${verdict}</td></tr>`];
  }).sort((a, b) => a[0] - b[0]).map(r => r[1]).join("");
  const p = unit.properties;
  return el(`<div><p>default_qc: <span class="${p.default_qc ? "pass" : "fail"}">${p.default_qc ? "pass" : "fail"}</span>
    ${p.qc_fail_reasons ? `<br><span class="reason">${esc(p.qc_fail_reasons)}</span>` : ""}<br>
    decoder_label: <b>${esc(p.decoder_label ?? "–")}</b> · bombcell_label: <b>${esc(p.bombcell_label ?? "–")}</b></p>
    <div style="max-height:260px;overflow:auto"><table class="metrics"><thead><tr><th>metric</th><th>value</th><th>QC threshold</th><th></th></tr></thead><tbody>${rows}</tbody></table></div></div>`);
}

async function unitView(params) {
  crumbs(params);
  const t0 = performance.now();
  const ids = (params.ids || "").split(",").filter(Boolean);
  const [info] = await Promise.all([cached("/api/stream", {session: params.session, stream: params.stream}), loadCuration(params)]);
  const base = {session: params.session, stream: params.stream};
  const units = await Promise.all(ids.map(u => cached("/api/unit", {...base, unit: u})));
  const out = el(`<div id="unit-view"><h2>${ids.length > 1 ? "Compare units " : "Unit "}${ids.map(esc).join(", ")}</h2></div>`);
  out.append(curationBar(base));
  const nav = el(`<div class="toolbar"></div>`);
  if (ids.length === 1) {
    const k = info.unit_ids.indexOf(ids[0]);
    if (k > 0) nav.append(el(`<a href="${link("/units", {...base, ids: info.unit_ids[k - 1]})}">◀ previous unit</a>`));
    if (k < info.unit_ids.length - 1) nav.append(el(`<a href="${link("/units", {...base, ids: info.unit_ids[k + 1]})}">next unit ▶</a>`));
  } else {
    const b = el(`<button id="merge-these">Merge these ${ids.length} units</button>`);
    b.onclick = () => mergeUnits(base, ids);
    nav.append(b);
  }
  out.append(nav);
  const cards = el(`<div class="cards"></div>`);
  units.forEach((u, k) => {
    const color = COLORS[k % COLORS.length];
    const card = el(`<div class="card unit-card" data-unit-card="${esc(u.unit_id)}"><h3 style="color:${color}">unit ${esc(u.unit_id)} <span class="muted">${u.num_spikes ?? "?"} spikes analysed</span></h3></div>`);
    card.append(labelControls(base, u.unit_id));
    const row = el(`<div class="cards"></div>`);
    if (u.template_uv) row.append(probeWaveforms(u, info.channel_locations_um, {color, width: 330, height: 340}));
    if (u.location_um) row.append(probeLocations(info.channel_locations_um, [{xy: u.location_um, color}], {width: 170, height: 340, title: "location"}));
    card.append(row);
    const row2 = el(`<div class="cards"></div>`);
    if (u.acg) row2.append(barPlot(u.acg.counts, u.acg.bins_ms, {color, xlabel: "lag (ms)", title: "autocorrelogram"}));
    if (u.isi) row2.append(barPlot(u.isi.counts, u.isi.bins_ms, {color, xlabel: "ISI (ms)", title: "ISI histogram"}));
    card.append(row2);
    if (u.amplitudes) card.append(scatterPlot(u.amplitudes.time_s, u.amplitudes.amplitude_uv, {color, width: 540, height: 150, xlim: [0, info.duration_s], xlabel: "time (s)", ylabel: "µV", title: "amplitudes over time"}));
    card.append(metricsTable(u));
    cards.append(card);
  });
  out.append(cards);
  if (ids.length > 1) {
    const ccgBox = el(`<div class="card" id="ccg"><h3>Correlograms (row unit vs column unit; diagonal: autocorrelograms)</h3></div>`);
    out.append(ccgBox);
    if (units.every(u => u.location_um)) out.append(probeLocations(info.channel_locations_um, units.map((u, k) => ({xy: u.location_um, color: COLORS[k % COLORS.length]})), {width: 200, height: 340, title: "locations"}));
    api("/api/ccg", {...base, units: ids.join(",")}).then(c => {
      const grid = el(`<table class="ccg-grid"></table>`);
      c.counts.forEach((row, i) => {
        const tr = el(`<tr></tr>`);
        row.forEach((counts, j) => {
          const td = el(`<td></td>`);
          td.append(barPlot(counts, c.bins_ms, {width: 220, height: 130, color: i === j ? COLORS[i % COLORS.length] : "#555", title: `${c.unit_ids[i]} × ${c.unit_ids[j]}`, xlabel: "lag (ms)"}));
          tr.append(td);
        });
        grid.append(tr);
      });
      ccgBox.append(grid);
      ccgBox.dataset.ready = "1";
    }).catch(e => ccgBox.append(el(`<p class="error">${esc(e.message)}</p>`)));
  }
  app().replaceChildren(out);
  out.dataset.ready = ids.join(",");
  setStatus(`rendered in ${(performance.now() - t0).toFixed(0)} ms`);
}
