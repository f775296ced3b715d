// How numbers, money and times read on the page, and `el`, the one way the page makes DOM: every
// value lands as text, never as markup, so a model name or user tag cannot inject anything.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export function count(value) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 100_000 ? compact.format(value) : integer.format(value);
}

/** Dollars with as many places as a small amount needs: $1,234.56, $0.0123, $0.000042. */
export function money(value) {
  if (value === null || value === undefined || value === "") return "–";
  const amount = Number(value);
  if (amount === 0) return "$0";
  const places = Math.abs(amount) >= 1 ? 2 : Math.min(8, 2 - Math.floor(Math.log10(Math.abs(amount))) + 1);
  return `$${amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: places })}`;
}

/** A rate, with the places a small one needs: 1,234, 12.5, 0.25. */
export function rate(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 100) return count(value);
  return value.toLocaleString("en-US", { maximumFractionDigits: value >= 10 ? 1 : 2 });
}

export function percent(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return `${(value * 100).toFixed(value < 0.1 ? 2 : 1)}%`;
}

export function millis(value) {
  if (value === null || value === undefined) return "–";
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${integer.format(value)} ms`;
}

/** A UTC time: 2026-01-31 12:00:05 (the API's buckets are UTC too). */
export function utcTime(ms) {
  if (!Number.isFinite(ms)) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "");
}

export function ratio(part, whole) {
  return whole ? part / whole : null;
}
