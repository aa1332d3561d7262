"use strict";
// `native-token-storage doctor [folder]`: reads a server's source and lists, with file and
// line, what stops the swap to native-token-storage from working ("blocks") and what costs
// the operator ("costs"), each with the edit to make. Each file is parsed (acorn) and every
// finding is a pattern of its syntax tree, so comments and strings are never read as code.
// `fix()` makes the edits it knows exactly: ranges of the source replaced, the rest of the
// text untouched, every edited file parsed again before anything is written. Nothing is run.

const fs = require("node:fs");
const path = require("node:path");
const acorn = require("acorn");

const PACKAGE = "native-token-storage";
const TOKEN_FUNCTIONS = [
  "storeAccessToken", "getAccessToken", "storeAuthorizationCode", "consumeAuthorizationCode", "getRefreshToken",
  "revokeRefreshToken", "deleteToken", "deleteUserTokens", "cleanupExpiredTokens", "getStats",
];
const CLIENT_FUNCTIONS = ["registerClient", "getClient", "verifyClient", "preRegisterClient", "getAllClients"];
/** The package's synchronous functions (the old modules' names, and what it adds). */
const SYNC_FUNCTIONS = new Set([
  ...TOKEN_FUNCTIONS, ...CLIENT_FUNCTIONS, "storeAccessTokens", "closeDB",
  "rotateRefreshToken", "storePendingAuthorization", "consumePendingAuthorization",
]);
/** Module kinds whose functions are (or, after the swap, will be) the package's synchronous ones. */
const SYNC_KINDS = new Set(["tokens", "old-db", "clients"]);
const SOURCE_FILE = /\.[cm]?js$/;
const TYPESCRIPT_FILE = /\.[cm]?ts$/;
const SKIPPED_FOLDERS = new Set(["node_modules", "dist", "build", "coverage"]);
/** Larger source or settings files are not read (a minified bundle, a file that is not what its name says). */
const LARGEST_FILE = 1 << 20;
/**
 * Names of a `Map` that holds logins waiting for the upstream (`openRouterAuths`,
 * `pendingAuthorizations`), not codes, tokens or clients, nor an MCP server's `sessions`.
 */
const PENDING_NAME = /pending|auth/i;
const NOT_PENDING_NAME = /client|token|code/i;
const EDITS = Symbol("edits");
const GLOBALS = new Set(["process", "console", "JSON", "Date", "Math", "Object", "Array", "String", "Number", "Boolean", "undefined", "require", "module", "Buffer", "URL"]);

// ---- Reading files safely ----------------------------------------------------------------

const KIND_OF_STAT = (st) =>
  st.isDirectory() ? "a folder" : st.isFIFO() ? "a named pipe" : st.isSocket() ? "a socket"
    : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "not a regular file";

/**
 * The text of a regular file of at most `limit` bytes, or `{ skip: reason }`: a folder, a
 * pipe, a device (a link to /dev/zero), a file too large or that cannot be read. The file is
 * opened non-blocking, so a named pipe with no writer cannot hang the read, and checked again
 * once open (fstat), so what is read is what was checked.
 */
function readRegular(abs, limit = LARGEST_FILE) {
  let st;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    return { skip: `cannot be read (${err.code ?? err.message})` };
  }
  if (!st.isFile()) return { skip: `${KIND_OF_STAT(st)}, not a file` };
  if (st.size > limit) return { skip: `larger than ${limit} bytes` };
  let fd;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    const open = fs.fstatSync(fd);
    if (!open.isFile()) return { skip: `${KIND_OF_STAT(open)}, not a file` };
    const buffer = Buffer.alloc(Math.min(open.size, limit) + 1);
    let length = 0;
    for (let n; length < buffer.length && (n = fs.readSync(fd, buffer, length, buffer.length - length, null)) > 0;) length += n;
    if (length > limit) return { skip: `larger than ${limit} bytes` };
    return { text: buffer.toString("utf8", 0, length) };
  } catch (err) {
    return { skip: `cannot be read (${err.code ?? err.message})` };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const relative = (from, to) => path.relative(from, to).split(path.sep).join("/") || ".";

/** Source files and tokens.db files under root, skipping dependencies, builds and dot-folders; what could not be read goes to `skipped`. */
function walk(root, skipped) {
  const sources = [];
  const databases = [];
  (function visit(dir) {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      skipped.push({ file: relative(root, dir), reason: `a folder that cannot be read (${err.code ?? err.message})` });
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !SKIPPED_FOLDERS.has(entry.name)) visit(abs);
      } else if (entry.name === "tokens.db") {
        databases.push(abs);
      } else if (TYPESCRIPT_FILE.test(entry.name) && !entry.name.endsWith(".d.ts")) {
        skipped.push({ file: relative(root, abs), reason: "TypeScript, which doctor does not parse: run it on the compiled JavaScript" });
      } else if (SOURCE_FILE.test(entry.name)) {
        sources.push(abs);
      }
    }
  })(root);
  return { sources, databases };
}

// ---- Parsing -----------------------------------------------------------------------------

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

// ---- What each file is -------------------------------------------------------------------

const isRequire = (n) =>
  n?.type === "CallExpression" && n.callee.type === "Identifier" && n.callee.name === "require" &&
  n.arguments.length === 1 && n.arguments[0].type === "Literal" && typeof n.arguments[0].value === "string";

/** The `require`s and `import`s of a file, with what each binds: `ns` (a whole module) and `picks` ([imported, local, node]). */
function requiresOf(f) {
  const found = [];
  for (const n of f.nodes) {
    let r = null;
    if (isRequire(n) || (n.type === "ImportExpression" && n.source.type === "Literal")) {
      const literal = n.type === "ImportExpression" ? n.source : n.arguments[0];
      r = { spec: literal.value, literal, node: n, ns: null, picks: [], reexport: false, pattern: null };
      let holder = n.parent;
      if (holder?.type === "AwaitExpression") holder = holder.parent;
      if (holder?.type === "VariableDeclarator" && holder.init && (holder.init === n || holder.init.argument === n)) {
        if (holder.id.type === "Identifier") r.ns = holder.id.name;
        else if (holder.id.type === "ObjectPattern") {
          r.pattern = holder.id;
          for (const p of holder.id.properties) {
            if (p.type === "Property" && !p.computed && p.key.type === "Identifier" && p.value.type === "Identifier") r.picks.push([p.key.name, p.value.name, p]);
          }
        }
        r.declaration = holder.parent;
      }
      if (holder?.type === "AssignmentExpression" && textOf(f, holder.left) === "module.exports") r.reexport = true;
    } else if (n.type === "ImportDeclaration") {
      r = { spec: n.source.value, literal: n.source, node: n, ns: null, picks: [], reexport: false, declaration: n };
      for (const s of n.specifiers) {
        if (s.type === "ImportSpecifier") r.picks.push([s.imported.name ?? s.imported.value, s.local.name, s]);
        else r.ns = s.local.name;
      }
    } else if ((n.type === "ExportAllDeclaration" || n.type === "ExportNamedDeclaration") && n.source) {
      r = { spec: n.source.value, literal: n.source, node: n, ns: null, picks: [], reexport: true };
    }
    if (r) {
      r.line = lineOf(f, n.start);
      r.topLevel = statementOf(n)?.parent?.type === "Program";
      found.push(r);
    }
  }
  return found;
}

/** A relative require's file among the scanned ones, or null. */
function resolve(files, from, spec) {
  if (!spec.startsWith(".")) return null;
  const base = path.resolve(path.dirname(from.abs), spec);
  for (const suffix of ["", ".js", ".cjs", ".mjs", "/index.js"]) {
    if (files.has(base + suffix)) return files.get(base + suffix);
  }
  return null;
}

/** The names among `names` that the file defines as functions (declarations, `x = function`, `exports.x =`, methods). */
function definitions(f, names) {
  const defined = new Set();
  for (const n of f.nodes) {
    if (n.type === "FunctionDeclaration" && n.id) defined.add(n.id.name);
    else if (n.type === "VariableDeclarator" && n.id.type === "Identifier" && isFunction(n.init)) defined.add(n.id.name);
    else if (n.type === "Property" && !n.computed && n.key.type === "Identifier" && isFunction(n.value)) defined.add(n.key.name);
    else if (n.type === "AssignmentExpression" && n.left.type === "MemberExpression" && !n.left.computed && /^(?:module\.)?exports$/.test(textOf(f, n.left.object))) defined.add(n.left.property.name);
  }
  return names.filter((name) => defined.has(name)).length;
}

