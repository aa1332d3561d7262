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
const { storeConfig } = require("../lib/config");
const DEFAULTS = require("../lib/defaults");

const NOW = Date.UTC(2030, 0, 1);

/** Where the backups the calls below write go (a new file each). */
let backupDir = null;
let backups = 0;
after(() => backupDir && removeDir(backupDir));

/** A valid value of each parameter type (none of them names a stored record). */
const SAMPLE = {
  file: () => path.join((backupDir ??= tempDir("nts-native-backup-")), `backup-${backups++}.db`),
  boolean: () => false,
  string: () => "x",
  "string?": () => null,
  "number?": () => null,
  "boolean?": () => null,
  number: () => 1000,
  "string[]": () => ["read"],
  "grant?": () => null,
  "token[]": () => [{ accessToken: "at-list", apiKey: "sk", clientId: "c", scopes: [] }],
  code: () => ({ apiKey: "sk", clientId: "c", redirectUri: "https://example.test/cb", scopes: [], expiresIn: 60 }),
  rotation: () => ({ refreshToken: "rt-none", newAccessToken: "at-new", newRefreshToken: "rt-new" }),
  client: () => ({ clientId: "client-1", metadata: "{}", createdAt: NOW }),
};

/** Each operation's parameters before `now`; `sync`/`async` say which forms it has. */
const OPERATIONS = {
  open: { async: [] },
  storeAccessToken: { both: ["string", "string?", "string", "string?", "string", "string[]", "number?", "grant?"] },
  storeAccessTokens: { both: ["token[]"] },
  getAccessToken: { both: ["string"] },
  storeAuthorizationCode: { both: ["string", "code"] },
  consumeAuthorizationCode: { both: ["string", "string?"] },
  getRefreshToken: { both: ["string"] },
  revokeRefreshToken: { both: ["string"] },
  deleteToken: { both: ["string"] },
  deleteUserTokens: { both: ["string"] },
  cleanupExpiredTokens: { sync: ["number"] },
  cleanupExpiredBatch: { async: ["number", "boolean?", "number?"] },
  getStats: { both: [] },
  rotateRefreshToken: { both: ["rotation"] },
  putClient: { both: ["client"] },
  getClient: { both: ["string"] },
  clientIds: { both: [] },
  storePendingAuthorization: { both: ["string", "string", "number"] },
  consumePendingAuthorization: { both: ["string"] },
  backup: { both: ["file", "boolean", "number"] },
};

/** [method name, parameter types before now, async?] for every operation method. */
const METHODS = Object.entries(OPERATIONS).flatMap(([name, forms]) => {
  const params = forms.both ?? forms.sync ?? forms.async;
  const out = [];
  if (forms.both || forms.sync) out.push([name, params, false]);
  if (forms.both || forms.async) out.push([`${name}Async`, params, true]);
  return out;
});

// The handle's own methods, which take no clock: and those of the command line (src/napi/copy.rs).
const OWN = ["open", "close", "endReads", "takeWarnings", "copyTo", "copyToAsync", "copyProgress", "rowCounts", "revokeClientTokens", "storeExists", "storeIdentity"];
const GETTERS = ["storage", "path"];
// The Promise forms a memory store still runs off the calling thread (its other ones answer
// at once): a cleanup batch and a backup.
const OFF_THREAD = ["cleanupExpiredBatchAsync", "backupAsync"];

