"use strict";
// The Promise API (storage.promises and native-token-storage/promises): the same answers
// and errors as the synchronous functions, on every store, with the work off the JS thread.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { PKG, TokenStorage, KINDS, storeOptions, storesPerTest, nodeJson } = require("./helpers/setup");
const { TokenStorageError } = require(PKG);

const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const HOUR = 3600e3;

/**
 * Every function, with good and bad arguments, as [name, args]. Run in order on one store
 * through the synchronous methods and on another through `promises`: the outcomes must match.
 */
function script(now) {
  return [
    ["storeAccessToken", ["at1", "rt1", "sk-1", "u1", "c1", ["mcp", "read"], new Date(now + HOUR)]],
    ["storeAccessToken", ["at2", null, "sk-2", null, "c2", [], null]],
    ["storeAccessToken", ["old", "rt-old", "sk-3", "u2", "c1", ["mcp"], now - 1]],
    ["storeAccessTokens", [[{ accessToken: "b1", apiKey: "k", userId: "u3", clientId: "c" }, { accessToken: "b1", apiKey: "k2", clientId: "c" }]]],
    ["getAccessToken", ["at1"]],
    ["getAccessToken", ["at2"]],
    ["getAccessToken", ["old"]],
    ["getAccessToken", ["missing"]],
    ["getAccessToken", [null]],
    ["getAccessToken", [42]],
    ["getRefreshToken", ["rt1"]],
    ["getRefreshToken", ["rt-old"]],
    ["storeAuthorizationCode", ["code1", "u1", "sk-1", "c1", "https://app/cb", CHALLENGE, "S256", ["mcp"]]],
    ["storeAuthorizationCode", ["code2", null, "sk-1", "c1", "https://app/cb", null, null, [], 60]],
    ["storeAuthorizationCode", ["code3", "u1", "sk-1", "c1", "", null, null, []]],
    ["consumeAuthorizationCode", ["code1", "wrong-verifier"]],
    ["consumeAuthorizationCode", ["code1", VERIFIER]],
    ["consumeAuthorizationCode", ["code2"]],
    ["consumeAuthorizationCode", [undefined]],
    ["getStats", []],
    ["storeAccessToken", ["", null, "k", "u", "c"]],
    ["storeAccessToken", ["x", null, "k", "u", "c", "mcp"]],
    ["revokeRefreshToken", ["rt1"]],
    ["getAccessToken", ["at1"]],
    ["deleteToken", ["at2"]],
    ["deleteUserTokens", ["u3"]],
    ["deleteUserTokens", [{}]],
    ["cleanupExpiredTokens", []],
    ["cleanupExpiredTokens", [0]],
    ["getStats", []],
  ];
}

/** An outcome that two stores, and two runs, can agree on: times in ms from the test's start. */
function outcome(fn, now) {
  const relative = (v) => (v instanceof Date ? v.getTime() - now : v);
  return (async () => {
    try {
      const value = await fn();
      if (value && typeof value === "object") {
        const out = {};
        for (const [k, v] of Object.entries(value)) out[k] = k === "createdAt" || k === "expiresAt" ? (typeof v === "number" ? relative(new Date(v)) : v === null ? null : relative(v)) : v;
        return { value: out };
      }
      return { value };
    } catch (err) {
      return { error: { type: err.constructor.name, code: err.code, message: err.message } };
    }
  })();
}

// The two stores run each call at a different moment (a loaded machine can put a second
// between them, and stores keep times to the second): `b`'s times within 5 s of `a`'s count
// as the same; anything else (null against a time, a time far off) still differs.
function sameTimes(b, a) {
  if (!b.value || !a.value || typeof b.value !== "object" || typeof a.value !== "object") return b;
  const value = { ...b.value };
  for (const k of ["createdAt", "expiresAt"]) {
    if (typeof value[k] === "number" && typeof a.value[k] === "number" && Math.abs(value[k] - a.value[k]) <= 5000) value[k] = a.value[k];
  }
  return { value };
}

const ctx = storesPerTest();
const open = (kind, name) => ctx.open(storeOptions(kind, path.join(ctx.dir, `${name}.db`)));

for (const kind of KINDS) {
  describe(`${kind} store`, () => {
    it("storage.promises gives the same answers and errors as the synchronous methods, call by call", async () => {
      const now = Date.now();
      const sync = open(kind, "sync");
      const promised = open(kind, "promised");
      for (const [name, args] of script(now)) {
        const a = await outcome(() => sync[name](...args), now);
        const b = await outcome(() => promised.promises[name](...args), now);
        assert.deepEqual(sameTimes(b, a), a, `${name}(${JSON.stringify(args)})`);
      }
    });

    it("a bad argument rejects (it does not throw where the call is made)", async () => {
      const s = open(kind, "t");
      let pending;
      assert.doesNotThrow(() => {
        pending = s.promises.getAccessToken(42);
      });
      await assert.rejects(pending, TypeError);
    });

    it("the work runs off the JavaScript thread: timers keep firing while 100,000 tokens are stored", async () => {
      const s = open(kind, "t");
      const records = Array.from({ length: 100_000 }, (_, i) => ({ accessToken: `t${i}`, apiKey: "k", userId: `u${i % 100}`, clientId: "c" }));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      try {
        assert.equal(await s.promises.storeAccessTokens(records), 100_000);
      } finally {
        clearInterval(timer);
      }
      assert.ok(ticks >= 3, `the event loop ticked ${ticks} times while the store worked`);
      assert.equal((await s.promises.getStats()).totalTokens, 100_000);
    });
  });
}

it("a failing store rejects with a TokenStorageError carrying its code", async () => {
  const s = new TokenStorage({ storage: "db", path: ctx.dir }); // a directory
  await assert.rejects(s.promises.getStats(), (e) => e instanceof TokenStorageError && e.code === "ERR_TOKEN_STORAGE_OPEN" && e.message.includes(ctx.dir));
});

it("native-token-storage/promises uses the module's default store (TOKEN_STORAGE=db), shared with the synchronous functions", () => {
  const file = path.join(ctx.dir, "t.db");
  const out = nodeJson(
    `const p = require(PKG + "/promises"); const t = require(PKG);
     (async () => {
       await p.storeAccessToken("at", "rt", "sk", "u", "c", ["mcp"], null);
       const viaSync = t.getAccessToken("at").apiKey;
       const viaPromise = (await p.getAccessToken("at")).apiKey;
       const stats = await p.getStats();
       await p.closeDB();
       console.log(JSON.stringify({ viaSync, viaPromise, stats }));
     })();`,
    { cwd: ctx.dir, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: file, TOKEN_STORAGE_LOG: "silent" } },
  );
  assert.deepEqual(out, { viaSync: "sk", viaPromise: "sk", stats: { totalTokens: 1, uniqueUsers: 1, storage: "sqlite" } });
});