/**
 * What a module is, to the code that requires it: "tokens" (a token module: the Map-based
 * one, a wrapper, or one that re-exports the package), "old-db" (the async sqlite3 module),
 * "clients" (a client registry), "promises" (the package's Promise API), or null.
 */
function kindOf(r) {
  if (r.target) return r.target.kind;
  return { [PACKAGE]: "tokens", [`${PACKAGE}/clients`]: "clients", [`${PACKAGE}/promises`]: "promises" }[r.spec] ?? null;
}

function classify(f, seen = new Set()) {
  if (f.kind !== undefined || seen.has(f)) return;
  seen.add(f);
  for (const r of f.requires) if (r.target) classify(r.target, seen);
  const reexport = f.requires.find((r) => r.reexport);
  const tokenDefinitions = definitions(f, TOKEN_FUNCTIONS);
  const hasMap = f.nodes.some((n) => n.type === "NewExpression" && n.callee.type === "Identifier" && n.callee.name === "Map");
  const sqlite3 = f.requires.some((r) => r.spec === "sqlite3");
  const exports = f.nodes.some((n) => (n.type === "MemberExpression" && textOf(f, n) === "module.exports") || /^Export/.test(n.type));
  const facade = tokenDefinitions >= 1 && exports && f.requires.some((r) => kindOf(r) === "tokens");
  f.mapClients = hasMap && definitions(f, CLIENT_FUNCTIONS) >= 2;
  f.mapTokens = hasMap && !sqlite3 && tokenDefinitions >= 3;
  f.kind = sqlite3 && tokenDefinitions >= 3 ? "old-db"
    : tokenDefinitions >= 3 || facade ? "tokens"
      : f.mapClients ? "clients"
        : reexport ? kindOf(reexport) : null;
  // Whether, once the swaps doctor knows are made, the module is the package (and so has all its functions).
  f.becomesPackage = f.mapTokens || (!facade && tokenDefinitions === 0 && reexport?.spec === PACKAGE);
}

/** The file's names bound to token or client modules: `objects` (name → kind) and `names` (local → { kind, imported, r }). */
function bindings(f) {
  f.objects = new Map();
  f.names = new Map();
  for (const r of f.requires) {
    const kind = kindOf(r);
    if (!kind) continue;
    if (r.ns) f.objects.set(r.ns, kind);
    for (const [imported, local] of r.picks) f.names.set(local, { kind, imported, r });
  }
}

/** `{ obj, name }` of a call's callee: `name(…)` or `obj.name(…)`, else null. */
function callee(call) {
  const c = call?.type === "CallExpression" ? call.callee : null;
  if (c?.type === "Identifier") return { obj: null, name: c.name };
  if (c?.type === "MemberExpression" && !c.computed && c.object.type === "Identifier") return { obj: c.object.name, name: c.property.name };
  return null;
}

/** The package function (its own name) that a call calls through a module the file requires, or null. */
function syncCall(f, call) {
  const c = callee(call);
  if (!c) return null;
  if (c.obj) return SYNC_KINDS.has(f.objects.get(c.obj)) && SYNC_FUNCTIONS.has(c.name) ? c.name : null;
  const bound = f.names.get(c.name);
  return bound && SYNC_KINDS.has(bound.kind) && SYNC_FUNCTIONS.has(bound.imported) ? bound.imported : null;
}
const syncCalls = (f, name) => f.nodes.filter((n) => n.type === "CallExpression" && syncCall(f, n) === name);

// ---- Findings ----------------------------------------------------------------------------

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

/** Edits deleting a statement (see statementRange). */
const deletion = (f, stmt, options) => {
  const [start, end] = statementRange(f, stmt, options);
  return { start, end, text: "" };
};

/** Whether the file is an ES module (its edits then import rather than require). */
const isModule = (f) => f.sourceType === "module";

/** The statement that binds `names` from `spec`. */
function binding(f, names, spec) {
  if (!isModule(f)) return `const { ${names.join(", ")} } = require("${spec}");`;
  const local = spec === PACKAGE ? "nativeTokenStorage" : "nativeTokenStorageClients";
  return `import ${local} from "${spec}";\nconst { ${names.join(", ")} } = ${local};`;
}

const TRUTHY = "A Promise is truthy, so `if (!getAccessToken(token))` lets every bearer token through.";

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

/** A module's whole content, when it becomes the package's `spec`. */
const reexport = (f, spec) => (isModule(f) ? `export * from "${spec}";\nexport { default } from "${spec}";\n` : `module.exports = require("${spec}");\n`);
const firstMap = (f) => f.nodes.find((n) => n.type === "NewExpression" && n.callee.type === "Identifier" && n.callee.name === "Map");

/** A Map-based token module that the server still requires: the swap itself is not made. */
function notSwapped(f, report, requiredBy) {
  if (!f.mapTokens || !requiredBy.length) return;
  report.add(f, "blocks", "not-swapped", firstMap(f).start, "the tokens are still kept in Maps: every restart logs every user out",
    `Required by ${requiredBy.map((r) => r.rel).join(", ")}. Replacing this file's content is the whole swap.`,
    "Replace the whole file with the package (callers stay as they are):",
    { edits: [{ start: 0, end: f.src.length, text: reexport(f, PACKAGE) }] });
}

/** `async` functions whose body is one call of the package's synchronous functions, and `promisify` of one. */
function asyncWrappers(f, report) {
  if (f.kind === "old-db") return;
  for (const fn of f.nodes.filter((n) => isFunction(n) && n.async)) {
    let expr = fn.body;
    if (fn.body.type === "BlockStatement") {
      const only = fn.body.body.length === 1 ? fn.body.body[0] : null;
      expr = only?.type === "ReturnStatement" ? only.argument : null;
    }
    const awaited = expr?.type === "AwaitExpression" ? expr : null;
    const call = awaited ? awaited.argument : expr;
    const name = call && syncCall(f, call);
    if (!name || report.isClaimed(f, fn)) continue;
    // `async` is where the function starts, or where its method does.
    const holder = fn.parent.type === "Property" && (fn.parent.method || fn.parent.kind !== "init") ? fn.parent : fn.parent.type === "MethodDefinition" ? fn.parent : fn;
    const at = f.src.indexOf("async", holder.start);
    const edits = [{ start: at, end: at + 5 + /^\s*/.exec(f.src.slice(at + 5))[0].length, text: "" }];
    if (awaited) edits.push({ start: awaited.start, end: awaited.argument.start, text: "" });
    report.add(f, "blocks", "async-wrapper", holder.start, `an async wrapper around the synchronous ${name}`,
      `It returns a Promise where the caller expects the value. ${TRUTHY}`, "Make the wrapper synchronous:", { edits });
    report.claim(f, fn.start, fn.end);
  }
  for (const n of f.nodes.filter((c) => c.type === "CallExpression" && /^(?:util\.)?promisify$/.test(textOf(f, c.callee)) && c.arguments.length === 1)) {
    const arg = n.arguments[0];
    const fake = { type: "CallExpression", callee: arg };
    if (!syncCall(f, fake) || report.isClaimed(f, n)) continue;
    report.add(f, "blocks", "async-wrapper", n.start, `promisify(${textOf(f, arg)}) waits for a callback that never comes`,
      `${callee(fake).name} is synchronous and takes no callback: the Promise never settles.`, "Call the function itself:",
      { edits: [{ start: n.start, end: n.end, text: textOf(f, arg) }] });
    report.claim(f, n.start, n.end);
  }
}

/** `.then(`, `.catch(` or `.finally(` on what one of the package's synchronous functions returns. */
function thenOnResult(f, report) {
  for (const m of f.nodes.filter((n) => n.type === "MemberExpression" && !n.computed && /^(?:then|catch|finally)$/.test(n.property.name))) {
    const name = syncCall(f, m.object);
    if (!name || m.parent.type !== "CallExpression" || report.isClaimed(f, m.object)) continue;
    report.add(f, "blocks", "then", m.object.start, `.${m.property.name}() on the result of the synchronous ${name}`,
      `${name} returns its value, not a Promise: the value has no ${m.property.name} method, so this throws a TypeError.`,
      "Use the value it returns, or, the smallest edit, wrap the call:",
      { edits: [{ start: m.object.start, end: m.object.start, text: "Promise.resolve(" }, { start: m.object.end, end: m.object.end, text: ")" }] });
    report.claim(f, m.object.start, m.object.end);
  }
}

