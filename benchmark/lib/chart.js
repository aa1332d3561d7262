"use strict";
// The chart beside RESULTS.md: for each pairing of ours with a peer, one horizontal bar per
// operation and store size, its length the speed ratio (the peer's time per call / ours) on a
// log scale around a line at 1×: right of it (green) ours is faster, left (red) slower.
// Plain SVG built from strings: no package, no service.
const { OPS } = require("./workloads");
const { fmt, sizeLabel } = require("./targets");

// ours, the peer, the panel's title.
const PAIRS = [
  ["ours-memory", "map-original", "memory store vs the original Map module"],
  ["ours-memory", "map", "memory store vs the Maps made to follow the contract"],
  ["ours-sqlite", "better-sqlite3", "SQLite store vs better-sqlite3 (cached statements, one transaction per store)"],
  ["ours-sqlite", "sqlite3-async", "SQLite store vs async sqlite3"],
  ["ours-postgres", "pg", "PostgreSQL, sync calls vs pg (one round trip per call, awaited)"],
  ["ours-postgres-promise", "pg", "PostgreSQL, `/promises` vs pg (one round trip per call, awaited)"],
];
const MEASURES = [
  ...Object.entries(OPS).map(([name, op]) => ({ label: op.label, value: (r) => r.ops[name]?.us })),
  { label: "cleanup, 10% expired", value: (r) => r.cleanup?.totalMs },
];

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const SHADES = [
  { faster: "#2e7d32", slower: "#c62828" },
  { faster: "#81c784", slower: "#ef9a9a" },
  { faster: "#1b5e20", slower: "#8e0000" },
];

function render(results, meta) {
  const at = (peer, size) => results.find((r) => r.peer === peer && r.size === size);
  const sizes = meta.opts.sizes;
  // The bars: panels of measures of sizes; a measure or panel without a number is left out.
  const panels = [];
  for (const [ours, peer, title] of PAIRS) {
    const groups = [];
    for (const m of MEASURES) {
      const bars = [];
      sizes.forEach((size, i) => {
        const o = at(ours, size);
        const p = at(peer, size);
        const a = o && m.value(o);
        const b = p && m.value(p);
        if (a > 0 && b > 0) bars.push({ size, shade: SHADES[i % SHADES.length], ratio: b / a, ours: a, peer: b });
      });
      if (bars.length) groups.push({ label: m.label, bars });
    }
    if (groups.length) panels.push({ title, ours: meta.peers[ours].label, peer: meta.peers[peer].label, groups });
  }

  const ratios = panels.flatMap((p) => p.groups.flatMap((g) => g.bars.map((b) => b.ratio)));
  const lo = Math.min(-1, Math.floor(Math.log10(Math.min(1, ...ratios))));
  const hi = Math.max(1, Math.ceil(Math.log10(Math.max(1, ...ratios))));
  const W = 960;
  const LABEL_W = 230;
  const X0 = LABEL_W + 10;
  const X1 = W - 70;
  const x = (ratio) => X0 + ((Math.log10(ratio) - lo) / (hi - lo)) * (X1 - X0);
  const BAR = 13;
  const GAP = 6;
  const out = [];
  let y = 0;
  const text = (tx, ty, s, attrs = "") => out.push(`<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" ${attrs}>${esc(s)}</text>`);

  y += 24;
  text(10, y, "Ours vs each peer, per operation: how many times faster ours is (the peer's time per call / ours)", 'font-size="15" font-weight="bold"');
  y += 18;
  text(10, y, `Log scale; right of the 1× line ours is faster (green), left of it slower (red). ${meta.date.slice(0, 10)}, ${meta.opts.full ? "npm run bench" : "a partial run"}; medians; the numbers: ${require("node:path").basename(meta.opts.out)}.`, 'font-size="12" fill="#444"');
  y += 16;
  sizes.forEach((size, i) => {
    const lx = 10 + i * 170;
    out.push(`<rect x="${lx}" y="${y}" width="12" height="10" fill="${SHADES[i % SHADES.length].faster}"/>`);
    out.push(`<rect x="${lx + 13}" y="${y}" width="12" height="10" fill="${SHADES[i % SHADES.length].slower}"/>`);
    text(lx + 30, y + 9, `${size.toLocaleString("en-US")} tokens`, 'font-size="12"');
  });
  y += 18;
  if (!panels.length) {
    y += 20;
    text(10, y, "No pairing of ours and a peer was measured in this run.", 'font-size="13"');
  }
  const axisTop = y + 12; // the scale's labels above the plot as well as below it
  y += 16;
  const plotTop = y;
  for (const panel of panels) {
    y += 22;
    text(10, y, panel.title, 'font-size="13" font-weight="bold"');
    y += 8;
    for (const g of panel.groups) {
      const h = g.bars.length * BAR;
      text(LABEL_W, y + h / 2 + 4, g.label, 'font-size="12" text-anchor="end"');
      for (const b of g.bars) {
        const faster = b.ratio >= 1;
        const from = x(Math.min(1, b.ratio));
        const to = x(Math.max(1, b.ratio));
        const tip = `${g.label}, ${sizeLabel(b.size)}: ours ${fmt(b.ours)}, ${panel.peer} ${fmt(b.peer)} (${g.label.startsWith("cleanup") ? "ms" : "µs"}): ${fmt(b.ratio)}×`;
        out.push(`<rect x="${from.toFixed(1)}" y="${y + 1}" width="${Math.max(1, to - from).toFixed(1)}" height="${BAR - 2}" fill="${faster ? b.shade.faster : b.shade.slower}"><title>${esc(tip)}</title></rect>`);
        const label = `${fmt(b.ratio)}× ${sizeLabel(b.size)}`;
        if (faster) text(to + 4, y + BAR - 3, label, 'font-size="10"');
        else text(from - 4, y + BAR - 3, label, 'font-size="10" text-anchor="end"');
        y += BAR;
      }
      y += GAP;
    }
  }
  y += 10;
  // The scale over the whole plot: a gridline per power of ten, the 1× line darker.
  const grid = [];
  for (let e = lo; e <= hi; e++) {
    const gx = x(10 ** e).toFixed(1);
    grid.push(`<line x1="${gx}" y1="${plotTop}" x2="${gx}" y2="${y}" stroke="${e === 0 ? "#000" : "#ddd"}" stroke-width="${e === 0 ? 1.5 : 1}"/>`);
    const tick = esc(`${Number((10 ** e).toPrecision(1)).toLocaleString("en-US", { maximumFractionDigits: 6 })}×`);
    for (const ty of [axisTop, y + 14]) grid.push(`<text x="${gx}" y="${ty}" font-size="11" text-anchor="middle">${tick}</text>`);
  }
  y += 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${y}" fill="#fff"/>`,
    ...grid,
    ...out,
    "</svg>",
    "",
  ].join("\n");
}

module.exports = { render, PAIRS };
