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
