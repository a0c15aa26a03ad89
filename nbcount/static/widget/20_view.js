// View: one widget on the page: header, tab bar, the visible tab, and the layer tree's state.

const choiceKey = (choices) => JSON.stringify(Object.entries(choices || {}).sort());

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
      // a lazy tab's payload, for the choices it was asked with (a tab keeps every variant it received)
      const tab = this.tabs.find((t) => t.title === msg.title);
      if (!tab) return;
      const key = choiceKey(msg.choices);
      tab.variants = tab.variants || new Map();
      tab.variants.set(key, msg.payload);
      if (key !== choiceKey(tab.choices)) return;
      tab.payload = msg.payload;
      if (this.active === msg.title) this.show(msg.title);
    }
  }

  choose(title, changes) {
    // a tab's own controls (the Roofline tab's hardware): a payload already received, or ask the kernel for one
    const tab = this.tabs.find((t) => t.title === title);
    tab.choices = { ...(tab.choices || {}), ...changes };
    const key = choiceKey(tab.choices);
    const known = tab.variants && tab.variants.get(key);
    if (known) {
      tab.payload = known;
      this.show(title);
      return true;
    }
    this.request({ type: "tab", title, choices: tab.choices }, "tab:" + title + ":" + key);
    return false;
  }

  keepChoices(title, choices, payload) {
    // the choices a payload was built with (the defaults, for the first one): switching back costs nothing
    const tab = this.tabs.find((t) => t.title === title);
    if (!tab || tab.choices) return;
    tab.choices = choices;
    tab.variants = tab.variants || new Map();
    tab.variants.set(choiceKey(choices), payload);
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
      this.request({ type: "tab", title, choices: tab.choices || {} }, "tab:" + title + ":" + choiceKey(tab.choices));
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
