"use strict";
// The whole check: the folder walked, every source parsed and modelled, the rules run in
// their order (a rule skips what an earlier one claimed), the findings sorted.

const fs = require("node:fs");
const path = require("node:path");
const { readRegular, relative, settingsOf, startOf, walk } = require("./files");
const { bindings, classify, kindOf, requiresOf, resolve } = require("./modules");
const { Report } = require("./report");
const { index, parse, typeModule } = require("./syntax");
const { noExpiry } = require("./rules/expiry");
const { CHECK: MCP_CHECK, MCP_ENTRY, mcpMemoryProvider, mcpMemoryProviderTs } = require("./rules/mcp-provider");
const { clientRegistry, environmentClient, pendingAuthorizations } = require("./rules/oauth-state");
const { oldDatabase } = require("./rules/old-database");
const { refreshGrant } = require("./rules/refresh-grant");
const { shutdown } = require("./rules/shutdown");
const { notSwapped, oldModule, replacedFunctions, runtimeSwaps } = require("./rules/swap");
const { asyncWrappers, needlessAwaits, thenOnResult } = require("./rules/sync-calls");

/**
 * The rules on one file `(f, report, requiredBy)`, in passes: every file goes through a pass
 * before the next pass starts, and in a pass the rules run in this order, so a rule skips
 * what an earlier one claimed (a run-time swap before the functions it replaces, the refresh
 * grant before the expiry of the store it rewrites).
 */
const FILE_PASSES = [
  [runtimeSwaps, mcpMemoryProvider],
  [replacedFunctions, oldModule, notSwapped, asyncWrappers, thenOnResult, refreshGrant],
  [needlessAwaits, noExpiry, clientRegistry, pendingAuthorizations],
];

/**
 * Checks the server whose source is under `folder`. Returns `{ folder, files, tokenStorage,
 * ready, skipped, findings }`: `tokenStorage` says whether any token module or use of the
 * package was seen; `ready` is true only when every source parsed and nothing blocks;
 * `skipped` lists what was not read and why; each finding is `{ check, severity: "blocks" |
 * "costs", file, line, problem, why, fix, fixable, byHand, diff }`, `diff` a list of
 * `{ line, op: "-" | "+" | " ", text }`. Blocking findings come first.
 */
function doctor(folder = ".") {
  return check(folder).result;
}

function check(folder) {
  const root = path.resolve(folder);
  let st;
  try {
    st = fs.statSync(root);
  } catch {
    st = null;
  }
  if (!st?.isDirectory()) throw new Error(`${folder}: no such folder`);
  const skipped = [];
  const { sources, databases, typescript } = walk(root, skipped);
  const types = new Map();
  const files = [];
  const broken = [];
  for (const abs of sources) {
    const read = readRegular(abs);
    if (read.skip) {
      skipped.push({ file: relative(root, abs), reason: read.skip });
      continue;
    }
    const f = { abs, rel: relative(root, abs), src: read.text };
    parse(f, typeModule(root, abs, types));
    if (f.error) broken.push(f);
    else {
      index(f);
      files.push(f);
    }
  }
  const byPath = new Map(files.map((f) => [f.abs, f]));
  for (const f of files) {
    f.requires = requiresOf(f);
    for (const r of f.requires) r.target = resolve(byPath, f, r.spec);
  }
  for (const f of files) classify(f);
  for (const f of files) bindings(f);
  const requiredBy = (target) => files.filter((f) => f.requires.some((r) => r.target === target));

  const report = new Report();
  for (const f of broken) {
    f.starts = [0];
    report.add(f, "blocks", "parse-error", null, `does not parse: ${f.error.message} (line ${f.error.line}, column ${f.error.column})`,
      "Node cannot load this file, so the server does not start; and doctor cannot read what it does, so it cannot say the server is ready.",
      "Fix the syntax at that position, then run doctor again." +
        (/\bawait\s+$/.test(f.src.slice(0, f.error.pos)) ? " It is an `await` in a function that is not `async`: make the function that holds it (a route handler, say) async." : ""),
      { byHand: `fix the syntax at ${f.rel}:${f.error.line}:${f.error.column}`, line: f.error.line });
    report.findings.at(-1).column = f.error.column;
  }
  for (const pass of FILE_PASSES) {
    for (const f of files) {
      const users = requiredBy(f);
      for (const rule of pass) rule(f, report, users);
    }
  }
  shutdown(files, report);
  // TypeScript sources are not parsed; the MCP provider rule reads their tokens.
  const typed = [];
  for (const abs of typescript) {
    const read = readRegular(abs);
    if (!read.skip) typed.push({ abs, rel: relative(root, abs), src: read.text });
  }
  const mcp = mcpMemoryProviderTs(typed, report);
  const start = startOf(root, skipped);
  const settings = settingsOf(start.cwd, skipped, root);
  if (start.cwd !== root) settings.push(...settingsOf(root, skipped, root));
  environmentClient(files, settings.join("\n"), report);
  oldDatabase(root, files, databases, report, start, settings);

  const order = (a, b) => (a.severity === b.severity ? 0 : a.severity === "blocks" ? -1 : 1) || a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0);
  const findings = report.findings.sort(order);
  return {
    root,
    files: [...files, ...broken],
    findings,
    result: {
      folder: root,
      files: files.length + broken.length,
      tokenStorage: files.some((f) => f.kind || f.requires.some((r) => kindOf(r) || r.spec === MCP_ENTRY)) ||
        findings.some((f) => f.check === MCP_CHECK) || mcp.some((f) => f.imports.some((i) => i.spec === MCP_ENTRY)),
      ready: broken.length === 0 && !findings.some((f) => f.severity === "blocks"),
      skipped,
      findings,
    },
  };
}

module.exports = { doctor, check };
