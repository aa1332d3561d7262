"use strict";
// Every function of the contract, on every store; each test on a fresh store and temp file.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const util = require("node:util");
const vm = require("node:vm");
const { KINDS, freshStore } = require("./helpers/setup");

const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const HOUR = 3600 * 1000;
const past = () => Date.now() - 1000;
const future = () => Date.now() + HOUR;

/** storeAccessToken with defaults for the arguments a test does not care about. */
function putToken(s, token, o = {}) {
  const has = (k) => Object.prototype.hasOwnProperty.call(o, k);
  s.storeAccessToken(
    token,
    has("refresh") ? o.refresh : `${token}-refresh`,
    has("apiKey") ? o.apiKey : `sk-or-v1-${token}`,
    has("user") ? o.user : "user-1",
    o.client ?? "client-1",
    o.scopes ?? ["mcp"],
    has("expiresAt") ? o.expiresAt : future(),
  );
}

/** storeAuthorizationCode with defaults. */
function putCode(s, code, o = {}) {
  const has = (k) => Object.prototype.hasOwnProperty.call(o, k);
  const args = [
    code,
    has("user") ? o.user : "user-1",
    o.apiKey ?? "sk-or-v1-code-key",
    o.client ?? "client-1",
    o.redirectUri ?? "https://app.example/callback",
    has("challenge") ? o.challenge : CHALLENGE,
    has("method") ? o.method : "S256",
    o.scopes ?? ["mcp"],
  ];
  if (has("expiresIn")) args.push(o.expiresIn);
  s.storeAuthorizationCode(...args);
}

