// nbcount's report widget (anywidget ES module), in parts: nbcount/widget.py joins static/widget/*.js in
// name order into one module. It draws the compact model built by nbcount/widget_data.py: no dependencies,
// no network, every name written as text (textContent), never as markup.
// Shared helpers: DOM builders, number formats, copying.

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
