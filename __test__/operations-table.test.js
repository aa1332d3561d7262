"use strict";
// Issue 17, one operation in one place: the table of lib/operations.js is what the package
// is made of, so the entry points, the type declarations and docs/api.md must say what it
// says: every operation declared with the same parameters (names and count) and documented
// under a heading with its signature (defaults included), and nothing declared, exported or
// documented that the table lacks.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const ts = require("typescript");
const { OPERATIONS, signature, namesOf } = require("../lib/operations");
const names = require("../lib/api-names");
const DEFAULTS = require("../lib/defaults");
const { PKG, KINDS, freshStore } = require("./helpers/setup");

const ROOT = path.join(__dirname, "..");
const read = (file) => fs.readFileSync(path.join(ROOT, file), "utf8");
const sorted = (list) => [...list].sort();
const ALL = Object.keys(OPERATIONS);

/** What each entry point exports besides its operations. */
const NOT_OPERATIONS = {
  "index.js": ["TokenStorage", "TokenStorageError", "sqliteVersion"],
  "clients.js": [],
  "promises.js": ["TokenStorage", "TokenStorageError", "sqliteVersion"],
};
/** The operations of each entry point: promises.js has every name of the other two. */
const ENTRIES = {
  "index.js": namesOf("tokens"),
  "clients.js": namesOf("clients"),
  "promises.js": [...namesOf("tokens"), ...namesOf("clients")],
};

const DECLARATIONS = ["index.d.ts", "clients.d.ts", "promises.d.ts"];
const program = ts.createProgram(DECLARATIONS.map((f) => path.join(ROOT, f)), { strict: true, noEmit: true, types: [] });
const checker = program.getTypeChecker();

/** The parameter names of a value's first call signature, or null if it is not a function. */
function paramsOfType(type) {
  const [first] = type.getCallSignatures();
  return first ? first.parameters.map((p) => p.name) : null;
}

/** The values a declaration file exports (`export =` of an object too): name → its parameter names, or null. */
function declaredExports(file) {
  const source = program.getSourceFile(path.join(ROOT, file));
  const module = checker.getSymbolAtLocation(source);
  const out = new Map();
  for (const symbol of checker.getExportsAndPropertiesOfModule(module)) {
    if (!(symbol.flags & (ts.SymbolFlags.Value | ts.SymbolFlags.Alias))) continue;
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (!(target.flags & ts.SymbolFlags.Value)) continue;
    out.set(symbol.name, paramsOfType(checker.getTypeOfSymbol(target)));
  }
  return out;
}

/** The methods of an interface or class of index.d.ts, inherited ones too: name → the parameter names of the first overload. */
function methodsOf(name) {
  const index = program.getSourceFile(path.join(ROOT, "index.d.ts"));
  const node = index.statements.find((s) => (ts.isInterfaceDeclaration(s) || ts.isClassDeclaration(s)) && s.name?.text === name);
  const type = checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(node.name));
  const out = new Map();
  for (const property of checker.getPropertiesOfType(type)) {
    const params = paramsOfType(checker.getTypeOfSymbol(property));
    if (params) out.set(property.name, params);
  }
  return out;
}

describe("the table of operations", () => {
  it("every operation has its parameters, an entry point and a way to run", () => {
    for (const [name, op] of Object.entries(OPERATIONS)) {
      assert.ok(Array.isArray(op.params), `${name}: params`);
      assert.ok(["tokens", "clients"].includes(op.entry), `${name}: entry`);
      assert.ok(op.input || op.run, `${name}: input or run`);
      if (op.input) assert.equal(typeof op.output, "function", `${name}: output`);
      for (const d of Object.keys(op.defaults ?? {})) assert.ok(op.params.includes(d), `${name}: default of ${d}, not a parameter`);
    }
  });

  for (const [file, operations] of Object.entries(ENTRIES)) {
    it(`${file} exports its operations of the table, and its few other names`, () => {
      const exported = Object.keys(require(path.join(PKG, file)));
      assert.deepEqual(sorted(exported), sorted([...operations, ...NOT_OPERATIONS[file]]));
      // The names for cjs-module-lexer (ES module imports) are checked by esm.test.js.
    });
  }

  it("each TokenStorage has a method per operation, and storage.promises a function for each", () => {
    const { TokenStorage } = require(PKG);
    const store = new TokenStorage({ cleanupInterval: 0 });
    for (const name of ALL) {
      assert.equal(typeof store[name], "function", name);
      assert.equal(store[name].length, OPERATIONS[name].params.length, `${name}.length`);
    }
    assert.deepEqual(sorted(Object.keys(store.promises)), sorted([...ALL, "close"]));
    store.close();
  });

  it("lib/api-names.js: the doctor's lists come from the table", () => {
    assert.deepEqual(names.TOKEN_FUNCTIONS, [
      "storeAccessToken", "getAccessToken", "storeAuthorizationCode", "consumeAuthorizationCode", "getRefreshToken",
      "revokeRefreshToken", "deleteToken", "deleteUserTokens", "cleanupExpiredTokens", "getStats",
    ]);
    assert.deepEqual(names.CLIENT_FUNCTIONS, ["registerClient", "getClient", "verifyClient", "preRegisterClient", "getAllClients"]);
    assert.deepEqual(sorted(names.SYNC_FUNCTIONS), sorted([...namesOf("tokens"), ...namesOf("clients")].filter((n) => n !== "cleanupExpiredTokensAsync")));
    assert.deepEqual(names.PROMISE_FUNCTIONS, ALL);
    // The shape of lib/doctor/names.js's PACKAGE_FUNCTIONS, so the doctor can take it from here.
    for (const fn of names.PACKAGE_FUNCTIONS) {
      assert.deepEqual(Object.keys(fn), ["name", "module", "old"]);
      assert.equal(fn.module, OPERATIONS[fn.name].entry);
    }
    assert.deepEqual(names.SYNC_FUNCTIONS, names.PACKAGE_FUNCTIONS.map((fn) => fn.name));
  });
});

