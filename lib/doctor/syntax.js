"use strict";
// The source model, syntax half: each file parsed (acorn) as a script or an ES module, every
// node indexed with its parent, and the questions the rules ask of a tree: positions and
// lines, text, ancestors and descendants, references to a name, the statement that holds a
// node and the range that deletes it.

const fs = require("node:fs");
const path = require("node:path");
const acorn = require("acorn");
const { readRegular } = require("./files");

/** Whether a .js file is an ES module by its package.json ("type": "module"), looking up to root. */
function typeModule(root, abs, cache) {
  for (let dir = path.dirname(abs); ; dir = path.dirname(dir)) {
    if (!cache.has(dir)) {
      const read = fs.existsSync(path.join(dir, "package.json")) ? readRegular(path.join(dir, "package.json")) : null;
      let type = null;
      try {
        type = read?.text ? JSON.parse(read.text).type ?? "commonjs" : null;
      } catch {
        type = null;
      }
      cache.set(dir, type);
    }
    if (cache.get(dir)) return cache.get(dir) === "module";
    if (dir === root || path.dirname(dir) === dir) return false;
  }
}

const PARSE_OPTIONS = { ecmaVersion: "latest", allowHashBang: true, locations: true };

/** The tree of a source, as a script (CommonJS) or a module; throws acorn's SyntaxError. */
function parseAs(src, sourceType, comments) {
  return acorn.parse(src, sourceType === "module"
    ? { ...PARSE_OPTIONS, sourceType, allowAwaitOutsideFunction: true, onComment: comments }
    : { ...PARSE_OPTIONS, sourceType, allowReturnOutsideFunction: true, onComment: comments });
}

/** Parses f: sets f.ast, f.sourceType and f.comments, or f.error = { line, column, message }. */
function parse(f, isModuleByPackage) {
  const tries = /\.mjs$/.test(f.abs) ? ["module"] : /\.cjs$/.test(f.abs) ? ["script"] : isModuleByPackage ? ["module"] : ["script", "module"];
  let first;
  for (const sourceType of tries) {
    const comments = [];
    try {
      f.ast = parseAs(f.src, sourceType, comments);
      f.sourceType = sourceType;
      f.comments = comments;
      return;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      // Of the two readings, the one that got further says what is wrong.
      if (!first || (err.pos ?? 0) > first.pos) first = { pos: err.pos ?? 0, line: err.loc?.line ?? 1, column: (err.loc?.column ?? 0) + 1, message: err.message.replace(/ \(\d+:\d+\)$/, "") };
    }
  }
  f.error = first;
}

/** Every node of f's tree in source order, each with `parent`. */
function index(f) {
  f.nodes = [];
  (function visit(node, parent) {
    node.parent = parent;
    f.nodes.push(node);
    for (const key of Object.keys(node)) {
      if (key === "parent" || key === "loc") continue;
      const value = node[key];
      if (Array.isArray(value)) {
        for (const child of value) if (child && typeof child.type === "string" && child !== node) visit(child, node);
      } else if (value && typeof value.type === "string" && value !== node && !(key === "value" && node.shorthand && value === node.key)) {
        visit(value, node);
      }
    }
  })(f.ast, null);
  f.starts = [0];
  for (let i = 0; i < f.src.length; i++) if (f.src[i] === "\n") f.starts.push(i + 1);
}

// ---- Positions and text ------------------------------------------------------------------

function lineOf(f, pos) {
  let lo = 0;
  let hi = f.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (f.starts[mid] <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
const lineStart = (f, pos) => f.starts[lineOf(f, pos) - 1];
/** The offset after the newline that ends the line of pos (or the end of the source). */
const lineEnd = (f, pos) => {
  const nl = f.src.indexOf("\n", pos);
  return nl < 0 ? f.src.length : nl + 1;
};
const indentAt = (f, pos) => /^[ \t]*/.exec(f.src.slice(lineStart(f, pos)))[0];
const textOf = (f, node) => f.src.slice(node.start, node.end);
const isFunction = (n) => n && /^(?:FunctionDeclaration|FunctionExpression|ArrowFunctionExpression)$/.test(n.type);
const within = (node, outer) => node.start >= outer.start && node.end <= outer.end;
const ancestors = function* (node) {
  for (let n = node.parent; n; n = n.parent) yield n;
};
const enclosingFunction = (node) => [...ancestors(node)].find(isFunction) ?? null;
const descendants = (f, node) => f.nodes.filter((n) => n !== node && within(n, node));

/** Whether an Identifier is a reference to a variable (not a property name or a label). */
function isReference(id) {
  const p = id.parent;
  if (!p) return true;
  if ((p.type === "MemberExpression" || p.type === "PropertyDefinition" || p.type === "MethodDefinition") && (p.property ?? p.key) === id && !p.computed) return false;
  if (p.type === "Property" && p.key === id && !p.computed && !p.shorthand) return false;
  if (/^(?:LabeledStatement|BreakStatement|ContinueStatement)$/.test(p.type)) return false;
  if ((p.type === "ImportSpecifier" && p.imported === id && p.local !== id) || (p.type === "ExportSpecifier" && p.exported === id && p.local !== id)) return false;
  return true;
}
const references = (f, name, inside = null) =>
  f.nodes.filter((n) => n.type === "Identifier" && n.name === name && isReference(n) && (!inside || within(n, inside)));

/** The statement of a list (a block's, a program's, a switch case's) that holds node. */
function statementOf(node) {
  for (let n = node; n.parent; n = n.parent) {
    if (/^(?:Program|BlockStatement|StaticBlock)$/.test(n.parent.type) || n.parent.type === "SwitchCase") return n;
  }
  return null;
}

/**
 * The range that deletes a statement: its whole lines when it has them alone (with the
 * line comments right above it, which speak of it, and a comment after it on its last line),
 * else just its text.
 */
function statementRange(f, stmt, { withComments = true } = {}) {
  const before = f.src.slice(lineStart(f, stmt.start), stmt.start);
  const end = lineEnd(f, stmt.end);
  const after = f.src.slice(stmt.end, end);
  if (before.trim() !== "" || !/^\s*(?:\/\/.*)?\s*$/.test(after)) return [stmt.start, stmt.end];
  let start = lineStart(f, stmt.start);
  if (withComments) {
    for (let line = lineOf(f, start) - 1; line >= 1; line--) {
      const text = f.src.slice(f.starts[line - 1], f.starts[line] ?? f.src.length);
      if (!/^\s*\/\/.*\s*$/.test(text)) break;
      start = f.starts[line - 1];
    }
  }
  // Between two blank lines (or at the top of the file), one of them goes too.
  const blank = (from) => /^[ \t]*\r?\n/.test(f.src.slice(from, lineEnd(f, from)));
  if ((start === 0 || blank(f.starts[lineOf(f, start) - 2])) && end < f.src.length && blank(end)) return [start, lineEnd(f, end)];
  return [start, end];
}

module.exports = { typeModule, parseAs, parse, index, lineOf, lineStart, lineEnd, indentAt, textOf, isFunction, within, ancestors, enclosingFunction, descendants, isReference, references, statementOf, statementRange };
