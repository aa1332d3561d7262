"use strict";
// `native-token-storage doctor [folder]`: reads a server's source and lists, with file and
// line, what stops the swap to native-token-storage from working ("blocks") and what costs
// the operator ("costs"), each with the edit to make. No parser: regular expressions over
// the source with its comments and the insides of its strings blanked out, so what a comment
// or a string says is not taken for code. Unusual code can be missed; nothing is run.

const fs = require("node:fs");
const path = require("node:path");

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
const SOURCE_FILE = /\.[cm]?[jt]s$/;
const SKIPPED_FOLDERS = new Set(["node_modules", "dist", "build", "coverage"]);
const LARGEST_FILE = 1 << 20;
/**
 * Names of a `Map` that holds logins waiting for the upstream (`openRouterAuths`,
 * `pendingAuthorizations`), not codes, tokens or clients, nor an MCP server's `sessions`.
 */
const PENDING_NAME = /pending|auth/i;
const NOT_PENDING_NAME = /client|token|code/i;
const ID = "[\\w$]+";

// ---- Reading the source ------------------------------------------------------------------

/** Source files and tokens.db files under root, skipping dependencies, builds and dot-folders. */
function walk(root) {
  const sources = [];
  const databases = [];
  (function visit(dir) {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !SKIPPED_FOLDERS.has(entry.name)) visit(abs);
      } else if (entry.isFile()) {
        if (entry.name === "tokens.db") databases.push(abs);
        else if (SOURCE_FILE.test(entry.name) && !entry.name.endsWith(".d.ts") && fs.statSync(abs).size <= LARGEST_FILE) sources.push(abs);
      }
    }
  })(root);
  return { sources, databases };
}

const REGEX_AFTER_WORD = new Set(["return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw", "instanceof", "yield", "await"]);

/**
 * The source, same length and lines, with comments and the insides of strings, template
 * literals (not their `${…}` code) and regular expressions replaced by spaces.
 */
function blank(src) {
  const out = src.split("");
  const n = src.length;
  const wipe = (from, to) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  const templates = []; // brace depth at which each open `${` ends
  let depth = 0;
  let prev = ""; // the last code token: a word or a punctuation character
  let i = 0;
  // Template text from j: blanked up to the closing backtick (returns the index after it) or
  // up to a `${` (returns the index after it, with the code that follows to be read).
  const template = (j) => {
    const start = j;
    while (j < n && src[j] !== "`" && !(src[j] === "$" && src[j + 1] === "{")) j += src[j] === "\\" ? 2 : 1;
    wipe(start, j);
    if (src[j] === "$") {
      templates.push(depth++);
      prev = "{";
      return j + 2;
    }
    prev = "x";
    return j + 1;
  };
  while (i < n) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      const end = src.indexOf("\n", i);
      wipe(i, end < 0 ? n : end);
      i = end < 0 ? n : end;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2) < 0 ? n : src.indexOf("*/", i + 2) + 2;
      wipe(i, end);
      i = end;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      wipe(i + 1, j);
      i = j + 1;
      prev = "x";
    } else if (c === "`") {
      i = template(i + 1);
    } else if (c === "}" && templates.length && templates.at(-1) === depth - 1) {
      templates.pop();
      depth--;
      i = template(i + 1);
    } else if (c === "/" && (prev === "" || /^[(,=:[!&|?{};+\-*%<>~^]$/.test(prev) || REGEX_AFTER_WORD.has(prev))) {
      let j = i + 1;
      let inClass = false;
      while (j < n && src[j] !== "\n" && (src[j] !== "/" || inClass)) {
        if (src[j] === "[") inClass = true;
        else if (src[j] === "]") inClass = false;
        j += src[j] === "\\" ? 2 : 1;
      }
      if (src[j] === "/") wipe(i + 1, j);
      i = src[j] === "/" ? j + 1 : i + 1;
      prev = "x";
    } else if (/[\w$]/.test(c)) {
      const word = /^[\w$]+/.exec(src.slice(i, i + 64))[0];
      prev = word;
      i += word.length;
    } else {
      if (c === "{") depth++;
      else if (c === "}") depth--;
      if (!/\s/.test(c)) prev = c;
      i++;
    }
  }
  return out.join("");
}

function readSource(root, abs) {
  const src = fs.readFileSync(abs, "utf8");
  const starts = [0];
  for (let i = 0; i < src.length; i++) if (src[i] === "\n") starts.push(i + 1);
  return { abs, rel: relative(root, abs), src, code: blank(src), starts, lines: src.split(/\r?\n/) };
}

const relative = (from, to) => path.relative(from, to).split(path.sep).join("/") || ".";

/** The 1-based line of an offset. */
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

const text = (f, line) => f.lines[line - 1].trimEnd();
const indentOf = (f, line) => /^\s*/.exec(f.lines[line - 1])[0];

/** The offset of the bracket that closes the one at `open`, in blanked code. */
function closing(code, open) {
  const pair = { "(": ")", "[": "]", "{": "}" }[code[open]];
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === code[open]) depth++;
    else if (code[i] === pair && --depth === 0) return i;
  }
  return code.length - 1;
}

/** The offset of the `(` that opens the `)` at `close`. */
function opening(code, close) {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (code[i] === ")") depth++;
    else if (code[i] === "(" && --depth === 0) return i;
  }
  return 0;
}

/** Every match of a regular expression (given as source) in the file's code. */
function* matches(f, source) {
  yield* f.code.matchAll(new RegExp(source, "gm"));
}

/** The text of the string literal whose opening quote is at `quote`. */
const literalAt = (f, quote) => f.src.slice(quote + 1, f.code.indexOf(f.src[quote], quote + 1));

/** `[open, close]` of the innermost function body that holds `pos`, or null. */
function enclosingFunction(f, pos) {
  const opens = [];
  for (let i = 0, stack = []; i < f.code.length; i++) {
    if (f.code[i] === "{") stack.push(i);
    else if (f.code[i] === "}") {
      const open = stack.pop();
      if (open !== undefined && open < pos && i > pos) opens.push([open, i]);
    }
  }
  opens.sort((a, b) => b[0] - a[0]);
  return opens.find(([open]) => isFunctionBody(f.code, open)) ?? null;
}