describe("the native addon's interface", () => {
  it("exports NativeStore, sqliteVersion, checkSettings, checkEncryptionKeys and the command line's age functions, and nothing else", () => {
    assert.deepEqual(Object.keys(native).sort(), ["NativeStore", "ageDecryptFile", "ageEncryptFile", "checkEncryptionKeys", "checkSettings", "convertStore", "isAgeFileAt", "sqliteVersion"]);
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

// The store has no defaults of its own: lib/config.js passes `{ kind, settings,
// refreshGraceMs }` with every setting of the kind filled (from lib/defaults.js), and a
// configuration that lacks one is refused. Each kind's settings are its own: the backend's
// folder decodes them (src/store/<kind>/settings.rs).
describe("the native store's configuration", () => {
  const FULL = { kind: "memory", settings: {}, refreshGraceMs: DEFAULTS.REFRESH_GRACE_SECONDS * 1000, shared: false };
  const OWN = {
    memory: [],
    sqlite: ["path", "sync", "busyTimeoutMs"],
    postgres: ["url", "urlName", "schema", "connectTimeoutMs", "queryTimeoutMs", "poolSize"],
  };
  // Nothing connects before the first call: a name that resolves nowhere will do.
  const URL = "postgres://u@db.invalid/d";

  it("lib/config.js passes the kind, its settings (every one, and no other kind's), the grace period and the keyring", () => {
    const dir = tempDir("nts-native-config-");
    try {
      const given = { memory: {}, sqlite: { path: path.join(dir, "t.db") }, postgres: { url: URL } };
      for (const [storage, options] of Object.entries(given)) {
        const { config } = storeConfig({ storage, ...options });
        assert.deepEqual(Object.keys(config).sort(), ["encryptionKeys", "kind", "refreshGraceMs", "settings"], storage);
        // The one optional field: no keyring, no encryption at rest.
        assert.equal(config.encryptionKeys, undefined, storage);
        const keys = `k1:${Buffer.alloc(32, 1).toString("base64")}`;
        assert.equal(storeConfig({ storage, ...options, encryptionKeys: keys }).config.encryptionKeys, keys, storage);
        assert.equal(config.kind, storage);
        assert.deepEqual(Object.keys(config.settings).sort(), [...OWN[storage]].sort(), storage);
        for (const [name, value] of Object.entries(config.settings)) assert.ok(value !== null && value !== undefined, `${storage}: ${name}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  it("a configuration with every field opens; one without a field is refused, naming it", () => {
    const store = new native.NativeStore(FULL);
    assert.equal(store.storage, "memory");
    store.close();
    for (const name of Object.keys(FULL)) {
      const { [name]: _left, ...rest } = FULL;
      assert.throws(() => new native.NativeStore(rest), { message: `Missing field \`${name}\`` }, name);
    }
    assert.throws(() => new native.NativeStore({ ...FULL, kind: "mongodb" }), { code: "ERR_TOKEN_STORAGE_CONFIG", message: "unknown store kind" });
  });

  it("each of a kind's settings is required by that kind", () => {
    const dir = tempDir("nts-native-config-");
    try {
      const full = {
        sqlite: storeConfig({ storage: "sqlite", path: path.join(dir, "t.db") }).config,
        postgres: storeConfig({ storage: "postgres", url: URL }).config,
      };
      const message = { path: /needs a path/, url: /needs a URL/, urlName: /needs a URL/ };
      for (const [kind, config] of Object.entries(full)) {
        new native.NativeStore({ ...config, shared: false }).close();
        for (const name of OWN[kind]) {
          const { [name]: _left, ...settings } = config.settings;
          assert.throws(
            () => new native.NativeStore({ ...config, settings, shared: false }),
            { code: "ERR_TOKEN_STORAGE_CONFIG", message: message[name] ?? `Missing field \`${name}\`` },
            `${kind}: ${name}`,
          );
        }
      }
    } finally {
      removeDir(dir);
    }
  });

  it("checkSettings checks what can be checked before anything opens, never showing a connection string", () => {
    assert.equal(native.checkSettings("memory", {}), undefined);
    assert.equal(native.checkSettings("postgres", { url: URL, urlName: "TOKEN_DATABASE_URL" }), undefined);
    assert.throws(
      () => native.checkSettings("postgres", { url: "postgres://u:s3cret@db:notaport/d", urlName: "TOKEN_DATABASE_URL" }),
      (err) => err.code === "ERR_TOKEN_STORAGE_CONFIG" && err.message.includes("TOKEN_DATABASE_URL") && !err.message.includes("s3cret"),
    );
    assert.throws(() => native.checkSettings("mongodb", {}), { code: "ERR_TOKEN_STORAGE_CONFIG" });
  });
});

const KINDS = PG_URL ? ["memory", "sqlite", "postgres"] : ["memory", "sqlite"];

for (const kind of KINDS) {
  describe(`each NativeStore method's parameters, ${kind} store`, () => {
    let dir;
    let store;
    before(() => {
      dir = tempDir("nts-native-interface-");
      const options = { memory: {}, sqlite: { path: path.join(dir, "tokens.db") }, postgres: { url: PG_URL, schema: freshSchema() } }[kind];
      store = new native.NativeStore({ ...storeConfig({ storage: kind, ...options }).config, shared: false });
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
          // A memory store answers its short calls on the calling thread (src/ops.rs,
          // `at_once`): the answer itself, which lib/ awaits as it awaits a Promise.
          const atOnce = kind === "memory" && !OFF_THREAD.includes(name);
          assert.equal(answer instanceof Promise, !atOnce);
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
