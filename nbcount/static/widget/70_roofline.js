// ---- Roofline: each layer on a hardware's roofline (nbcount/roofline_tab.py builds the payload)
// Summary cards, the serving view of a decoder, the log-log chart (drawn here in SVG) beside the slowest layers,
// and the worked derivation of whatever was clicked: a row, a dot, a phase or the totals.

function sig3(v) {
  const x = num(v);
  if (!x) return "0";
  return Math.abs(x) >= 1000 ? exact(Math.round(x)) : String(Number(x.toPrecision(3)));
}

function siUnit(v, unit) {
  const x = num(v);
  return Math.abs(x) >= 1000 ? short(x) + unit : sig3(x) + " " + unit;
}

function seconds(v) {
  const x = num(v);
  for (const [scale, unit] of [[1, "s"], [1e-3, "ms"], [1e-6, "µs"]]) {
    if (Math.abs(x) >= scale) return sig3(x / scale) + " " + unit;
  }
  return sig3(x / 1e-9) + " ns";
}

function logTicks(lo, hi) {
  // powers of ten from lo to hi (every second one when the axis spans more than eight decades)
  const a = Math.round(Math.log10(lo));
  const b = Math.round(Math.log10(hi));
  const step = b - a > 8 ? 2 : 1;
  const out = [];
  for (let p = a; p <= b; p += step) out.push(10 ** p);
  return out;
}

function logTick(v) {
  // 0.01, 0.1, 1, 10, 100, 1 k, 10 k; 100 G, 1 T
  return v >= 1000 ? tick(v) : String(Number(v.toPrecision(1)));
}

function decadeBelow(v) { return 10 ** Math.floor(Math.log10(v)); }
function decadeAbove(v) { return 10 ** Math.ceil(Math.log10(v)); }

function rooflineScales(payload, width) {
  // log-log scales with room: a decade beyond the dots, the ridge points and the peak's label
  const d = payload.dots;
  const roofs = payload.roofs;
  const bw = payload.summary.bandwidth;
  const height = 330;
  const m = { left: 66, right: 14, top: 14, bottom: 46 };
  const ridges = roofs.map((r) => r.ridge);
  const xLo = decadeBelow(Math.min(...d.intensity, ...ridges) / 3);
  const xHi = decadeAbove(Math.max(Math.max(...d.intensity) * 6, Math.max(...ridges) * 20)); // room right of the ridge
  const peak = Math.max(...roofs.map((r) => r.flops_per_s));
  const yLo = decadeBelow(Math.min(...d.flops_per_s, xLo * bw) / 2);
  const yHi = decadeAbove(peak * 8); // room above the roof for its label
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const X = (v) => m.left + (plotW * (Math.log10(v) - Math.log10(xLo))) / (Math.log10(xHi) - Math.log10(xLo));
  const Y = (v) => m.top + plotH - (plotH * (Math.log10(v) - Math.log10(yLo))) / (Math.log10(yHi) - Math.log10(yLo));
  return { width, height, m, plotW, plotH, xLo, xHi, yLo, yHi, X, Y, bw,
    mainRidge: roofs[roofs.length - 1].ridge, slopeStart: Math.max(xLo, yLo / bw) };
}

const LABEL_ROOM = 100; // px a region's or a ridge's label needs beside the ridge line

