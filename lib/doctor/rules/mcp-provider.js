"use strict";
// The rule on an MCP server's own OAuth state kept in memory: the MCP TypeScript SDK's demo
// provider (`@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js`:
// DemoInMemoryAuthProvider, DemoInMemoryClientsStore, setupAuthServer), or a provider or
// clients store of the server's own (a class with the SDK's provider methods, or that
// implements OAuthServerProvider / OAuthRegisteredClientsStore) whose state is in Maps. The
// replacement is native-token-storage/mcp. No --fix: the login is the author's to write.
//
// JavaScript files are read from their syntax tree. TypeScript files, which doctor does not
// parse, are read for this rule only, token by token (acorn's tokenizer: comments and strings
// are never read as code), for their imports and classes.

const acorn = require("acorn");
const { PACKAGE } = require("../names");
const { descendants, lineOf, references, within } = require("../syntax");
const { isModule } = require("./common");

const SDK = "@modelcontextprotocol/sdk";
const DEMO_MODULE = /^@modelcontextprotocol\/sdk\/(?:dist\/(?:esm|cjs)\/)?examples\/server\/demoInMemoryOAuthProvider(?:\.js)?$/;
const DEMO_NAMES = ["DemoInMemoryAuthProvider", "DemoInMemoryClientsStore", "setupAuthServer"];
const PROVIDER_INTERFACE = "OAuthServerProvider";
const CLIENTS_INTERFACE = "OAuthRegisteredClientsStore";
const MCP_ENTRY = `${PACKAGE}/mcp`;
const CHECK = "mcp-memory-provider";

/** Whether a class (its method names, the interfaces it implements) is an OAuth provider or a clients store of the SDK's shape. */
function roleOf(holder, usesSdk) {
  const m = holder.methods;
  if (holder.implements.includes(PROVIDER_INTERFACE) || (m.has("exchangeAuthorizationCode") && (m.has("verifyAccessToken") || m.has("challengeForAuthorizationCode")))) return "provider";
  if (holder.implements.includes(CLIENTS_INTERFACE) || (usesSdk && m.has("getClient") && m.has("registerClient"))) return "clients store";
  return null;
}

// ---- JavaScript: the syntax tree --------------------------------------------------------

const isNewMap = (n) => n.type === "NewExpression" && n.callee.type === "Identifier" && n.callee.name === "Map";

/** The name a `new Map()` is kept under: `this.codes = …`, `codes = …` (a field), `const codes = …`, `{ codes: … }`. */
function mapName(n) {
  const p = n.parent;
  if (p?.type === "Property" && !p.computed && p.value === n) return p.key.name ?? p.key.value;
  if (p?.type === "AssignmentExpression" && p.left.type === "MemberExpression" && !p.left.computed) return p.left.property.name;
  if (p?.type === "PropertyDefinition" && !p.computed) return p.key.name ?? p.key.value;
  if (p?.type === "VariableDeclarator" && p.id.type === "Identifier") return p.id.name;
  return null;
}

const FUNCTION_VALUES = ["FunctionExpression", "ArrowFunctionExpression"];

/**
 * The classes and object literals of a JS file that may hold OAuth state:
 * `{ name, node, methods, implements: [], maps: [{ pos, name }] }`. An object literal is one
 * with a function among its properties (`{ async exchangeAuthorizationCode() {…}, … }`).
 */
function jsClasses(f) {
  const topMaps = f.nodes.filter((n) => isNewMap(n) && n.parent.type === "VariableDeclarator" && n.parent.id.type === "Identifier" && n.parent.parent.parent?.type === "Program");
  const holder = (node, body, methods, fallback) => {
    const own = descendants(f, body).filter(isNewMap);
    // A Map of the module that the class or object reads (`const codes = new Map()` above it).
    const shared = topMaps.filter((n) => references(f, n.parent.id.name, body).length > 0);
    const maps = [...own, ...shared].sort((a, b) => a.start - b.start).map((n) => ({ pos: n.start, name: mapName(n) }));
    const name = node.id?.name ?? (node.parent.type === "VariableDeclarator" && node.parent.id.type === "Identifier" ? node.parent.id.name : fallback);
    return { name, node, pos: node.start, methods, implements: [], maps };
  };
  const classes = f.nodes.filter((n) => n.type === "ClassDeclaration" || n.type === "ClassExpression").map((c) => holder(c, c.body,
    new Set(c.body.body.filter((m) => (m.type === "MethodDefinition" || m.type === "PropertyDefinition") && !m.computed && m.key.type === "Identifier").map((m) => m.key.name)),
    "(a class)"));
  const objects = f.nodes.filter((n) => n.type === "ObjectExpression").flatMap((o) => {
    const functions = o.properties.filter((p) => p.type === "Property" && !p.computed && (p.method || FUNCTION_VALUES.includes(p.value.type)));
    return functions.length ? [holder(o, o, new Set(functions.map((p) => p.key.name ?? p.key.value)), "(an object)")] : [];
  });
  return [...classes, ...objects];
}