/** `await` on one of the package's synchronous functions, one finding a file. */
function needlessAwaits(f, report) {
  const found = f.nodes.filter((n) => n.type === "AwaitExpression" && syncCall(f, n.argument) && !report.isClaimed(f, n));
  if (!found.length) return;
  report.add(f, "costs", "await", found[0].start, `${found.length === 1 ? "an await" : `${found.length} awaits`} of synchronous functions`,
    "The package's functions return their result, not a Promise: each await only defers the rest of the handler to a later tick. " +
      "A handler that is async only for them is better plain: Express 4 does not catch a rejected Promise, so a throw from the store becomes an unhandled rejection instead of a 500.",
    "Drop the await:", { edits: found.map((n) => ({ start: n.start, end: n.argument.start, text: "" })) });
}

/** Top-level statements of a client registry that pre-register a client from the environment. */
function environmentClients(f) {
  return f.ast.body.filter((s) =>
    !/^(?:FunctionDeclaration|VariableDeclaration|ImportDeclaration)$/.test(s.type) &&
    descendants(f, s).some((n) => n.type === "CallExpression" && callee(n)?.name === "preRegisterClient" && !callee(n).obj) &&
    mentionsEnvironment(f, s));
}
const mentionsEnvironment = (f, node) => descendants(f, node).some((n) => n.type === "MemberExpression" && textOf(f, n.object) === "process.env");

/** A module-level or inline Map of registered clients. */
function clientRegistry(f, report, requiredBy) {
  if (f.mapClients) {
    if (!requiredBy.length) return;
    const kept = environmentClients(f);
    // What the kept statements use must be theirs, the registry's or a global.
    const declared = new Set(kept.flatMap((s) => descendants(f, s)).filter((n) => n.type === "VariableDeclarator" || isFunction(n)).flatMap((n) => descendants(f, n.id ?? n).concat(n.id ?? []).concat(n.params ?? [])).filter((n) => n.type === "Identifier").map((n) => n.name));
    const foreign = kept.flatMap((s) => descendants(f, s)).filter((n) => n.type === "Identifier" && isReference(n) && !declared.has(n.name) && !GLOBALS.has(n.name) && !CLIENT_FUNCTIONS.includes(n.name));
    const env = kept.length ? ` It also pre-registers a client from the environment (line ${kept.map((s) => lineOf(f, s.start)).join(", ")}): the new file keeps that call, so that client still exists after the swap (without it, authorize answers 400 where it redirected).` : "";
    let text = reexport(f, `${PACKAGE}/clients`);
    if (kept.length && !isModule(f)) {
      text += "const { preRegisterClient } = module.exports;\n\n" + kept.map((s) => {
        const [start, end] = statementRange(f, s);
        return f.src.slice(start, end).replace(/\n?$/, "\n");
      }).join("\n");
    }
    const byHand = kept.length && (isModule(f) || foreign.length)
      ? `replace the file with \`${reexport(f, `${PACKAGE}/clients`).trim()}\` and call preRegisterClient(process.env.MCP_CLIENT_ID, …) at startup as line ${lineOf(f, kept[0].start)} does` +
        (foreign.length ? ` (it uses ${[...new Set(foreign.map((n) => n.name))].join(", ")}, defined elsewhere in the file)` : "")
      : null;
    report.add(f, "costs", "client-registry", firstMap(f).start,
      "registered clients are kept in a Map: after every restart each MCP client has to register again",
      `A client that kept its client_id gets invalid_client until it registers anew.${env}`,
      "Replace the whole file with the package's registry (same functions and shapes; secrets stored as digests):",
      { edits: [{ start: 0, end: f.src.length, text }], byHand });
    return;
  }
  if (f.kind) return;
  for (const d of f.nodes.filter((n) => n.type === "VariableDeclarator" && n.id.type === "Identifier" && n.init?.type === "NewExpression" && n.init.callee.name === "Map")) {
    const name = d.id.name;
    if (!/client/i.test(name)) continue;
    const uses = references(f, name).filter((id) => id !== d.id);
    const gets = uses.filter((id) => id.parent.type === "MemberExpression" && id.parent.object === id && id.parent.property.name === "get" && id.parent.parent.type === "CallExpression");
    const others = uses.filter((id) => !gets.includes(id));
    const edits = [
      { start: d.parent.start, end: d.parent.end, text: binding(f, ["registerClient", "getClient"], `${PACKAGE}/clients`) },
      ...gets.map((id) => ({ start: id.parent.start, end: id.parent.end, text: "getClient" })),
    ];
    report.add(f, "costs", "client-registry", d.start, `registered clients are kept in the Map ${name}: after every restart each MCP client has to register again`,
      "A client that kept its client_id gets invalid_client until it registers anew.",
      "Keep them in the package's registry: getClient(clientId) in place of the Map's get, registerClient(metadata) where a client is added (it makes the client_id and returns the stored client).",
      d.parent.declarations.length === 1 && !others.length ? { edits } : { byHand: `${name} is used otherwise at line ${others.map((id) => lineOf(f, id.start)).join(", ") || lineOf(f, d.start)}: rewrite those uses with registerClient and getClient` });
  }
}

/** An already swapped registry, while the environment still names MCP_CLIENT_ID and nothing pre-registers it. */
function environmentClient(files, settingsText, report) {
  if (files.some((f) => f.mapClients) || !/\bMCP_CLIENT_ID\b/.test(settingsText)) return;
  if (!files.some((f) => f.requires.some((r) => r.spec === `${PACKAGE}/clients`))) return;
  if (files.some((f) => f.nodes.some((n) => n.type === "CallExpression" && callee(n)?.name === "preRegisterClient"))) return;
  const registry = files.find((f) => f.requires.some((r) => r.spec === `${PACKAGE}/clients`));
  report.add(registry, "costs", "env-client", null,
    "MCP_CLIENT_ID is configured, but nothing pre-registers that client",
    "The old registry registered the MCP_CLIENT_ID/MCP_CLIENT_SECRET client when it loaded; the package's registry does not: authorize answers 400 for it where it redirected.",
    "Call preRegisterClient at startup:",
    { byHand: `add to ${registry.rel}: if (process.env.MCP_CLIENT_ID && process.env.MCP_CLIENT_SECRET) preRegisterClient(process.env.MCP_CLIENT_ID, process.env.MCP_CLIENT_SECRET, { redirect_uris: [ … ] });` });
}

/** Whether `node` lies in a block that ends the function's run (ends in return or throw) and does not hold `other`. */
function inReturningBlock(node, other, fn) {
  for (const a of ancestors(node)) {
    if (a === fn.body || a === fn) return false;
    if (a.type === "BlockStatement" && !within(other, a) && /^(?:ReturnStatement|ThrowStatement)$/.test(a.body.at(-1)?.type)) return true;
  }
  return false;
}

