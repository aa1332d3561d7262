"use strict";
// Rules on the swap itself: token functions replaced or chosen at run time from
// TOKEN_STORAGE, the old sqlite3 token module still required, a Map-based token module that
// is not yet the package.

const { deletion } = require("../edits");
const { isRequire, kindOf } = require("../modules");
const { PACKAGE, SYNC_FUNCTIONS, SYNC_KINDS } = require("../names");
const { descendants, isReference, lineOf, references, textOf, within } = require("../syntax");
const { TRUTHY, firstMap, isModule, reexport } = require("./common");

/** Whether a node's subtree reads TOKEN_STORAGE (`process.env.TOKEN_STORAGE`, `env["TOKEN_STORAGE"]`) or one of `aliases`. */
function mentionsSetting(f, node, aliases = new Set()) {
  return [node, ...descendants(f, node)].some((n) =>
    (n.type === "MemberExpression" && ((!n.computed && n.property.name === "TOKEN_STORAGE") || (n.computed && n.property.value === "TOKEN_STORAGE"))) ||
    (n.type === "Identifier" && aliases.has(n.name) && isReference(n)));
}

/** `tokens.getAccessToken = …` and `Object.assign(tokens, …)` on a required token module. */
function assignments(f) {
  if (f.assigned) return f.assigned;
  f.assigned = [];
  for (const n of f.nodes) {
    if (n.type === "AssignmentExpression" && n.left.type === "MemberExpression" && !n.left.computed && n.left.object.type === "Identifier" &&
      SYNC_KINDS.has(f.objects.get(n.left.object.name)) && SYNC_FUNCTIONS.has(n.left.property.name)) {
      f.assigned.push({ node: n, what: textOf(f, n.left) });
    } else if (n.type === "CallExpression" && textOf(f, n.callee) === "Object.assign" && n.arguments[0]?.type === "Identifier" && SYNC_KINDS.has(f.objects.get(n.arguments[0].name))) {
      f.assigned.push({ node: n, what: n.arguments[0].name });
    }
  }
  return f.assigned;
}

/**
 * `if (process.env.TOKEN_STORAGE === "db") { … }` (or on a variable set from it) that swaps,
 * wraps or requires token functions at run time; a `TOKEN_STORAGE ? require(…) : require(…)`.
 */