function jsModel(f) {
  return {
    imports: f.requires.map((r) => ({ spec: r.spec, pos: r.node.start, names: r.picks.map(([imported]) => imported) })),
    classes: jsClasses(f),
    module: isModule(f),
  };
}

// ---- TypeScript: the tokens -------------------------------------------------------------

/** The tokens of a TypeScript source (a decorator's `@` read as a blank), or null when acorn's tokenizer cannot read it. */
function tokensOf(src) {
  let text = src;
  for (let tries = 0; tries < 1000; tries++) {
    try {
      return [...acorn.tokenizer(text, { ecmaVersion: "latest", sourceType: "module", allowHashBang: true })];
    } catch (err) {
      if (!(err instanceof SyntaxError) || text[err.pos] !== "@") return null;
      text = `${text.slice(0, err.pos)} ${text.slice(err.pos + 1)}`;
    }
  }
  return null;
}

/** Imports and classes of a TypeScript file, from its tokens; null when they cannot be read. */
function tsModel(f) {
  const t = tokensOf(f.src);
  if (!t) return null;
  const label = (i) => t[i]?.type.label;
  const isName = (i, value) => label(i) === "name" && (value === undefined || t[i].value === value);
  const imports = [];
  for (let i = 0; i < t.length; i++) {
    if (label(i) !== "string") continue;
    const call = label(i - 1) === "(" && (isName(i - 2, "require") || label(i - 2) === "import");
    if (isName(i - 1, "from") || label(i - 1) === "import" || call) {
      // The statement's start: back to its `import`/`export` (or the call's name).
      let s = call ? i - 2 : i - 1;
      while (s > 0 && !call && label(s) !== "import" && label(s) !== "export" && label(s) !== ";") s--;
      const names = [];
      for (let k = s; k < i; k++) if (isName(k) && !["type", "from", "as", "require"].includes(t[k].value)) names.push(t[k].value);
      imports.push({ spec: t[i].value, pos: t[s].start, names });
    }
  }
  const closing = (open) => {
    let depth = 0;
    for (let k = open; k < t.length; k++) {
      if (label(k) === "{" || label(k) === "${") depth++;
      else if (label(k) === "}") if (--depth === 0) return k;
    }
    return t.length - 1;
  };
  // The name a `new Map` is kept under: `this.codes = new Map`, `codes = new Map` (a field, or
  // `const codes`), `codes: Map<string, { … }> = new Map` (back over the type, brackets balanced).
  const OPEN = { "<": -1, ">": 1, ">>": 2, ">>>": 3, "{": -1, "${": -1, "}": 1, "(": -1, ")": 1, "[": -1, "]": 1 };
  const weight = (j) => OPEN[label(j)] ?? (/^[<>]+$/.test(t[j].value ?? "") ? OPEN[t[j].value] ?? 0 : 0);
  const mapsIn = (from, to) => {
    const maps = [];
    for (let k = from; k < to; k++) {
      if (label(k) !== "new" || !isName(k + 1, "Map")) continue;
      let back = k - 1;
      if (label(back) === "=") back--;
      if (!isName(back)) {
        let depth = 0;
        for (let j = back; j > from; j--) {
          depth += weight(j);
          if (depth < 0 || (depth === 0 && label(j) === ";")) break;
          if (depth === 0 && label(j) === ":" && isName(j - 1)) {
            back = j - 1;
            break;
          }
        }
      }
      maps.push({ pos: t[k].start, name: isName(back) ? t[back].value : null });
    }
    return maps;
  };
  const classes = [];
  const topMaps = [];
  // The maps a class or object literal uses: its own, and the file's top-level ones it names.
  const mapsUsed = (from, to) => {
    const names = new Set(t.slice(from, to).filter((x) => x.type.label === "name").map((x) => x.value));
    return [...mapsIn(from, to), ...topMaps.filter((m) => names.has(m.name))].sort((a, b) => a.pos - b.pos);
  };
  let classEnd = -1;
  for (let i = 0; i < t.length; i++) {
    if (i > classEnd && ["const", "let", "var"].includes(t[i].value) && isName(i + 1)) {
      // `const codes = new Map` or `const codes: Map<…> = new Map`: the first `=` or `;` after the name.
      let eq = i + 2;
      while (eq < t.length && label(eq) !== "=" && label(eq) !== ";") eq++;
      if (label(eq) === "=" && label(eq + 1) === "new" && isName(eq + 2, "Map")) topMaps.push({ name: t[i + 1].value, pos: t[eq + 1].start });
    }
    if (label(i) !== "class") continue;
    let k = i + 1;
    const name = isName(k) ? t[k].value : "(a class)";
    const implemented = [];
    let implementsList = false;
    for (; k < t.length && label(k) !== "{"; k++) {
      if (isName(k, "implements")) implementsList = true;
      else if (isName(k, "extends")) implementsList = false;
      else if (implementsList && isName(k)) implemented.push(t[k].value);
    }
    const end = closing(k);
    const methods = new Set();
    let depth = 0;
    for (let j = k; j < end; j++) {
      if (["{", "${"].includes(label(j))) depth++;
      else if (label(j) === "}") depth--;
      else if (depth === 1 && isName(j) && label(j - 1) !== "." && (label(j + 1) === "(" || label(j + 1) === "</>/<=/>=" || label(j + 1) === "=")) methods.add(t[j].value);
    }
    classes.push({ name, pos: t[i].start, methods, implements: implemented, maps: mapsUsed(k, end) });
    classEnd = Math.max(classEnd, end);
  }
  // Object literals outside classes: `const provider: OAuthServerProvider = { async
  // exchangeAuthorizationCode(…) {…}, … }` (or `… } satisfies OAuthServerProvider`).
  for (let i = 0; i < t.length; i++) {
    if (i <= classEnd || !["const", "let", "var"].includes(t[i].value) || !isName(i + 1)) continue;
    let open = i + 2;
    const typed = [];
    while (open < t.length && label(open) !== "=" && label(open) !== ";") if (isName(open++)) typed.push(t[open - 1].value);
    if (label(open) !== "=" || label(open + 1) !== "{") continue;
    open += 1;
    const end = closing(open);
    const methods = new Set();
    let depth = 0;
    for (let j = open; j < end; j++) {
      if (["{", "${", "(", "["].includes(label(j))) depth++;
      else if (["}", ")", "]"].includes(label(j))) depth--;
      else if (depth === 1 && isName(j) && ([",", "{"].includes(label(j - 1)) || isName(j - 1, "async"))) {
        const next = label(j + 1);
        const value = next === ":" ? t[j + 2] : null;
        if (next === "(" || next === "</>/<=/>=" || (value && (value.value === "async" || value.type.label === "function" || value.type.label === "("))) methods.add(t[j].value);
      }
    }
    if (!methods.size) continue;
    if (isName(end + 1, "satisfies") && isName(end + 2)) typed.push(t[end + 2].value);
    classes.push({ name: t[i + 1].value, pos: t[i].start, methods, implements: typed, maps: mapsUsed(open, end) });
    i = end;
  }
  return { imports, classes, module: true };
}