/** Whether the `{` at `open` starts a function body: after `=>`, or after `name(…)` that is no `if (…)`. */
function isFunctionBody(code, open) {
  const before = code.slice(0, open).trimEnd();
  if (before.endsWith("=>")) return true;
  if (!before.endsWith(")")) return false;
  const word = /([\w$]+)\s*$/.exec(code.slice(Math.max(0, opening(code, before.length - 1) - 40), opening(code, before.length - 1)));
  return !!word && !["if", "for", "while", "switch", "catch", "with"].includes(word[1]);
}

/** The offset just past the statement that starts at `pos`: its `;`, or its last line. */
function statementEnd(code, pos) {
  let depth = 0;
  for (let i = pos; i < code.length; i++) {
    const c = code[i];
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    if (depth < 0) return i;
    if (depth === 0 && c === ";") return i + 1;
    if (depth === 0 && c === "\n" && !/(=>|[,(=+\-*/&|?:.])\s*$/.test(code.slice(pos, i)) && !/^\s*[.?:]/.test(code.slice(i + 1, i + 80))) return i;
  }
  return code.length;
}

// ---- What each file is -------------------------------------------------------------------

/** The `require`s and `import`s of a file, with what each binds: `ns` (a whole module) and `picks` ([imported, local]). */
function requiresOf(f) {
  const found = [];
  for (const m of matches(f, `\\b(?:require|import)\\s*\\(\\s*(["'])|\\bfrom\\s*(["'])|^\\s*import\\s*(["'])`)) {
    const quote = m.index + m[0].length - 1;
    const r = { spec: literalAt(f, quote), line: lineOf(f, m.index), pos: m.index, ns: null, picks: [], reexport: false };
    const before = f.code.slice(Math.max(0, m.index - 400), m.index);
    const bound = m[0].startsWith("from")
      ? /^[^]*\b(import|export)\s+(?:type\s+)?([^;]*?)\s*$/.exec(before)
      : /\b(?:const|let|var)\s+([\w$]+|\{[^{}]*\})\s*=\s*(?:await\s+)?$/.exec(before);
    const clause = m[0].startsWith("from") ? bound?.[2] : bound?.[1];
    r.reexport = /\bmodule\.exports\s*=\s*$/.test(before) || bound?.[1] === "export";
    if (clause) {
      const named = /\{([^{}]*)\}/.exec(clause);
      const ns = /^(?:\*\s*as\s+)?([\w$]+)/.exec(clause.replace(/^\{[^{}]*\}/, "").trim());
      if (ns) r.ns = ns[1];
      for (const part of named ? named[1].split(",") : []) {
        const pick = /^\s*([\w$]+)\s*(?:(?::|\bas\b)\s*([\w$]+))?/.exec(part);
        if (pick) r.picks.push([pick[1], pick[2] ?? pick[1]]);
      }
    }
    found.push(r);
  }
  return found;
}

/** A relative require's file among the scanned ones, or null. */
function resolve(files, from, spec) {
  if (!spec.startsWith(".")) return null;
  const base = path.resolve(path.dirname(from.abs), spec);
  for (const suffix of ["", ".js", ".cjs", ".mjs", ".ts", "/index.js", "/index.ts"]) {
    if (files.has(base + suffix)) return files.get(base + suffix);
  }
  return null;
}

const definitions = (f, names) =>
  names.filter((name) => new RegExp(`\\bfunction\\s*\\*?\\s*${name}\\s*\\(|(?<![.\\w$])${name}\\s*[:=]\\s*(?:async\\b|function\\b|\\(|[\\w$]+\\s*=>)|^\\s*(?:async\\s+)?${name}\\s*\\([^)]*\\)\\s*\\{|\\bexports\\.${name}\\s*=`, "m").test(f.code)).length;

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
  const hasMap = /\bnew\s+Map\b/.test(f.code);
  const sqlite3 = f.requires.some((r) => r.spec === "sqlite3");
  // A facade: exports its own versions of some token functions over a token module it requires.
  const facade = tokenDefinitions >= 1 && /\bmodule\.exports\b|\bexport\b/.test(f.code) && f.requires.some((r) => kindOf(r) === "tokens");
  f.mapClients = hasMap && definitions(f, CLIENT_FUNCTIONS) >= 2;
  f.mapTokens = hasMap && !sqlite3 && tokenDefinitions >= 3;
  f.kind = sqlite3 && tokenDefinitions >= 3 ? "old-db"
    : tokenDefinitions >= 3 || facade ? "tokens"
      : f.mapClients ? "clients"
        : reexport ? kindOf(reexport) : null;
}

/** The file's names bound to token or client modules: `objects` (name → kind) and `names` (local → { kind, imported }). */
function bindings(f) {
  f.objects = new Map();
  f.names = new Map();
  for (const r of f.requires) {
    const kind = kindOf(r);
    if (!kind) continue;
    if (r.ns) f.objects.set(r.ns, kind);
    for (const [imported, local] of r.picks) f.names.set(local, { kind, imported });
  }
}

/** Whether `obj.name(` (or a bare `name(`) calls one of the package's synchronous functions, through a module the file requires. */
function syncCall(f, obj, name) {
  if (obj) return SYNC_KINDS.has(f.objects.get(obj)) && SYNC_FUNCTIONS.has(name);
  const bound = f.names.get(name);
  return !!bound && SYNC_KINDS.has(bound.kind) && SYNC_FUNCTIONS.has(bound.imported);
}

// ---- Findings ----------------------------------------------------------------------------