function drawAxes(node, sc) {
  // the memory-bound region shaded, the two regions named at the ridge, the grid, the ticks, the axis titles
  const { m, X, Y, plotW, plotH, mainRidge } = sc;
  node.append(svg("rect", { x: m.left, y: m.top, width: Math.max(0, X(mainRidge) - m.left), height: plotH,
    class: "nb-region-mem" }));
  if (X(mainRidge) - m.left > LABEL_ROOM) {
    node.append(svg("text", { x: X(mainRidge) - 6, y: m.top + 14, "text-anchor": "end", class: "nb-region-label",
      text: "← memory-bound" }));
  }
  if (m.left + plotW - X(mainRidge) > LABEL_ROOM) {
    node.append(svg("text", { x: X(mainRidge) + 6, y: m.top + 14, class: "nb-region-label", text: "compute-bound →" }));
  }
  const axis = svg("g", { class: "nb-axis" });
  for (const t of logTicks(sc.xLo, sc.xHi)) {
    axis.append(svg("line", { x1: X(t), x2: X(t), y1: m.top, y2: m.top + plotH }));
    axis.append(svg("text", { x: X(t), y: m.top + plotH + 15, "text-anchor": "middle", text: logTick(t) }));
  }
  for (const t of logTicks(sc.yLo, sc.yHi)) {
    axis.append(svg("line", { x1: m.left, x2: m.left + plotW, y1: Y(t), y2: Y(t) }));
    axis.append(svg("text", { x: m.left - 6, y: Y(t) + 4, "text-anchor": "end", text: logTick(t) }));
  }
  axis.append(svg("text", { x: m.left + plotW / 2, y: sc.height - 8, "text-anchor": "middle", class: "nb-axis-title",
    text: "arithmetic intensity (FLOPs per byte moved)" }));
  axis.append(svg("text", { x: 14, y: m.top + plotH / 2, "text-anchor": "middle", class: "nb-axis-title",
    transform: "rotate(-90 14 " + (m.top + plotH / 2) + ")", text: "attained FLOP/s" }));
  node.append(axis);
}

function drawRoofs(node, roofs, sc) {
  // each roof: the bandwidth slope up to its ridge point, then its peak; the slope named along itself
  const { m, X, Y, bw, slopeStart, mainRidge } = sc;
  roofs.forEach((roof, i) => {
    const points = [[slopeStart, slopeStart * bw], [roof.ridge, roof.flops_per_s], [sc.xHi, roof.flops_per_s]];
    node.append(svg("polyline", { class: "nb-roof" + (i < roofs.length - 1 ? " nb-roof-low" : ""),
      points: points.map(([x, y]) => X(x).toFixed(1) + "," + Y(y).toFixed(1)).join(" ") }));
    node.append(svg("text", { x: sc.width - m.right - 6, y: Y(roof.flops_per_s) - 18, "text-anchor": "end",
      class: "nb-roof-label", text: "peak " + siUnit(roof.flops_per_s, "FLOP/s") + " (" + roof.keys + ")" }));
    node.append(svg("line", { x1: X(roof.ridge), x2: X(roof.ridge), y1: Y(roof.flops_per_s), y2: m.top + sc.plotH,
      class: "nb-ridge" }));
    const right = m.left + sc.plotW - X(roof.ridge) > LABEL_ROOM; // the label on the side with room
    node.append(svg("text", { x: X(roof.ridge) + (right ? 4 : -4), y: m.top + sc.plotH - 6 - 14 * i,
      "text-anchor": right ? "start" : "end", class: "nb-ridge-label", text: "ridge " + sig3(roof.ridge) + " FLOP/B" }));
  });
  const angle = (Math.atan2(Y(mainRidge * bw) - Y(slopeStart * bw), X(mainRidge) - X(slopeStart)) * 180) / Math.PI;
  const mid = Math.sqrt(slopeStart * mainRidge);
  node.append(svg("text", { x: X(mid), y: Y(mid * bw) - 6, "text-anchor": "middle", class: "nb-roof-label",
    transform: "rotate(" + angle.toFixed(1) + " " + X(mid).toFixed(1) + " " + (Y(mid * bw) - 6).toFixed(1) + ")",
    text: "memory " + siUnit(bw, "B/s") }));
}