// ---- The finding ------------------------------------------------------------------------

/** The few lines that replace the provider, as the file would write them. */
function replacement(module) {
  const bind = module
    ? `import { TokenStorageOAuthProvider, mcpAuthRouter } from "${MCP_ENTRY}";`
    : `const { TokenStorageOAuthProvider, mcpAuthRouter } = require("${MCP_ENTRY}");`;
  return [
    bind,
    "const provider = new TokenStorageOAuthProvider({",
    "  resources: [mcpUrl],                        // the MCP server's URL (RFC 8707)",
    "  async authorize(client, params, res, p) {   // your login; once the user is known:",
    "    await p.completeAuthorization({ client, params }, { userId }, res);",
    "  },",
    "});",
    "app.use(mcpAuthRouter({ provider, issuerUrl, resourceServerUrl: mcpUrl }));",
    "// requireBearerAuth({ verifier: provider, expectedResource: mcpUrl }) on the MCP route",
  ];
}

const WHAT = "Use native-token-storage/mcp: TokenStorageOAuthProvider keeps registered clients, codes, access and refresh tokens in the store " +
  "(TOKEN_STORAGE=sqlite or postgres), with refresh rotation, PKCE checked by the store and RFC 8707 resources; you write only the login. " +
  "Install its mcpAuthRouter in place of the SDK's (the package's docs/mcp.md, in node_modules/native-token-storage/docs/mcp.md):";
