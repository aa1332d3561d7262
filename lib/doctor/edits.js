"use strict";
// Edits as ranges of a file's source: a statement deleted, deletions that meet merged, the
// edits made on a text, and shown as diff lines (in a finding) or as a unified diff (--diff).

const { lineOf, statementRange } = require("./syntax");

/** Edits deleting a statement (see statementRange). */
const deletion = (f, stmt, options) => {
  const [start, end] = statementRange(f, stmt, options);
  return { start, end, text: "" };
};

/** Deletions of whole statements may meet (a statement and the comments above the next): they are kept apart by their ranges. */
function mergeDeletions(edits) {
  const sorted = [...edits].sort((a, b) => a.start - b.start || a.end - b.end);
  const out = [];
  for (const e of sorted) {
    const last = out.at(-1);
    if (last && e.start < last.end) {
      if (e.text === "" && last.text === "") last.end = Math.max(last.end, e.end);
      else if (e.text === "" && e.end <= last.end) continue;
      else if (last.text === "" && e.start >= last.start) { e.start = last.end; if (e.end < e.start) e.end = e.start; out.push(e); }
      else throw new Error("overlapping edits");
    } else out.push(e);
  }
  return out;
}

/** The source with the edits made (sorted, not overlapping). */
function apply(src, edits) {
  let out = "";
  let at = 0;
  for (const e of [...edits].sort((a, b) => a.start - b.start || a.end - b.end)) {
    if (e.start < at) throw new Error(`overlapping edits at offset ${e.start}`);
    out += src.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + src.slice(at);
}

/** A text's lines, each with its newline (the last may have none). */
const linesOf = (t) => t.match(/[^\n]*\n|[^\n]+$/g) ?? [];

/**
 * The changed blocks of lines between a file and its edited text: `{ from, old, new, before,
 * after }` with `from` the first old line (1-based), `old` and `new` arrays of lines (each with
 * its newline, if it has one), `before` and `after` the unchanged lines around them.
 */
function changedBlocks(f, edits) {
  const sorted = [...edits].sort((a, b) => a.start - b.start || a.end - b.end);
  const groups = [];
  for (const e of sorted) {
    const first = lineOf(f, e.start);
    const last = e.end > e.start && f.src[e.end - 1] === "\n" ? lineOf(f, e.end - 1) : lineOf(f, e.end);
    const g = groups.at(-1);
    if (g && first <= g.last + 1) {
      g.last = Math.max(g.last, last);
      g.edits.push(e);
    } else groups.push({ first, last, edits: [e] });
  }
  const blocks = [];
  for (const g of groups) {
    const from = f.starts[g.first - 1];
    const to = f.starts[g.last] ?? f.src.length;
    const oldLines = linesOf(f.src.slice(from, to));
    const newLines = linesOf(apply(f.src.slice(from, to), g.edits.map((e) => ({ ...e, start: e.start - from, end: e.end - from }))));
    // Lines that stay the same at either end are context, not change.
    let head = 0;
    while (head < oldLines.length && head < newLines.length && oldLines[head] === newLines[head]) head++;
    let tail = 0;
    while (tail < oldLines.length - head && tail < newLines.length - head && oldLines.at(-1 - tail) === newLines.at(-1 - tail)) tail++;
    blocks.push({
      from: g.first + head,
      old: oldLines.slice(head, oldLines.length - tail),
      new: newLines.slice(head, newLines.length - tail),
      before: head ? oldLines[head - 1] : null,
      after: tail ? oldLines[oldLines.length - tail] : null,
    });
  }
  return blocks.filter((b) => b.old.length || b.new.length);
}

/** A finding's edits as diff lines: `{ line, op: "-" | "+" | " ", text }`, numbered as in the file. */
function diffLines(edits) {
  if (!edits.length) return [];
  const f = edits[0].f;
  const out = [];
  const bare = (t) => t.replace(/\r?\n$/, "").trimEnd();
  for (const b of changedBlocks(f, edits)) {
    if (!b.old.length && b.after !== null) {
      for (const text of b.new) out.push({ op: "+", text: bare(text) });
      out.push({ line: b.from, op: " ", text: bare(b.after) });
      continue;
    }
    if (!b.old.length && b.before !== null) out.push({ line: b.from - 1, op: " ", text: bare(b.before) });
    b.old.forEach((text, k) => out.push({ line: b.from + k, op: "-", text: bare(text) }));
    for (const text of b.new) out.push({ op: "+", text: bare(text) });
  }
  return out;
}

/** A unified diff (as `diff -u`, paths a/… and b/…, 3 lines of context) of the edits of one file. */
function unifiedDiff(f, edits) {
  const oldLines = linesOf(f.src);
  const blocks = changedBlocks(f, edits);
  const hunks = [];
  let shift = 0;
  for (const b of blocks) {
    const at = b.from - 1; // 0-based old line
    const h = hunks.at(-1);
    const entry = { at, b, newAt: at + shift };
    shift += b.new.length - b.old.length;
    if (h && at - h.end <= 6) {
      h.blocks.push(entry);
      h.end = at + b.old.length;
    } else hunks.push({ blocks: [entry], start: at, end: at + b.old.length });
  }
  const out = [`--- a/${f.rel}`, `+++ b/${f.rel}`];
  const emit = (sign, line) => {
    out.push(sign + line.replace(/\n$/, ""));
    if (!line.endsWith("\n")) out.push("\\ No newline at end of file");
  };
  for (const h of hunks) {
    const oFrom = Math.max(0, h.start - 3);
    const oTo = Math.min(oldLines.length, h.end + 3);
    const nFrom = oFrom + (h.blocks[0].newAt - h.blocks[0].at);
    const body = [];
    let i = oFrom;
    let added = 0;
    let removed = 0;
    const saved = out.length;
    for (const { at, b } of h.blocks) {
      for (; i < at; i++) emit(" ", oldLines[i]);
      for (const line of b.old) emit("-", line);
      for (const line of b.new) emit("+", line);
      i += b.old.length;
      added += b.new.length;
      removed += b.old.length;
    }
    for (; i < oTo; i++) emit(" ", oldLines[i]);
    void body;
    const oCount = oTo - oFrom;
    const nCount = oCount - removed + added;
    const range = (from, count) => `${count === 0 ? from : from + 1}${count === 1 ? "" : `,${count}`}`;
    out.splice(saved, 0, `@@ -${range(oFrom, oCount)} +${range(nFrom, nCount)} @@`);
  }
  return `${out.join("\n")}\n`;
}

module.exports = { deletion, mergeDeletions, apply, diffLines, unifiedDiff };
