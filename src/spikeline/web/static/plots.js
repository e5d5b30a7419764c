// Small canvas plots for spikeline view: axes, lines, bars, scatter, waveforms on the probe layout.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function makeCanvas(width, height) {
  const canvas = document.createElement("canvas");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio; canvas.height = height * ratio;
  canvas.style.width = width + "px"; canvas.style.height = height + "px";
  canvas.getContext("2d").scale(ratio, ratio);
  canvas.plotWidth = width; canvas.plotHeight = height;
  return canvas;
}

function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v !== null && v < lo) lo = v; if (v !== null && v > hi) hi = v; }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= 1; hi += 1; }
  return [lo, hi];
}

function niceTicks(lo, hi, count) {
  const span = hi - lo, raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(+t.toPrecision(10));
  return ticks;
}

// Axes box: returns mapping functions. opts: {xlim, ylim, xlabel, ylabel, title}
function axes(canvas, opts) {
  const ctx = canvas.getContext("2d"), W = canvas.plotWidth, H = canvas.plotHeight;
  const m = {l: 48, r: 8, t: opts.title ? 18 : 8, b: 30};
  const [x0, x1] = opts.xlim, [y0, y1] = opts.ylim;
  const X = x => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r);
  const Y = y => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#444"; ctx.font = "10px sans-serif"; ctx.lineWidth = 1;
  ctx.strokeRect(m.l, m.t, W - m.l - m.r, H - m.t - m.b);
  ctx.textAlign = "center";
  for (const t of niceTicks(x0, x1, 6)) ctx.fillText(String(t), X(t), H - m.b + 12);
  ctx.textAlign = "right";
  for (const t of niceTicks(y0, y1, 4)) ctx.fillText(String(t), m.l - 3, Y(t) + 3);
  ctx.textAlign = "center";
  if (opts.xlabel) ctx.fillText(opts.xlabel, (m.l + W - m.r) / 2, H - 4);
  if (opts.title) { ctx.font = "11px sans-serif"; ctx.fillText(opts.title, (m.l + W - m.r) / 2, 12); }
  if (opts.ylabel) {
    ctx.save(); ctx.translate(10, (m.t + H - m.b) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(opts.ylabel, 0, 0); ctx.restore();
  }
  ctx.save(); ctx.beginPath(); ctx.rect(m.l, m.t, W - m.l - m.r, H - m.t - m.b); ctx.clip();
  return {ctx, X, Y, done: () => ctx.restore()};
}

// Bar histogram from bin edges (bins has counts.length + 1 entries, or counts.length centred values).
function barPlot(counts, bins, opts) {
  const canvas = makeCanvas(opts.width || 260, opts.height || 150);
  const edges = bins.length === counts.length + 1 ? bins : bins.concat([2 * bins[bins.length - 1] - bins[bins.length - 2]]);
  const a = axes(canvas, {xlim: [edges[0], edges[edges.length - 1]], ylim: [0, Math.max(1, ...counts) * 1.05], ...opts});
  a.ctx.fillStyle = opts.color || COLORS[0];
  counts.forEach((c, i) => { const x = a.X(edges[i]), w = Math.max(1, a.X(edges[i + 1]) - x - 0.5); a.ctx.fillRect(x, a.Y(c), w, a.Y(0) - a.Y(c)); });
  a.done();
  return canvas;
}

// Scatter: xs, ys, optional per-point colors function.
function scatterPlot(xs, ys, opts) {
  const canvas = makeCanvas(opts.width || 520, opts.height || 160);
  const a = axes(canvas, {xlim: opts.xlim || extent(xs), ylim: opts.ylim || extent(ys), ...opts});
  const size = opts.size || 2;
  a.ctx.fillStyle = opts.color || COLORS[0];
  a.ctx.globalAlpha = opts.alpha || 0.6;
  for (let i = 0; i < xs.length; i++) {
    if (ys[i] === null) continue;
    if (opts.colorOf) a.ctx.fillStyle = opts.colorOf(i);
    a.ctx.fillRect(a.X(xs[i]) - size / 2, a.Y(ys[i]) - size / 2, size, size);
  }
  a.done();
  return canvas;
}

