"use strict";
// Bad arguments: a TypeError that names the function and the argument, nothing stored,
// no secret in the message; look-ups take null/undefined as "no such token". Every store.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { KINDS, freshStore } = require("./helpers/setup");

const TOKEN = "at-secret-0123456789abcdef";
const REFRESH = "rt-secret-0123456789abcdef";
const API_KEY = "sk-or-v1-secret-0123456789abcdef";
const CODE = "code-secret-0123456789abcdef";
const SECRETS = [TOKEN, REFRESH, API_KEY, CODE];

/** Valid arguments, in the contract's order. */
const accessArgs = () => [TOKEN, REFRESH, API_KEY, "user-1", "client-1", ["mcp"], Date.now() + 3600e3];
const ACCESS_NAMES = ["accessToken", "refreshToken", "apiKey", "userId", "clientId", "scopes", "expiresAt"];
const codeArgs = () => [CODE, "user-1", API_KEY, "client-1", "https://app.example/cb", "c".repeat(43), "plain", ["mcp"], 600];
const CODE_NAMES = ["code", "userId", "apiKey", "clientId", "redirectUri", "codeChallenge", "codeChallengeMethod", "scopes", "expiresIn"];

const NON_STRINGS = [42, true, {}, ["x"], Symbol("s"), 10n, () => "x"];
const BAD_TIMES = ["2030-01-01", "1700000000000", NaN, Infinity, -Infinity, true, {}, [1], new Date("not a date"), 10n];

/** [argument name, bad value, label] for storeAccessToken. */
const ACCESS_CASES = [
  ...["accessToken", "apiKey", "clientId"].flatMap((n) => [
    [n, undefined, "missing"],
    [n, null, "null"],
    [n, "", "empty"],
    ...NON_STRINGS.map((v) => [n, v, typeof v]),
  ]),
  ...NON_STRINGS.map((v) => ["refreshToken", v, typeof v]),
  ["userId", "", "empty"],
  ...NON_STRINGS.map((v) => ["userId", v, typeof v]),
  ["scopes", "mcp", "a string"],
  ["scopes", null, "null"],
  ["scopes", [1], "an array with a number"],
  ["scopes", ["mcp", null], "an array with null"],
  ["scopes", { 0: "mcp", length: 1 }, "an array-like"],
  ["scopes", new Set(["mcp"]), "a Set"],
  ...BAD_TIMES.map((v) => ["expiresAt", v, typeof v]),
  ["accessToken", "bad\uD800surrogate", "lone surrogate"],
];

/** [argument name, bad value, label] for storeAuthorizationCode. */
const CODE_CASES = [
  ...["code", "apiKey", "clientId", "redirectUri"].flatMap((n) => [
    [n, undefined, "missing"],
    [n, null, "null"],
    [n, "", "empty"],
    ...NON_STRINGS.map((v) => [n, v, typeof v]),
  ]),
  ["userId", "", "empty"],
  ...NON_STRINGS.map((v) => ["userId", v, typeof v]),
  ...NON_STRINGS.map((v) => ["codeChallenge", v, typeof v]),
  ...NON_STRINGS.map((v) => ["codeChallengeMethod", v, typeof v]),
  ["scopes", "mcp", "a string"],
  ["scopes", null, "null"],
  ["scopes", [1], "an array with a number"],
  ...BAD_TIMES.map((v) => ["expiresIn", v, typeof v]),
];

/** Asserts `fn` throws a TypeError naming `fnName` and `arg`, with no secret in it. */
function assertTypeError(call, fnName, arg) {
  let thrown;
  try {
    call();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof TypeError, `expected a TypeError, got ${thrown}`);
  assert.ok(thrown.message.includes(fnName), `message names ${fnName}: ${thrown.message}`);
  assert.ok(thrown.message.includes(arg), `message names ${arg}: ${thrown.message}`);
  for (const s of SECRETS) assert.ok(!thrown.message.includes(s), `no secret in: ${thrown.message}`);
}