/** A Map of authorizations waiting for the upstream login (`openRouterAuths`), keyed by state. */
function pendingAuthorizations(f, report) {
  if (f.kind) return;
  for (const d of f.nodes.filter((n) => n.type === "VariableDeclarator" && n.id.type === "Identifier" && n.init?.type === "NewExpression" && n.init.callee.name === "Map")) {
    const name = d.id.name;
    if (!PENDING_NAME.test(name) || NOT_PENDING_NAME.test(name) || d.parent.parent.type !== "Program" || d.parent.declarations.length !== 1) continue;
    // The declaration, with the comment that ends its line (it described the Map).
    const rest = /^[ \t]*\/\/[^\n]*/.exec(f.src.slice(d.parent.end));
    const edits = [{ start: d.parent.start, end: d.parent.end + (rest ? rest[0].length : 0), text: binding(f, ["storePendingAuthorization", "consumePendingAuthorization"], PACKAGE) }];
    const unknown = [];
    const gone = []; // ranges whose references go with them
    const uses = references(f, name).filter((id) => id !== d.id);
    const method = (id) => (id.parent.type === "MemberExpression" && id.parent.object === id && !id.parent.computed && id.parent.parent.type === "CallExpression" && id.parent.parent.callee === id.parent ? id.parent.property.name : null);
    // A `setInterval(…)` statement that sweeps the Map: the store expires entries itself.
    for (const id of uses) {
      const timer = [...ancestors(id)].find((a) => a.type === "CallExpression" && a.callee.type === "Identifier" && a.callee.name === "setInterval");
      const stmt = timer && statementOf(timer);
      if (stmt && !gone.some(([s]) => s === stmt.start) && (stmt.expression === timer || stmt.declarations?.[0]?.init === timer)) {
        edits.push(deletion(f, stmt));
        gone.push([stmt.start, stmt.end]);
      }
    }
    const live = uses.filter((id) => !gone.some(([s, e]) => id.start >= s && id.end <= e));
    const gets = live.filter((id) => method(id) === "get");
    for (const id of live) {
      const verb = method(id);
      const call = verb ? id.parent.parent : null;
      if (verb === "set" && call.arguments.length === 2) {
        edits.push({ start: id.parent.start, end: id.parent.end, text: "storePendingAuthorization" });
      } else if (verb === "get" && call.arguments.length === 1) {
        // consume removes the entry: a second get in the same run would find nothing.
        const fn = enclosingFunction(id);
        const later = gets.filter((g) => g !== id && fn && enclosingFunction(g) === fn && g.start > id.start);
        if (later.some((g) => !inReturningBlock(id, g, fn))) unknown.push([id, "read twice in one request"]);
        else edits.push({ start: id.parent.start, end: id.parent.end, text: "consumePendingAuthorization" });
      } else if (verb === "delete" && call.arguments.length === 1 && call.parent.type === "ExpressionStatement") {
        // After a get of the same state in the same function, the consume took it already.
        const fn = enclosingFunction(id);
        const taken = gets.some((g) => g.start < id.start && enclosingFunction(g) === fn && textOf(f, g.parent.parent.arguments[0] ?? g) === textOf(f, call.arguments[0]));
        edits.push(taken ? deletion(f, call.parent) : { start: id.parent.start, end: id.parent.end, text: "consumePendingAuthorization" });
      } else {
        // A log line's property that lists the Map (`available_states: Array.from(openRouterAuths.keys())`) goes.
        const prop = [...ancestors(id)].find((a) => a.type === "Property" || !/^(?:MemberExpression|CallExpression|SpreadElement|ArrayExpression)$/.test(a.type));
        if (prop?.type === "Property" && prop.parent.type === "ObjectExpression" && prop.value !== id && within(id, prop.value)) {
          const list = prop.parent.properties;
          const k = list.indexOf(prop);
          const next = list[k + 1];
          const previous = list[k - 1];
          const range = next ? [prop.start, next.start] : previous ? [previous.end, prop.end] : [prop.start, prop.end];
          // A property alone on its lines goes with its lines.
          if (f.src.slice(lineStart(f, prop.start), prop.start).trim() === "" && /^,?[ \t]*(?:\/\/.*)?\r?\n/.test(f.src.slice(prop.end))) {
            range[0] = lineStart(f, prop.start);
            range[1] = lineEnd(f, prop.end);
          }
          edits.push({ start: range[0], end: range[1], text: "" });
          gone.push(range);
        } else {
          unknown.push([id, verb ? `${verb}()` : "a use doctor does not know"]);
        }
      }
    }
    const byHand = unknown.length
      ? `rewrite the uses of ${name} at ${unknown.map(([id, why]) => `line ${lineOf(f, id.start)}:${id.start - lineStart(f, id.start) + 1} (${why})`).join(", ")} with the two calls; leave no reference to ${name} behind (a reused callback would then fail with "${name} is not defined")`
      : null;
    report.add(f, "costs", "pending-map", d.start,
      `authorizations waiting for the upstream login are kept in the Map ${name}`,
      "A restart or deploy between authorize and callback fails that login, and with several processes the callback may reach one that never saw it.",
      `Keep them in the store: storePendingAuthorization(state, data, ttlSeconds = 600) stores, consumePendingAuthorization(state) returns and removes once (null when unknown or expired). Every use of ${name} is rewritten (${uses.length} found), the debug lines that list it included; entries expire by themselves.`,
      { edits, byHand });
    report.claim(f, d.start, d.end);
    for (const id of uses) report.claim(f, id.start, id.end);
  }
}

// ---- The refresh grant -------------------------------------------------------------------

const FIELDS = new Set(["userId", "clientId", "scopes", "accessToken", "createdAt"]);

/** `const X = Y instanceof Promise ? await Y : Y;` (the server's "maybe async" unwrap) of `name`: the declarator, or null. */
function unwrapOf(stmt, name) {
  const d = stmt?.type === "VariableDeclaration" && stmt.declarations.length === 1 ? stmt.declarations[0] : null;
  const c = d?.init?.type === "ConditionalExpression" ? d.init : null;
  return c && d.id.type === "Identifier" && c.test.type === "BinaryExpression" && c.test.operator === "instanceof" && c.test.left.name === name ? d : null;
}

/** `const X = call;` or `call;` or `await call;`: the call of the statement, or null. */
function callOfStatement(stmt) {
  let e = stmt.type === "ExpressionStatement" ? stmt.expression
    : stmt.type === "VariableDeclaration" && stmt.declarations.length === 1 ? stmt.declarations[0].init : null;
  if (e?.type === "AwaitExpression") e = e.argument;
  return e?.type === "CallExpression" ? e : null;
}

/** The source of an expression with `R.field` (R one of `names`) made `grant.field`; throws a reason when it reads anything else of R. */
function grantText(f, expr, names, forbidden) {
  const edits = [];
  for (const id of [expr, ...descendants(f, expr)].filter((n) => n.type === "Identifier" && isReference(n))) {
    if (names.has(id.name)) {
      const m = id.parent;
      if (m.type !== "MemberExpression" || m.object !== id || m.computed || !FIELDS.has(m.property.name)) throw new Error(`it reads ${id.name} other than as ${[...FIELDS].map((x) => `${id.name}.${x}`).join(", ")}`);
      edits.push([id.start, id.end, "grant"]);
    } else if (forbidden.has(id.name)) {
      throw new Error(`it uses ${id.name}, which is only known after the rotation`);
    }
  }
  let out = textOf(f, expr);
  for (const [s, e, t] of edits.sort((a, b) => b[0] - a[0])) out = out.slice(0, s - expr.start) + t + out.slice(e - expr.start);
  // One line, when nothing in it minds (no template literal, no comment).
  const comments = f.comments.some((c) => c.start >= expr.start && c.end <= expr.end);
  if (out.includes("\n") && !comments && ![expr, ...descendants(f, expr)].some((n) => n.type === "TemplateLiteral")) {
    out = out.replace(/([([{])\s*\n\s*/g, "$1").replace(/,?\s*\n\s*([)\]}])/g, "$1").replace(/\s*\n\s*/g, " ");
  }
  return out;
}

