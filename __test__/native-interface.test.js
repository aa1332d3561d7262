"use strict";
// The addon's JS-visible interface, which lib/ is written against: the module's exports,
// NativeStore's methods and getters, and each method's parameters. napi functions all have
// `length` 0, so a method's arity is checked by calling it: with its parameters it runs,
// with `now` (always last) not a time it refuses the clock, without `now` it throws.
// A change to this list is a change lib/ must follow.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { PG_URL, freshSchema, tempDir, removeDir } = require("./helpers/setup");
const native = require("../lib/native");

const NOW = Date.UTC(2030, 0, 1);

/** A valid value of each parameter type (none of them names a stored record). */
const SAMPLE = {
  string: () => "x",
  "string?": () => null,
  "number?": () => null,
  "boolean?": () => null,
  number: () => 1000,
  "string[]": () => ["read"],
  "token[]": () => [{ accessToken: "at-list", apiKey: "sk", clientId: "c", scopes: [] }],
  code: () => ({ apiKey: "sk", clientId: "c", redirectUri: "https://example.test/cb", scopes: [], expiresIn: 60 }),
  rotation: () => ({ refreshToken: "rt-none", newAccessToken: "at-new", newRefreshToken: "rt-new" }),
  client: () => ({ clientId: "client-1", metadata: "{}", createdAt: NOW }),
};

/** Each operation's parameters before `now`; `sync`/`async` say which forms it has. */
const OPERATIONS = {
  open: { async: [] },
  storeAccessToken: { both: ["string", "string?", "string", "string?", "string", "string[]", "number?"] },
  storeAccessTokens: { both: ["token[]"] },
  getAccessToken: { both: ["string"] },
  storeAuthorizationCode: { both: ["string", "code"] },
  consumeAuthorizationCode: { both: ["string", "string?"] },
  getRefreshToken: { both: ["string"] },
  revokeRefreshToken: { both: ["string"] },
  deleteToken: { both: ["string"] },
  deleteUserTokens: { both: ["string"] },
  cleanupExpiredTokens: { sync: ["number"] },
  cleanupExpiredBatch: { async: ["number", "boolean?"] },
  getStats: { both: [] },
  rotateRefreshToken: { both: ["rotation"] },
  putClient: { both: ["client"] },
  getClient: { both: ["string"] },
  clientIds: { both: [] },
  storePendingAuthorization: { both: ["string", "string", "number"] },
  consumePendingAuthorization: { both: ["string"] },
};

/** [method name, parameter types before now, async?] for every operation method. */
const METHODS = Object.entries(OPERATIONS).flatMap(([name, forms]) => {
  const params = forms.both ?? forms.sync ?? forms.async;
  const out = [];
  if (forms.both || forms.sync) out.push([name, params, false]);
  if (forms.both || forms.async) out.push([`${name}Async`, params, true]);
  return out;
});

const OWN = ["open", "close"]; // the handle's own methods, which take no clock
const GETTERS = ["storage", "path"];

describe("the native addon's interface", () => {
  it("exports NativeStore, sqliteVersion and checkPostgresUrl, and nothing else", () => {
    assert.deepEqual(Object.keys(native).sort(), ["NativeStore", "checkPostgresUrl", "sqliteVersion"]);
    assert.match(native.sqliteVersion(), /^3\.\d+\.\d+$/);
  });

  it("NativeStore has exactly the listed methods and getters", () => {
    const proto = native.NativeStore.prototype;
    const names = Object.getOwnPropertyNames(proto).filter((n) => n !== "constructor");
    const getters = names.filter((n) => typeof Object.getOwnPropertyDescriptor(proto, n).get === "function");
    const methods = names.filter((n) => typeof Object.getOwnPropertyDescriptor(proto, n).value === "function");
    assert.deepEqual(getters.sort(), [...GETTERS].sort());
    assert.deepEqual(methods.sort(), [...new Set([...OWN, ...METHODS.map(([n]) => n)])].sort());
    assert.equal(names.length, getters.length + methods.length);
  });
});

const KINDS = PG_URL ? ["memory", "sqlite", "postgres"] : ["memory", "sqlite"];

for (const kind of KINDS) {
  describe(`each NativeStore method's parameters, ${kind} store`, () => {
    let dir;
    let store;
    before(() => {
      dir = tempDir("nts-native-interface-");
      const config = { memory: { kind }, sqlite: { kind, path: path.join(dir, "tokens.db") }, postgres: { kind, url: PG_URL, schema: freshSchema() } }[kind];
      store = new native.NativeStore({ ...config, shared: false });
      assert.equal(store.storage, kind);
    });
    after(() => {
      store.close();
      removeDir(dir);
    });

    for (const [name, params, isAsync] of METHODS) {
      it(`${name}(${[...params, "now"].join(", ")})`, async () => {
        const args = params.map((type) => SAMPLE[type]());
        const call = (...rest) => store[name](...args, ...rest);
        assert.throws(() => call(NaN), { code: "ERR_TOKEN_STORAGE_INVALID_ARGUMENT", message: /^now must be/ });
        assert.throws(() => call());
        const answer = call(NOW);
        if (isAsync) {
          assert.ok(answer instanceof Promise);
          await answer;
        }
      });
    }

    it("open() and close() take no clock", () => {
      assert.equal(typeof store.open(), "boolean");
      assert.equal(store.close(), undefined);
    });
  });
}
