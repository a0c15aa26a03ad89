// ---- Charts: horizontal bars in SVG, drawn at the width of the output
const METRICS = { flops: "FLOPs", params: "parameters", macs: "MACs", out: "activation memory (bytes)" };

function chartBars(view) {
  const R = view.rows;
  const st = view.state;
  const metric = st.metric;
  const values = R.self[metric];
  const groups = new Map();
  for (let k = 0; k < R.n; k++) {
    let v = values[k];
    if (metric === "out" && R.children[k].length) v = 0; // a container's output is its last child's
    if (!v) continue;
    let key; let label;
    if (st.chartGroup === "type") { key = "t" + R.type[k]; label = R.typeName(k); }
    else if (st.chartGroup === "pattern") { key = "p" + R.pattern(k) + "#" + R.call[k]; label = R.pattern(k) || "(root)"; }
    else { key = "r" + k; label = R.label(k); }
    const g = groups.get(key) || { label, value: 0, n: 0, row: k };
    g.value += v;
    g.n += 1;
    groups.set(key, g);
  }
  const list = [...groups.values()].sort((a, b) => b.value - a.value);
  for (const g of list) {
    if (g.n > 1) { g.label += " ×" + g.n; g.row = -1; }
    if (st.chartGroup === "pattern" && g.n === 1) g.label = R.label(g.row);
  }
  const head = list.slice(0, st.top);
  const rest = list.slice(st.top);
  if (rest.length) {
    head.push({ label: "others (" + rest.reduce((s, g) => s + g.n, 0) + " layers)",
      value: rest.reduce((s, g) => s + g.value, 0), n: 0, row: -1, other: true });
  }
  return head;
}

function ticks(max, log, min) {
  if (log) {
    const out = [];
    for (let p = Math.floor(Math.log10(min)); p <= Math.ceil(Math.log10(max)); p++) out.push(10 ** p);
    return out;
  }
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => raw <= s) || mag * 10;
  const out = [];
  for (let v = 0; v <= max * 1.0001; v += step) out.push(v);
  return out;
}

DRAWERS.charts = (view, payload) => {
  const st = view.state;
  if (payload && !view.chartInit) { st.top = payload.top || 10; st.log = !!payload.log; view.chartInit = true; }
  const box = h("div", { class: "nb-chart" });
  const draw = () => {
    const bars = chartBars(view);
    const width = Math.max(480, Math.min(1400, (view.panel.clientWidth || 900) - 24));
    const longest = Math.max(...bars.map((b) => b.label.length), 8);
    const left = Math.min(Math.round(width * 0.42), 16 + longest * 6.9);
    const right = 70;
    const barH = 22;
    const top = 28;
    const height = top + bars.length * (barH + 6) + 34;
    const unit = st.metric === "flops" ? view.unit : METRICS[st.metric];
    const node = svg("svg", { width, height, viewBox: "0 0 " + width + " " + height, role: "img" });
    const what = st.chartGroup === "type" ? "per module type" : st.chartGroup === "pattern"
      ? "per layer, repeated blocks summed" : "per layer";
    const convention = st.metric === "flops" ? " (" + view.conv + " convention)" : "";
    node.append(svg("text", { x: 4, y: 16, class: "nb-title", text: METRICS[st.metric] + convention + ", " + what +
      " (own ops)" }));
    if (!bars.length) {
      node.append(svg("text", { x: 4, y: 44, text: "all zero" }));
      box.replaceChildren(node);
      return;
    }
    const max = Math.max(...bars.map((b) => b.value));
    const min = Math.max(1, Math.min(...bars.map((b) => b.value)));
    const plot = width - left - right;
    const lo = st.log ? Math.log10(10 ** Math.floor(Math.log10(min))) : 0;
    const hi = st.log ? Math.log10(10 ** Math.ceil(Math.log10(max * 1.0001))) : max;
    const x = (v) => left + (plot * ((st.log ? Math.log10(Math.max(v, 1)) : v) - lo)) / ((hi - lo) || 1);
    const axis = svg("g", { class: "nb-axis" });
    for (const t of ticks(max, st.log, min)) {
      if (st.log && (Math.log10(t) < lo || Math.log10(t) > hi)) continue;
      const tx = x(t);
      axis.append(svg("line", { x1: tx, x2: tx, y1: top - 4, y2: height - 28 }));
      axis.append(svg("text", { x: tx, y: height - 12, "text-anchor": "middle", text: tick(t) }));
    }
    node.append(axis);
    const total = st.metric === "out" ? bars.reduce((s, b) => s + b.value, 0)
      : num(view.rows.total[st.metric === "flops" ? "flops" : st.metric]);
    bars.forEach((b, i) => {
      const y = top + i * (barH + 6);
      const w = Math.max(1, x(b.value) - left);
      const clickable = b.row >= 0 && !b.other;
      const g = svg("g", { class: "nb-bargroup" + (clickable ? " nb-clickable" : "") });
      g.append(svg("title", { text: b.label + ": " + exact(b.value) + " " + unit +
        (total ? " (" + percent(b.value, total) + " of the model)" : "") + (clickable ? " — click for the derivation" : "") }));
      const shown = b.label.length > (left - 12) / 6.6 ? b.label.slice(0, Math.floor((left - 12) / 6.6) - 1) + "…" : b.label;
      g.append(svg("text", { x: left - 8, y: y + barH / 2 + 4, "text-anchor": "end", text: shown }));
      g.append(svg("rect", { x: left, y, width: w, height: barH, rx: 2, class: b.other ? "nb-otherbar" : "nb-barrect" }));
      g.append(svg("text", { x: left + w + 5, y: y + barH / 2 + 4, text: short(b.value) }));
      if (clickable) g.addEventListener("click", () => view.openDerivation(b.row));
      node.append(g);
    });
    box.replaceChildren(node);
  };
  const select = (options, key, title) => {
    const node = h("select", { title, onchange: (e) => { st[key] = e.target.value; draw(); } },
      options.map(([v, t]) => h("option", { value: v, text: t })));
    node.value = String(st[key]);
    return node;
  };
  const top = h("select", { title: "bars before the rest is summed into 'others'",
    onchange: (e) => { st.top = Number(e.target.value); draw(); } },
  [5, 10, 15, 20, 30, 50].map((v) => h("option", { value: String(v), text: String(v) })));
  top.value = String([5, 10, 15, 20, 30, 50].includes(st.top) ? st.top : 10);
  const tools = h("div", { class: "nb-bar-tools" },
    h("label", {}, "show", select([["flops", view.unit], ["params", "parameters"], ["macs", "MACs"],
      ["out", "activation memory"]], "metric", "what the bars measure")),
    h("label", {}, "group", select([["layer", "each layer"], ["pattern", "repeated blocks summed"],
      ["type", "module type"]], "chartGroup", "how layers are summed into bars")),
    h("label", {}, "top", top),
    h("label", { title: "logarithmic axis: small layers stay visible" },
      h("input", { type: "checkbox", checked: st.log, onchange: (e) => { st.log = e.target.checked; draw(); } }),
      "log scale"),
    h("span", { class: "nb-spacer" }), h("span", { class: "nb-note", text: "hover a bar for its value, click for its derivation" }));
  const wrap = h("div", {}, tools, h("div", { class: "nb-chart-scroll" }, box));
  requestAnimationFrame(draw);
  draw();
  if (window.ResizeObserver) {
    let last = 0;
    view.resize = new ResizeObserver(() => {
      const w = view.panel.clientWidth;
      if (Math.abs(w - last) > 8) { last = w; draw(); }
    });
    view.resize.observe(view.panel);
  }
  return wrap;
};