describe("the table, the type declarations and docs/api.md agree", () => {
  it("index.d.ts: TokenStore (and so TokenStorage) declares every operation with the table's parameters, and nothing else", () => {
    const declared = methodsOf("TokenStorage");
    for (const name of ["open", "close"]) declared.delete(name); // TokenStorage's own, not operations
    assert.deepEqual(sorted(declared.keys()), sorted(ALL));
    for (const name of ALL) assert.deepEqual(declared.get(name), OPERATIONS[name].params, name);
    // TokenStore, the functions of the module (and so of TokenStorage), has all but closeDB.
    assert.deepEqual(sorted(methodsOf("TokenStore").keys()), sorted(ALL.filter((n) => n !== "closeDB")));
  });

  it("index.d.ts, clients.d.ts and promises.d.ts declare what each entry point exports, each operation with the table's parameters", () => {
    for (const file of DECLARATIONS) {
      const js = file.replace(".d.ts", ".js");
      const declared = declaredExports(file);
      assert.deepEqual(sorted(declared.keys()), sorted(Object.keys(require(path.join(PKG, js)))), file);
      // promises.d.ts's are made from TokenStore's with `Parameters<…>` (one rest parameter).
      if (file === "promises.d.ts") continue;
      for (const name of ENTRIES[js]) assert.deepEqual(declared.get(name), OPERATIONS[name].params, `${file}: ${name}`);
    }
  });

  it("docs/api.md documents each operation under a heading, its signature (defaults included) first; no heading names a function the table lacks", () => {
    const lines = read("docs/api.md").split("\n");
    const headings = new Map();
    lines.forEach((line, i) => {
      const m = line.match(/^#{2,3} ([a-z][A-Za-z]*)$/);
      if (m) headings.set(m[1], i);
    });
    assert.deepEqual(sorted([...headings.keys()].filter((h) => h !== "sqliteVersion")), sorted(ALL));
    for (const name of ALL) {
      const first = lines.slice(headings.get(name) + 1).find((l) => l.trim() !== "");
      assert.ok(first.startsWith(`\`${signature(name)}\``), `api.md, ${name}: "${first}" should start with \`${signature(name)}\``);
    }
  });

  it("the signature carries the defaults of lib/defaults.js", () => {
    assert.equal(signature("cleanupExpiredTokens"), `cleanupExpiredTokens(batchSize = ${DEFAULTS.CLEANUP_BATCH_SIZE})`);
    assert.equal(signature("storePendingAuthorization"), `storePendingAuthorization(state, data, ttlSeconds = ${DEFAULTS.PENDING_LIFETIME_SECONDS})`);
    assert.equal(signature("getStats"), "getStats()");
  });
});

// The registry's defaults (lib/defaults.js) are copied into each registration: a server
// that edits the registration it got back (adds a grant type) must not change the next
// client's. They were shared before the defaults moved (the next registerClient answered
// grant_types ["authorization_code", "implicit"]).
for (const kind of KINDS) {
  describe(`registrations do not share the default metadata (${kind})`, () => {
    const ctx = freshStore(kind);

    it("editing a registration's arrays leaves the next registration's defaults as they are", async () => {
      const first = ctx.store.registerClient({ client_name: "first" });
      first.grant_types.push("implicit");
      first.response_types.push("token");
      const second = ctx.store.registerClient({ client_name: "second" });
      assert.deepEqual(second.grant_types, ["authorization_code"]);
      assert.deepEqual(second.response_types, ["code"]);
      const third = await ctx.store.promises.registerClient({});
      assert.deepEqual(third.grant_types, ["authorization_code"]);
      ctx.store.preRegisterClient("known", "secret");
      assert.deepEqual(ctx.store.getClient("known").grant_types, ["authorization_code"]);
      assert.deepEqual(ctx.store.getClient("known").redirect_uris, DEFAULTS.PRE_REGISTERED_REDIRECT_URIS);
    });
  });
}