/** A refresh grant made of getRefreshToken, storeAccessToken and revokeRefreshToken: three steps, not one. */
function refreshGrant(f, report) {
  if (f.kind === "tokens" || f.kind === "old-db") return;
  for (const get of syncCalls(f, "getRefreshToken")) {
    const fn = enclosingFunction(get);
    const stmt = statementOf(get);
    if (!fn || !stmt || report.isClaimed(f, get) || stmt.parent.type !== "BlockStatement") continue;
    const block = stmt.parent.body;
    const i = block.indexOf(stmt);
    const same = (a, b) => a && b && textOf(f, a) === textOf(f, b);
    const revokeAt = block.findIndex((s, k) => k > i && syncCall(f, callOfStatement(s)) === "revokeRefreshToken" && same(callOfStatement(s).arguments[0], get.arguments[0]));
    if (revokeAt < 0) continue;
    const line = lineOf(f, get.start);
    const refuse = (why) => {
      report.add(f, "costs", "refresh-grant", get.start, "the refresh grant is three calls, not one atomic step",
        "Two requests with the same refresh token can both get new tokens, a replay of a spent token goes unseen by the store, and a crash between the calls leaves the old and new tokens both live.",
        "Rotate in one call: rotateRefreshToken(refreshToken, (grant) => ({ accessToken, refreshToken, expiresAt })) mints the new pair from the grant ({ userId, clientId, scopes }) and returns { userId, clientId, scopes, apiKey, accessToken, refreshToken }, or null; of two concurrent rotations exactly one wins, and a replay revokes the grant.",
        { byHand: `doctor cannot make this edit: ${why}. By hand, at line ${line}: mint the new tokens inside the callback from grant.userId, grant.clientId and grant.scopes, and delete the storeAccessToken and revokeRefreshToken calls of this grant` });
      report.claim(f, block[i].start, block[revokeAt].end);
    };
    const d = stmt.type === "VariableDeclaration" && stmt.declarations.length === 1 && stmt.declarations[0].init === get && stmt.declarations[0].id.type === "Identifier" ? stmt.declarations[0] : null;
    if (!d) { refuse("the result of getRefreshToken is not kept in one variable"); continue; }
    const names = new Set([d.id.name]);
    const unwrap = unwrapOf(block[i + 1], d.id.name);
    if (unwrap) names.add(unwrap.id.name);
    const result = unwrap ? unwrap.id.name : d.id.name;
    const edits = [];
    const removed = []; // statements that go
    // The store of the new pair, and its "maybe async" await.
    const storeAt = block.findIndex((s, k) => k > i && k < revokeAt && syncCall(f, callOfStatement(s)) === "storeAccessToken");
    if (storeAt < 0) { refuse("no storeAccessToken call between getRefreshToken and revokeRefreshToken"); continue; }
    const store = callOfStatement(block[storeAt]);
    if (store.arguments.length < 2 || store.arguments.some((a) => a.type === "SpreadElement")) { refuse("storeAccessToken's arguments are not written out"); continue; }
    const storeName = block[storeAt].type === "VariableDeclaration" ? block[storeAt].declarations[0].id.name : null;
    let storeAwait = null;
    if (storeName) {
      const next = block[storeAt + 1];
      if (next?.type === "IfStatement" && next.test.type === "BinaryExpression" && next.test.left.name === storeName && !next.alternate) storeAwait = next;
      if (references(f, storeName, fn).some((id) => !within(id, block[storeAt]) && !(storeAwait && within(id, storeAwait)))) { refuse(`${storeName} is used after the store`); continue; }
    }
    removed.push(block[revokeAt], ...(storeAwait ? [storeAwait] : []));
    // The read of the old access token (for its apiKey): rotateRefreshToken carries the apiKey over.
    const old = new Set();
    for (let k = i + 1; k < storeAt; k++) {
      const s = block[k];
      const c = callOfStatement(s);
      if (syncCall(f, c) === "getAccessToken" && c.arguments.length === 1 && c.arguments[0].type === "MemberExpression" && names.has(c.arguments[0].object.name) && s.type === "VariableDeclaration") {
        old.add(s.declarations[0].id.name);
        removed.push(s);
        const w = unwrapOf(block[k + 1], s.declarations[0].id.name);
        if (w) { old.add(w.id.name); removed.push(block[k + 1]); k++; }
      } else if (s.type === "IfStatement" && s.test.type === "UnaryExpression" && s.test.operator === "!" && old.has(s.test.argument.name) && !s.alternate) {
        removed.push(s);
      }
    }
    // `const { getAccessToken } = require(…)` in the handler, used only by the read that goes.
    for (let k = i + 1; k < storeAt; k++) {
      const s = block[k];
      const r = f.requires.find((q) => q.declaration === s && q.picks.length === 1 && q.picks[0][0] === "getAccessToken");
      if (r && references(f, r.picks[0][1], fn).every((id) => id.parent === r.picks[0][2] || id === r.picks[0][2].value || removed.some((x) => within(id, x)))) removed.push(s);
    }
    const outside = (id) => !removed.some((x) => within(id, x)) && !within(id, block[storeAt]);
    const oldUses = [...old].flatMap((name) => references(f, name, fn)).filter((id) => outside(id) && !(id.parent.type === "VariableDeclarator" && id.parent.id === id));
    const badOld = oldUses.filter((id) => !(id.parent.type === "MemberExpression" && id.parent.object === id && !id.parent.computed && ["apiKey", "userId", "clientId", "scopes"].includes(id.parent.property.name)));
    if (badOld.length) { refuse(`${badOld[0].name} (the old access token's data) is used at line ${lineOf(f, badOld[0].start)}`); continue; }
    for (const id of oldUses) edits.push({ start: id.start, end: id.end, text: result });
    // The new tokens: their expressions move into the callback, their names are read from the result.
    const declaredAfter = new Set(f.nodes.filter((n) => n.type === "VariableDeclarator" && n.start > get.start && within(n, fn) && n.id.type === "Identifier").map((n) => n.id.name));
    for (const name of old) declaredAfter.add(name);
    const parts = [];
    const later = [];
    let failed = null;
    for (const [k, key] of [[0, "accessToken"], [1, "refreshToken"]]) {
      const arg = store.arguments[k];
      const decl = arg.type === "Identifier" ? f.nodes.find((n) => n.type === "VariableDeclarator" && n.id.type === "Identifier" && n.id.name === arg.name && n.init && within(n, fn) && n.parent.declarations.length === 1 && block.includes(n.parent)) : null;
      if (arg.type === "Identifier" && !decl) { failed = `${arg.name} is not declared in this block with its value`; break; }
      const expr = decl ? decl.init : arg;
      const declAt = decl ? block.indexOf(decl.parent) : -1;
      if (decl && references(f, arg.name, fn).some((id) => id !== decl.id && id !== arg && id.start < block[storeAt].start && id.start > decl.end)) { failed = `${arg.name} is used before the store`; break; }
      try {
        declaredAfter.delete(decl?.id.name);
        const forbidden = new Set([...declaredAfter].filter((n) => !f.nodes.some((x) => x.type === "VariableDeclarator" && x.id.name === n && x.start < (decl ?? arg).start && x.start > get.start && !old.has(n)) || old.has(n)));
        parts.push(`${key}: ${grantText(f, expr, names, forbidden)}`);
      } catch (err) {
        failed = `the new ${key} (line ${lineOf(f, expr.start)}) cannot be made from the grant: ${err.message}`;
        break;
      }
      if (decl) {
        removed.push(decl.parent);
        later.push(`${decl.parent.kind} ${arg.name} = ${result}.${key};`);
        if (declAt < i) declaredAfter.delete(arg.name);
      }
    }
    if (failed) { refuse(failed); continue; }
    // The expiry: the store's own, else the response's expires_in, else none (no-expiry says so).
    const given = store.arguments[6];
    const expiresIn = expiresInOf(f, fn);
    let expiry = "null";
    let lifetime = null;
    if (given && !isNothing(given)) {
      try {
        expiry = grantText(f, given, names, declaredAfter);
      } catch (err) {
        refuse(`the expiry (line ${lineOf(f, given.start)}) ${err.message}`);
        continue;
      }
    } else if (storesRefreshToken(store.arguments[1])) {
      // The row carries the new refresh token: it lives as long as the grant, not as the access token.
      lifetime = grantLifetime(f, get);
      if (lifetime.expiry) {
        expiry = lifetime.expiry;
        edits.push(...lifetime.edits);
      }
    } else if (expiresIn !== null) expiry = `new Date(Date.now() + ${expiresIn} * 1000)`;
    // The function that rotates: from the module that has it.
    const c = callee(get);
    const through = c.obj ? f.requires.find((r) => r.ns === c.obj) : f.names.get(c.name)?.r;
    if (!through || !(through.spec === PACKAGE || through.target?.becomesPackage)) { refuse(`getRefreshToken comes from ${through?.spec ?? "a module doctor cannot see"}, which may have no rotateRefreshToken`); continue; }
    const indent = indentAt(f, stmt.start);
    const rotate = `${c.obj ? `${c.obj}.` : ""}rotateRefreshToken(${textOf(f, get.arguments[0])}, (grant) => ({\n${parts.concat(`expiresAt: ${expiry}`).map((p) => `${indent}  ${p},\n`).join("")}${indent}}))`;
    edits.push({ start: get.start, end: get.end, text: rotate });
    if (!c.obj) {
      // The destructured name: renamed where getRefreshToken has no other use, else added beside it.
      const pick = f.names.get(c.name).r.picks.find(([, local]) => local === c.name)[2];
      const alone = references(f, c.name).filter((id) => id !== pick.value && id !== pick.local && id !== pick.key).length === 1;
      if (pick.type === "Property" && pick.shorthand && alone) edits.push({ start: pick.start, end: pick.end, text: "rotateRefreshToken" });
      else if (pick.type === "ImportSpecifier" && pick.imported === pick.local && alone) edits.push({ start: pick.start, end: pick.end, text: "rotateRefreshToken" });
      else edits.push({ start: pick.end, end: pick.end, text: ", rotateRefreshToken" });
    }
    // Where the store was, the names of the new pair; what went before it, gone.
    // Runs of neighbouring statements that go are deleted as one range (blank lines between them too).
    const storeIndent = indentAt(f, block[storeAt].start);
    const going = [...new Set([...removed, block[storeAt]])].sort((a, b) => a.start - b.start);
    for (let k = 0; k < going.length;) {
      let run = 1;
      while (k + run < going.length && block.indexOf(going[k + run]) === block.indexOf(going[k + run - 1]) + 1) run++;
      const members = going.slice(k, k + run);
      const holdsStore = members.includes(block[storeAt]);
      const first = statementRange(f, members[0], { withComments: members[0] !== block[storeAt] });
      const last = statementRange(f, members.at(-1));
      const whole = first[0] === lineStart(f, first[0]) && f.src[last[1] - 1] === "\n";
      const text = holdsStore && later.length ? later.map((t) => (whole ? `${storeIndent}${t}\n` : t)).join(whole ? "" : " ") : "";
      let end = last[1];
      // A replacement keeps the blank line that followed.
      if (text && whole && /^[ \t]*\r?\n$/.test(f.src.slice(lineStart(f, end - 1), end)) && end - 1 > members.at(-1).end) end = lineStart(f, end - 1);
      edits.push({ start: first[0], end, text });
      k += run;
    }
    report.add(f, "costs", "refresh-grant", get.start, "the refresh grant is three calls, not one atomic step",
      "Two requests with the same refresh token can both get new tokens, a replay of a spent token goes unseen by the store, and a crash between the calls leaves the old and new tokens both live.",
      "Rotate in one call: rotateRefreshToken(refreshToken, (grant) => ({ accessToken, refreshToken, expiresAt })) mints the new pair from the grant (its userId, clientId and scopes) and returns { userId, clientId, scopes, apiKey, accessToken, refreshToken }, or null (unknown, expired, lost to a concurrent refresh, or a replay, which revokes the grant)." +
        (lifetime?.expiry ? ` The stored tokens get the grant's lifetime (${lifetime.name} of ${lifetime.spec}), not the access token's expires_in: ${WHY_GRANT}.`
          : lifetime && expiry === "null" ? ` The new tokens get no expiry, as before: give them the grant's lifetime as expiresAt (e.g. new Date(Date.now() + 30 * 86400 * 1000) for 30 days)${expiresIn === null ? "" : `, not the access token's expires_in (${expiresIn})`}: ${WHY_GRANT}.${lifetime.reason ? ` (${lifetime.reason}.)` : ""}`
            : expiry === "null" ? " The new tokens get no expiry, as before (the response announces no expires_in): give them one as expiresAt." : ""),
      { edits: mergeDeletions(edits) });
    report.claim(f, block[i].start, block[revokeAt].end);
  }
}

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

