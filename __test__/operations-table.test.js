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
  "promises.js": ["TokenStorage", "TokenStorageError"],
  "clients.js": [],
};
const ENTRIES = { "index.js": "tokens", "promises.js": "promises", "clients.js": "clients" };

/** A declaration file's syntax tree. */
function parse(file) {
  return ts.createSourceFile(file, read(file), ts.ScriptTarget.Latest, true);
}

/** The parameter names of a signature node. */
const paramsOf = (node) => node.parameters.map((p) => p.name.getText());

/** `export declare const x: T["x"]` and `export declare function x(…)` of a file: name → the declaration. */
function exportsOf(source) {
  const out = new Map();
  for (const statement of source.statements) {
    const exported = statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (!exported) continue;
    if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) out.set(d.name.getText(), { type: d.type.getText() });
    } else if (ts.isFunctionDeclaration(statement)) {
      out.set(statement.name.getText(), { params: paramsOf(statement) });
    } else if (ts.isClassDeclaration(statement)) {
      out.set(statement.name.getText(), { class: statement });
    }
  }
  return out;
}

/** The method signatures of an interface or class: name → the parameter names of its first overload. */
function methodsOf(node) {
  const out = new Map();
  for (const member of node.members) {
    if ((ts.isMethodSignature(member) || ts.isMethodDeclaration(member)) && !out.has(member.name.getText())) {
      out.set(member.name.getText(), paramsOf(member));
    }
  }
  return out;
}

const INDEX = parse("index.d.ts");
const TOKEN_STORE = INDEX.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === "TokenStore");
const STORAGE_CLASS = INDEX.statements.find((s) => ts.isClassDeclaration(s) && s.name?.text === "TokenStorage");

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

  for (const [file, entry] of Object.entries(ENTRIES)) {
    it(`${file} exports the table's ${entry} operations (and its list for ES modules says the same)`, () => {
      const exported = Object.keys(require(path.join(PKG, file)));
      assert.deepEqual(sorted(exported), sorted([...namesOf(entry), ...NOT_OPERATIONS[file]]));
      // The names written out for cjs-module-lexer (see esm.test.js for the import itself).
      const literal = read(file).match(/0 && \(module\.exports = \{([^}]*)\}\);/);
      assert.ok(literal, `${file}: the literal export list`);
      assert.deepEqual(sorted(literal[1].split(",").map((n) => n.trim()).filter(Boolean)), sorted(exported));
    });
  }

  it("each TokenStorage has a method per operation, and storage.promises a function per Promise form", () => {
    const { TokenStorage } = require(PKG);
    const store = new TokenStorage({ cleanupInterval: 0 });
    for (const name of ALL) {
      assert.equal(typeof store[name], "function", name);
      assert.equal(store[name].length, OPERATIONS[name].params.length, `${name}.length`);
    }
    assert.deepEqual(sorted(Object.keys(store.promises)), sorted([...namesOf("promises"), "close"]));
    store.close();
  });

  it("lib/api-names.js: the doctor's lists come from the table", () => {
    assert.deepEqual(names.TOKEN_FUNCTIONS, [
      "storeAccessToken", "getAccessToken", "storeAuthorizationCode", "consumeAuthorizationCode", "getRefreshToken",
      "revokeRefreshToken", "deleteToken", "deleteUserTokens", "cleanupExpiredTokens", "getStats",
    ]);
    assert.deepEqual(names.CLIENT_FUNCTIONS, ["registerClient", "getClient", "verifyClient", "preRegisterClient", "getAllClients"]);
    assert.deepEqual(sorted(names.SYNC_FUNCTIONS), sorted([...namesOf("tokens"), ...namesOf("clients")].filter((n) => n !== "cleanupExpiredTokensAsync")));
    assert.deepEqual(names.PROMISE_FUNCTIONS, namesOf("promises"));
    // The shape of lib/doctor/names.js's PACKAGE_FUNCTIONS, so the doctor can take it from here.
    for (const fn of names.PACKAGE_FUNCTIONS) {
      assert.deepEqual(Object.keys(fn), ["name", "module", "old"]);
      assert.equal(fn.module, OPERATIONS[fn.name].entry);
    }
    assert.deepEqual(names.SYNC_FUNCTIONS, names.PACKAGE_FUNCTIONS.map((fn) => fn.name));
  });
});

describe("the table, the type declarations and docs/api.md agree", () => {
  it("index.d.ts: TokenStore (and TokenStorage) declare every operation with the table's parameters, and nothing else", () => {
    const declared = new Map([...methodsOf(STORAGE_CLASS), ...methodsOf(TOKEN_STORE)]);
    for (const name of ["open", "close"]) declared.delete(name); // TokenStorage's own, not operations
    assert.deepEqual(sorted(declared.keys()), sorted(ALL));
    for (const name of ALL) assert.deepEqual(declared.get(name), OPERATIONS[name].params, name);
  });

  it("index.d.ts, promises.d.ts and clients.d.ts export each entry point's operations, and nothing else", () => {
    const files = {
      "index.d.ts": { entry: "tokens", type: "TokenStore" },
      "promises.d.ts": { entry: "promises", type: "PromiseTokenStore" },
      "clients.d.ts": { entry: "clients" },
    };
    for (const [file, { entry, type }] of Object.entries(files)) {
      const exported = exportsOf(parse(file));
      const operations = [...exported.keys()].filter((n) => !NOT_OPERATIONS[file.replace(".d.ts", ".js")].includes(n));
      assert.deepEqual(sorted(operations), sorted(namesOf(entry)), file);
      for (const name of operations) {
        const d = exported.get(name);
        if (d.params) assert.deepEqual(d.params, OPERATIONS[name].params, `${file}: ${name}`);
        // closeDB of index.js is a function of its own: no method of TokenStore has it.
        else if (!(file === "index.d.ts" && name === "closeDB")) assert.equal(d.type, `${type}["${name}"]`, `${file}: ${name}`);
      }
    }
    // index.js's closeDB closes the default store: the same parameters as the method's.
    assert.deepEqual(exportsOf(INDEX).get("closeDB").params, OPERATIONS.closeDB.params);
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
