"use strict";
// The source model, module half: what each file requires or imports and binds, which scanned
// file a relative require resolves to, what each module is (a token module, the old sqlite3
// module, a client registry, the package) and which calls reach the package's synchronous
// functions.

const path = require("node:path");
const { PACKAGE, TOKEN_FUNCTIONS, CLIENT_FUNCTIONS, SYNC_FUNCTIONS, SYNC_KINDS } = require("./names");
const { isFunction, lineOf, statementOf, textOf } = require("./syntax");

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

module.exports = { isRequire, requiresOf, resolve, kindOf, classify, bindings, callee, syncCall, syncCalls };