const isNothing = (n) => (n.type === "Literal" && n.value === null && n.raw === "null") || (n.type === "Identifier" && n.name === "undefined");

// ---- How long a stored row lives ---------------------------------------------------------

/**
 * The name of a refresh token's lifetime (`REFRESH_TOKEN_EXPIRY`, `REFRESH_TOKEN_TTL_SECONDS`…);
 * its suffix, when it has one, gives the unit.
 */
const LIFETIME_NAME = /^REFRESH_TOKEN_(?:EXPIRY|EXPIRES_IN|TTL|LIFETIME)(_SECONDS|_SECS?|_S|_MS|_MILLISECONDS)?$/i;
/** Factors that make a time of seconds (a minute, an hour, a day in seconds). */
const TIME_FACTORS = new Set([60, 3600, 86400]);
const WHY_GRANT = "the row of an access token carries its refresh token, which lives only as long as that row (getRefreshToken is null once the access token has expired)";

/** Whether a stored call's refresh token argument is there: not missing, null, undefined or ''. */
const storesRefreshToken = (arg) => Boolean(arg) && arg.type !== "SpreadElement" && !isNothing(arg) && !(arg.type === "Literal" && arg.value === "");

/** A top-level `const|let|var name = init` of t: the init, or null. */
function topLevelInit(t, name) {
  for (const s of t.ast.body) {
    const decl = s.type === "ExportNamedDeclaration" ? s.declaration : s;
    if (decl?.type !== "VariableDeclaration") continue;
    const d = decl.declarations.find((x) => x.id.type === "Identifier" && x.id.name === name && x.init);
    if (d) return d.init;
  }
  return null;
}

/** The names t exports (`module.exports = { … }`, `exports.X =`, `export const X`, `export { X }`), each with its initializer (or null). */
function exportsOf(t) {
  const out = new Map();
  const value = (node) => (node.type === "Identifier" ? topLevelInit(t, node.name) : node);
  for (const n of t.nodes) {
    if (n.type === "AssignmentExpression" && n.operator === "=" && textOf(t, n.left) === "module.exports" && n.right.type === "ObjectExpression") {
      for (const p of n.right.properties) {
        if (p.type !== "Property" || p.computed || p.kind !== "init") continue;
        out.set(p.key.name ?? String(p.key.value), value(p.value));
      }
    } else if (n.type === "AssignmentExpression" && n.operator === "=" && n.left.type === "MemberExpression" && !n.left.computed && /^(?:module\.)?exports$/.test(textOf(t, n.left.object))) {
      out.set(n.left.property.name, value(n.right));
    } else if (n.type === "ExportNamedDeclaration" && !n.source) {
      for (const d of n.declaration?.type === "VariableDeclaration" ? n.declaration.declarations : []) if (d.id.type === "Identifier") out.set(d.id.name, d.init);
      for (const s of n.specifiers ?? []) out.set(s.exported.name ?? s.exported.value, topLevelInit(t, s.local.name));
    }
  }
  return out;
}

/**
 * The unit of a lifetime's initializer: "s", "ms" or null (unclear). `parseInt(process.env.X) ||
 * default` (or Number(…), +…, ??) is read by its default; the default must be a product of
 * number literals: with a 60, 3600 or 86400 and no 1000, seconds; with one of them and a 1000,
 * milliseconds; anything else (a lone 2592000, a "30d") is unclear.
 */
function unitOfInit(t, init, depth = 0) {
  if (!init) return null;
  let e = init;
  if (e.type === "LogicalExpression" && (e.operator === "||" || e.operator === "??") && /process\.env\b/.test(textOf(t, e.left))) e = e.right;
  if (e.type === "Identifier" && depth < 2) return unitOfInit(t, topLevelInit(t, e.name), depth + 1);
  const factors = [];
  const product = (n) => {
    if (n.type === "Literal" && typeof n.value === "number") return factors.push(n.value) > 0;
    return n.type === "BinaryExpression" && n.operator === "*" && product(n.left) && product(n.right);
  };
  if (!product(e)) return null;
  if (!factors.some((x) => TIME_FACTORS.has(x))) return null;
  return factors.includes(1000) ? "ms" : "s";
}

/** The unit of an exported lifetime: by its name's suffix and by its initializer; "s", "ms" or null (unclear, or the two disagree). */
function unitOf(t, name, init) {
  const suffix = LIFETIME_NAME.exec(name)[1]?.toUpperCase() ?? null;
  const byName = !suffix ? null : /^_(?:MS|MILLISECONDS)$/.test(suffix) ? "ms" : "s";
  const byInit = unitOfInit(t, init);
  if (byName && byInit && byName !== byInit) return null;
  return byName ?? byInit;
}

/**
 * The grant's lifetime for a row stored at `at`: from a module the file already requires (by
 * destructuring, namespace or import) that exports a refresh token lifetime in a clear unit.
 * `{ expiry, edits, name, spec }`, or `{ expiry: null, reason }` (reason null when no module exports one).
 */
function grantLifetime(f, at) {
  let reason = null;
  for (const r of f.requires) {
    if (!r.target?.ast || !(r.ns || r.pattern || r.node.type === "ImportDeclaration")) continue;
    // The binding must be seen from the call: at the top level, or earlier in a block that holds it.
    const holder = r.declaration && statementOf(r.node)?.parent;
    if (!r.topLevel && !(holder && within(at, holder) && r.node.end < at.start)) continue;
    for (const [name, init] of exportsOf(r.target)) {
      if (!LIFETIME_NAME.test(name)) continue;
      const unit = unitOf(r.target, name, init);
      const where = `${name} of ${r.spec}`;
      if (!unit) {
        reason ??= `${where} is there, but doctor cannot tell whether it counts seconds or milliseconds (${init ? textOf(r.target, init).replace(/\s+/g, " ").slice(0, 80) : "no value it can read"})`;
        continue;
      }
      let local = null;
      const edits = [];
      const picked = r.picks.find(([imported]) => imported === name);
      if (picked) local = picked[1];
      else if (r.ns && r.node.type !== "ImportDeclaration") local = `${r.ns}.${name}`;
      else if (r.ns && r.node.specifiers?.some((s) => s.type === "ImportNamespaceSpecifier")) local = `${r.ns}.${name}`;
      else {
        const list = r.pattern ? r.pattern.properties : r.node.specifiers.filter((s) => s.type === "ImportSpecifier");
        const last = list.at(-1);
        if (!last || last.type === "RestElement") { reason ??= `${where} would have to be added to the require at line ${r.line}, which doctor cannot do`; continue; }
        if (f.nodes.some((n) => n.type === "Identifier" && n.name === name)) { reason ??= `${where} cannot be bound here: the file has a ${name} of its own`; continue; }
        const close = r.pattern ? r.pattern.end - 1 : f.src.indexOf("}", last.end);
        const between = f.src.slice(last.end, close);
        const multiline = f.src.slice(list[0].start, close).includes("\n") || /\n/.test(between);
        const indent = indentAt(f, last.start);
        if (/^\s*,/.test(between)) {
          const comma = last.end + between.indexOf(",") + 1;
          edits.push({ start: comma, end: comma, text: multiline ? `\n${indent}${name},` : ` ${name},` });
        } else edits.push({ start: last.end, end: last.end, text: multiline ? `,\n${indent}${name}` : `, ${name}` });
        local = name;
      }
      return { expiry: unit === "s" ? `new Date(Date.now() + ${local} * 1000)` : `new Date(Date.now() + ${local})`, edits, name, spec: r.spec };
    }
  }
  return { expiry: null, reason };
}

