"use strict";
// Rules on OAuth state kept in Maps that a restart loses: the registered clients (and the
// client the environment pre-registers) and the logins waiting for the upstream, keyed by
// state.

const { deletion } = require("../edits");
const { callee } = require("../modules");
const { PACKAGE, CLIENT_FUNCTIONS } = require("../names");
const {
  ancestors, descendants, enclosingFunction, isFunction, isReference, lineEnd, lineOf, lineStart, references, statementOf, statementRange, textOf, within,
} = require("../syntax");
const { binding, firstMap, isModule, reexport } = require("./common");

/**
 * Names of a `Map` that holds logins waiting for the upstream (`openRouterAuths`,
 * `pendingAuthorizations`), not codes, tokens or clients, nor an MCP server's `sessions`.
 */
const PENDING_NAME = /pending|auth/i;
const NOT_PENDING_NAME = /client|token|code/i;

/** Names the statements kept from a client registry may use without their definitions. */
const GLOBALS = new Set(["process", "console", "JSON", "Date", "Math", "Object", "Array", "String", "Number", "Boolean", "undefined", "require", "module", "Buffer", "URL"]);

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
    // A Map an MCP provider class reads is that rule's (mcp-memory-provider).
    if (!/client/i.test(name) || report.isClaimed(f, d)) continue;
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
    if (!PENDING_NAME.test(name) || NOT_PENDING_NAME.test(name) || d.parent.parent.type !== "Program" || d.parent.declarations.length !== 1 || report.isClaimed(f, d)) continue;
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

module.exports = { clientRegistry, environmentClient, pendingAuthorizations };