/** A diff: `-` lines removed, `+` lines added, ` ` context, `…` lines left out. */
const removed = (f, from, to = from) => {
  const all = [];
  for (let line = from; line <= to; line++) all.push({ line, op: "-", text: text(f, line) });
  return all.length > 8 ? [...all.slice(0, 4), { op: "…", text: `(${all.length - 6} more lines)` }, ...all.slice(-2)] : all;
};
/** Line `line` replaced by the lines `after`. */
const replaced = (f, line, after) => [{ line, op: "-", text: text(f, line) }, ...after.map((a) => ({ line, op: "+", text: a }))];
const changed = (f, line, after) => replaced(f, line, [after]);
const wholeFile = (f, after) => {
  const count = f.lines.at(-1) === "" ? f.lines.length - 1 : f.lines.length;
  return [
    ...removed(f, 1, Math.min(2, count)),
    ...(count > 2 ? [{ op: "…", text: `(and the other ${count - 2} lines: the whole file)` }] : []),
    ...after.map((text) => ({ op: "+", text })),
  ];
};

class Report {
  constructor() {
    this.findings = [];
    this.claimed = new Map(); // rel → Set of lines an edit already covers
  }
  add(f, severity, check, line, problem, why, fix, diff) {
    this.findings.push({ check, severity, file: f.rel ?? f, line, problem, why, fix, diff });
  }
  claim(f, from, to = from) {
    if (!this.claimed.has(f.rel)) this.claimed.set(f.rel, new Set());
    for (let line = from; line <= to; line++) this.claimed.get(f.rel).add(line);
  }
  isClaimed(f, line) {
    return this.claimed.get(f.rel)?.has(line) ?? false;
  }
}