/** A number literal `expires_in: N` in the function's responses, or null. */
function expiresInOf(f, fn) {
  const p = f.nodes.find((n) => n.type === "Property" && within(n, fn) && !n.computed && (n.key.name ?? n.key.value) === "expires_in" && n.value.type === "Literal" && typeof n.value.value === "number");
  return p ? p.value.value : null;
}

/**
 * storeAccessToken called without an expiry: the token then lives forever, on disk. The expiry
 * proposed is the row's: with a refresh token in it, the grant's lifetime (the refresh token
 * lives as long as the row); without, the access token's, as the response announces it.
 */
function noExpiry(f, report) {
  if (f.kind === "tokens" || f.kind === "old-db") return;
  for (const call of syncCalls(f, "storeAccessToken")) {
    if (report.isClaimed(f, call)) continue;
    const args = call.arguments;
    const given = args[6];
    if (given && !isNothing(given)) continue;
    if (args.some((a) => a.type === "SpreadElement")) continue;
    const fn = enclosingFunction(call);
    const seconds = fn ? expiresInOf(f, fn) : null;
    const line = lineOf(f, call.start);
    const refresh = storesRefreshToken(args[1]);
    const lifetime = refresh ? grantLifetime(f, call) : null;
    const expiry = refresh ? lifetime.expiry : seconds === null ? null : `new Date(Date.now() + ${seconds} * 1000)`;
    let edits = [];
    let byHand = null;
    if (expiry === null || args.length < 6) {
      byHand = refresh
        ? `pass the grant's lifetime as storeAccessToken's 7th argument at line ${line}, e.g. new Date(Date.now() + 30 * 86400 * 1000) for refresh tokens that live 30 days` +
          `${seconds === null ? "" : `, not the access token's expires_in (${seconds})`}: ${WHY_GRANT}` +
          (lifetime.reason ? `. (${lifetime.reason}.)` : "")
        : `pass the expiry as storeAccessToken's 7th argument at line ${line}, e.g. new Date(Date.now() + 3600 * 1000) for tokens that live an hour (as long as the access token says it does)`;
    } else {
      edits = refresh ? [...lifetime.edits] : [];
      if (given) {
        edits.push({ start: given.start, end: given.end, text: expiry });
      } else {
        const last = args[5];
        const close = call.end - 1;
        const between = f.src.slice(last.end, close);
        const multiline = f.src.slice(call.callee.end, last.end).includes("\n");
        const indent = indentAt(f, last.start);
        if (/^\s*,/.test(between)) {
          const comma = last.end + between.indexOf(",") + 1;
          edits.push({ start: comma, end: comma, text: multiline ? `\n${indent}${expiry},` : ` ${expiry},` });
        } else {
          edits.push({ start: last.end, end: last.end, text: multiline ? `,\n${indent}${expiry}` : `, ${expiry}` });
        }
      }
    }
    report.add(f, "costs", "no-expiry", call.start, "an access token is stored without an expiry",
      refresh
        ? "The old Map lost it at the next restart; the package keeps it on disk, valid for ever, with the refresh token beside it. " +
          `Its expiry is the grant's, not the access token's: ${WHY_GRANT}. Given the access token's lifetime${seconds === null ? "" : ` (expires_in: ${seconds})`}, every refresh token would be gone when the access token expires, which is when clients refresh.`
        : "The old Map lost it at the next restart; the package keeps it on disk, valid for ever.",
      refresh
        ? (expiry === null ? "Give it the grant's lifetime (the refresh token's):" : `Give it the grant's lifetime, ${lifetime.name} of ${lifetime.spec}:`)
        : seconds === null ? "Give it the expiry the token has:" : `Give it the expiry the response announces (expires_in: ${seconds}):`,
      { edits, byHand });
    report.claim(f, call.start, call.end);
  }
}

// ---- Shutdown ----------------------------------------------------------------------------

/** No closeDB() where the server shuts down: each SIGTERM or SIGINT handler gets one before it exits. */
function shutdown(files, report) {
  const users = files.filter((f) => f.kind !== "old-db" && f.requires.some((r) => ["tokens", "old-db"].includes(kindOf(r))));
  if (!users.length) return;
  const closes = (f) =>
    f.kind !== "old-db" && f.nodes.some((n) =>
      !report.isClaimed(f, n) &&
      ((n.type === "CallExpression" && (callee(n)?.name === "closeDB" || (callee(n)?.name === "close" && n.arguments.length === 0 && f.nodes.some((x) => x.type === "NewExpression" && x.callee.name === "TokenStorage")))) ||
        (n.type === "Identifier" && n.name === "closeDB" && n.parent.type === "CallExpression" && n.parent.arguments.includes(n)) ||
        (n.type === "MemberExpression" && !n.computed && n.property.name === "closeDB" && n.parent.type === "CallExpression" && n.parent.arguments.includes(n))));
  if (files.some(closes)) return;
  const why = "Without it the SQLite file is not checkpointed at exit (the newest tokens stay in tokens.db-wal, which a copy of tokens.db alone misses), and PostgreSQL sees its connections dropped.";
  /** How this file calls closeDB, and the binding it must add for that (or null). */
  const closeCall = (f) => {
    if (f.names.get("closeDB")?.r.topLevel && !report.isClaimed(f, f.names.get("closeDB").r.node)) return { call: "closeDB();", add: null };
    const r = f.requires.find((q) => q.ns && q.topLevel && !report.isClaimed(f, q.node) && (q.spec === PACKAGE || q.target?.becomesPackage));
    if (r) return { call: `${r.ns}.closeDB();`, add: null };
    return { call: "closeDB();", add: binding(f, ["closeDB"], PACKAGE) };
  };
  const addBinding = (f, text) => {
    // After the last top-level require or import that is not going away, else at the top.
    const last = f.ast.body.filter((s) => !report.isClaimed(f, s) && (s.type === "ImportDeclaration" || (s.type === "VariableDeclaration" && s.declarations.some((d) => isRequire(d.init))))).at(-1);
    if (last) return { start: lineEnd(f, last.end), end: lineEnd(f, last.end), text: `${text}\n` };
    const first = f.ast.body.find((s) => !(s.type === "ExpressionStatement" && s.directive));
    const at = first ? lineStart(f, first.start) : f.src.length;
    return { start: at, end: at, text: `${text}\n` };
  };
  const handlers = [];
  for (const f of files) {
    for (const n of f.nodes) {
      if (n.type !== "CallExpression" || !/^process\.(?:on|once|addListener|prependListener)$/.test(textOf(f, n.callee)) || n.arguments.length !== 2) continue;
      const signal = n.arguments[0].type === "Literal" ? n.arguments[0].value : null;
      if (!/^SIG(?:TERM|INT)$/.test(signal) || report.isClaimed(f, n)) continue;
      handlers.push({ f, n, signal });
    }
  }
  if (handlers.length) {
    const added = new Set();
    for (const { f, n, signal } of handlers) {
      let fn = n.arguments[1];
      if (fn.type === "Identifier") {
        const decl = f.nodes.find((x) => (x.type === "FunctionDeclaration" && x.id?.name === fn.name) || (x.type === "VariableDeclarator" && x.id.name === fn.name && isFunction(x.init)));
        fn = decl ? (decl.type === "FunctionDeclaration" ? decl : decl.init) : null;
      }
      const { call, add } = closeCall(f);
      const edits = [];
      let byHand = null;
      if (!isFunction(fn)) {
        byHand = `call closeDB() in the ${signal} handler at line ${lineOf(f, n.start)} before it exits`;
      } else if (fn.body.type !== "BlockStatement") {
        edits.push({ start: fn.body.start, end: fn.body.end, text: `{ ${call} return ${textOf(f, fn.body)}; }` });
      } else {
        // Before the first process.exit (a statement of its own, in the handler or a callback of it), else at the end of the body.
        const exit = descendants(f, fn.body).find((x) => x.type === "CallExpression" && textOf(f, x.callee) === "process.exit");
        const stmt = exit && exit.parent.type === "ExpressionStatement" && exit.parent.parent.type === "BlockStatement" ? exit.parent : null;
        if (stmt) {
          edits.push(f.src.slice(lineStart(f, stmt.start), stmt.start).trim() === ""
            ? { start: lineStart(f, stmt.start), end: lineStart(f, stmt.start), text: `${indentAt(f, stmt.start)}${call}\n` }
            : { start: stmt.start, end: stmt.start, text: `${call} ` });
        } else if (exit) {
          byHand = `the ${signal} handler at line ${lineOf(f, n.start)} exits within an expression (line ${lineOf(f, exit.start)}): call closeDB() right before that process.exit`;
        } else {
          const closing = fn.body.end - 1;
          const inner = fn.body.body.length ? indentAt(f, fn.body.body[0].start) : `${indentAt(f, fn.body.start)}  `;
          edits.push(f.src.slice(lineStart(f, closing), closing).trim() === ""
            ? { start: lineStart(f, closing), end: lineStart(f, closing), text: `${inner}${call}\n` }
            : { start: closing, end: closing, text: ` ${call} ` });
        }
      }
      if (add && !byHand && !added.has(f)) {
        edits.push(addBinding(f, add));
        added.add(f);
      }
      report.add(f, "costs", "no-closedb", n.start, `the ${signal} handler does not call closeDB()`, why,
        "Close the store before the process exits" + (add ? ", with closeDB from the package (the old module's is gone with the swap):" : ":"),
        { edits, byHand });
    }
    return;
  }
  const main = users.find((f) => f.nodes.some((n) => n.type === "CallExpression" && n.callee.type === "MemberExpression" && n.callee.property.name === "listen")) ?? users[0];
  const listen = main.nodes.find((n) => n.type === "CallExpression" && n.callee.type === "MemberExpression" && n.callee.property.name === "listen");
  const { call, add } = closeCall(main);
  const at = listen ? lineEnd(main, statementOf(listen).end) : main.src.length;
  const newline = main.src.length && !main.src.endsWith("\n") && at === main.src.length ? "\n" : "";
  const edits = [{ start: at, end: at, text: `${newline}for (const signal of ["SIGTERM", "SIGINT"]) process.once(signal, () => { ${call} process.exit(0); });\n` }];
  if (add) edits.push(addBinding(main, add));
  report.add(main, "costs", "no-closedb", listen ? listen.start : null, "nothing calls closeDB() when the server stops", why,
    "Close the store on SIGTERM and SIGINT:", { edits, line: listen ? lineOf(main, listen.start) : null });
}