function runtimeSwaps(f, report) {
  const aliases = new Map();
  for (const n of f.nodes) {
    if (n.type === "VariableDeclarator" && n.id.type === "Identifier" && n.init && mentionsSetting(f, n.init) && !descendants(f, n.init).some(isRequire)) aliases.set(n.id.name, n);
  }
  const names = new Set(aliases.keys());
  const swaps = (node) =>
    assignments(f).some((a) => within(a.node, node)) ||
    f.requires.some((r) => within(r.node, node) && kindOf(r) && kindOf(r) !== "promises");
  for (const s of f.nodes.filter((n) => n.type === "IfStatement")) {
    if ((s.parent.type === "IfStatement" && s.parent.alternate === s) || !mentionsSetting(f, s.test, names) || !swaps(s) || report.isClaimed(f, s)) continue;
    const used = [...aliases].filter(([name]) => references(f, name, s.test).length > 0);
    // An alias goes too when nothing else reads it.
    const gone = used.filter(([name, d]) => references(f, name).every((id) => within(id, s) || id === d.id) && d.parent.declarations.length === 1);
    const edits = [...gone.map(([, d]) => deletion(f, d.parent)), deletion(f, s)];
    const [from, to] = [lineOf(f, s.start), lineOf(f, s.end)];
    const db = [s.test, ...used.map(([, d]) => d.init)].some((n) => [n, ...descendants(f, n)].some((d) => d.type === "Literal" && d.value === "db"));
    report.add(f, "blocks", "runtime-swap", s.start,
      `the token functions are replaced at run time when TOKEN_STORAGE is set (lines ${from}-${to})`,
      "With the package swapped in, this block still takes the calls away from it" + (db ? " when TOKEN_STORAGE=db" : "") +
        `: the package is never called, and the async replacements return Promises. ${TRUTHY}`,
      `Delete ${gone.length ? "these lines" : `lines ${from}-${to}`}: native-token-storage reads TOKEN_STORAGE itself.` +
        (db ? " (Or, with the code left as it is, run with TOKEN_STORAGE=sqlite, which this block does not catch.)" : ""),
      { edits });
    report.claim(f, s.start, s.end);
    for (const [, d] of gone) report.claim(f, d.parent.start, d.parent.end);
  }
  // const tokens = process.env.TOKEN_STORAGE === "db" ? require("./utils/tokenStorageDB") : require("./utils/tokenStorage");
  for (const d of f.nodes.filter((n) => n.type === "VariableDeclarator" && n.init?.type === "ConditionalExpression")) {
    if (!mentionsSetting(f, d.init.test, names) || !descendants(f, d.init).some(isRequire) || report.isClaimed(f, d)) continue;
    report.add(f, "blocks", "runtime-swap", d.start, "the token module is chosen at run time from TOKEN_STORAGE",
      `With native-token-storage, TOKEN_STORAGE=db is its own setting, and the other module's async functions return Promises. ${TRUTHY}`,
      "Require the package whatever the setting:",
      isModule(f) ? { byHand: `import the package instead at line ${lineOf(f, d.start)}` } : { edits: [{ start: d.init.start, end: d.init.end, text: `require("${PACKAGE}")` }] });
    report.claim(f, d.start, d.end);
  }
}

function replacedFunctions(f, report) {
  for (const a of assignments(f)) {
    if (report.isClaimed(f, a.node)) continue;
    const stmt = a.node.parent.type === "ExpressionStatement" ? a.node.parent : null;
    report.add(f, "blocks", "runtime-swap", a.node.start, `${a.what} is replaced at run time`,
      `Every caller then gets the replacement, not native-token-storage; an async one returns a Promise. ${TRUTHY}`,
      "Delete the statement; the package's own functions are already synchronous and persistent:",
      stmt ? { edits: [deletion(f, stmt)] } : { byHand: `the assignment at line ${lineOf(f, a.node.start)} is part of a larger expression: remove it there` });
    report.claim(f, a.node.start, a.node.end);
  }
}

/** Requires of the old async sqlite3 token module. */
function oldModule(f, report) {
  for (const r of f.requires) {
    if (r.target?.kind !== "old-db" || report.isClaimed(f, r.node)) continue;
    const quote = f.src[r.literal.start];
    report.add(f, "blocks", "old-module", r.node.start, `requires the old sqlite3 token module (${r.target.rel})`,
      `Its functions return Promises where the server expects values. ${TRUTHY} It also opens a connection of its own to the database.`,
      `Require the package instead; once nothing requires ${r.target.rel}, delete it and \`npm uninstall sqlite3\` if nothing else uses it:`,
      { edits: [{ start: r.literal.start, end: r.literal.end, text: `${quote}${PACKAGE}${quote}` }] });
    report.claim(f, r.node.start, r.node.end);
  }
}

/** A Map-based token module that the server still requires: the swap itself is not made. */
function notSwapped(f, report, requiredBy) {
  if (!f.mapTokens || !requiredBy.length) return;
  report.add(f, "blocks", "not-swapped", firstMap(f).start, "the tokens are still kept in Maps: every restart logs every user out",
    `Required by ${requiredBy.map((r) => r.rel).join(", ")}. Replacing this file's content is the whole swap.`,
    "Replace the whole file with the package (callers stay as they are):",
    { edits: [{ start: 0, end: f.src.length, text: reexport(f, PACKAGE) }] });
}

module.exports = { runtimeSwaps, replacedFunctions, oldModule, notSwapped };
