"use strict";
// The records the native store answers (src/wire.rs, read by lib/wire.js), on every store and
// both forms (sync, Promise): every field as stored, whatever characters the strings hold
// (the format's own separators, non-ASCII, astral characters, empty scopes), nulls as null,
// Dates as Dates, and a new object each call.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { KINDS, freshStore } = require("./helpers/setup");

const NOW = Date.now();
const LATER = new Date(NOW + 3_600_000);

/** Strings that would trip a reader counting bytes or looking for separators. */
const AWKWARD = {
  accessToken: "at;1,2;-3,;é€😀end",
  refreshToken: "rt,;😀😀ü".repeat(40),
  apiKey: "sk-ä;,1",
  userId: "user;,-ñ",
  clientId: "client,😀",
  scopes: ["", ";", ",", "ß😀", "mcp"],
};

for (const kind of KINDS) {
  describe(`records from the native store, ${kind} store`, () => {
    const ctx = freshStore(kind);

    for (const form of ["sync", "promises"]) {
      const api = () => (form === "sync" ? ctx.store : ctx.store.promises);

      it(`${form}: an access token with awkward strings reads back exactly`, async () => {
        const a = AWKWARD;
        await api().storeAccessToken(a.accessToken, a.refreshToken, a.apiKey, a.userId, a.clientId, a.scopes, LATER);
        const got = await api().getAccessToken(a.accessToken);
        assert.deepEqual(Object.keys(got), ["apiKey", "userId", "clientId", "scopes", "refreshToken", "expiresAt", "createdAt"]);
        assert.equal(got.apiKey, a.apiKey);
        assert.equal(got.userId, a.userId);
        assert.equal(got.clientId, a.clientId);
        assert.deepEqual(got.scopes, a.scopes);
        assert.equal(got.refreshToken, a.refreshToken);
        assert.ok(got.expiresAt instanceof Date && got.createdAt instanceof Date);
        assert.equal(got.expiresAt.getTime(), LATER.getTime());
        assert.ok(Math.abs(got.createdAt.getTime() - Date.now()) < 60_000);

        const r = await api().getRefreshToken(a.refreshToken);
        assert.deepEqual(Object.keys(r), ["userId", "clientId", "scopes", "accessToken", "createdAt"]);
        assert.equal(r.userId, a.userId);
        assert.equal(r.clientId, a.clientId);
        assert.deepEqual(r.scopes, a.scopes);
        assert.equal(r.accessToken, a.accessToken);
        assert.ok(r.createdAt instanceof Date);
        assert.equal(r.createdAt.getTime(), got.createdAt.getTime());
      });

      it(`${form}: a token of any length finds its record (around the 2 kB read buffer, multi-byte characters across its end)`, async () => {
        const tokens = [];
        for (let n = 2030; n <= 2050; n++) {
          tokens.push("a".repeat(n), `${"b".repeat(n)}😀`, `${"c".repeat(n)}é`, `${"d".repeat(n)}€`);
        }
        tokens.push("e".repeat(100_000), "😀".repeat(3000));
        for (const [i, t] of tokens.entries()) await api().storeAccessToken(t, `rt-${i}`, `sk-${i}`, null, "c", [], null);
        for (const [i, t] of tokens.entries()) {
          assert.equal((await api().getAccessToken(t))?.apiKey, `sk-${i}`, `token ${i} of length ${t.length}`);
          // One character less or more is another token.
          assert.notEqual((await api().getAccessToken(t.slice(0, -1)))?.apiKey, `sk-${i}`);
          assert.equal(await api().getAccessToken(`${t}x`), null);
        }
        assert.equal((await api().getRefreshToken("rt-3"))?.accessToken, tokens[3]);
      });

      it(`${form}: nulls stay null, and no scopes is an empty array`, async () => {
        await api().storeAccessToken("at-plain", null, "sk", null, "c", [], null);
        const got = await api().getAccessToken("at-plain");
        assert.deepEqual({ ...got, createdAt: null }, { apiKey: "sk", userId: null, clientId: "c", scopes: [], refreshToken: null, expiresAt: null, createdAt: null });
        assert.ok(got.createdAt instanceof Date);
        assert.equal(await api().getAccessToken("at-unknown"), null);
        assert.equal(await api().getRefreshToken("rt-unknown"), null);
      });

      it(`${form}: each call answers a new object; changing one changes nothing stored`, async () => {
        await api().storeAccessToken("at-fresh", "rt-fresh", "sk", "u", "c", ["a", "b"], LATER);
        const one = await api().getAccessToken("at-fresh");
        one.scopes.push("admin");
        one.apiKey = "changed";
        one.expiresAt.setTime(0);
        const two = await api().getAccessToken("at-fresh");
        assert.notEqual(one, two);
        assert.deepEqual(two.scopes, ["a", "b"]);
        assert.equal(two.apiKey, "sk");
        assert.equal(two.expiresAt.getTime(), LATER.getTime());
      });

      it(`${form}: an authorization code with awkward strings reads back exactly (times in ms)`, async () => {
        const a = AWKWARD;
        const verifier = "v".repeat(43);
        await api().storeAuthorizationCode("code;,😀", a.userId, a.apiKey, a.clientId, "https://example.test/cb?a=1;b=2,3", verifier, "plain", a.scopes, 60);
        const c = await api().consumeAuthorizationCode("code;,😀", verifier);
        assert.deepEqual(Object.keys(c), ["userId", "apiKey", "clientId", "redirectUri", "codeChallenge", "codeChallengeMethod", "scopes", "expiresAt", "createdAt"]);
        assert.deepEqual(
          { ...c, createdAt: 0, expiresAt: c.expiresAt - c.createdAt },
          { userId: a.userId, apiKey: a.apiKey, clientId: a.clientId, redirectUri: "https://example.test/cb?a=1;b=2,3", codeChallenge: verifier, codeChallengeMethod: "plain", scopes: a.scopes, expiresAt: 60_000, createdAt: 0 },
        );
        assert.equal(typeof c.createdAt, "number");

        await api().storeAuthorizationCode("code-plain", null, "sk", "c", "https://example.test/cb", null, null, [], 60);
        const p = await api().consumeAuthorizationCode("code-plain");
        assert.equal(p.userId, null);
        assert.equal(p.codeChallenge, null);
        assert.equal(p.codeChallengeMethod, null);
        assert.deepEqual(p.scopes, []);
        assert.equal(await api().consumeAuthorizationCode("code-plain"), null);
      });
    }
  });
}