const list = (names) => (names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names[0]);

function addFinding(report, f, pos, problem, why, model, login) {
  const byHand = `replace the provider with the lines below and write your login in authorize (${login}): doctor cannot write it for you`;
  const finding = report.add(f, "costs", CHECK, pos, problem, why, WHAT, { byHand });
  finding.diff = replacement(model.module).map((text) => ({ op: "+", text }));
  return finding;
}

/** The findings of one file's model. */
function findings(f, model, report) {
  if (model.imports.some((i) => i.spec === MCP_ENTRY)) return;
  const restart = "Every restart or deploy forgets them: each MCP client must register again (its client_id answers invalid_client) and every user must log in again; " +
    "with several instances, a token one issued is unknown to the others (401), and a code issued by one cannot be exchanged at another.";
  for (const i of model.imports.filter((x) => DEMO_MODULE.test(x.spec))) {
    const used = DEMO_NAMES.filter((n) => i.names.includes(n));
    addFinding(report, f, i.pos,
      `the MCP SDK's in-memory demo OAuth provider${used.length ? ` (${used.join(", ")})` : ""} keeps clients, codes and tokens in Maps`,
      `The SDK marks it "demo only, not for production". ${restart} It has no refresh grant ("Not implemented for example demo").`,
      model, "the demo's authorize logs everyone in as one user");
  }
  const usesSdk = model.imports.some((i) => i.spec === SDK || i.spec.startsWith(`${SDK}/`));
  // A clients store is known by its two methods in a file that uses the SDK or holds a provider (a copy of the demo).
  const withProvider = usesSdk || model.classes.some((c) => roleOf(c, false) === "provider");
  const found = model.classes.map((c) => ({ ...c, role: roleOf(c, withProvider) })).filter((c) => c.role && c.maps.length);
  if (!found.length) return;
  const held = [...new Set(found.flatMap((c) => c.maps.map((m) => m.name).filter(Boolean)))];
  const first = Math.min(...found.flatMap((c) => c.maps.map((m) => m.pos)));
  const lines = [...new Set(found.flatMap((c) => c.maps.map((m) => lineOf(f, m.pos))))].sort((a, b) => a - b);
  addFinding(report, f, first,
    `the MCP OAuth ${list(found.map((c) => `${c.role} ${c.name}`))} keep${found.length === 1 ? "s" : ""} ${held.length ? list(held) : "its state"} in Maps (line ${lines.join(", ")})`,
    `Maps live as long as the process. ${restart}`,
    model, "what it does before it issues the code");
  for (const c of found) if (c.node) report.claim(f, c.node.start, c.node.end);
  for (const c of found) for (const m of c.maps) if (!c.node || !within({ start: m.pos, end: m.pos }, c.node)) {
    // A module-level Map the class reads: no other rule reports it.
    const decl = f.nodes?.find((n) => n.start === m.pos && isNewMap(n));
    if (decl) report.claim(f, decl.parent.start, decl.parent.end);
  }
}

/** A JavaScript file: the SDK's demo provider imported, or a provider of the server's own kept in Maps. */
function mcpMemoryProvider(f, report) {
  findings(f, jsModel(f), report);
}

/** The TypeScript files (`{ abs, rel, src }`), read for this rule only. Returns those read, each with its `imports` ([{ spec, pos, names }]). */
function mcpMemoryProviderTs(files, report) {
  const read = [];
  for (const f of files) {
    const model = tsModel(f);
    if (!model) continue;
    f.starts = [0];
    for (let i = 0; i < f.src.length; i++) if (f.src[i] === "\n") f.starts.push(i + 1);
    findings(f, model, report);
    f.imports = model.imports;
    read.push(f);
  }
  return read;
}

module.exports = { mcpMemoryProvider, mcpMemoryProviderTs, CHECK, MCP_ENTRY };