/** Whether the file is an ES module (its edits then import rather than require). */
const isModule = (f) => /\.m[jt]s$/.test(f.abs) || /^\s*(?:import\s+[\w${*"']|export\s)/m.test(f.code);

/** The statement that binds `names` from `spec` (a module's default export, in an ES module). */
function binding(f, indent, names, spec) {
  if (!isModule(f)) return [`${indent}const { ${names.join(", ")} } = require("${spec}");`];
  const local = spec === PACKAGE ? "nativeTokenStorage" : "nativeTokenStorageClients";
  return [`${indent}import ${local} from "${spec}";`, `${indent}const { ${names.join(", ")} } = ${local};`];
}

/** A module's whole content, when it becomes the package's `spec`. */
const reexport = (f, spec) => (isModule(f) ? [`export * from "${spec}";`, `export { default } from "${spec}";`] : [`module.exports = require("${spec}");`]);

const TRUTHY = "A Promise is truthy, so `if (!getAccessToken(token))` lets every bearer token through.";

/**
 * `if (process.env.TOKEN_STORAGE === "db") { … }` (or a variable set from it) that swaps,
 * wraps or requires token functions at run time; a `TOKEN_STORAGE ? require(…) : require(…)`.
 */
function runtimeSwaps(f, report) {
  const aliases = [...matches(f, `\\b(?:const|let|var)\\s+(${ID})\\s*=(?![^;\\n]*\\brequire\\b)[^;\\n]*\\bTOKEN_STORAGE\\b`)].map((m) => ({ name: m[1], line: lineOf(f, m.index) }));
  const mentions = new RegExp(`\\bTOKEN_STORAGE\\b|${aliases.map((a) => `\\b${a.name}\\b`).join("|") || "^$"}`);
  const swaps = (from, to) =>
    assignments(f).some((a) => a.pos >= from && a.pos < to) ||
    f.requires.some((r) => r.pos >= from && r.pos < to && kindOf(r) && kindOf(r) !== "promises") ||
    /\bmodule\.exports\s*=/.test(f.code.slice(from, to));
  for (const m of matches(f, `\\bif\\s*\\(`)) {
    const close = closing(f.code, m.index + m[0].length - 1);
    const condition = f.src.slice(m.index, close);
    if (!mentions.test(condition) || /\belse\s*$/.test(f.code.slice(0, m.index))) continue;
    // The end of the statement, with its else branches.
    const branchEnd = (at) => {
      const start = at + f.code.slice(at).search(/\S/);
      return f.code[start] === "{" ? closing(f.code, start) + 1 : statementEnd(f.code, start);
    };
    let end = branchEnd(close + 1);
    for (let e; (e = /^\s*else\b\s*/.exec(f.code.slice(end))); ) {
      const elseIf = /^if\s*\(/.exec(f.code.slice(end + e[0].length));
      end = branchEnd(elseIf ? closing(f.code, end + e[0].length + elseIf[0].length - 1) + 1 : end + e[0].length);
    }
    if (!swaps(m.index, end)) continue;
    const [from, to] = [lineOf(f, m.index), lineOf(f, end - 1)];
    const used = aliases.filter((a) => new RegExp(`\\b${a.name}\\b`).test(condition));
    const diff = [...used.flatMap((a) => removed(f, a.line)), ...removed(f, from, to)];
    report.add(f, "blocks", "runtime-swap", from,
      `the token functions are replaced at run time when TOKEN_STORAGE is set (lines ${from}-${to})`,
      `With native-token-storage installed, this takes the calls away from it, and async replacements return Promises. ${TRUTHY}`,
      `Delete ${used.length ? "these lines" : `lines ${from}-${to}`}: native-token-storage reads TOKEN_STORAGE=db itself.`, diff);
    report.claim(f, from, to);
    for (const a of used) report.claim(f, a.line);
  }
  // const tokens = process.env.TOKEN_STORAGE === "db" ? require("./utils/tokenStorageDB") : require("./utils/tokenStorage");
  for (const m of matches(f, `^([ \\t]*(?:const|let|var)\\s+[^=;]+=\\s*)[^;]*\\bTOKEN_STORAGE\\b[^;]*\\?[^;]*\\brequire\\s*\\(`)) {
    const line = lineOf(f, m.index + m[0].search(/\S/));
    if (report.isClaimed(f, line)) continue;
    const to = lineOf(f, statementEnd(f.code, m.index) - 1);
    report.add(f, "blocks", "runtime-swap", line, "the token module is chosen at run time from TOKEN_STORAGE",
      `With native-token-storage, TOKEN_STORAGE=db is its own setting, and the other module's async functions return Promises. ${TRUTHY}`,
      "Require the package whatever the setting:",
      [...removed(f, line, to), { line, op: "+", text: `${m[1].trimEnd()} require("${PACKAGE}");` }]);
    report.claim(f, line, to);
  }
}

/** `tokens.getAccessToken = …` and `Object.assign(tokens, …)` on a required token module. */
function assignments(f) {
  if (f.assigned) return f.assigned;
  f.assigned = [];
  for (const m of matches(f, `(?<![.\\w$])(${ID})\\s*\\.\\s*(${ID})\\s*=(?![=>])`)) {
    if (SYNC_KINDS.has(f.objects.get(m[1])) && SYNC_FUNCTIONS.has(m[2])) f.assigned.push({ pos: m.index, what: `${m[1]}.${m[2]}` });
  }
  for (const m of matches(f, `\\bObject\\s*\\.\\s*assign\\s*\\(\\s*(${ID})\\s*,`)) {
    if (SYNC_KINDS.has(f.objects.get(m[1]))) f.assigned.push({ pos: m.index, what: m[1] });
  }
  return f.assigned;
}

function replacedFunctions(f, report) {
  for (const a of assignments(f)) {
    const line = lineOf(f, a.pos);
    if (report.isClaimed(f, line)) continue;
    const to = lineOf(f, statementEnd(f.code, a.pos) - 1);
    report.add(f, "blocks", "runtime-swap", line, `${a.what} is replaced at run time`,
      `Every caller then gets the replacement, not native-token-storage; an async one returns a Promise. ${TRUTHY}`,
      "Delete the statement; the package's own functions are already synchronous and persistent:", removed(f, line, to));
    report.claim(f, line, to);
  }
}

/** Requires of the old async sqlite3 token module. */
function oldModule(f, report) {
  for (const r of f.requires) {
    if (r.target?.kind !== "old-db" || report.isClaimed(f, r.line)) continue;
    const quoted = new RegExp(`(["'])${r.spec.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\1`);
    report.add(f, "blocks", "old-module", r.line, `requires the old sqlite3 token module (${r.target.rel})`,
      `Its functions return Promises where the server expects values. ${TRUTHY} It also opens a connection of its own to the database.`,
      `Require the package instead; once nothing requires ${r.target.rel}, delete it and \`npm uninstall sqlite3\` if nothing else uses it:`,
      changed(f, r.line, text(f, r.line).replace(quoted, `$1${PACKAGE}$1`)));
    report.claim(f, r.line);
  }
}

/** A Map-based token module that the server still requires: the swap itself is not made. */
function notSwapped(f, report, requiredBy) {
  if (!f.mapTokens || !requiredBy.length) return;
  const line = lineOf(f, f.code.search(/\bnew\s+Map\b/));
  report.add(f, "blocks", "not-swapped", line, "the tokens are still kept in Maps: every restart logs every user out",
    `Required by ${requiredBy.map((r) => r.rel).join(", ")}. Replacing this file's content is the whole swap.`,
    "Replace the whole file with the package (callers stay as they are):", wholeFile(f, reexport(f, PACKAGE)));
}

/** `async` functions that only call one of the package's synchronous functions, and `promisify` of one. */
function asyncWrappers(f, report) {
  if (f.kind === "old-db") return;
  // async function f(…) {, async f(…) { (a method), async (…) =>, async x =>; whose body is
  // one call: an arrow's expression, or `{ return …(` (a handler that awaits is no wrapper).
  const head = `(?:function\\b\\s*\\*?\\s*[\\w$]*\\s*\\([^()]*\\)|${ID}\\s*\\([^()]*\\)|\\([^()]*\\)|${ID})`;
  const re = `\\basync\\s+${head}\\s*(?:=>\\s*|(?:=>\\s*)?\\{\\s*return\\s+)(await\\s+)?(?:(${ID})\\s*\\.\\s*)?(${ID})\\s*\\(`;
  for (const m of matches(f, re)) {
    const [obj, name] = [m[2], m[3]];
    if (!syncCall(f, obj, name)) continue;
    const line = lineOf(f, m.index);
    if (report.isClaimed(f, line)) continue;
    const awaitAt = m[1] ? m.index + m[0].indexOf(m[1]) : -1;
    const diff = changed(f, line, dropAt(f, m.index, "async", awaitAt >= 0 && lineOf(f, awaitAt) === line ? awaitAt : -1));
    if (awaitAt >= 0 && lineOf(f, awaitAt) !== line) diff.push(...changed(f, lineOf(f, awaitAt), dropAt(f, awaitAt, "await")));
    report.add(f, "blocks", "async-wrapper", line, `an async wrapper around the synchronous ${name}`,
      `It returns a Promise where the caller expects the value. ${TRUTHY}`, "Make the wrapper synchronous:", diff);
    for (const d of diff) report.claim(f, d.line);
  }
  for (const m of matches(f, `\\b(?:util\\s*\\.\\s*)?promisify\\s*\\(\\s*(?:(${ID})\\s*\\.\\s*)?(${ID})\\s*\\)`)) {
    if (!syncCall(f, m[1], m[2])) continue;
    const line = lineOf(f, m.index);
    report.add(f, "blocks", "async-wrapper", line, `promisify(${m[1] ? `${m[1]}.` : ""}${m[2]}) waits for a callback that never comes`,
      `${m[2]} is synchronous and takes no callback: the Promise never settles.`, "Call the function itself:",
      changed(f, line, text(f, line).replace(m[0], m[1] ? `${m[1]}.${m[2]}` : m[2])));
    report.claim(f, line);
  }
}

/** The line of `pos` with the word at `pos` (and optionally the one at `also`) removed, with the space after it. */
function dropAt(f, pos, word, also = -1) {
  const line = lineOf(f, pos);
  const start = f.starts[line - 1];
  let out = text(f, line);
  for (const at of [pos, also].filter((p) => p >= 0).sort((a, b) => b - a)) {
    const length = (at === pos ? word : "await").length;
    const k = at - start;
    out = out.slice(0, k) + out.slice(k + length).replace(/^\s+/, "");
  }
  return out;
}

/** `.then(`, `.catch(` or `.finally(` on what one of the package's synchronous functions returns. */
function thenOnResult(f, report) {
  for (const m of matches(f, `(?<![.\\w$])(?:(${ID})\\s*\\.\\s*)?(${ID})\\s*\\(`)) {
    if (!syncCall(f, m[1], m[2])) continue;
    const close = closing(f.code, m.index + m[0].length - 1);
    const then = /^\s*\.\s*(then|catch|finally)\b/.exec(f.code.slice(close + 1, close + 40));
    const line = lineOf(f, m.index);
    if (!then || report.isClaimed(f, line) || lineOf(f, close) !== line) continue;
    const call = f.src.slice(m.index, close + 1);
    report.add(f, "blocks", "then", line, `.${then[1]}() on the result of the synchronous ${m[2]}`,
      `${m[2]} returns its value, not a Promise: the value has no ${then[1]} method, so this throws a TypeError.`,
      "Use the value it returns, or, the smallest edit, wrap the call:", changed(f, line, text(f, line).replace(call, `Promise.resolve(${call})`)));
    report.claim(f, line);
  }
}

/** `await` on one of the package's synchronous functions, one finding a file. */
function needlessAwaits(f, report) {
  const diff = [];
  for (const m of matches(f, `\\bawait\\s+(?:(${ID})\\s*\\.\\s*)?(${ID})\\s*\\(`)) {
    const line = lineOf(f, m.index);
    if (!syncCall(f, m[1], m[2]) || report.isClaimed(f, line)) continue;
    diff.push(...changed(f, line, dropAt(f, m.index, "await")));
    report.claim(f, line);
  }
  if (!diff.length) return;
  const count = diff.length / 2;
  report.add(f, "costs", "await", diff[0].line, `${count === 1 ? "an await" : `${count} awaits`} of synchronous functions`,
    "The package's functions return their result, not a Promise: each await only defers the rest of the handler to a later tick. " +
      "A handler that is async only for them is better plain: Express 4 does not catch a rejected Promise, so a throw from the store becomes an unhandled rejection instead of a 500.",
    "Drop the await:", diff);
}

/** A module-level or inline Map of registered clients. */
function clientRegistry(f, report, requiredBy) {
  if (f.mapClients) {
    if (!requiredBy.length) return;
    report.add(f, "costs", "client-registry", lineOf(f, f.code.search(/\bnew\s+Map\b/)),
      "registered clients are kept in a Map: after every restart each MCP client has to register again",
      "A client that kept its client_id gets invalid_client until it registers anew.",
      "Replace the whole file with the package's registry (same functions and shapes; secrets stored as digests):",
      wholeFile(f, reexport(f, `${PACKAGE}/clients`)));
    return;
  }
  if (f.kind) return;
  for (const m of matches(f, `^([ \\t]*)(?:const|let|var)\\s+(${ID})\\s*=\\s*new\\s+Map\\b[^;\\n]*;?`)) {
    const name = m[2];
    if (!/client/i.test(name)) continue;
    const line = lineOf(f, m.index + m[1].length);
    const diff = replaced(f, line, binding(f, m[1], ["registerClient", "getClient"], `${PACKAGE}/clients`));
    const sets = [];
    for (const use of matches(f, `\\b${name}\\s*\\.\\s*(get|set)\\s*\\(`)) {
      const at = lineOf(f, use.index);
      if (use[1] === "get") diff.push(...changed(f, at, text(f, at).replace(new RegExp(`\\b${name}\\s*\\.\\s*get\\s*\\(`, "g"), "getClient(")));
      else sets.push(at);
    }
    report.add(f, "costs", "client-registry", line, `registered clients are kept in the Map ${name}: after every restart each MCP client has to register again`,
      "A client that kept its client_id gets invalid_client until it registers anew.",
      `Keep them in the package's registry.${sets.length ? ` Where the client is set (line ${sets.join(", ")}), call registerClient(metadata) instead: it makes the client_id and returns the stored client.` : ""}`,
      diff);
  }
}

/** A Map of authorizations waiting for the upstream login (`openRouterAuths`), keyed by state. */
function pendingAuthorizations(f, report) {
  if (f.kind) return;
  for (const m of matches(f, `^([ \\t]*)(?:const|let|var)\\s+(${ID})\\s*=\\s*new\\s+Map\\b[^;\\n]*;?`)) {
    const name = m[2];
    if (!PENDING_NAME.test(name) || NOT_PENDING_NAME.test(name)) continue;
    const line = lineOf(f, m.index + m[1].length);
    const edits = [replaced(f, line, binding(f, m[1], ["storePendingAuthorization", "consumePendingAuthorization"], PACKAGE))];
    const other = [];
    const method = (verb) => new RegExp(`\\b${name}\\s*\\.\\s*${verb}\\s*\\(`, "g");
    for (const use of matches(f, `\\b${name}\\b(?:\\s*\\.\\s*(${ID}))?`)) {
      const at = lineOf(f, use.index);
      if (at === line || edits.some((e) => e[0].line === at)) continue;
      const own = text(f, at);
      if (use[1] === "set") edits.push(changed(f, at, own.replace(method("set"), "storePendingAuthorization(")));
      else if (use[1] === "get") edits.push(changed(f, at, own.replace(method("get"), "consumePendingAuthorization(")));
      else if (use[1] === "delete" && new RegExp(`^\\s*${name}\\s*\\.\\s*delete\\s*\\([^()]*\\);?$`).test(own)) edits.push(removed(f, at));
      else if (!other.includes(at)) other.push(at);
    }
    // A `setInterval(…)` statement that sweeps the Map: the store expires entries itself.
    for (const timer of matches(f, `^[ \\t]*setInterval\\s*\\(`)) {
      const [from, to] = [lineOf(f, timer.index), lineOf(f, statementEnd(f.code, timer.index + timer[0].search(/\S/)) - 1)];
      if (!other.some((l) => l >= from && l <= to)) continue;
      edits.push(removed(f, from, to));
      other.splice(0, other.length, ...other.filter((l) => l < from || l > to));
    }
    report.add(f, "costs", "pending-map", line,
      `authorizations waiting for the upstream login are kept in the Map ${name}`,
      "A restart or deploy between authorize and callback fails that login, and with several processes the callback may reach one that never saw it.",
      "Keep them in the store: storePendingAuthorization(state, data, ttlSeconds = 600) stores, consumePendingAuthorization(state) returns and removes once (null when unknown or expired)." +
        (other.length ? ` Line ${other.join(", ")} use${other.length === 1 ? "s" : ""} ${name} otherwise: rewrite with the two calls (entries expire by themselves).` : ""),
      edits.sort((a, b) => a[0].line - b[0].line).flat());
  }
}

/** A refresh grant made of getRefreshToken, storeAccessToken and revokeRefreshToken: three steps, not one. */
function refreshGrant(f, report) {
  if (f.kind === "tokens" || f.kind === "old-db" || /\brotateRefreshToken\b/.test(f.code)) return;
  const call = (name) => `(?:\\bawait\\s+)?(?:(${ID})\\s*\\.\\s*)?\\b${name}\\s*\\(`;
  for (const get of matches(f, call("getRefreshToken"))) {
    const body = enclosingFunction(f, get.index);
    // The first match after the getRefreshToken call, in the same function.
    const after = (source) => {
      const re = new RegExp(source, "gm");
      re.lastIndex = get.index + get[0].length;
      const found = re.exec(f.code);
      return found && found.index < body[1] ? found : null;
    };
    const revoke = body && after(call("revokeRefreshToken"));
    if (!revoke) continue;
    const line = lineOf(f, get.index);
    const close = closing(f.code, get.index + get[0].length - 1);
    const result = /\b(?:const|let|var)\s+([\w$]+)\s*=\s*$/.exec(f.code.slice(f.starts[line - 1], get.index))?.[1];
    const store = after(call("storeAccessToken"));
    const given = store ? splitArguments(f, store.index + store[0].length - 1) : [];
    const args = given.length >= 2 ? [given[0], given[1], ...(given.length >= 7 ? [given[6]] : [])] : ["newAccessToken", "newRefreshToken", "expiresAt"];
    const rotate = `${get[1] ? `${get[1]}.` : ""}rotateRefreshToken(${f.src.slice(get.index + get[0].length, close).trim()}, ${args.join(", ")})`;
    const edits = new Map([[line, changed(f, line, lineOf(f, close) === line
      ? text(f, line).replace(f.src.slice(get.index, close + 1), rotate)
      : text(f, line).replace(/(?:\bawait\s+)?\bgetRefreshToken\s*\(/, "rotateRefreshToken("))]]); // arguments on further lines: add the new tokens there
    for (const c of [store, revoke].filter(Boolean)) {
      const from = lineOf(f, c.index);
      if (f.code.slice(f.starts[from - 1], c.index).trim() === "") edits.set(from, removed(f, from, lineOf(f, closing(f.code, c.index + c[0].length - 1))));
    }
    // `const accessData = getAccessToken(tokenData.accessToken)` gives null once rotated; the rotation's result has the apiKey.
    const oldAccess = result && after(`^[ \\t]*(?:const|let|var)\\s+(${ID})\\s*=[^;\\n]*\\bgetAccessToken\\s*\\(\\s*${result}\\s*\\.\\s*accessToken\\s*\\)[^\\n]*$`);
    if (oldAccess) {
      const at = lineOf(f, oldAccess.index);
      edits.set(at, removed(f, at));
      const name = new RegExp(`\\b${oldAccess[1]}\\b`, "g");
      for (let l = at + 1; l <= lineOf(f, body[1]); l++) {
        if (edits.has(l) || [...edits.values()].flat().some((d) => d.line === l) || !name.test(text(f, l))) continue;
        edits.set(l, new RegExp(`^\\s*if\\s*\\(\\s*!\\s*${oldAccess[1]}\\s*\\)`).test(text(f, l)) ? removed(f, l) : changed(f, l, text(f, l).replace(name, result)));
      }
    }
    // A bare getRefreshToken(…) was destructured: rotateRefreshToken is, in its place or beside it.
    const picked = !get[1] && f.requires.find((r) => r.picks.some(([imported, local]) => imported === "getRefreshToken" && local === "getRefreshToken"));
    if (picked) {
      const at = lineOf(f, f.code.lastIndexOf("getRefreshToken", picked.pos));
      const alone = [...matches(f, "\\bgetRefreshToken\\s*\\(")].length === 1;
      edits.set(at, changed(f, at, text(f, at).replace(/\bgetRefreshToken\b/, alone ? "rotateRefreshToken" : "getRefreshToken, rotateRefreshToken")));
    }
    // The new tokens are made before the rotation: their one-line declarations move up.
    const moved = args.slice(0, 2).map((name) => /^[\w$]+$/.test(name) && after(`^[ \\t]*(?:const|let|var)\\s+${name}\\s*=[^;\\n]*;?[ \\t]*$`));
    for (const m of moved.filter(Boolean)) edits.set(lineOf(f, m.index), removed(f, lineOf(f, m.index)));
    const declared = (name) => new RegExp(`\\b(?:const|let|var)\\s+${name}\\b`).test(f.code.slice(body[0], get.index));
    const unmade = args.slice(0, 2).filter((name, i) => !moved[i] && !declared(name));
    const diff = [...edits].sort((a, b) => a[0] - b[0]).flatMap(([, d]) => d);
    diff.splice(0, 0, ...moved.filter(Boolean).map((m) => ({ op: "+", text: `${indentOf(f, line)}${text(f, lineOf(f, m.index)).trim()}` })));
    report.add(f, "costs", "refresh-grant", line, "the refresh grant is three calls, not one atomic step",
      "Two requests with the same refresh token can both get new tokens, and a crash between the calls leaves the old and new tokens both live.",
      "Rotate in one call: rotateRefreshToken returns { userId, clientId, scopes, apiKey, accessToken, refreshToken } or null, and of two concurrent rotations exactly one wins" +
        (unmade.length ? `. Make ${unmade.join(" and ")} before it.` : "."),
      diff);
    for (const d of diff) report.claim(f, d.line);
  }
}

/** The arguments of the call whose `(` is at `open`, as written. */
function splitArguments(f, open) {
  const close = closing(f.code, open);
  const out = [];
  let depth = 0;
  let from = open + 1;
  for (let i = open + 1; i <= close; i++) {
    const c = f.code[i];
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c) && i < close) depth--;
    if ((c === "," && depth === 0) || i === close) {
      out.push(f.src.slice(from, i).trim().replace(/\s+/g, " "));
      from = i + 1;
    }
  }
  return out.filter(Boolean);
}

/** No closeDB() (nor a store's close()) where the server shuts down. */
function shutdown(files, report) {
  const users = files.filter((f) => f.kind !== "old-db" && f.requires.some((r) => ["tokens", "old-db"].includes(kindOf(r))));
  if (!users.length) return;
  const closes = (f) =>
    f.kind !== "old-db" &&
    [...matches(f, `\\bcloseDB\\s*\\(|[(,]\\s*(?:${ID}\\s*\\.\\s*)?closeDB\\s*[),]${/\bnew\s+TokenStorage\b/.test(f.code) ? "|\\.\\s*close\\s*\\(\\s*\\)" : ""}`)]
      .some((m) => !report.isClaimed(f, lineOf(f, m.index)));
  if (files.some(closes)) return;
  const why = "Without it the SQLite file is not checkpointed at exit (the newest tokens stay in tokens.db-wal, which a copy of tokens.db alone misses), and PostgreSQL sees its connections dropped.";
  const closeCall = (f) => {
    const obj = [...f.objects].find(([, kind]) => kind === "tokens" || kind === "old-db")?.[0];
    return f.names.get("closeDB") ? "closeDB();" : `${obj ?? `require("${PACKAGE}")`}.closeDB();`;
  };
  for (const f of files) {
    for (const m of matches(f, `\\bprocess\\s*\\.\\s*(?:on|once)\\s*\\(\\s*(["'])[^"'\\n]*["']\\s*,\\s*`)) {
      const line = lineOf(f, m.index);
      const signal = literalAt(f, m.index + m[0].indexOf(m[1]));
      if (!/^SIG(?:TERM|INT)$/.test(signal) || report.isClaimed(f, line)) continue;
      const handler = /^[\w$]+/.exec(f.code.slice(m.index + m[0].length))?.[0];
      const start = handler && !/^(?:async|function)$/.test(handler)
        ? f.code.search(new RegExp(`\\bfunction\\s+${handler}\\b|\\b(?:const|let|var)\\s+${handler}\\s*=`))
        : m.index + m[0].length;
      const open = f.code.indexOf("{", start);
      const inline = start === m.index + m[0].length;
      const body = open >= 0 && isFunctionBody(f.code, open) && (!inline || open < closing(f.code, f.code.indexOf("(", m.index)))
        ? [open, closing(f.code, open)]
        : null;
      const exit = body && f.code.slice(body[0], body[1]).search(/\bprocess\s*\.\s*exit\s*\(/);
      const before = !body ? null : exit >= 0 ? lineOf(f, body[0] + exit) : lineOf(f, body[1]);
      // Into the handler, before it exits; a handler on one line gets one of its own before it.
      const diff = before && before > lineOf(f, body[0])
        ? [{ op: "+", text: `${indentOf(f, exit >= 0 ? before : before - 1)}${closeCall(f)}` }, { line: before, op: " ", text: text(f, before) }]
        : [{ op: "+", text: `${indentOf(f, line)}process.once("${signal}", () => ${closeCall(f).slice(0, -1)});` }, { line, op: " ", text: text(f, line) }];
      report.add(f, "costs", "no-closedb", line, "the shutdown handler does not call closeDB()", why,
        "Close the store before the process exits:", diff);
      return;
    }
  }
  const main = users.find((f) => /\.\s*listen\s*\(/.test(f.code)) ?? users[0];
  const listen = main.code.search(/\.\s*listen\s*\(/);
  const line = listen >= 0 ? lineOf(main, closing(main.code, main.code.indexOf("(", listen))) : main.lines.length;
  report.add(main, "costs", "no-closedb", lineOf(main, Math.max(listen, 0)), "nothing calls closeDB() when the server stops", why,
    "Close the store on SIGTERM and SIGINT:",
    [{ line, op: " ", text: text(main, line) }, { op: "+", text: `for (const signal of ["SIGTERM", "SIGINT"]) process.once(signal, () => { ${closeCall(main)} process.exit(0); });` }]);
}

/**
 * How the server is started, from the package.json here or one folder up: `{ cwd, main,
 * pkgFile, startLine, lines, how }` (`startLine` 0 without a start script).
 */
function startOf(root) {
  for (const dir of [root, path.dirname(root)]) {
    const file = path.join(dir, "package.json");
    if (!fs.existsSync(file)) continue;
    const raw = fs.readFileSync(file, "utf8");
    let pkg;
    try {
      pkg = JSON.parse(raw);
    } catch {
      continue;
    }
    const script = /\b(?:node|nodemon|ts-node|tsx)\s+(?:-\S+\s+)*([^\s&|;]+)/.exec(pkg.scripts?.start ?? "");
    const main = script?.[1] ?? pkg.main ?? conventionalMain(dir);
    const startLine = pkg.scripts?.start ? raw.split(/\r?\n/).findIndex((l) => /"start"\s*:/.test(l)) + 1 : 0;
    return { cwd: dir, main: main && path.resolve(dir, main), pkgFile: file, startLine, lines: raw.split(/\r?\n/), how: script ? `\`npm start\` (${script[0]})` : null };
  }
  const main = conventionalMain(root);
  return { cwd: root, main: main && path.join(root, main), startLine: 0, how: null };
}

const conventionalMain = (dir) => ["server.js", "index.js", "app.js"].find((f) => fs.existsSync(path.join(dir, f))) ?? null;

/** Where the old module kept its file: `path.join(__dirname, …)` in its source, else `utils/../data/tokens.db`. */
function oldDatabasePath(f) {
  for (const m of matches(f, `\\bpath\\s*\\.\\s*(?:join|resolve)\\s*\\(\\s*__dirname\\s*,`)) {
    const parts = splitArguments(f, f.code.indexOf("(", m.index)).slice(1);
    if (parts.length && parts.every((p) => /^(["']).*\1$/.test(p)) && /\.(?:db|sqlite3?)["']$/.test(parts.at(-1))) {
      return path.join(path.dirname(f.abs), ...parts.map((p) => p.slice(1, -1)));
    }
  }
  return path.join(path.dirname(f.abs), "..", "data", "tokens.db");
}

/** An old tokens.db that the package's default file would leave behind, when TOKEN_DB_PATH is set nowhere. */
function oldDatabase(root, files, databases, report) {
  const found = new Set(databases);
  for (const f of files) if (f.kind === "old-db") found.add(oldDatabasePath(f));
  const existing = [...found].filter((file) => fs.existsSync(file));
  if (!existing.length) return;
  const start = startOf(root);
  const settings = fs.readdirSync(start.cwd).filter((n) => /^(?:package\.json|\.env.*|Dockerfile.*|.*compose.*\.ya?ml|.*\.service)$/.test(n));
  const said = [...files.map((f) => f.src), ...settings.map((n) => fs.readFileSync(path.join(start.cwd, n), "utf8"))];
  if (said.some((t) => t.includes("TOKEN_DB_PATH"))) return;
  const here = path.join(start.cwd, "data", "tokens.db");
  const beside = start.main ? path.join(path.dirname(start.main), "data", "tokens.db") : here;
  const chosen = fs.existsSync(here) || !fs.existsSync(beside) ? here : beside;
  for (const db of existing) {
    if (db === chosen) continue;
    const setting = `TOKEN_DB_PATH=${relative(start.cwd, db)}`;
    const how = start.how ?? (start.main ? `node ${relative(start.cwd, start.main)}` : "the server");
    const why = `Started by ${how} in ${start.cwd === root ? "this folder" : relative(root, start.cwd)}, native-token-storage opens ` +
      `${relative(root, chosen)}${fs.existsSync(chosen) ? " (which exists too)" : ", a new empty file,"} instead: every user would have to log in again.`;
    const where = start.startLine ? { file: relative(root, start.pkgFile), line: start.startLine } : { file: relative(root, db), line: null };
    const startText = start.startLine ? start.lines[start.startLine - 1].trimEnd() : "";
    report.add(where.file, "costs", "old-database", where.line,
      `the old database ${relative(root, db)} is not the file native-token-storage will open`, why,
      "Point TOKEN_DB_PATH at it (a relative path is resolved against the server's working directory):",
      start.startLine
        ? [{ line: start.startLine, op: "-", text: startText }, { line: start.startLine, op: "+", text: startText.replace(/("start"\s*:\s*")/, `$1${setting} `) }]
        : [{ op: "+", text: setting }]);
  }
}

// ---- The whole check ---------------------------------------------------------------------

/**
 * Checks the server whose source is under `folder`. Returns `{ folder, files, tokenStorage,
 * findings }`: `tokenStorage` says whether any token module or use of the package was seen;
 * each finding is `{ check, severity: "blocks" | "costs", file, line, problem, why, fix, diff }`,
 * `diff` a list of `{ line, op: "-" | "+" | " " | "…", text }`. Blocking findings come first.
 */
function doctor(folder = ".") {
  const root = path.resolve(folder);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`${folder}: no such folder`);
  const { sources, databases } = walk(root);
  const files = sources.map((abs) => readSource(root, abs));
  const byPath = new Map(files.map((f) => [f.abs, f]));
  for (const f of files) {
    f.requires = requiresOf(f);
    for (const r of f.requires) r.target = resolve(byPath, f, r.spec);
  }
  for (const f of files) classify(f);
  for (const f of files) bindings(f);
  const requiredBy = (target) => files.filter((f) => f.requires.some((r) => r.target === target));

  const report = new Report();
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
    clientRegistry(f, report, requiredBy(f));
    pendingAuthorizations(f, report);
  }
  shutdown(files, report);
  oldDatabase(root, files, databases, report);

  const order = (a, b) => (a.severity === b.severity ? 0 : a.severity === "blocks" ? -1 : 1) || a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0);
  return {
    folder: root,
    files: files.length,
    tokenStorage: files.some((f) => f.kind || f.requires.some(kindOf)),
    findings: report.findings.sort(order),
  };
}

const SEVERITY_TITLES = { blocks: "Stops the swap from working", costs: "Costs you" };

/** The findings as text: `file:line: problem`, why, the fix and its diff, grouped by severity. */
function format(result, shownFolder = result.folder) {
  const where = shownFolder === "." ? "the current folder" : shownFolder;
  const out = [`native-token-storage doctor: read ${result.files} file${result.files === 1 ? "" : "s"} in ${where}`];
  for (const severity of ["blocks", "costs"]) {
    const group = result.findings.filter((f) => f.severity === severity);
    if (!group.length) continue;
    out.push("", `${SEVERITY_TITLES[severity]} (${group.length})`);
    for (const f of group) {
      out.push("", `${f.file}${f.line ? `:${f.line}` : ""}: ${f.problem}`, `  ${f.why}`, `  Fix: ${f.fix}`);
      const width = String(Math.max(0, ...f.diff.map((d) => d.line ?? 0))).length;
      for (const d of f.diff) out.push(`    ${String(d.op === "+" || d.op === "…" ? "" : d.line ?? "").padStart(width)} ${d.op} ${d.text}`.trimEnd());
    }
  }
  const count = (severity) => result.findings.filter((f) => f.severity === severity).length;
  out.push("", result.findings.length === 0
    ? "Nothing found: the server is ready for native-token-storage."
    : `${count("blocks")} stop${count("blocks") === 1 ? "s" : ""} the swap from working, ${count("costs")} cost${count("costs") === 1 ? "s" : ""} you. Make the edits, then run doctor again.`);
  return `${out.join("\n")}\n`;
}

module.exports = { doctor, format };