function drawDots(node, payload, sc, pick, picked) {
  // biggest first so the small ones stay clickable; the slowest five numbered as in the table (once per spot)
  const d = payload.dots;
  const tMax = Math.max(...d.time_s);
  const order = d.time_s.map((_, i) => i).sort((a, b) => d.time_s[b] - d.time_s[a]);
  const total = payload.summary.total_time_s || 1;
  const labelled = [];
  for (const i of order) {
    const rank = d.rank[i];
    const r = 3 + 11 * Math.sqrt(d.time_s[i] / tMax);
    const cx = sc.X(d.intensity[i]);
    const cy = sc.Y(d.flops_per_s[i]);
    const listed = rank < payload.rows.length;
    const g = svg("g", { class: "nb-dot" + (rank === picked ? " nb-dot-picked" : "") + (listed ? " nb-clickable" : "") });
    g.append(svg("title", { text: (rank + 1) + ". " + d.label[i] + ": " + seconds(d.time_s[i]) + " (" +
      percent(d.time_s[i], total) + " of the time), " + (d.memory[i] ? "memory" : "compute") + "-bound, " +
      sig3(d.intensity[i]) + " FLOP/B, " + siUnit(d.flops_per_s[i], "FLOP/s") }));
    g.append(svg("circle", { cx, cy, r, class: d.memory[i] ? "nb-dot-mem" : "nb-dot-comp" }));
    if (rank < 5 && !labelled.some(([x, y]) => Math.hypot(x - cx, y - cy) < 14)) {
      labelled.push([cx, cy]);
      g.append(svg("text", { x: cx + r + 2, y: cy - r + 4, class: "nb-dot-rank", text: String(rank + 1) }));
    }
    if (listed) g.addEventListener("click", () => pick({ row: rank }));
    node.append(g);
  }
}

function rooflineChart(payload, width, pick, picked) {
  const height = 330;
  const node = svg("svg", { width, height, viewBox: "0 0 " + width + " " + height, role: "img",
    "aria-label": "roofline chart" });
  if (!payload.dots.intensity.length) {
    node.append(svg("text", { x: 66, y: 40, text: "No layer does arithmetic: nothing to place on the roofline." }));
    return node;
  }
  const sc = rooflineScales(payload, width);
  drawAxes(node, sc);
  drawRoofs(node, payload.roofs, sc);
  drawDots(node, payload, sc, pick, picked);
  return node;
}

function chartKey(payload) {
  // the legend under the chart, and the layers it cannot place (no FLOPs: intensity 0 has no place on a log axis)
  const hidden = payload.dots.hidden;
  const dot = (cls) => h("span", { class: "nb-key-dot " + cls });
  return h("div", { class: "nb-note nb-chart-key", title: "a dot per table row (repeated layers as one), numbered " +
    "as in the table; hover a dot for its numbers, click it for its derivation" },
  dot("nb-key-mem"), " memory-bound ", dot("nb-key-comp"), " compute-bound · area ∝ time",
  hidden.n ? " · " + exact(hidden.n) + (hidden.n === 1 ? " layer moves" : " layers move") + " bytes only (not " +
    "drawn): " + percent(hidden.time_s, payload.summary.total_time_s) + " of the time" : "");
}

function rooflineCards(payload) {
  const s = payload.summary;
  const main = payload.roofs[payload.roofs.length - 1];
  const card = (k, v, x, title) => h("div", { class: "nb-card", title }, h("div", { class: "nb-k", text: k }),
    h("div", { class: "nb-v", text: v }), h("div", { class: "nb-x", text: x }));
  return h("div", { class: "nb-cards nb-roof-cards" },
    card("time on " + payload.hardware, seconds(s.total_time_s), seconds(s.fused_time_s) + " with each layer fused",
      "Σ over layers of max(FLOPs / peak, bytes / bandwidth): layer after layer, nothing overlapped"),
    card("memory-bound", percent(s.memory_bound_share, 1) || "0%", "of the time (below the ridge)",
      "the share of the time spent in layers whose intensity is below the ridge point"),
    card("work", siUnit(s.flops, "FLOPs"), siUnit(s.bytes, "B") + " moved", s.notes.join(" ")),
    card("ridge point", sig3(main.ridge) + " FLOP/B", siUnit(main.flops_per_s, "FLOP/s") + " ÷ " +
      siUnit(s.bandwidth, "B/s"), "peak ÷ bandwidth: layers with fewer FLOPs per byte wait for memory"));
}