for (const kind of KINDS) {
  describe(`${kind} store`, () => {
    const ctx = freshStore(kind);

    describe("storeAccessToken / getAccessToken", () => {
      it("returns undefined and reads back the documented shape", () => {
        const s = ctx.store;
        const expiresAt = new Date(Date.now() + HOUR);
        const before = Date.now();
        const ret = s.storeAccessToken("at-1", "rt-1", "sk-or-v1-key", "user-1", "client-1", ["mcp", "read"], expiresAt);
        const after = Date.now();
        assert.equal(ret, undefined);
        const t = s.getAccessToken("at-1");
        assert.deepEqual(Object.keys(t).sort(), ["apiKey", "clientId", "createdAt", "expiresAt", "refreshToken", "scopes", "userId"]);
        assert.equal(t.apiKey, "sk-or-v1-key");
        assert.equal(t.userId, "user-1");
        assert.equal(t.clientId, "client-1");
        assert.deepEqual(t.scopes, ["mcp", "read"]);
        assert.equal(t.refreshToken, "rt-1");
        assert.ok(t.expiresAt instanceof Date);
        assert.equal(t.expiresAt.getTime(), expiresAt.getTime());
        assert.ok(t.createdAt instanceof Date);
        assert.ok(t.createdAt.getTime() >= before - 1 && t.createdAt.getTime() <= after + 1);
      });

      it("takes expiresAt as epoch milliseconds", () => {
        const ms = Date.now() + HOUR;
        ctx.store.storeAccessToken("at-n", null, "key", "u", "c", [], ms);
        assert.equal(ctx.store.getAccessToken("at-n").expiresAt.getTime(), ms);
      });

      it("takes a Date made in another realm (vm context) as a Date", () => {
        const ms = Date.now() + HOUR;
        const foreign = vm.runInNewContext(`new Date(${ms})`);
        assert.ok(util.types.isDate(foreign));
        ctx.store.storeAccessToken("at-vm", null, "key", "u", "c", vm.runInNewContext('["mcp"]'), foreign);
        const t = ctx.store.getAccessToken("at-vm");
        assert.equal(t.expiresAt.getTime(), ms);
        assert.deepEqual(t.scopes, ["mcp"]);
      });

      it("takes expiresAt null or undefined (omitted) as never expiring", () => {
        const s = ctx.store;
        s.storeAccessToken("at-null", null, "key", "u", "c", ["mcp"], null);
        s.storeAccessToken("at-undef", null, "key", "u", "c", ["mcp"], undefined);
        s.storeAccessToken("at-omit", null, "key", "u", "c", ["mcp"]);
        s.storeAccessToken("at-omit2", null, "key", "u", "c");
        for (const t of ["at-null", "at-undef", "at-omit", "at-omit2"]) {
          const got = s.getAccessToken(t);
          assert.notEqual(got, null, t);
          assert.equal(got.expiresAt, null, t);
        }
        assert.deepEqual(s.getAccessToken("at-omit2").scopes, []);
        assert.equal(s.cleanupExpiredTokens(), 0);
      });

      it("makes the refresh token optional (null, undefined, empty string)", () => {
        const s = ctx.store;
        s.storeAccessToken("a", null, "key", "u", "c", [], null);
        s.storeAccessToken("b", undefined, "key", "u", "c", [], null);
        s.storeAccessToken("c", "", "key", "u", "c", [], null);
        for (const t of ["a", "b", "c"]) assert.equal(s.getAccessToken(t).refreshToken, null, t);
        assert.equal(s.getRefreshToken(""), null);
        assert.equal(s.getStats().totalTokens, 3);
      });

      it("stores a token without a user id and returns userId null", () => {
        const s = ctx.store;
        putToken(s, "anon-1", { user: null });
        putToken(s, "anon-2", { user: undefined });
        assert.equal(s.getAccessToken("anon-1").userId, null);
        assert.equal(s.getAccessToken("anon-2").userId, null);
        assert.equal(s.getRefreshToken("anon-1-refresh").userId, null);
        const stats = s.getStats();
        assert.equal(stats.totalTokens, 2);
        assert.equal(stats.uniqueUsers, 0);
      });

      it("replaces a token with the same string, and its old refresh token goes", () => {
        const s = ctx.store;
        putToken(s, "at", { refresh: "rt-old", apiKey: "key-old", user: "u-old", scopes: ["a"] });
        putToken(s, "at", { refresh: "rt-new", apiKey: "key-new", user: "u-new", scopes: ["b"] });
        const t = s.getAccessToken("at");
        assert.equal(t.apiKey, "key-new");
        assert.equal(t.userId, "u-new");
        assert.deepEqual(t.scopes, ["b"]);
        assert.equal(t.refreshToken, "rt-new");
        assert.equal(s.getRefreshToken("rt-old"), null);
        assert.equal(s.getRefreshToken("rt-new").accessToken, "at");
        assert.deepEqual(s.getStats(), { ...s.getStats(), totalTokens: 1, uniqueUsers: 1 });
      });

      it("replacing with no refresh token removes the old refresh token", () => {
        const s = ctx.store;
        putToken(s, "at", { refresh: "rt-old" });
        putToken(s, "at", { refresh: null });
        assert.equal(s.getAccessToken("at").refreshToken, null);
        assert.equal(s.getRefreshToken("rt-old"), null);
      });

      it("returns null for unknown, null, undefined and empty tokens", () => {
        const s = ctx.store;
        putToken(s, "known");
        assert.equal(s.getAccessToken("unknown"), null);
        assert.equal(s.getAccessToken(null), null);
        assert.equal(s.getAccessToken(undefined), null);
        assert.equal(s.getAccessToken(), null);
        assert.equal(s.getAccessToken(""), null);
      });

      it("returns a fresh object each call: changing it never changes the store", () => {
        const s = ctx.store;
        const scopes = ["mcp"];
        const expiresAt = new Date(Date.now() + HOUR);
        s.storeAccessToken("at", "rt", "key", "u", "c", scopes, expiresAt);
        scopes.push("admin"); // the caller's array after the call
        expiresAt.setTime(0); // the caller's Date after the call
        const a = s.getAccessToken("at");
        const b = s.getAccessToken("at");
        assert.notEqual(a, b);
        assert.notEqual(a.scopes, b.scopes);
        assert.notEqual(a.expiresAt, b.expiresAt);
        a.scopes.push("admin");
        a.apiKey = "changed";
        a.userId = "someone-else";
        a.expiresAt.setTime(0);
        a.createdAt.setTime(0);
        const c = s.getAccessToken("at");
        assert.deepEqual(c.scopes, ["mcp"]);
        assert.equal(c.apiKey, "key");
        assert.equal(c.userId, "u");
        assert.ok(c.expiresAt.getTime() > Date.now());
        assert.ok(c.createdAt.getTime() > 0);
        const r = s.getRefreshToken("rt");
        r.scopes.push("admin");
        assert.deepEqual(s.getRefreshToken("rt").scopes, ["mcp"]);
      });

      it("keeps scopes and strings exactly (unicode, quotes, many scopes)", () => {
        const s = ctx.store;
        const scopes = ["mcp", "read:all", 'quote"d', "ünïcødé 🔑", ""];
        s.storeAccessToken("tök€n 🔑", "ref\"resh", "key'with\"quotes", "user ü", "client/1", scopes, null);
        const t = s.getAccessToken("tök€n 🔑");
        assert.deepEqual(t.scopes, scopes);
        assert.equal(t.apiKey, "key'with\"quotes");
        assert.equal(t.userId, "user ü");
        assert.equal(s.getRefreshToken("ref\"resh").accessToken, "tök€n 🔑");
      });
    });

    describe("a grant's resource and extra (issue 20)", () => {
      const grant = { resource: "https://mcp.example/mcp", extra: { apiKey: "sk-up", n: [1, { x: null }] } };

      it("round-trip on tokens and codes, sync and Promise, and nothing is added to a token or code without them", async () => {
        const s = ctx.store;
        s.storeAccessToken("g-1", "g-r1", "sk", "user-1", "client-1", ["mcp"], future(), grant);
        await s.promises.storeAccessToken("g-2", null, "sk", null, "client-1", [], null, { extra: { a: 1 } });
        s.storeAccessToken("g-3", null, "sk", null, "client-1", [], null, null);
        const t = s.getAccessToken("g-1");
        assert.equal(t.resource, grant.resource);
        assert.deepEqual(t.extra, grant.extra);
        assert.notEqual(t.extra, grant.extra);
        assert.deepEqual((await s.promises.getAccessToken("g-1")).extra, grant.extra);
        const t2 = await s.promises.getAccessToken("g-2");
        assert.deepEqual(Object.keys(t2).sort(), ["apiKey", "clientId", "createdAt", "expiresAt", "extra", "refreshToken", "scopes", "userId"]);
        assert.deepEqual(t2.extra, { a: 1 });
        assert.deepEqual(Object.keys(s.getAccessToken("g-3")).sort(), ["apiKey", "clientId", "createdAt", "expiresAt", "refreshToken", "scopes", "userId"]);

        putCode(s, "g-c0");
        s.storeAuthorizationCode("g-c1", "user-1", "sk", "client-1", "https://app/cb", CHALLENGE, "S256", ["mcp"], 600, grant);
        await s.promises.storeAuthorizationCode("g-c2", null, "sk", "client-1", "https://app/cb", null, null, [], null, { resource: grant.resource });
        const c0 = s.consumeAuthorizationCode("g-c0", VERIFIER);
        assert.equal("resource" in c0 || "extra" in c0, false);
        const c1 = s.consumeAuthorizationCode("g-c1", VERIFIER);
        assert.deepEqual([c1.resource, c1.extra], [grant.resource, grant.extra]);
        const c2 = await s.promises.consumeAuthorizationCode("g-c2");
        assert.deepEqual([c2.resource, "extra" in c2], [grant.resource, false]);
      });

      it("are carried to the new access token by rotateRefreshToken (both forms), and stored by storeAccessTokens", async () => {
        const s = ctx.store;
        s.storeAccessToken("g-1", "g-r1", "sk", "user-1", "client-1", ["mcp"], future(), grant);
        const pair = s.rotateRefreshToken("g-r1", "g-2", "g-r2", future());
        assert.deepEqual(Object.keys(pair).sort(), ["accessToken", "apiKey", "clientId", "refreshToken", "scopes", "userId"]);
        assert.deepEqual([s.getAccessToken("g-2").resource, s.getAccessToken("g-2").extra], [grant.resource, grant.extra]);
        await s.promises.rotateRefreshToken("g-r2", () => ({ accessToken: "g-3", refreshToken: "g-r3", expiresAt: future() }));
        assert.deepEqual((await s.promises.getAccessToken("g-3")).extra, grant.extra);
        assert.equal(s.storeAccessTokens([{ accessToken: "g-4", apiKey: "sk", clientId: "c", ...grant }, { accessToken: "g-5", apiKey: "sk", clientId: "c" }]), 2);
        assert.deepEqual(s.getAccessToken("g-4").extra, grant.extra);
        assert.equal("extra" in s.getAccessToken("g-5"), false);
        // Stored again without them: gone.
        s.storeAccessToken("g-3", null, "sk", null, "client-1");
        assert.equal("resource" in s.getAccessToken("g-3"), false);
      });

      it("are checked: a TypeError or RangeError naming the argument, nothing stored", () => {
        const s = ctx.store;
        const put = (options) => () => s.storeAccessToken("g-x", null, "sk", null, "c", [], null, options);
        assert.throws(put(5), { name: "TypeError", message: /storeAccessToken: options must be/ });
        assert.throws(put({ extra: [1] }), { name: "TypeError", message: /options\.extra/ });
        assert.throws(put({ extra: "{}" }), { name: "TypeError", message: /options\.extra/ });
        assert.throws(put({ resource: 5 }), { name: "TypeError", message: /options\.resource/ });
        assert.throws(put({ resource: "r".repeat(2049) }), { name: "RangeError", message: /options\.resource/ });
        assert.throws(put({ extra: { k: "x".repeat(64 * 1024) } }), { name: "RangeError", message: /options\.extra/ });
        assert.throws(() => s.storeAuthorizationCode("g-c", null, "sk", "c", "https://a/cb", null, null, [], 60, { extra: 1 }), { name: "TypeError", message: /storeAuthorizationCode: options\.extra/ });
        assert.throws(() => s.storeAccessTokens([{ accessToken: "g-y", apiKey: "sk", clientId: "c", extra: [] }]), { name: "TypeError", message: /records\[0\]\.extra/ });
        assert.equal(s.getAccessToken("g-x"), null);
        assert.equal(s.getAccessToken("g-y"), null);
        assert.equal(s.consumeAuthorizationCode("g-c"), null);
      });
    });

    describe("expiry of access tokens", () => {
      it("an expired token reads as null and its refresh token goes with it", () => {
        const s = ctx.store;
        putToken(s, "old", { expiresAt: new Date(past()) });
        putToken(s, "old-ms", { expiresAt: past() });
        putToken(s, "live");
        assert.equal(s.getAccessToken("old"), null);
        assert.equal(s.getAccessToken("old-ms"), null);
        assert.equal(s.getRefreshToken("old-refresh"), null);
        assert.equal(s.getRefreshToken("old-ms-refresh"), null);
        assert.notEqual(s.getAccessToken("live"), null);
        // Reading removed it: cleanup has only what nobody read.
        assert.equal(s.cleanupExpiredTokens(), 0);
      });

      it("a token expiring exactly now is expired", () => {
        const s = ctx.store;
        putToken(s, "edge", { expiresAt: Date.now() });
        assert.equal(s.getAccessToken("edge"), null);
      });
    });

    describe("authorization codes", () => {
      it("consume returns the documented shape, numbers for the times, default expiry 600 s", () => {
        const s = ctx.store;
        const before = Date.now();
        const ret = s.storeAuthorizationCode("code-1", "user-1", "sk-or-v1-key", "client-1", "https://app.example/cb", CHALLENGE, "S256", ["mcp"]);
        const after = Date.now();
        assert.equal(ret, undefined);
        const c = s.consumeAuthorizationCode("code-1", VERIFIER);
        assert.deepEqual(Object.keys(c).sort(), [
          "apiKey", "clientId", "codeChallenge", "codeChallengeMethod", "createdAt", "expiresAt", "redirectUri", "scopes", "userId",
        ]);
        assert.equal(c.userId, "user-1");
        assert.equal(c.apiKey, "sk-or-v1-key");
        assert.equal(c.clientId, "client-1");
        assert.equal(c.redirectUri, "https://app.example/cb");
        assert.equal(c.codeChallenge, CHALLENGE);
        assert.equal(c.codeChallengeMethod, "S256");
        assert.deepEqual(c.scopes, ["mcp"]);
        assert.equal(typeof c.expiresAt, "number");
        assert.equal(typeof c.createdAt, "number");
        assert.ok(c.createdAt >= before - 1 && c.createdAt <= after + 1);
        assert.equal(c.expiresAt - c.createdAt, 600 * 1000);
      });

      it("takes expiresIn in seconds; undefined and null mean 600", () => {
        const s = ctx.store;
        putCode(s, "c60", { challenge: null, method: null, expiresIn: 60 });
        putCode(s, "cundef", { challenge: null, method: null, expiresIn: undefined });
        putCode(s, "cnull", { challenge: null, method: null, expiresIn: null });
        const c60 = s.consumeAuthorizationCode("c60");
        assert.equal(c60.expiresAt - c60.createdAt, 60 * 1000);
        for (const code of ["cundef", "cnull"]) {
          const c = s.consumeAuthorizationCode(code);
          assert.equal(c.expiresAt - c.createdAt, 600 * 1000, code);
        }
      });

      it("a code is single use", () => {
        const s = ctx.store;
        putCode(s, "once");
        assert.notEqual(s.consumeAuthorizationCode("once", VERIFIER), null);
        assert.equal(s.consumeAuthorizationCode("once", VERIFIER), null);
      });

      it("PKCE S256 with the RFC 7636 Appendix B vector", () => {
        const s = ctx.store;
        putCode(s, "s256");
        const c = s.consumeAuthorizationCode("s256", VERIFIER);
        assert.notEqual(c, null);
        assert.equal(c.codeChallenge, CHALLENGE);
      });

      it("a failed PKCE check uses the code up", () => {
        const s = ctx.store;
        putCode(s, "guess");
        assert.equal(s.consumeAuthorizationCode("guess", `${VERIFIER.slice(0, -1)}x`), null);
        assert.equal(s.consumeAuthorizationCode("guess", VERIFIER), null);
        putCode(s, "missing");
        assert.equal(s.consumeAuthorizationCode("missing"), null);
        assert.equal(s.consumeAuthorizationCode("missing", VERIFIER), null);
      });

      it("S256 does not accept the challenge itself as verifier", () => {
        const s = ctx.store;
        putCode(s, "c");
        assert.equal(s.consumeAuthorizationCode("c", CHALLENGE), null);
      });

      it("plain is actually checked", () => {
        const s = ctx.store;
        putCode(s, "plain-ok", { challenge: VERIFIER, method: "plain" });
        assert.notEqual(s.consumeAuthorizationCode("plain-ok", VERIFIER), null);
        putCode(s, "plain-bad", { challenge: VERIFIER, method: "plain" });
        assert.equal(s.consumeAuthorizationCode("plain-bad", `${VERIFIER}x`), null);
        assert.equal(s.consumeAuthorizationCode("plain-bad", VERIFIER), null, "used up by the failed attempt");
      });

      it("a missing or malformed verifier gives null", () => {
        const s = ctx.store;
        const ok43 = "a".repeat(43);
        const ok128 = "A1-._~".repeat(21) + "ab"; // 128 characters of the allowed set
        assert.equal(ok128.length, 128);
        const bad = {
          undefined,
          null: null,
          empty: "",
          len42: "a".repeat(42),
          len129: "a".repeat(129),
          plus: `${"a".repeat(42)}+`,
          space: `${"a".repeat(42)} `,
          slash: `${"a".repeat(42)}/`,
          equals: `${"a".repeat(42)}=`,
          nonAscii: `${"a".repeat(42)}é`,
        };
        for (const [name, v] of Object.entries(bad)) {
          // plain, with the challenge equal to the verifier: only the format can fail it
          putCode(s, `bad-${name}`, { challenge: v || "x".repeat(43), method: "plain" });
          assert.equal(s.consumeAuthorizationCode(`bad-${name}`, v), null, name);
        }
        putCode(s, "ok43", { challenge: ok43, method: "plain" });
        putCode(s, "ok128", { challenge: ok128, method: "plain" });
        assert.notEqual(s.consumeAuthorizationCode("ok43", ok43), null);
        assert.notEqual(s.consumeAuthorizationCode("ok128", ok128), null);
      });

      it("an unknown method gives null even with the right verifier", () => {
        const s = ctx.store;
        for (const method of ["S512", "s256", "PLAIN", "none"]) {
          putCode(s, `m-${method}`, { method });
          assert.equal(s.consumeAuthorizationCode(`m-${method}`, VERIFIER), null, method);
        }
      });

      it("a code stored without a challenge is not PKCE-checked", () => {
        const s = ctx.store;
        for (const [i, v] of [undefined, null, "", "short", VERIFIER].entries()) {
          putCode(s, `nopkce-${i}`, { challenge: null, method: null });
          const c = s.consumeAuthorizationCode(`nopkce-${i}`, v);
          assert.notEqual(c, null, String(v));
          assert.equal(c.codeChallenge, null);
          assert.equal(c.codeChallengeMethod, null);
        }
        putCode(s, "nopkce-undef", { challenge: undefined, method: undefined });
        assert.notEqual(s.consumeAuthorizationCode("nopkce-undef"), null);
      });

      it("a code without a user id comes back with userId null", () => {
        const s = ctx.store;
        putCode(s, "anon", { user: null, challenge: null, method: null });
        assert.equal(s.consumeAuthorizationCode("anon").userId, null);
      });

      it("an expired code (expiresIn 0 or negative) gives null and is removed", () => {
        const s = ctx.store;
        putCode(s, "zero", { expiresIn: 0 });
        putCode(s, "neg", { expiresIn: -5 });
        assert.equal(s.consumeAuthorizationCode("zero", VERIFIER), null);
        assert.equal(s.consumeAuthorizationCode("neg", VERIFIER), null);
        assert.equal(s.cleanupExpiredTokens(), 0, "already removed by the read");
      });

      it("storing a code again under the same string replaces it", () => {
        const s = ctx.store;
        putCode(s, "dup", { apiKey: "first", challenge: null, method: null });
        putCode(s, "dup", { apiKey: "second", challenge: null, method: null });
        assert.equal(s.consumeAuthorizationCode("dup").apiKey, "second");
        assert.equal(s.consumeAuthorizationCode("dup"), null);
      });

      it("unknown, null and undefined codes give null", () => {
        const s = ctx.store;
        assert.equal(s.consumeAuthorizationCode("nope", VERIFIER), null);
        assert.equal(s.consumeAuthorizationCode(null, VERIFIER), null);
        assert.equal(s.consumeAuthorizationCode(undefined), null);
        assert.equal(s.consumeAuthorizationCode(""), null);
      });
    });

    describe("refresh tokens", () => {
      it("getRefreshToken returns the documented shape", () => {
        const s = ctx.store;
        const before = Date.now();
        s.storeAccessToken("at", "rt", "sk-or-v1-key", "user-1", "client-1", ["mcp", "x"], future());
        const after = Date.now();
        const r = s.getRefreshToken("rt");
        assert.deepEqual(Object.keys(r).sort(), ["accessToken", "clientId", "createdAt", "scopes", "userId"]);
        assert.equal(r.userId, "user-1");
        assert.equal(r.clientId, "client-1");
        assert.deepEqual(r.scopes, ["mcp", "x"]);
        assert.equal(r.accessToken, "at");
        assert.ok(r.createdAt instanceof Date);
        assert.ok(r.createdAt.getTime() >= before - 1 && r.createdAt.getTime() <= after + 1);
        assert.equal(s.getRefreshToken("unknown"), null);
        assert.equal(s.getRefreshToken(null), null);
        assert.equal(s.getRefreshToken(undefined), null);
      });

      it("is null once its access token is expired, without anything reading the access token", () => {
        const s = ctx.store;
        putToken(s, "exp", { refresh: "rt-exp", expiresAt: past() });
        assert.equal(s.getRefreshToken("rt-exp"), null);
        assert.equal(s.getRefreshToken("rt-exp"), null);
        assert.equal(s.getAccessToken("exp"), null);
      });

      it("is null once its access token is expired and was read first", () => {
        const s = ctx.store;
        putToken(s, "exp", { refresh: "rt-exp", expiresAt: new Date(past()) });
        assert.equal(s.getAccessToken("exp"), null);
        assert.equal(s.getRefreshToken("rt-exp"), null);
      });

      it("is null once its access token is deleted", () => {
        const s = ctx.store;
        putToken(s, "at", { refresh: "rt" });
        s.deleteToken("at");
        assert.equal(s.getRefreshToken("rt"), null);
      });

      it("revokeRefreshToken removes the refresh token and its access token, nothing else", () => {
        const s = ctx.store;
        putToken(s, "at", { refresh: "rt" });
        putToken(s, "other", { refresh: "rt-other" });
        assert.equal(s.revokeRefreshToken("rt"), undefined);
        assert.equal(s.getRefreshToken("rt"), null);
        assert.equal(s.getAccessToken("at"), null);
        assert.notEqual(s.getAccessToken("other"), null);
        assert.notEqual(s.getRefreshToken("rt-other"), null);
        assert.equal(s.getStats().totalTokens, 1);
      });

      it("a refresh token string stored again for a new access token moves to it", () => {
        const s = ctx.store;
        putToken(s, "A", { refresh: "rt" });
        putToken(s, "B", { refresh: "rt" });
        assert.equal(s.getAccessToken("A").refreshToken, null);
        assert.equal(s.getRefreshToken("rt").accessToken, "B");
        s.deleteToken("A");
        assert.equal(s.getRefreshToken("rt").accessToken, "B");
        s.revokeRefreshToken("rt");
        assert.equal(s.getAccessToken("B"), null);
        assert.equal(s.getStats().totalTokens, 0);
      });

      it("revokeRefreshToken of unknown, null or undefined is a no-op", () => {
        const s = ctx.store;
        putToken(s, "at", { refresh: "rt" });
        s.revokeRefreshToken("unknown");
        s.revokeRefreshToken(null);
        s.revokeRefreshToken(undefined);
        s.revokeRefreshToken("");
        assert.notEqual(s.getAccessToken("at"), null);
        assert.notEqual(s.getRefreshToken("rt"), null);
      });
    });

    describe("deleteToken", () => {
      it("removes the access token and its refresh token, nothing else", () => {
        const s = ctx.store;
        putToken(s, "at", { refresh: "rt" });
        putToken(s, "other", { refresh: "rt-other" });
        assert.equal(s.deleteToken("at"), undefined);
        assert.equal(s.getAccessToken("at"), null);
        assert.equal(s.getRefreshToken("rt"), null);
        assert.notEqual(s.getAccessToken("other"), null);
        assert.notEqual(s.getRefreshToken("rt-other"), null);
        assert.equal(s.getStats().totalTokens, 1);
      });

      it("of unknown, null or undefined is a no-op", () => {
        const s = ctx.store;
        putToken(s, "at");
        s.deleteToken("unknown");
        s.deleteToken(null);
        s.deleteToken(undefined);
        s.deleteToken("");
        assert.equal(s.getStats().totalTokens, 1);
      });
    });

    describe("deleteUserTokens", () => {
      it("removes tokens, refresh tokens and pending codes of that user only", () => {
        const s = ctx.store;
        putToken(s, "u1-a", { user: "u1" });
        putToken(s, "u1-b", { user: "u1", expiresAt: null });
        putToken(s, "u2-a", { user: "u2" });
        putToken(s, "anon", { user: null });
        putCode(s, "u1-code", { user: "u1", challenge: null, method: null });
        putCode(s, "u2-code", { user: "u2", challenge: null, method: null });
        putCode(s, "anon-code", { user: null, challenge: null, method: null });
        assert.equal(s.deleteUserTokens("u1"), undefined);
        assert.equal(s.getAccessToken("u1-a"), null);
        assert.equal(s.getAccessToken("u1-b"), null);
        assert.equal(s.getRefreshToken("u1-a-refresh"), null);
        assert.equal(s.getRefreshToken("u1-b-refresh"), null);
        assert.equal(s.consumeAuthorizationCode("u1-code"), null);
        assert.notEqual(s.getAccessToken("u2-a"), null);
        assert.notEqual(s.getRefreshToken("u2-a-refresh"), null);
        assert.notEqual(s.getAccessToken("anon"), null);
        assert.notEqual(s.getRefreshToken("anon-refresh"), null);
        assert.notEqual(s.consumeAuthorizationCode("u2-code"), null);
        assert.notEqual(s.consumeAuthorizationCode("anon-code"), null);
        const stats = s.getStats();
        assert.equal(stats.totalTokens, 2);
        assert.equal(stats.uniqueUsers, 1);
      });

      it("removes the pending codes of a user who has no token", () => {
        const s = ctx.store;
        putCode(s, "only-code", { user: "u9", challenge: null, method: null });
        s.deleteUserTokens("u9");
        assert.equal(s.consumeAuthorizationCode("only-code"), null);
      });

      it("of unknown, null or undefined is a no-op (null does not mean the tokens without a user)", () => {
        const s = ctx.store;
        putToken(s, "anon", { user: null });
        putToken(s, "u1", { user: "u1" });
        s.deleteUserTokens("nobody");
        s.deleteUserTokens(null);
        s.deleteUserTokens(undefined);
        s.deleteUserTokens("");
        assert.notEqual(s.getAccessToken("anon"), null);
        assert.notEqual(s.getAccessToken("u1"), null);
      });
    });

    describe("cleanupExpiredTokens", () => {
      /** 3 expired tokens, 2 live; 2 expired codes, 1 live. */
      function seed(s) {
        putToken(s, "exp-1", { expiresAt: past() });
        putToken(s, "exp-2", { expiresAt: new Date(past()) });
        putToken(s, "exp-3", { expiresAt: past(), refresh: null });
        putToken(s, "live-1");
        putToken(s, "live-2", { expiresAt: null });
        putCode(s, "code-exp-1", { expiresIn: 0 });
        putCode(s, "code-exp-2", { expiresIn: -60 });
        putCode(s, "code-live", { challenge: null, method: null });
      }

      function checkAfter(s) {
        for (const t of ["exp-1", "exp-2"]) assert.equal(s.getRefreshToken(`${t}-refresh`), null, t);
        assert.notEqual(s.getAccessToken("live-1"), null);
        assert.notEqual(s.getRefreshToken("live-1-refresh"), null);
        assert.notEqual(s.getAccessToken("live-2"), null);
        assert.notEqual(s.consumeAuthorizationCode("code-live"), null);
        assert.equal(s.getStats().totalTokens, 2);
      }

      it("returns how many expired tokens and codes it removed", () => {
        const s = ctx.store;
        seed(s);
        assert.equal(s.cleanupExpiredTokens(), 5);
        assert.equal(s.cleanupExpiredTokens(), 0);
        checkAfter(s);
      });

      it("works in small batches (batchSize 1 and 2)", () => {
        const s = ctx.store;
        seed(s);
        assert.equal(s.cleanupExpiredTokens(2), 5);
        checkAfter(s);
        seed(s);
        assert.equal(s.cleanupExpiredTokens(1), 5);
      });

      it("returns 0 on an empty store", () => {
        assert.equal(ctx.store.cleanupExpiredTokens(), 0);
      });

      it("cleanupExpiredTokensAsync resolves to the same count", async () => {
        const s = ctx.store;
        seed(s);
        const p = s.cleanupExpiredTokensAsync(2);
        assert.ok(p instanceof Promise);
        assert.equal(await p, 5);
        assert.equal(await s.cleanupExpiredTokensAsync(), 0);
        checkAfter(s);
      });
    });

    describe("getStats", () => {
      it("counts live tokens and distinct non-null users", () => {
        const s = ctx.store;
        assert.equal(s.getStats().totalTokens, 0);
        assert.equal(s.getStats().uniqueUsers, 0);
        putToken(s, "a", { user: "u1" });
        putToken(s, "b", { user: "u1" });
        putToken(s, "c", { user: "u2" });
        putToken(s, "d", { user: null });
        putToken(s, "e", { user: "u3", expiresAt: past() }); // expired: not counted
        putCode(s, "code", { user: "u4" }); // a code is not a token
        const stats = s.getStats();
        assert.equal(stats.totalTokens, 4);
        assert.equal(stats.uniqueUsers, 2);
        s.deleteToken("c");
        assert.equal(s.getStats().uniqueUsers, 1);
        s.deleteToken("a");
        assert.equal(s.getStats().uniqueUsers, 1);
        assert.equal(s.getStats().totalTokens, 2);
      });

      it("replacing a token under another user moves the user count", () => {
        const s = ctx.store;
        putToken(s, "a", { user: "u1" });
        putToken(s, "a", { user: "u2" });
        assert.equal(s.getStats().totalTokens, 1);
        assert.equal(s.getStats().uniqueUsers, 1);
        putToken(s, "a", { user: null });
        assert.equal(s.getStats().uniqueUsers, 0);
      });
    });

    describe("close and reopen", () => {
      it("the store works again after close()", () => {
        const s = ctx.store;
        putToken(s, "before");
        s.close();
        putToken(s, "after");
        assert.notEqual(s.getAccessToken("after"), null);
        s.closeDB(); // the old module's name
        putToken(s, "after-closedb");
        assert.notEqual(s.getAccessToken("after-closedb"), null);
      });

      if (kind !== "memory") {
        it("keeps tokens, refresh tokens and codes across close and in a new TokenStorage on the same file", () => {
          const s = ctx.store;
          putToken(s, "kept", { expiresAt: new Date(Date.now() + HOUR) });
          putCode(s, "kept-code");
          const before = s.getAccessToken("kept");
          s.close();
          assert.deepEqual(s.getAccessToken("kept"), before);
          s.close();
          const other = ctx.reopen();
          try {
            assert.deepEqual(other.getAccessToken("kept"), before);
            assert.equal(other.getRefreshToken("kept-refresh").accessToken, "kept");
            assert.notEqual(other.consumeAuthorizationCode("kept-code", VERIFIER), null);
            assert.equal(s.consumeAuthorizationCode("kept-code", VERIFIER), null, "single use across connections");
            assert.equal(other.getStats().totalTokens, 1);
          } finally {
            other.close();
          }
        });
      } else {
        it("close() keeps a memory store's tokens (there is nothing to close; documented)", () => {
          const s = ctx.store;
          putToken(s, "kept");
          putCode(s, "kept-code");
          s.close();
          assert.equal(s.getAccessToken("kept").apiKey.length > 0, true);
          assert.equal(s.getRefreshToken("kept-refresh").accessToken, "kept");
          assert.notEqual(s.consumeAuthorizationCode("kept-code", VERIFIER), null);
          assert.equal(s.getStats().totalTokens, 1);
        });

        it("two memory TokenStorage objects are separate stores", () => {
          const other = ctx.reopen();
          try {
            putToken(ctx.store, "mine");
            assert.equal(other.getAccessToken("mine"), null);
          } finally {
            other.close();
          }
        });
      }
    });
  });
}