// Waveforms (grey) and template (colour) on each channel, drawn where the channel sits on the probe.
function probeWaveforms(unit, locations, opts) {
  const W = opts.width || 300, H = opts.height || 340, color = opts.color || COLORS[0];
  const canvas = makeCanvas(W, H), ctx = canvas.getContext("2d");
  const chans = unit.channels, pos = chans.map(c => locations[c]);
  const [xmin, xmax] = extent(pos.map(p => p[0])), [ymin, ymax] = extent(pos.map(p => p[1]));
  const xs = [...new Set(pos.map(p => p[0]))].sort((a, b) => a - b), ys = [...new Set(pos.map(p => p[1]))].sort((a, b) => a - b);
  const dx = xs.length > 1 ? Math.min(...xs.slice(1).map((v, i) => v - xs[i])) : 30;
  const dy = ys.length > 1 ? Math.min(...ys.slice(1).map((v, i) => v - ys[i])) : 30;
  const pad = 24, sx = (W - 2 * pad) / (xmax - xmin + dx), sy = (H - 2 * pad) / (ymax - ymin + dy);
  const boxW = dx * sx * 0.9, boxH = dy * sy;
  let peak = 1;
  for (const row of unit.template_uv) for (const v of row) if (v !== null) peak = Math.max(peak, Math.abs(v));
  const n = unit.time_ms.length;
  const draw = (trace, cx, cy) => {
    ctx.beginPath();
    trace.forEach((v, i) => { const x = cx - boxW / 2 + i / (n - 1) * boxW, y = cy - (v || 0) / peak * boxH * 0.9; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  };
  ctx.font = "9px sans-serif"; ctx.fillStyle = "#888";
  chans.forEach((c, k) => {
    const cx = pad + (pos[k][0] - xmin + dx / 2) * sx, cy = H - pad - (pos[k][1] - ymin + dy / 2) * sy;
    ctx.fillText(String(c) + (c === unit.peak_channel ? "*" : ""), cx - boxW / 2, cy - boxH * 0.4);
    ctx.strokeStyle = "rgba(120,120,120,0.25)"; ctx.lineWidth = 1;
    for (const w of ((unit.waveforms_uv || [])[k] || [])) draw(w, cx, cy);
    ctx.strokeStyle = color; ctx.lineWidth = 1.6;
    draw(unit.template_uv[k], cx, cy);
  });
  ctx.fillStyle = "#444"; ctx.fillText(`peak ${peak.toFixed(0)} µV, ${(unit.time_ms[n - 1] - unit.time_ms[0]).toFixed(1)} ms per box`, 4, H - 4);
  return canvas;
}

// Every channel of the probe (grey) and units' locations (coloured dots).
function probeLocations(locations, points, opts) {
  const canvas = makeCanvas(opts.width || 140, opts.height || 340);
  const xs = locations.map(p => p[0]).concat(points.map(p => p.xy[0])), ys = locations.map(p => p[1]).concat(points.map(p => p.xy[1]));
  const [x0, x1] = extent(xs), [y0, y1] = extent(ys);
  const a = axes(canvas, {xlim: [x0 - 20, x1 + 20], ylim: [y0 - 20, y1 + 20], xlabel: "x (µm)", ylabel: "depth (µm)", ...opts});
  a.ctx.fillStyle = "#bbb";
  for (const p of locations) a.ctx.fillRect(a.X(p[0]) - 3, a.Y(p[1]) - 3, 6, 6);
  points.forEach(p => { a.ctx.fillStyle = p.color; a.ctx.beginPath(); a.ctx.arc(a.X(p.xy[0]), a.Y(p.xy[1]), 5, 0, 7); a.ctx.fill(); });
  a.done();
  return canvas;
}

// Traces stacked by channel (sorted by depth) with spike markers.
function tracePlot(data, opts) {
  const W = opts.width || 1100, H = opts.height || 420;
  const canvas = makeCanvas(W, H), nch = data.traces_uv.length;
  const a = axes(canvas, {xlim: [data.start_s, data.end_s], ylim: [-1, nch], xlabel: "time (s)", ylabel: "channel (by depth)"});
  let spread = 1;
  for (const tr of data.traces_uv) { const s = tr.reduce((acc, v) => acc + Math.abs(v || 0), 0) / tr.length; spread = Math.max(spread, s); }
  const gain = (opts.gain || 1) / (6 * spread);
  a.ctx.strokeStyle = "#333"; a.ctx.lineWidth = 0.7;
  data.traces_uv.forEach((tr, c) => {
    a.ctx.beginPath();
    tr.forEach((v, i) => { const x = a.X(data.start_s + i * data.step_s), y = a.Y(c + (v || 0) * gain); i ? a.ctx.lineTo(x, y) : a.ctx.moveTo(x, y); });
    a.ctx.stroke();
  });
  data.spikes.forEach((s, k) => {
    const c = data.channel_ids.indexOf(s.peak_channel_id);
    a.ctx.strokeStyle = COLORS[k % COLORS.length]; a.ctx.lineWidth = 2;
    for (const t of s.time_s) { a.ctx.beginPath(); a.ctx.moveTo(a.X(t), a.Y(c - 1.5)); a.ctx.lineTo(a.X(t), a.Y(c + 1.5)); a.ctx.stroke(); }
  });
  a.done();
  return canvas;
}

// Motion estimate: displacement (µm) over time, one line per spatial bin.
function motionPlot(motion, opts) {
  const canvas = makeCanvas(opts.width || 520, opts.height || 200);
  const all = motion.displacement_um.flat();
  const a = axes(canvas, {xlim: extent(motion.time_s), ylim: extent(all), xlabel: "time (s)", ylabel: "displacement (µm)", title: "motion estimate"});
  motion.displacement_um.forEach((row, k) => {
    a.ctx.strokeStyle = COLORS[k % COLORS.length]; a.ctx.beginPath();
    row.forEach((v, i) => { const x = a.X(motion.time_s[i]), y = a.Y(v || 0); i ? a.ctx.lineTo(x, y) : a.ctx.moveTo(x, y); });
    a.ctx.stroke();
  });
  a.done();
  return canvas;
}