function servingBlock(payload, pick, picked) {
  const sv = payload.serving;
  if (!sv) return null;
  if (sv.error) return h("p", { class: "nb-note", text: "No serving view for this model: " + sv.error });
  const head = h("tr", {}, ["phase", "tokens", "FLOPs", "fused bytes", "FLOP/B", "bound", "best time",
    "tokens/s ≤"].map((t, j) => h("th", { class: j && j !== 5 ? "nb-num" : "", text: t })));
  const body = sv.phases.map((p, i) => {
    const tr = h("tr", { class: "nb-click" + (picked === i ? " nb-picked" : ""),
      title: "click for the worked " + p.phase + " step" },
    h("td", { text: p.phase }), h("td", { class: "nb-num", text: exact(p.tokens) }),
    h("td", { class: "nb-num", text: siUnit(p.flops, "") }), h("td", { class: "nb-num", text: siUnit(p.fused_bytes, "B") }),
    h("td", { class: "nb-num", text: sig3(p.intensity) }), h("td", {}, boundChip(p.bound)),
    h("td", { class: "nb-num", text: seconds(p.best_time_s) }),
    h("td", { class: "nb-num", text: exact(Math.round(p.tokens_per_s_max)) }));
    tr.addEventListener("click", () => pick({ phase: i }));
    return tr;
  });
  return h("div", { class: "nb-serving" },
    h("div", { class: "nb-subtitle", text: "Serving: prefill of " + exact(sv.prompt_len) + " tokens, then one decode " +
      "step after " + exact(sv.context_len) + " (batch " + sv.batch + "), KV cache read included" }),
    h("table", { class: "nb-table" }, h("thead", {}, head), h("tbody", {}, body)));
}

function boundChip(bound) {
  return h("span", { class: "nb-bound nb-bound-" + bound, text: bound });
}

function rooflineTable(payload, pick, picked) {
  const cols = [["#", 1, "rank by time"], ["layer", 0, "repeated layers folded (×n: their sum)"],
    ["FLOPs", 1, "real FLOPs: 2 per multiply-accumulate + every other op"], ["bytes", 1, "bytes its ops read and write"],
    ["FLOP/B", 1, "arithmetic intensity: FLOPs per byte moved"], ["bound", 0, "below the ridge point: memory-bound"],
    ["time", 1, "max(FLOPs / peak, bytes / bandwidth)"], ["share", 1, "of the model's time"]];
  const head = h("tr", {}, cols.map(([t, n, tip]) => h("th", { class: n ? "nb-num" : "", title: tip, text: t })));
  const total = payload.summary.total_time_s || 1;
  const body = payload.rows.map((r, i) => {
    const tr = h("tr", { class: "nb-click" + (picked === i ? " nb-picked" : ""), title: r.label + " (" + r.type +
      ", at the " + r.dtype + " peak) — click for its worked roofline" },
    h("td", { class: "nb-num nb-muted", text: String(i + 1) }), h("td", { class: "nb-roof-name", text: r.label }),
    h("td", { class: "nb-num", title: exact(r.flops) + " FLOPs", text: siUnit(r.flops, "") }),
    h("td", { class: "nb-num", title: exact(r.bytes) + " bytes", text: siUnit(r.bytes, "B") }),
    h("td", { class: "nb-num", text: sig3(r.intensity) }), h("td", {}, boundChip(r.bound)),
    h("td", { class: "nb-num", text: seconds(r.time_s) }),
    h("td", { class: "nb-num nb-share" }, h("i", { style: "width:" + Math.min(100, 100 * r.share).toFixed(1) + "%" }),
      h("span", { text: percent(r.time_s, total) })));
    tr.addEventListener("click", () => pick({ row: i }));
    return tr;
  });
  const o = payload.others;
  if (o) {
    body.push(h("tr", { class: "nb-muted" }, h("td", {}), h("td", { text: "others (" + exact(o.n) + " layers)" }),
      h("td", { class: "nb-num", text: siUnit(o.flops, "") }),
      h("td", { class: "nb-num", text: siUnit(o.bytes, "B") }), h("td", {}), h("td", {}),
      h("td", { class: "nb-num", text: seconds(o.time_s) }), h("td", { class: "nb-num", text: percent(o.time_s, total) })));
  }
  const s = payload.summary;
  const foot = h("tfoot", {}, h("tr", { class: "nb-click", title: "all " + exact(s.rows) + " layers that compute " +
    "or move bytes — click for the whole model's roofline" },
    h("td", {}), h("td", { text: "total" }),
    h("td", { class: "nb-num", text: siUnit(s.flops, "") }), h("td", { class: "nb-num", text: siUnit(s.bytes, "B") }),
    h("td", { class: "nb-num", text: sig3(num(s.flops) / (num(s.bytes) || 1)) }),
    h("td", {}),
    h("td", { class: "nb-num", text: seconds(s.total_time_s) }), h("td", { class: "nb-num", text: "100%" })));
  foot.addEventListener("click", () => pick({ total: true }));
  return h("table", { class: "nb-table nb-roof-table" }, h("thead", {}, head), h("tbody", {}, body), foot);
}

