"use strict";
// The report: findings as the rules add them (each with its edits and their diff, and the
// ranges a rule has claimed so that no other rule reports them again), and the findings as
// text for the command line. The JSON output is the result object itself.

const { diffLines } = require("./edits");
const { lineOf } = require("./syntax");

const EDITS = Symbol("edits");

class Report {
  constructor() {
    this.findings = [];
    this.claimed = new Map(); // rel → [start, end][]
  }
  /** A finding; `edits` ([{ f, start, end, text }]) when doctor can make the edit, `byHand` guidance when it cannot. */
  add(f, severity, check, pos, problem, why, fix, { edits = [], byHand = null, line = null } = {}) {
    const finding = { check, severity, file: f.rel, line: line ?? (pos === null ? null : lineOf(f, pos)), problem, why, fix, fixable: edits.length > 0 && !byHand, byHand, diff: [] };
    Object.defineProperty(finding, EDITS, { value: byHand ? [] : edits.map((e) => ({ f, ...e })) });
    finding.diff = diffLines(finding[EDITS]);
    this.findings.push(finding);
    return finding;
  }
  claim(f, start, end) {
    if (!this.claimed.has(f.rel)) this.claimed.set(f.rel, []);
    this.claimed.get(f.rel).push([start, end]);
  }
  isClaimed(f, node) {
    return (this.claimed.get(f.rel) ?? []).some(([s, e]) => node.start >= s && node.end <= e);
  }
}

const SEVERITY_TITLES = { blocks: "Stops the swap from working", costs: "Costs you" };

/** A diff's lines as printed: a deletion longer than 8 lines is shortened. */
function printedDiff(diff) {
  const out = [];
  for (let k = 0; k < diff.length;) {
    let run = 0;
    while (k + run < diff.length && diff[k + run].op === "-" && (run === 0 || diff[k + run].line === diff[k + run - 1].line + 1)) run++;
    if (run > 8) {
      out.push(...diff.slice(k, k + 4), { op: "…", text: `(${run - 6} more lines)` }, ...diff.slice(k + run - 2, k + run));
      k += run;
    } else if (run > 0) {
      out.push(...diff.slice(k, k + run));
      k += run;
    } else out.push(diff[k++]);
  }
  return out;
}

/** The findings as text: `file:line: problem`, why, the fix and its diff, grouped by severity. */
function format(result, shownFolder = result.folder) {
  const where = shownFolder === "." ? "the current folder" : shownFolder;
  const out = [`native-token-storage doctor: read ${result.files} file${result.files === 1 ? "" : "s"} in ${where}`];
  if (result.skipped.length) {
    out.push("", `Skipped (${result.skipped.length})`);
    for (const s of result.skipped) out.push(`  ${s.file}: ${s.reason}`);
  }
  for (const severity of ["blocks", "costs"]) {
    const group = result.findings.filter((f) => f.severity === severity);
    if (!group.length) continue;
    out.push("", `${SEVERITY_TITLES[severity]} (${group.length})`);
    for (const f of group) {
      out.push("", `${f.file}${f.line ? `:${f.line}` : ""}: ${f.problem}`, `  ${f.why}`, `  Fix: ${f.fix}`);
      if (f.byHand) out.push(`  By hand (doctor --fix does not make this edit): ${f.byHand}.`);
      const diff = printedDiff(f.diff);
      const width = String(Math.max(0, ...diff.map((d) => d.line ?? 0))).length;
      for (const d of diff) out.push(`    ${String(d.op === "+" || d.op === "…" ? "" : d.line ?? "").padStart(width)} ${d.op} ${d.text}`.trimEnd());
    }
  }
  const count = (severity) => result.findings.filter((f) => f.severity === severity).length;
  const fixable = result.findings.filter((f) => f.fixable).length;
  out.push("", result.findings.length === 0
    ? "Nothing found: the server is ready for native-token-storage."
    : `${count("blocks")} stop${count("blocks") === 1 ? "s" : ""} the swap from working, ${count("costs")} cost${count("costs") === 1 ? "s" : ""} you` +
      (fixable ? `; doctor --fix makes ${fixable === result.findings.length ? "all" : fixable} of these edits (--diff shows them first).` : ". Make the edits, then run doctor again."));
  return `${out.join("\n")}\n`;
}

module.exports = { EDITS, Report, format };
