"use strict";
// `--fix` and `--diff`: the edits of every fixable finding, grouped by file, made on its text,
// parsed again, then written with a backup of each file (or only shown as a unified diff).

const fs = require("node:fs");
const { check } = require("./check");
const { apply, unifiedDiff } = require("./edits");
const { relative } = require("./files");
const { EDITS } = require("./report");
const { parseAs } = require("./syntax");

/**
 * The edits doctor knows, made: `{ result, changes, refused, error }`. `changes` lists each
 * changed file `{ file, backup, diff }` (a unified diff); with `write: false` nothing is
 * written (the `--diff` way). Every edited file is parsed (package.json: read as JSON)
 * before anything is written: if one does not parse, nothing is written and `error` says
 * which and where. A backup of each file (`file.bak`, or `file.bak.1`… when that exists) is
 * written before the file is replaced.
 */
function fix(folder = ".", { write = true } = {}) {
  const { findings, result } = check(folder);
  const fixable = findings.filter((f) => f.fixable);
  const refused = findings.filter((f) => !f.fixable && f.byHand);
  const byFile = new Map();
  for (const finding of fixable) {
    for (const e of finding[EDITS]) {
      if (!byFile.has(e.f)) byFile.set(e.f, []);
      // Two findings may need the same edit (a name added to one require): it is made once.
      if (!byFile.get(e.f).some((x) => x.start === e.start && x.end === e.end && x.text === e.text)) byFile.get(e.f).push({ ...e, finding });
    }
  }
  const planned = [];
  for (const [f, edits] of byFile) {
    let text;
    try {
      text = apply(f.src, edits);
    } catch (err) {
      return { result, changes: [], refused, error: `${f.rel}: two edits overlap (${err.message}); nothing was written` };
    }
    if (text === f.src) continue;
    const problem = reparse(f, text);
    if (problem) {
      return { result, changes: [], refused, error: `${f.rel} would not parse after the edits (${problem}); nothing was written` };
    }
    planned.push({ f, text, diff: unifiedDiff(f, edits) });
  }
  const changes = [];
  for (const p of planned) {
    let backup = null;
    if (write) {
      backup = `${p.f.abs}.bak`;
      for (let k = 1; fs.existsSync(backup); k++) backup = `${p.f.abs}.bak.${k}`;
      const mode = fs.statSync(p.f.abs).mode & 0o7777;
      fs.copyFileSync(p.f.abs, backup, fs.constants.COPYFILE_EXCL);
      const temp = `${p.f.abs}.doctor-${process.pid}`;
      fs.writeFileSync(temp, p.text, { mode });
      fs.renameSync(temp, p.f.abs);
      backup = relative(result.folder, backup);
    }
    changes.push({ file: p.f.rel, backup, diff: p.diff, findings: [...new Set(byFile.get(p.f).map((e) => `${e.finding.check}${e.finding.line ? `:${e.finding.line}` : ""}`))] });
  }
  return { result, changes, refused, error: null };
}

/** Why `text`, f's edited source, does not parse (as f did), or null. */
function reparse(f, text) {
  if (f.json) {
    try {
      JSON.parse(text);
      return null;
    } catch (err) {
      return err.message;
    }
  }
  try {
    parseAs(text, f.sourceType, []);
    return null;
  } catch (err) {
    return `${err.message}`;
  }
}

module.exports = { fix };