DRAWERS.roofline = (view, payload) => {
  const title = view.active;
  view.keepChoices(title, { hardware: payload.hardware, hw_dtype: payload.dtype }, payload);
  const st = view.state;
  if (!st.roofPick || st.roofFor !== payload) { st.roofPick = payload.rows.length ? { row: 0 } : { total: true }; }
  st.roofFor = payload;
  const status = h("span", { class: "nb-note" });
  const change = (key) => (e) => {
    if (!view.choose(title, { [key]: e.target.value })) {
      status.textContent = "working out the roofline on " + (key === "hardware" ? e.target.value : "that peak") + "…";
      for (const s of tools.querySelectorAll("select")) s.disabled = true;
    }
  };
  const select = (key, options, value, tip) => {
    const node = h("select", { title: tip, onchange: change(key) }, options.map(([v, t]) => h("option", { value: v, text: t })));
    node.value = value;
    return node;
  };
  const tools = h("div", { class: "nb-bar-tools" },
    h("label", {}, "hardware", select("hardware", payload.choices.hardware.map((n) => [n, n]), payload.hardware,
      "the data sheet's dense peaks and memory bandwidth (this CPU: measured)")),
    h("label", {}, "matrix ops at", select("hw_dtype", [["", "each op's dtype"],
      ...payload.choices.dtype.map((k) => [k, k + " peak"])], payload.dtype,
    "the peak every multiply-accumulate runs at (fp32 models use the fp32 peak unless you choose tf32)")),
    status, h("span", { class: "nb-spacer" }),
    h("button", { text: "Copy text", title: "the summary and the slowest layers as plain text",
      onclick: (e) => copyText(payload.text, e.target) }));
  const why = h("div", { class: "nb-why nb-deriv" });
  const chartBox = h("div", { class: "nb-roof-chart nb-chart" });
  const tableBox = h("div", { class: "nb-roof-rows" });
  const servingBox = h("div", {});
  const pick = (choice) => { st.roofPick = choice; draw(); };
  const explain = () => {
    const c = st.roofPick;
    const found = c.total ? payload.total.derivation : c.phase !== undefined ? payload.serving.phases[c.phase].derivation
      : payload.rows[c.row].derivation;
    why.replaceChildren(stepGrid([found]));
  };
  const draw = () => {
    const c = st.roofPick;
    const width = Math.max(360, Math.min(900, (chartBox.clientWidth || 560) - 2));
    chartBox.replaceChildren(rooflineChart(payload, width, pick, c.row), chartKey(payload));
    tableBox.replaceChildren(rooflineTable(payload, pick, c.row));
    servingBox.replaceChildren(servingBlock(payload, pick, c.phase) || "");
    explain();
  };
  const wrap = h("div", { class: "nb-roof" }, tools, rooflineCards(payload), servingBox,
    h("div", { class: "nb-roof-main" }, chartBox, tableBox), why,
    h("p", { class: "nb-note", text: payload.summary.notes.join(" ") + " Hardware: " + payload.summary.source }));
  requestAnimationFrame(draw);
  draw();
  if (window.ResizeObserver) {
    let last = 0;
    view.resize = new ResizeObserver(() => {
      const w = chartBox.clientWidth;
      if (Math.abs(w - last) > 8) { last = w; draw(); }
    });
    view.resize.observe(chartBox);
  }
  return wrap;
};
