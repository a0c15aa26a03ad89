// Rows: the report's rows decoded from the compact model (paths, tree, subtotals, repeated blocks).

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