// ---- The old database --------------------------------------------------------------------

/**
 * How the server is started, from the package.json here or one folder up: `{ cwd, main,
 * pkg (a file), startAt, how }` (`startAt` the offset after `"start": "`, or -1).
 */
function startOf(root, skipped) {
  for (const dir of [root, path.dirname(root)]) {
    const file = path.join(dir, "package.json");
    let exists = false;
    try {
      fs.lstatSync(file);
      exists = true;
    } catch {
      exists = false;
    }
    if (!exists) continue;
    const read = readRegular(file);
    if (read.skip) {
      if (dir === root) skipped.push({ file: "package.json", reason: read.skip });
      continue;
    }
    let pkg;
    try {
      pkg = JSON.parse(read.text);
    } catch {
      continue;
    }
    const script = /\b(?:node|nodemon|ts-node|tsx)\s+(?:-\S+\s+)*([^\s&|;]+)/.exec(pkg.scripts?.start ?? "");
    const main = script?.[1] ?? pkg.main ?? conventionalMain(dir);
    const start = pkg.scripts?.start ? /"start"\s*:\s*"/.exec(read.text) : null;
    const pkgFile = { abs: file, rel: relative(root, file), src: read.text, json: true };
    pkgFile.starts = [0];
    for (let i = 0; i < read.text.length; i++) if (read.text[i] === "\n") pkgFile.starts.push(i + 1);
    return { cwd: dir, main: main && path.resolve(dir, main), pkgFile, startAt: start ? start.index + start[0].length : -1, how: script ? `\`npm start\` (${script[0]})` : null };
  }
  const main = conventionalMain(root);
  return { cwd: root, main: main && path.join(root, main), startAt: -1, how: null };
}

const conventionalMain = (dir) => ["server.js", "index.js", "app.js"].find((f) => fs.existsSync(path.join(dir, f))) ?? null;

/** Where the old module kept its file: `path.join(__dirname, …)` in its source, else `utils/../data/tokens.db`. */
function oldDatabasePath(f) {
  for (const n of f.nodes) {
    if (n.type !== "CallExpression" || !/^path\.(?:join|resolve)$/.test(textOf(f, n.callee)) || n.arguments[0]?.name !== "__dirname") continue;
    const parts = n.arguments.slice(1);
    if (parts.length && parts.every((p) => p.type === "Literal" && typeof p.value === "string") && /\.(?:db|sqlite3?)$/.test(parts.at(-1).value)) {
      return path.join(path.dirname(f.abs), ...parts.map((p) => p.value));
    }
  }
  return path.join(path.dirname(f.abs), "..", "data", "tokens.db");
}

/** The settings files beside the server's start (.env*, Dockerfile, compose, systemd units), read safely. */
function settingsOf(dir, skipped, root) {
  let names = [];
  try {
    names = fs.readdirSync(dir).filter((n) => /^(?:package\.json|\.env.*|Dockerfile.*|.*compose.*\.ya?ml|.*\.service)$/.test(n));
  } catch {
    return [];
  }
  const texts = [];
  for (const n of names.sort()) {
    const read = readRegular(path.join(dir, n));
    if (read.skip) {
      const file = relative(root, path.join(dir, n));
      if (!skipped.some((s) => s.file === file)) skipped.push({ file, reason: read.skip });
    } else texts.push(read.text);
  }
  return texts;
}

/** An old tokens.db that the package's default file would leave behind, when TOKEN_DB_PATH is set nowhere. */
function oldDatabase(root, files, databases, report, start, settings) {
  const found = new Set(databases);
  for (const f of files) if (f.kind === "old-db") found.add(oldDatabasePath(f));
  const existing = [...found].filter((file) => fs.existsSync(file));
  if (!existing.length) return;
  if ([...files.map((f) => f.src), ...settings].some((t) => t.includes("TOKEN_DB_PATH"))) return;
  const here = path.join(start.cwd, "data", "tokens.db");
  const beside = start.main ? path.join(path.dirname(start.main), "data", "tokens.db") : here;
  const chosen = fs.existsSync(here) || !fs.existsSync(beside) ? here : beside;
  for (const db of existing) {
    if (db === chosen) continue;
    const setting = `TOKEN_DB_PATH=${relative(start.cwd, db)}`;
    const how = start.how ?? (start.main ? `node ${relative(start.cwd, start.main)}` : "the server");
    const why = `Started by ${how} in ${start.cwd === root ? "this folder" : relative(root, start.cwd)}, native-token-storage opens ` +
      `${relative(root, chosen)}${fs.existsSync(chosen) ? " (which exists too)" : ", a new empty file,"} instead: every user would have to log in again.`;
    const problem = `the old database ${relative(root, db)} is not the file native-token-storage will open`;
    const fix = "Point TOKEN_DB_PATH at it (a relative path is resolved against the server's working directory):";
    if (start.startAt >= 0) {
      report.add(start.pkgFile, "costs", "old-database", start.startAt, problem, why, fix, { edits: [{ start: start.startAt, end: start.startAt, text: `${setting} ` }] });
    } else {
      const pseudo = { rel: relative(root, db), src: "", starts: [0] };
      report.add(pseudo, "costs", "old-database", null, problem, why, fix, { byHand: `set ${setting} where the server is started` });
    }
  }
}

// ---- Edits as lines ----------------------------------------------------------------------

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

// ---- The whole check ---------------------------------------------------------------------

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
  const { sources, databases } = walk(root, skipped);
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
  for (const f of files) runtimeSwaps(f, report);
  for (const f of files) {
    replacedFunctions(f, report);
    oldModule(f, report);
    notSwapped(f, report, requiredBy(f));
    asyncWrappers(f, report);
    thenOnResult(f, report);
    refreshGrant(f, report);
  }
  for (const f of files) {
    needlessAwaits(f, report);
    noExpiry(f, report);
    clientRegistry(f, report, requiredBy(f));
    pendingAuthorizations(f, report);
  }
  shutdown(files, report);
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
      tokenStorage: files.some((f) => f.kind || f.requires.some(kindOf)),
      ready: broken.length === 0 && !findings.some((f) => f.severity === "blocks"),
      skipped,
      findings,
    },
  };
}

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

// ---- Output ------------------------------------------------------------------------------

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

module.exports = { doctor, fix, format, readRegular };
