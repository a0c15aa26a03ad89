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
  return h("div", { class: "nb-deriv" }, tools, h("div", { class: "nb-scroll-box" }, stepGrid(payload.sections)));
};

function stepLine([label, formula, substituted, value, note]) {
  // one step: label = formula = substituted numbers = value, its note below
  const rhs = h("div", { class: "nb-rhs" });
  if (formula) rhs.append(mathNodes(formula), h("span", { class: "nb-eq", text: " = " }));
  if (substituted && substituted !== formula) rhs.append(mathNodes(substituted), h("span", { class: "nb-eq", text: " = " }));
  rhs.append(h("b", { class: "nb-val", text: value }));
  if (note) rhs.append(h("div", { class: "nb-stepnote", text: note }));
  const name = /^[A-Za-z]+_[A-Za-z0-9_]+$/.test(label) ? mathNodes(label) : label; // N_out as N with "out" below
  return [h("div", { class: "nb-steplabel" }, name, " ="), rhs];
}

function stepGrid(sections) {
  // one grid for every section, so the labels of all sections share one column
  return h("div", { class: "nb-steps" }, sections.map((section) =>
    [h("h4", { class: "nb-section", text: section.title }), ...section.steps.flatMap(stepLine)]));
}