for (const kind of KINDS) {
  describe(`${kind} store: argument errors`, () => {
    const ctx = freshStore(kind);

    it("storeAccessToken: TypeError naming the argument, nothing stored", () => {
      const s = ctx.store;
      for (const [name, value, what] of ACCESS_CASES) {
        const a = accessArgs();
        a[ACCESS_NAMES.indexOf(name)] = value;
        assertTypeError(() => s.storeAccessToken(...a), "storeAccessToken", name);
        assert.equal(s.getStats().totalTokens, 0, `${name} ${what}: nothing stored`);
        assert.equal(s.getAccessToken(TOKEN), null, `${name} ${what}`);
        assert.equal(s.getRefreshToken(REFRESH), null, `${name} ${what}`);
      }
    });

    it("storeAccessToken: a bad call leaves an existing token of that string unchanged", () => {
      const s = ctx.store;
      s.storeAccessToken(...accessArgs());
      const before = s.getAccessToken(TOKEN);
      const a = accessArgs();
      a[1] = "rt-other";
      a[5] = ["mcp", 7];
      assertTypeError(() => s.storeAccessToken(...a), "storeAccessToken", "scopes");
      assert.deepEqual(s.getAccessToken(TOKEN), before);
      assert.notEqual(s.getRefreshToken(REFRESH), null);
      assert.equal(s.getRefreshToken("rt-other"), null);
    });

    it("storeAuthorizationCode: TypeError naming the argument, nothing stored", () => {
      const s = ctx.store;
      for (const [name, value, what] of CODE_CASES) {
        const a = codeArgs();
        a[CODE_NAMES.indexOf(name)] = value;
        assertTypeError(() => s.storeAuthorizationCode(...a), "storeAuthorizationCode", name);
        assert.equal(s.consumeAuthorizationCode(CODE, "c".repeat(43)), null, `${name} ${what}: nothing stored`);
      }
      assert.equal(s.cleanupExpiredTokens(), 0);
    });

    it("look-ups and deletes: null/undefined mean no such token, other non-strings are TypeErrors", () => {
      const s = ctx.store;
      s.storeAccessToken(...accessArgs());
      const lookups = [
        ["getAccessToken", "token", (v) => s.getAccessToken(v), null],
        ["getRefreshToken", "refreshToken", (v) => s.getRefreshToken(v), null],
        ["consumeAuthorizationCode", "code", (v) => s.consumeAuthorizationCode(v), null],
        ["revokeRefreshToken", "refreshToken", (v) => s.revokeRefreshToken(v), undefined],
        ["deleteToken", "token", (v) => s.deleteToken(v), undefined],
        ["deleteUserTokens", "userId", (v) => s.deleteUserTokens(v), undefined],
      ];
      for (const [fnName, arg, call, miss] of lookups) {
        assert.equal(call(null), miss, `${fnName}(null)`);
        assert.equal(call(undefined), miss, `${fnName}(undefined)`);
        for (const v of NON_STRINGS) {
          assertTypeError(() => call(v), fnName, arg);
        }
        // A lone surrogate can never have been stored: a miss, not a crash.
        assert.equal(call("x\uDC00"), miss, `${fnName}(lone surrogate)`);
      }
      assert.notEqual(s.getAccessToken(TOKEN), null, "nothing was deleted");
      assert.equal(s.getStats().totalTokens, 1);
    });

    it("consumeAuthorizationCode: a non-string verifier is a TypeError naming codeVerifier", () => {
      const s = ctx.store;
      for (const v of NON_STRINGS) {
        assertTypeError(() => s.consumeAuthorizationCode(CODE, v), "consumeAuthorizationCode", "codeVerifier");
      }
    });

    it("cleanupExpiredTokens: a batch size that is not a whole number from 1 up is a TypeError", async () => {
      const s = ctx.store;
      for (const v of [0, -1, 1.5, NaN, "10", null]) {
        assertTypeError(() => s.cleanupExpiredTokens(v), "cleanupExpiredTokens", "batchSize");
        await assert.rejects(s.cleanupExpiredTokensAsync(v), (e) => e instanceof TypeError && e.message.includes("cleanupExpiredTokensAsync"));
      }
    });

    it("odd but valid strings round-trip and never crash the process", () => {
      const s = ctx.store;
      const odd = ["x".repeat(100_000), "'; DROP TABLE access_tokens; --", "\u{1F511}\uFEFF\u200B"];
      if (kind === "postgres") {
        // PostgreSQL's text cannot hold NUL: a TypeError, nothing stored, never found.
        assert.throws(() => s.storeAccessToken("a\0b", null, "k", "u", "c", [], null), (e) => e instanceof TypeError && /NUL/.test(e.message));
        assert.throws(() => s.storeAuthorizationCode("a\0b", "u", "k", "c", "https://x", null, null, []), TypeError);
        assert.equal(s.getAccessToken("a\0b"), null);
        assert.equal(s.consumeAuthorizationCode("a\0b"), null);
      } else {
        odd.unshift("a\0b");
      }
      for (const [i, v] of odd.entries()) {
        s.storeAccessToken(v, `${v}-r${i}`, v, v, v, [v], null);
        const t = s.getAccessToken(v);
        assert.equal(t.apiKey, v, `case ${i}`);
        assert.equal(t.userId, v, `case ${i}`);
        assert.deepEqual(t.scopes, [v], `case ${i}`);
        assert.equal(s.getRefreshToken(`${v}-r${i}`).accessToken, v, `case ${i}`);
        s.storeAuthorizationCode(v, v, v, v, v, null, null, [v]);
        assert.equal(s.consumeAuthorizationCode(v).redirectUri, v, `case ${i}`);
      }
      assert.equal(s.getAccessToken("a"), null, "a NUL does not truncate the key");
      assert.equal(s.getStats().totalTokens, odd.length);
    });

    it("any value in any position: a result, a TypeError or a RangeError, never another failure", async () => {
      const s = ctx.store;
      const weird = [
        undefined, null, "", "x", "\uD800", "a\0b", 0, -0, -1, 1e300, NaN, Infinity, true, 10n, Symbol("s"),
        {}, [], [undefined], [, "a"], ["a", 1], new Date(NaN), new Date(8.64e15), new Date(-8.64e15), () => 1,
        Object.create(null), new Proxy({}, {}), { toString: () => "x", valueOf: () => 1 }, new String("boxed"), new Number(5),
      ];
      const fns = [
        ["storeAccessToken", 7], ["getAccessToken", 1], ["storeAuthorizationCode", 9], ["consumeAuthorizationCode", 2],
        ["getRefreshToken", 1], ["revokeRefreshToken", 1], ["deleteToken", 1], ["deleteUserTokens", 1],
        ["cleanupExpiredTokens", 1], ["cleanupExpiredTokensAsync", 1],
      ];
      for (const [name, arity] of fns) {
        const valid = name === "storeAccessToken" ? accessArgs() : name === "storeAuthorizationCode" ? codeArgs() : ["x"];
        for (let pos = 0; pos < arity; pos++) {
          for (const v of weird) {
            const a = valid.slice(0, arity);
            a[pos] = v;
            try {
              await s[name](...a);
            } catch (e) {
              assert.ok(e instanceof TypeError || e instanceof RangeError, `${name} arg ${pos}: ${e && e.stack}`);
            }
          }
        }
      }
      assert.ok(s.getStats().totalTokens >= 0);
    });

    it("expiresAt out of the range of a Date is refused, not stored", () => {
      const s = ctx.store;
      const a = accessArgs();
      a[6] = 1e300;
      assert.throws(() => s.storeAccessToken(...a), (e) => (e instanceof TypeError || e instanceof RangeError) && e.message.includes("expiresAt"));
      assert.equal(s.getStats().totalTokens, 0);
    });
  });
}
