"use strict";
// rotateRefreshToken(refreshToken, mint): the refresh grant of a server that builds its new
// access token (a JWT) from the grant's user, client and scopes. On every store: mint sees the
// grant, one winner among concurrent refreshes, a replay revokes the grant, and a mint that
// throws, refuses or answers wrongly changes nothing.
const { describe, it, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { KINDS, storeOptions, tempDir, removeDir, TokenStorage } = require("./helpers/setup");

const HOUR = 3600e3;

/** A JWT-like token built from the grant, as the real server's generateAccessToken does. */
const jwtOf = (grant, n) => `jwt.${grant.userId}.${grant.clientId}.${grant.scopes.join("+")}.${n}`;

for (const kind of KINDS) {
  describe(`${kind} store: rotateRefreshToken(refreshToken, mint)`, () => {
    let dir;
    const opened = [];
    const open = (extra = {}) => {
      dir ??= tempDir();
      const s = new TokenStorage({ ...storeOptions(kind, path.join(dir, "tokens.db")), ...extra });
      opened.push(s);
      return s;
    };
    afterEach(() => {
      for (const s of opened.splice(0)) s.close();
      if (dir) removeDir(dir);
      dir = undefined;
    });

    it("mint gets the grant; the new pair is stored with its expiry and the grant's API key", () => {
      const s = open();
      s.storeAccessToken("at-1", "rt-1", "sk-or-v1-key", "user-1", "client-1", ["mcp:read", "mcp:write"], Date.now() + HOUR);
      const seen = [];
      const expiresAt = new Date(Date.now() + 2 * HOUR);
      const pair = s.rotateRefreshToken("rt-1", (grant) => {
        seen.push(grant);
        return { accessToken: jwtOf(grant, 2), refreshToken: "rt-2", expiresAt };
      });
      assert.equal(seen.length, 1);
      assert.equal(seen[0].userId, "user-1");
      assert.equal(seen[0].clientId, "client-1");
      assert.deepEqual(seen[0].scopes, ["mcp:read", "mcp:write"]);
      assert.equal(seen[0].accessToken, "at-1");
      assert.ok(seen[0].createdAt instanceof Date);
      const jwt = "jwt.user-1.client-1.mcp:read+mcp:write.2";
      assert.deepEqual(pair, { userId: "user-1", clientId: "client-1", scopes: ["mcp:read", "mcp:write"], apiKey: "sk-or-v1-key", accessToken: jwt, refreshToken: "rt-2" });
      assert.equal(s.getAccessToken("at-1"), null);
      assert.equal(s.getRefreshToken("rt-1"), null);
      const stored = s.getAccessToken(jwt);
      assert.equal(stored.apiKey, "sk-or-v1-key");
      assert.equal(stored.refreshToken, "rt-2");
      assert.equal(stored.expiresAt.getTime(), Math.trunc(expiresAt.getTime()));
      // A mint without expiresAt: the new token never expires, as storeAccessToken without one.
      const next = s.rotateRefreshToken("rt-2", (g) => ({ accessToken: jwtOf(g, 3), refreshToken: "rt-3" }));
      assert.equal(s.getAccessToken(next.accessToken).expiresAt, null);
    });

    it("a mint that gives back the grant's own access token (a JWT minted in the same second) works", () => {
      // The real server's JWT depends on user, client, scopes and the second only.
      const s = open();
      s.storeAccessToken("jwt.same", "rt-1", "sk", "u", "c", ["x"], Date.now() + HOUR);
      const pair = s.rotateRefreshToken("rt-1", (g) => ({ accessToken: g.accessToken, refreshToken: "rt-2", expiresAt: Date.now() + HOUR }));
      assert.equal(pair.accessToken, "jwt.same");
      assert.equal(s.getAccessToken("jwt.same").refreshToken, "rt-2");
      assert.equal(s.getRefreshToken("rt-2").accessToken, "jwt.same");
      assert.equal(s.getRefreshToken("rt-1"), null);
      assert.equal(s.getStats().totalTokens, 1);
    });

    it("unknown, expired and null tokens give null without calling mint", () => {
      const s = open();
      const never = () => assert.fail("mint must not be called");
      assert.equal(s.rotateRefreshToken("nope", never), null);
      assert.equal(s.rotateRefreshToken(null, never), null);
      assert.equal(s.rotateRefreshToken(undefined, never), null);
      assert.equal(s.rotateRefreshToken("", never), null);
      s.storeAccessToken("at-old", "rt-old", "sk", "u", "c", [], Date.now() - 1);
      assert.equal(s.rotateRefreshToken("rt-old", never), null);
      assert.equal(s.getStats().totalTokens, 0);
    });

    it("a mint that throws or answers null changes nothing; the grant can be refreshed after", () => {
      const s = open();
      s.storeAccessToken("at-1", "rt-1", "sk", "u", "c", ["x"], Date.now() + HOUR);
      assert.throws(() => s.rotateRefreshToken("rt-1", () => { throw new Error("signing key missing"); }), /signing key missing/);
      assert.equal(s.rotateRefreshToken("rt-1", () => null), null);
      assert.equal(s.getRefreshToken("rt-1").accessToken, "at-1");
      assert.notEqual(s.getAccessToken("at-1"), null);
      assert.equal(s.rotateRefreshToken("rt-1", (g) => ({ accessToken: jwtOf(g, 2), refreshToken: "rt-2" })).refreshToken, "rt-2");
    });

    it("bad arguments and bad mint answers are TypeErrors and change nothing", () => {
      const s = open();
      s.storeAccessToken("at-1", "rt-1", "sk", "u", "c", [], Date.now() + HOUR);
      const mint = (g) => ({ accessToken: jwtOf(g, 2), refreshToken: "rt-2" });
      assert.throws(() => s.rotateRefreshToken("rt-1", mint, "rt-2"), TypeError);
      assert.throws(() => s.rotateRefreshToken(5, mint), TypeError);
      for (const answer of [
        "jwt",
        { refreshToken: "rt-2" },
        { accessToken: "", refreshToken: "rt-2" },
        { accessToken: "a", refreshToken: 7 },
        { accessToken: "same", refreshToken: "same" },
        { accessToken: "a", refreshToken: "rt-1" },
        { accessToken: "a", refreshToken: "b", expiresAt: "tomorrow" },
      ]) {
        assert.throws(() => s.rotateRefreshToken("rt-1", () => answer), TypeError, JSON.stringify(answer));
      }
      // The synchronous form cannot wait for an async mint: it says where to take it.
      assert.throws(() => s.rotateRefreshToken("rt-1", async (g) => mint(g)), /Promise API/);
      assert.equal(s.getRefreshToken("rt-1").accessToken, "at-1");
      assert.equal(s.getStats().totalTokens, 1);
    });

    it("a rotated-away token presented again: refused within the grace period, revokes the grant after it", () => {
      const graceful = open();
      graceful.storeAccessToken("at-1", "rt-1", "sk", "u", "c", [], Date.now() + HOUR);
      const mint = (n) => (g) => ({ accessToken: jwtOf(g, n), refreshToken: `rt-${n}` });
      assert.notEqual(graceful.rotateRefreshToken("rt-1", mint(2)), null);
      // A client retrying at once: refused, the new pair kept, mint never called.
      assert.equal(graceful.rotateRefreshToken("rt-1", () => assert.fail("mint must not be called")), null);
      assert.notEqual(graceful.getRefreshToken("rt-2"), null);

      const strict = open({ refreshGracePeriod: 0 });
      strict.storeAccessToken("at-a", "rt-a", "sk", "u", "c", [], Date.now() + HOUR);
      const won = strict.rotateRefreshToken("rt-a", mint(5));
      assert.equal(won.refreshToken, "rt-5");
      // The stolen old token replayed: null, and the whole grant (the thief's or the user's new pair) is revoked.
      assert.equal(strict.rotateRefreshToken("rt-a", () => assert.fail("mint must not be called")), null);
      assert.equal(strict.getRefreshToken("rt-5"), null);
      assert.equal(strict.getAccessToken(won.accessToken), null);
    });

    it("Promise API: an async mint; of concurrent refreshes that all minted, exactly one wins", async () => {
      const s = open();
      s.storeAccessToken("at-1", "rt-1", "sk", "u", "c", ["x"], Date.now() + HOUR);
      let minted = 0;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          s.promises.rotateRefreshToken("rt-1", async (g) => {
            minted += 1;
            await new Promise((resolve) => setTimeout(resolve, 5));
            return { accessToken: jwtOf(g, `p${i}`), refreshToken: `rt-p${i}`, expiresAt: Date.now() + HOUR };
          }),
        ),
      );
      const winners = results.filter((r) => r !== null);
      assert.equal(winners.length, 1);
      assert.ok(minted >= 2, `the reads raced (${minted} mints)`);
      assert.equal(s.getStats().totalTokens, 1);
      assert.equal(s.getRefreshToken(winners[0].refreshToken).accessToken, winners[0].accessToken);
      // A mint that rejects changes nothing.
      await assert.rejects(s.promises.rotateRefreshToken(winners[0].refreshToken, async () => { throw new Error("no key"); }), /no key/);
      assert.notEqual(s.getRefreshToken(winners[0].refreshToken), null);
    });
  });
}

describe("rotateRefreshToken(refreshToken, mint) on the module's functions", () => {
  it("index.js and promises.js take the mint form", async () => {
    const tokens = require("..");
    const promises = require("../promises");
    tokens.storeAccessToken("mod-at-1", "mod-rt-1", "sk", "u", "c", ["s"], Date.now() + HOUR);
    const a = tokens.rotateRefreshToken("mod-rt-1", (g) => ({ accessToken: jwtOf(g, "m2"), refreshToken: "mod-rt-2" }));
    assert.equal(a.refreshToken, "mod-rt-2");
    const b = await promises.rotateRefreshToken("mod-rt-2", async (g) => ({ accessToken: jwtOf(g, "m3"), refreshToken: "mod-rt-3" }));
    assert.equal(b.accessToken, "jwt.u.c.s.m3");
    tokens.deleteUserTokens("u");
  });
});
