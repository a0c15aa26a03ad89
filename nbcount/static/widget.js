// nbcount's report widget (anywidget ES module). It draws the compact model built by nbcount/widget_data.py:
// no dependencies, no network, every name written as text (textContent), never as markup.
// Tabs: the Python side lists them (nbcount/tabs.py); each payload "kind" has a drawer below.

const ROW_H = 26;
const OVERSCAN = 12;
const SVG_NS = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------- small helpers
function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

const num = (v) => (typeof v === "number" ? v : Number(v));

function exact(v) {
  // thousands separators on the exact digits (large values travel as strings)
  const text = typeof v === "number" ? String(Math.round(v)) : String(v);
  const sign = text.startsWith("-") ? "-" : "";
  const digits = sign ? text.slice(1) : text;
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

const PREFIXES = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

function short(v) {
  const x = num(v);
  for (const [scale, prefix] of PREFIXES) {
    if (Math.abs(x) >= scale) {
      const y = x / scale;
      return (Math.abs(y) >= 100 ? y.toFixed(0) : Math.abs(y) >= 10 ? y.toFixed(1) : y.toFixed(2)) + " " + prefix;
    }
  }
  return exact(Math.round(x));
}

function tick(v) {
  // axis labels: 1 G, 2.5 G, 500 M (no trailing zeros)
  return short(v).replace(/\.0+ /, " ").replace(/(\.\d*?)0+ /, "$1 ");
}

function bytes(v) {
  const x = num(v);
  const units = [[2 ** 40, "TiB"], [2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"]];
  for (const [scale, unit] of units) if (x >= scale) return (x / scale).toFixed(x / scale >= 100 ? 0 : 1) + " " + unit;
  return exact(x) + " B";
}

function percent(part, whole) {
  if (!whole) return "";
  const p = (100 * part) / whole;
  return p >= 10 ? p.toFixed(0) + "%" : p >= 0.1 ? p.toFixed(1) + "%" : p > 0 ? "<0.1%" : "0%";
}

async function copyText(text, button) {
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch (error) {
    const area = h("textarea", { style: "position:fixed;left:-9999px;top:0" });
    area.value = text;
    document.body.append(area);
    area.select();
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    area.remove();
  }
  const old = button.dataset.label || button.textContent;
  button.dataset.label = old;
  button.textContent = done ? "Copied ✓" : "Copy failed";
  setTimeout(() => { button.textContent = old; }, 1500);
}

const mdEscape = (s) => String(s).replace(/([\\`*_{}\[\]()#+\-!|<>$~&])/g, "\\$1");
const csvCell = (s) => (/[",\n\r]/.test(String(s)) ? '"' + String(s).replace(/"/g, '""') + '"' : String(s));

// ---------------------------------------------------------------- the report model
class Rows {
  constructor(data, summary) {
    const r = data;
    const n = r.parent.length;
    this.n = n;
    this.parent = r.parent;
    this.types = r.types;
    this.type = r.type;
    this.shapes = r.shapes;
    this.shape = r.shape;
    this.raw = { params: r.params, macs: r.macs, flops: r.flops, out: r.out };
    this.self = { params: r.params.map(num), macs: r.macs.map(num), flops: r.flops.map(num), out: r.out.map(num) };
    this.rawIncl = { params: r.params.slice(), macs: r.macs.slice(), flops: r.flops.slice() };
    for (const [k, p, m, f] of r.incl) {
      this.rawIncl.params[k] = p;
      this.rawIncl.macs[k] = m;
      this.rawIncl.flops[k] = f;
    }
    this.incl = { params: this.rawIncl.params.map(num), macs: this.rawIncl.macs.map(num),
      flops: this.rawIncl.flops.map(num), out: this.self.out };
    this.call = new Array(n).fill(0);
    for (const [k, c] of r.call) this.call[k] = c;
    this.uncounted = new Map(r.uncounted);
    this.path = new Array(n);
    this.depth = new Array(n);
    this.children = Array.from({ length: n }, () => []);
    this.roots = [];
    for (let k = 0; k < n; k++) {
      const p = r.parent[k];
      const s = r.path[k];
      const parentPath = p >= 0 ? this.path[p] : null;
      this.path[k] = s.startsWith(".") ? (parentPath ? parentPath + s : s.slice(1)) : s;
      this.depth[k] = p >= 0 ? this.depth[p] + 1 : 0;
      if (p >= 0) this.children[p].push(k);
      else this.roots.push(k);
    }
    this.runs = r.runs.map((run) =>
      run[0] === -1 ? run.slice(1) : Array.from({ length: run[1] }, (_, i) => run[0] + i * run[2]));
    this.runOf = new Map();
    this.runs.forEach((run, i) => run.forEach((k) => this.runOf.set(k, i)));
    this.repeated = new Set(this.runs.map((run) => this.path[run[0]].replace(/\d+$/, "")));
    this.total = summary.totals;
  }

  typeName(k) { return this.types[this.type[k]]; }

  label(k) {
    let name = this.path[k] || "(root)";
    if (this.call[k]) name += "#" + this.call[k];
    if (/^\d+$/.test(this.path[k])) name += " (" + this.typeName(k) + ")";
    return name;
  }

  runLabel(i) {
    // h.0–h.11 ×12, as nbcount.subtotals.run_label; named blocks: encoder.layer_0–11 ×12
    const run = this.runs[i];
    const last = this.path[run[run.length - 1]];
    const name = last.slice(last.lastIndexOf(".") + 1);
    const end = /^\d+$/.test(name) ? last : name.match(/\d+$/)[0];
    return this.path[run[0]] + "–" + end + " ×" + run.length;
  }

  runValue(i, table, key) { return this.runs[i].reduce((sum, k) => sum + table[key][k], 0); }

  pattern(k) {
    // h.3.mlp.c_fc -> h.*.mlp.c_fc when h.0, h.1, ... are repeated blocks (nbcount.labels.repeat_pattern)
    const parts = this.path[k] ? this.path[k].split(".") : [];
    const out = parts.map((part, i) => {
      const stem = part.replace(/\d+$/, "");
      const prefix = parts.slice(0, i).join(".") + (i ? "." : "");
      return stem !== part && this.repeated.has(prefix + stem) ? stem + "*" : part;
    });
    return out.join(".");
  }

  ancestors(k) {
    const out = [];
    for (let p = this.parent[k]; p >= 0; p = this.parent[p]) out.push(p);
    return out;
  }
}

// ---------------------------------------------------------------- the widget
class View {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.data = model.get("model");
    this.summary = this.data.summary;
    this.rows = new Rows(this.data.rows, this.summary);
    this.unit = this.summary.convention.unit;
    this.conv = this.summary.convention.name;
    this.tabs = this.data.tabs;
    this.derivations = new Map(Object.entries(this.data.derivations || {}).map(([k, v]) => [Number(k), v]));
    this.focus = this.data.focus;
    this.state = { sort: null, desc: true, filter: "", minShare: 0, group: true, self: false,
      metric: "flops", chartGroup: this.rows.runs.length ? "pattern" : "layer", top: 10, log: false, picked: null };
    this.expanded = new Set();
    this.setDepth(this.data.depth === null || this.data.depth === undefined ? this.defaultDepth() : this.data.depth);
    this.waiting = new Map();
    this.onMessage = (msg) => this.receive(msg);
    model.on("msg:custom", this.onMessage);
    this.build();
  }

  destroy() { this.model.off("msg:custom", this.onMessage); if (this.resize) this.resize.disconnect(); }

  receive(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "derivation") {
      const p = msg.payload;
      this.derivations.set(p.row, p);
      if (this.active === "Derivation") this.show("Derivation");
    } else if (msg.type === "tab") {
      const tab = this.tabs.find((t) => t.title === msg.title);
      if (tab) tab.payload = msg.payload;
      if (this.active === msg.title) this.show(msg.title);
    }
  }

  request(content, key) {
    if (this.waiting.has(key)) return;
    this.waiting.set(key, Date.now());
    try { this.model.send(content); } catch (error) { /* no kernel: the drawer says so */ }
  }

  build() {
    const s = this.summary;
    const status = s.status === "complete" ? h("span", { class: "nb-status-ok", text: "complete" })
      : h("span", { class: "nb-status-low", text: "lower bound", title: "some ops have no counting rule" });
    const fig = (value, what, title) => h("span", { class: "nb-fig", title }, value + " ", h("span", { text: what }));
    const head = h("div", { class: "nb-head" },
      h("b", { text: s.model }),
      fig(exact(s.totals.params), "params", "unique parameters"),
      fig(short(s.totals.macs), "MACs", exact(s.totals.macs) + " multiply-accumulates"),
      fig(short(s.totals.flops), this.unit + " (" + this.conv + ")", exact(s.totals.flops) + " " + this.unit),
      status);
    this.tabBar = h("div", { class: "nb-tabs", role: "tablist" });
    this.panel = h("div", { class: "nb-panel", role: "tabpanel" });
    for (const tab of this.tabs) {
      const button = h("button", { class: "nb-tab", role: "tab", text: tab.title, onclick: () => this.show(tab.title) });
      button.dataset.tab = tab.title;
      this.tabBar.append(button);
    }
    this.root = h("div", { class: "nbcount-widget" }, head, this.tabBar, this.panel);
    this.el.append(this.root);
    this.show(this.tabs.some((t) => t.title === this.data.open) ? this.data.open : this.tabs[0].title);
  }

  show(title) {
    this.active = title;
    for (const b of this.tabBar.children) b.setAttribute("aria-selected", String(b.dataset.tab === title));
    const tab = this.tabs.find((t) => t.title === title);
    this.panel.replaceChildren();
    this.panel.scrollTop = 0;
    if (this.resize) { this.resize.disconnect(); this.resize = null; }
    if (!tab.payload) {
      this.request({ type: "tab", title }, "tab:" + title);
      this.panel.append(this.wait("Building the " + title + " tab…"));
      return;
    }
    const draw = DRAWERS[tab.payload.kind] || DRAWERS.text;
    this.panel.append(draw(this, tab.payload));
  }

  wait(text) {
    const note = h("p", { class: "nb-note", text });
    setTimeout(() => {
      if (note.isConnected) {
        note.textContent = text + " The kernel has not answered: run the cell again to reconnect this view.";
      }
    }, 8000);
    return note;
  }

  // ---------------------------------------------------------- layer tree state
  defaultDepth() {
    // expand level by level while the tree stays short (repeated blocks stay folded)
    let depth = 0;
    const deepest = Math.max(...this.rows.depth);
    for (let d = 1; d <= deepest; d++) {
      this.setDepth(d);
      if (this.visible().length > 40) break;
      depth = d;
    }
    return depth;
  }

  setDepth(depth) {
    this.depth = depth;
    this.expanded = new Set();
    const R = this.rows;
    for (let k = 0; k < R.n; k++) if (R.depth[k] < depth && R.children[k].length) this.expanded.add(k);
    R.runs.forEach((run, i) => { if (R.depth[run[0]] < depth) this.expanded.add("g" + i); });
  }

  figures() { return this.state.self ? this.rows.self : this.rows.incl; }

  matches() {
    const st = this.state;
    const text = st.filter.trim().toLowerCase();
    if (!text && !st.minShare) return null;
    const R = this.rows;
    const total = num(R.total.flops) || 1;
    const keep = new Set();
    for (let k = 0; k < R.n; k++) {
      const name = (R.label(k) + " " + R.typeName(k)).toLowerCase();
      if (text && !name.includes(text)) continue;
      if (st.minShare && R.incl.flops[k] / total < st.minShare) continue;
      keep.add(k);
      for (const a of R.ancestors(k)) keep.add(a);
    }
    return keep;
  }

  sortedChildren(list, grouped) {
    const st = this.state;
    if (!st.sort) return list;
    const fig = this.figures();
    const R = this.rows;
    const column = st.sort === "share" ? "flops" : st.sort;
    const value = (k) => {
      const run = grouped ? R.runOf.get(k) : undefined;
      return run === undefined ? fig[column][k] : R.runValue(run, fig, column); // a folded run sorts by its sum
    };
    const key = (k) => (st.sort === "layer" ? R.label(k) : st.sort === "type" ? R.typeName(k) : value(k));
    const sign = st.desc ? -1 : 1;
    return list.slice().sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return (x < y ? -1 : x > y ? 1 : a - b) * sign;
    });
  }

  visible() {
    // the rows as shown: a tree walk honouring expansion, grouping, filter and sort
    const R = this.rows;
    const keep = this.matches();
    const group = this.state.group && !keep;
    const out = [];
    const walk = (list, depth) => {
      for (const k of this.sortedChildren(list, group)) {
        if (keep && !keep.has(k)) continue;
        const run = group ? R.runOf.get(k) : undefined;
        if (run !== undefined) {
          if (R.runs[run][0] !== k) continue;
          out.push({ group: run, depth });
          if (this.expanded.has("g" + run)) {
            for (const m of R.runs[run]) {
              out.push({ row: m, depth: depth + 1 });
              if (this.expanded.has(m)) walk(R.children[m], depth + 2);
            }
          }
          continue;
        }
        out.push({ row: k, depth });
        if (keep || this.expanded.has(k)) walk(R.children[k], depth + 1);
      }
    };
    walk(R.roots, 0);
    return out;
  }
}

// ---------------------------------------------------------------- drawers, one per payload kind
const DRAWERS = {};

DRAWERS.text = (view, payload) => h("p", { class: "nb-note", text: payload.text || "(empty)" });

DRAWERS.summary = (view) => {
  const s = view.summary;
  const card = (k, v, x, title) => h("div", { class: "nb-card", title }, h("div", { class: "nb-k", text: k }),
    h("div", { class: "nb-v", text: v }), x ? h("div", { class: "nb-x", text: x }) : null);
  const cards = h("div", { class: "nb-cards" },
    card("parameters (unique)", short(s.totals.params), exact(s.totals.params),
      "every parameter tensor counted once"),
    card("MACs", short(s.totals.macs), exact(s.totals.macs), "multiply-accumulates, bias excluded"),
    card(view.unit + " — " + view.conv + " convention", short(s.totals.flops), exact(s.totals.flops),
      s.convention.description),
    card("status", s.status === "complete" ? "complete" : "lower bound",
      s.status === "complete" ? "every op had a counting rule" : "some ops were not counted: see Diagnostics"));
  const table = h("table", { class: "nb-table" },
    h("tbody", {}, s.items.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v })))));
  const findings = s.findings.length
    ? h("ul", { class: "nb-findings" }, s.findings.map(([kind, message]) =>
      h("li", {}, h("b", { text: kind + ": " }), message)))
    : h("p", { class: "nb-note", text: "No findings: nothing shared, unused or uncounted." });
  return h("div", {}, cards, h("div", { class: "nb-scroll-box", style: "max-height:420px" },
    table, h("h4", { text: "Findings", style: "margin:10px 0 4px" }), findings));
};

// ---- Layers: a virtualised tree table
const LAYER_COLUMNS = [
  { key: "layer", title: "layer", width: "minmax(170px, 2.4fr)" },
  { key: "type", title: "type", width: "minmax(80px, 1fr)" },
  { key: "shape", title: "output shape", width: "minmax(88px, 1fr)", nosort: true },
  { key: "params", title: "params", width: "minmax(66px, .9fr)", num: true },
  { key: "macs", title: "MACs", width: "minmax(66px, .9fr)", num: true },
  { key: "flops", title: "FLOPS", width: "minmax(70px, .9fr)", num: true },
  { key: "share", title: "share", width: "minmax(64px, .7fr)", num: true },
  { key: "out", title: "output", width: "minmax(64px, .7fr)", num: true, help: "bytes of the output tensors" },
];

DRAWERS.layers = (view) => {
  const R = view.rows;
  const st = view.state;
  const columns = LAYER_COLUMNS.map((c) => (c.key === "flops" ? { ...c, title: view.unit } : c));
  const template = columns.map((c) => c.width).join(" ");
  const total = num(R.total.flops);
  let items = [];
  const scroll = h("div", { class: "nb-scroll" });
  const body = h("div", { class: "nb-body" });
  scroll.append(body);
  const count = h("span", { class: "nb-note" });

  const cell = (text, cls, title) => h("div", { class: cls, title: title || text }, text);
  const drawRow = (item, i) => {
    const fig = view.figures();
    const depth = item.depth;
    let label; let type; let shape; let params; let macs; let flops; let out; let open; let hasKids; let exactOf;
    if (item.group !== undefined) {
      const run = R.runs[item.group];
      label = R.runLabel(item.group);
      type = R.typeName(run[0]);
      shape = R.shapes[R.shape[run[0]]];
      [params, macs, flops, out] = ["params", "macs", "flops", "out"].map((key) => R.runValue(item.group, fig, key));
      open = view.expanded.has("g" + item.group);
      hasKids = true;
      exactOf = (v) => exact(v);
    } else {
      const k = item.row;
      label = R.label(k);
      type = R.typeName(k);
      shape = R.shapes[R.shape[k]];
      const raw = view.state.self ? R.raw : { ...R.rawIncl, out: R.raw.out };
      [params, macs, flops, out] = ["params", "macs", "flops", "out"].map((key) => raw[key][k]);
      open = view.expanded.has(k);
      hasKids = R.children[k].length > 0;
      exactOf = (v) => exact(v);
    }
    const toggle = hasKids
      ? h("button", { class: "nb-toggle", text: open ? "▾" : "▸", title: open ? "collapse" : "expand",
        onclick: (event) => { event.stopPropagation(); toggleItem(item); } })
      : h("span", { class: "nb-leafpad" });
    const name = h("div", { class: "nb-name", style: "padding-left:" + (4 + 14 * depth) + "px", title: label },
      toggle, h("span", { class: "nb-label", text: label }));
    const share = h("div", { class: "nb-num nb-share", title: "share of the model's " + view.unit },
      h("i", { style: "width:" + Math.min(100, (100 * num(flops)) / (total || 1)).toFixed(1) + "%" }),
      h("span", { text: percent(num(flops), total) }));
    const row = h("div", {
      class: "nb-row" + (item.group !== undefined ? " nb-group" : "") + (item.row === st.picked ? " nb-picked" : ""),
      style: "grid-template-columns:" + template + ";top:" + i * ROW_H + "px",
      onclick: () => (item.group !== undefined ? toggleItem(item) : view.openDerivation(item.row)),
    }, name, cell(type, "nb-type"), cell(shape), cell(short(params), "nb-num", exactOf(params) + " parameters"),
    cell(short(macs), "nb-num", exactOf(macs) + " MACs"), cell(short(flops), "nb-num", exactOf(flops) + " " + view.unit),
    share, cell(bytes(out), "nb-num", exactOf(out) + " bytes of output"));
    row.dataset.row = item.group !== undefined ? "g" + item.group : String(item.row);
    if (item.row !== undefined && R.uncounted.has(item.row)) row.title = "not counted: " + R.uncounted.get(item.row);
    return row;
  };

  const paint = () => {
    const top = scroll.scrollTop;
    const height = scroll.clientHeight || 460;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const nodes = [];
    for (let i = first; i < last; i++) nodes.push(drawRow(items[i], i));
    body.replaceChildren(...nodes);
  };
  const refresh = () => {
    items = view.visible();
    body.style.height = items.length * ROW_H + "px";
    const shown = items.filter((item) => item.row !== undefined).length;
    const folded = items.filter((item) => item.group !== undefined && !view.expanded.has("g" + item.group)).length;
    count.textContent = exact(shown) + " of " + exact(R.n) + " rows shown" +
      (folded ? " + " + folded + " folded block" + (folded > 1 ? "s" : "") : "") +
      (view.state.self ? " · own costs (self)" : " · each row includes everything inside it");
    paint();
  };
  const toggleItem = (item) => {
    const key = item.group !== undefined ? "g" + item.group : item.row;
    if (view.expanded.has(key)) view.expanded.delete(key); else view.expanded.add(key);
    refresh();
  };
  scroll.addEventListener("scroll", () => window.requestAnimationFrame(paint));

  const header = h("div", { class: "nb-row nb-hdr", style: "grid-template-columns:" + template },
    columns.map((c) => {
      const arrow = st.sort === c.key ? (st.desc ? " ▼" : " ▲") : "";
      return h("div", {
        class: c.num ? "nb-num" : "", text: c.title + arrow, title: c.nosort ? c.title : "sort by " + c.title,
        onclick: () => {
          if (c.nosort) return;
          if (st.sort !== c.key) { st.sort = c.key; st.desc = c.num === true; } else if (st.desc === (c.num === true)) {
            st.desc = !st.desc;
          } else st.sort = null;
          view.show("Layers");
        },
      });
    }));
  header.dataset.role = "header";
  const foot = h("div", { class: "nb-row nb-foot", style: "grid-template-columns:" + template },
    h("div", { text: "total" }), h("div", {}), h("div", {}),
    cell(short(R.total.params), "nb-num", exact(R.total.params) + " unique parameters"),
    cell(short(R.total.macs), "nb-num", exact(R.total.macs) + " MACs"),
    cell(short(R.total.flops), "nb-num", exact(R.total.flops) + " " + view.unit), cell("100%", "nb-num"), h("div", {}));

  const deepest = Math.max(...R.depth);
  const depthSelect = h("select", { title: "expand every row down to this depth (collapsed rows keep their totals)",
    onchange: (e) => { view.setDepth(Number(e.target.value)); refresh(); } },
  Array.from({ length: deepest + 1 }, (_, d) => h("option", { value: String(d), text: String(d) })));
  depthSelect.value = String(Math.min(view.depth, deepest));
  const filter = h("input", { type: "search", placeholder: "filter: name or type", value: st.filter, size: 18,
    oninput: (e) => { st.filter = e.target.value; refresh(); } });
  const share = h("select", { title: "hide rows below this share of the model's " + view.unit,
    onchange: (e) => { st.minShare = Number(e.target.value); refresh(); } },
  [[0, "any"], [0.001, "≥ 0.1%"], [0.01, "≥ 1%"], [0.05, "≥ 5%"], [0.2, "≥ 20%"]].map(([v, t]) =>
    h("option", { value: String(v), text: t })));
  share.value = String(st.minShare);
  const check = (label, key, title) => h("label", { title },
    h("input", { type: "checkbox", checked: st[key], onchange: (e) => { st[key] = e.target.checked; refresh(); } }),
    label);
  const copy = (label, kind) => h("button", { text: label, title: "copy the rows shown as " + kind,
    onclick: (e) => copyText(layerExport(view, items, kind), e.target) });
  const tools = h("div", { class: "nb-bar-tools" },
    filter, h("label", {}, "share", share), h("label", {}, "depth", depthSelect),
    check("group repeats", "group", "fold repeated blocks (h.0–h.11) into one row"),
    check("own costs only", "self", "show each row's own ops instead of its subtotal"),
    h("span", { class: "nb-spacer" }), copy("Copy Markdown", "Markdown"), copy("Copy CSV", "CSV"));
  const grid = h("div", { class: "nb-grid nb-layers" }, h("div", { class: "nb-grid-inner" }, header, scroll, foot));
  const wrap = h("div", {}, tools, grid, h("div", { style: "margin-top:4px" }, count,
    h("span", { class: "nb-note", text: " · click a row for its derivation, ▸ to expand" })));
  refresh();
  return wrap;
};

function layerExport(view, items, kind) {
  const R = view.rows;
  const fig = view.state.self ? R.raw : { ...R.rawIncl, out: R.raw.out };
  const head = ["layer", "type", "output shape", "params", "MACs", view.unit + " (" + view.conv + ")", "output bytes"];
  const lines = items.map((item) => {
    if (item.group !== undefined) {
      const run = R.runs[item.group];
      const sums = ["params", "macs", "flops", "out"].map((key) => R.runValue(item.group, view.figures(), key));
      return [R.runLabel(item.group), R.typeName(run[0]), R.shapes[R.shape[run[0]]], ...sums.map(exact)];
    }
    const k = item.row;
    return [R.label(k), R.typeName(k), R.shapes[R.shape[k]], ...["params", "macs", "flops", "out"].map((key) =>
      exact(fig[key][k]))];
  });
  if (kind === "CSV") {
    const plain = (row) => row.map((v, i) => (i >= 3 ? String(v).replace(/,/g, "") : v));
    return [head, ...lines.map(plain)].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
  }
  const indent = items.map((item) => "\u00a0\u00a0".repeat(item.depth));
  return ["| " + head.map(mdEscape).join(" | ") + " |", "|---|---|---|---:|---:|---:|---:|",
    ...lines.map((r, i) => "| " + r.map((v, j) => (j === 0 ? indent[i] : "") + mdEscape(v)).join(" | ") + " |"),
  ].join("\n") + "\n";
}

// ---- Derivation: the steps of one row, fetched from the kernel on demand
View.prototype.openDerivation = function (row) {
  this.focus = row;
  this.state.picked = row;
  this.show("Derivation");
};

function mathNodes(formula) {
  // a Python formula as text: C_out*(C_in/g) -> C<sub>out</sub>·(C<sub>in</sub>/g); floor(x) -> ⌊x⌋
  const out = [];
  const stack = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)(\()?|(\*\*)|(\*)|(\/\/)|(\()|(\))|([^A-Za-z_*/()]+|\/)/g;
  let m;
  while ((m = re.exec(formula))) {
    if (m[1]) {
      if (m[2] && (m[1] === "floor" || m[1] === "ceil")) {
        stack.push(m[1] === "floor" ? "⌋" : "⌉");
        out.push(m[1] === "floor" ? "⌊" : "⌈");
      } else {
        const [base, ...rest] = m[1].split("_");
        if (base && rest.length) out.push(h("span", {}, base, h("sub", { text: rest.join(",") })));
        else out.push(m[1]);
        if (m[2]) { stack.push(")"); out.push("("); }
      }
    } else if (m[3]) out.push("^");
    else if (m[4]) out.push("·");
    else if (m[5]) out.push("/");
    else if (m[6]) { stack.push(")"); out.push("("); }
    else if (m[7]) out.push(stack.pop() || ")");
    else out.push(m[8]);
  }
  return h("span", { class: "nb-math" }, out);
}

DRAWERS.derivation = (view) => {
  const R = view.rows;
  const focus = view.focus;
  const payload = view.derivations.get(focus);
  const name = focus >= 0 ? R.label(focus) + " (" + R.typeName(focus) + ")" : "the totals";
  const results = h("div", { class: "nb-picker-list", style: "display:none" });
  const pick = (k) => { view.focus = k; view.state.picked = k >= 0 ? k : null; view.show("Derivation"); };
  const search = h("input", { type: "search", placeholder: "find a layer…", size: 22,
    oninput: (e) => {
      const text = e.target.value.trim().toLowerCase();
      results.replaceChildren();
      if (!text) { results.style.display = "none"; return; }
      let found = 0;
      for (let k = 0; k < R.n && found < 40; k++) {
        const label = R.label(k);
        if ((label + " " + R.typeName(k)).toLowerCase().includes(text)) {
          results.append(h("div", { text: label + " — " + R.typeName(k), onclick: () => pick(k) }));
          found++;
        }
      }
      results.style.display = found ? "block" : "none";
    } });
  const step = (delta) => () => pick(Math.min(R.n - 1, Math.max(0, (focus < 0 ? -1 : focus) + delta)));
  const tools = h("div", { class: "nb-bar-tools" },
    h("b", { text: name }),
    h("button", { text: "◀", title: "previous row", onclick: step(-1), disabled: focus <= 0 }),
    h("button", { text: "▶", title: "next row", onclick: step(1), disabled: focus >= R.n - 1 }),
    h("button", { text: "totals", title: "the derivation of the totals", onclick: () => pick(-1) }),
    h("span", { class: "nb-picker" }, search, results),
    h("span", { class: "nb-spacer" }),
    payload && payload.latex ? h("button", { text: "Copy LaTeX", title: "an aligned block for slides or papers",
      onclick: (e) => copyText(payload.latex, e.target) }) : null,
    payload && payload.text ? h("button", { text: "Copy text", onclick: (e) => copyText(payload.text, e.target) })
      : null);
  if (!payload) {
    view.request({ type: "derive", row: focus }, "derive:" + focus);
    return h("div", {}, tools, view.wait("Working out the derivation of " + name + "…"));
  }
  if (payload.error) return h("div", {}, tools, h("p", { class: "nb-note", text: payload.error }));
  const line = ([label, formula, substituted, value, note]) => {
    const rhs = h("div", { class: "nb-rhs" });
    if (formula) rhs.append(mathNodes(formula), h("span", { class: "nb-eq", text: " = " }));
    if (substituted && substituted !== formula) rhs.append(mathNodes(substituted), h("span", { class: "nb-eq", text: " = " }));
    rhs.append(h("b", { class: "nb-val", text: value }));
    if (note) rhs.append(h("div", { class: "nb-stepnote", text: note }));
    return [h("div", { class: "nb-steplabel", text: label + " =" }), rhs];
  };
  const sections = payload.sections.map((section) => h("div", {},
    h("h4", { text: section.title }), h("div", { class: "nb-steps" }, section.steps.flatMap(line))));
  return h("div", { class: "nb-deriv" }, tools, h("div", { class: "nb-scroll-box" }, sections));
};

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

// ---- Conventions: a compact matrix, the why one click away
DRAWERS.conventions = (view, payload) => {
  const cols = payload.columns;
  const why = h("div", { class: "nb-why" },
    h("p", { class: "nb-note", text: "Click a row to see why the tools disagree on it." }));
  const isDiff = (row, j) => {
    const ref = cols[j].unit === "MACs" ? num(row.ref[0]) : num(row.ref[1]);
    return num(row.values[j]) !== ref;
  };
  const explain = (row, tr) => {
    for (const other of tr.parentNode.children) other.classList.remove("nb-picked");
    tr.classList.add("nb-picked");
    const w = row.why;
    const parts = [h("h4", { text: row.label + " — " + row.type + (w.what ? " (" + w.what + ")" : "") })];
    if (w.rules.length) {
      parts.push(h("div", { text: "What each tool counts here:" }));
      parts.push(h("ul", {}, w.rules.map(([who, rule]) => h("li", {}, who ? h("b", { text: who + ": " }) : null, rule))));
    }
    if (w.defects.length) {
      parts.push(h("div", { text: "Known mistakes of the real tools (left out of their columns here):" }));
      parts.push(h("ul", {}, w.defects.map((d) => h("li", { text: d }))));
    }
    if (!w.rules.length && !w.defects.length) parts.push(h("p", { text: "Every tool agrees on this row." }));
    if (row.row >= 0) {
      parts.push(h("button", { text: "Open its derivation", onclick: () => view.openDerivation(row.row) }));
    }
    why.replaceChildren(...parts);
  };
  const head = h("tr", {}, h("th", { text: "layer" }),
    cols.map((c) => h("th", { class: "nb-num", title: c.description + "\nMirrors: " + c.source },
      c.name, h("span", { class: "nb-unit", text: c.unit }))));
  const body = payload.rows.map((row) => {
    const tr = h("tr", { class: "nb-click", title: row.type + " — click for why the tools disagree" },
      h("td", { text: row.label }),
      row.values.map((v, j) => h("td", { class: "nb-num" + (isDiff(row, j) ? " nb-diff" : ""),
        title: exact(v) + " " + cols[j].unit + " (" + cols[j].name + ")", text: short(v) })));
    tr.addEventListener("click", () => explain(row, tr));
    return tr;
  });
  const totalRow = { values: payload.total, ref: payload.ref_total };
  const foot = h("tfoot", {}, h("tr", {}, h("td", { text: "total" }),
    payload.total.map((v, j) => h("td", { class: "nb-num" + (isDiff(totalRow, j) ? " nb-diff" : ""),
      title: exact(v) + " " + cols[j].unit, text: short(v) }))));
  const table = h("table", { class: "nb-table nb-conv" }, h("thead", {}, head), h("tbody", {}, body), foot);
  const legend = h("p", { class: "nb-note" }, h("span", { class: "nb-legend" }),
    " differs from nbcount's own count in the same unit (MACs, or FLOPs). Repeated layers are folded (×n, summed); " +
    "hover a number for its exact value, a header for the tool's source.");
  return h("div", {}, legend, h("div", { class: "nb-matrix" }, table), why);
};

// ---- a generic table (any nbcount.table.Table from Python)
DRAWERS.table = (view, payload) => {
  const head = h("tr", {}, payload.columns.map((c) => h("th", { class: c.numeric ? "nb-num" : "", title: c.help || c.title,
    text: c.title })));
  const rows = payload.rows.map((cells, i) => h("tr", {}, cells.map((text, j) => h("td", {
    class: payload.columns[j].numeric ? "nb-num" : "", text,
    style: j === 0 && payload.depth.length ? "padding-left:" + (8 + 14 * payload.depth[i]) + "px" : null }))));
  const foot = payload.footer ? h("tfoot", {}, h("tr", {}, payload.footer.map((text, j) =>
    h("td", { class: payload.columns[j].numeric ? "nb-num" : "", text })))) : null;
  return h("div", {}, h("div", { class: "nb-scroll-box" },
    h("table", { class: "nb-table" }, h("thead", {}, head), h("tbody", {}, rows), foot)),
  payload.note ? h("p", { class: "nb-note", text: payload.note }) : null);
};

// ---------------------------------------------------------------- anywidget entry point
function hideFallback(key) {
  // the static copy printed before the widget (for nbconvert, GitHub): not needed once the widget is drawn
  if (!/^[0-9a-f]+$/.test(key || "")) return;
  let tries = 0;
  const look = () => {
    const found = document.querySelectorAll(".nbcount-key-" + key);
    found.forEach((node) => {
      const area = node.closest(".jp-OutputArea-child") || node;
      area.style.display = "none";
    });
    if (!found.length && tries++ < 20) setTimeout(look, 150);
  };
  look();
}

function render({ model, el }) {
  const view = new View(model, el);
  hideFallback(view.data.key);
  return () => view.destroy();
}

export default { render };
