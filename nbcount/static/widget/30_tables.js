// Drawers, one per payload kind (nbcount/tabs.py): text, summary, conventions, generic tables.

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
