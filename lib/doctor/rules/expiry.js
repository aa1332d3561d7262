"use strict";
// The rule on how long a stored row lives: an access token stored without an expiry, given
// the grant's lifetime (a refresh token lifetime a required module exports, in a unit doctor
// can tell) or the expires_in the response announces.

const { syncCalls } = require("../modules");
const { enclosingFunction, indentAt, lineOf, statementOf, textOf, within } = require("../syntax");

const isNothing = (n) => (n.type === "Literal" && n.value === null && n.raw === "null") || (n.type === "Identifier" && n.name === "undefined");

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

module.exports = { isNothing, WHY_GRANT, storesRefreshToken, grantLifetime, expiresInOf, noExpiry };
