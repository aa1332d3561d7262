"use strict";
// The rest of the server's OAuth state, on every store: rotateRefreshToken (atomic, with
// reuse detection), pending authorizations, and the client registry.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { KINDS, freshStore, storeOptions, TokenStorage } = require("./helpers/setup");
const path = require("node:path");

const HOUR = 3600e3;

for (const kind of KINDS) {
  describe(`${kind} store: rotateRefreshToken`, () => {
    const ctx = freshStore(kind);

    it("replaces the pair in one step, keeping the API key, user, client and scopes", () => {
      const s = ctx.store;
      s.storeAccessToken("at-1", "rt-1", "sk-or-v1-key", "user-1", "client-1", ["mcp:read", "mcp:write"], Date.now() + HOUR);
      const expiresAt = new Date(Date.now() + 2 * HOUR);
      const r = s.rotateRefreshToken("rt-1", "at-2", "rt-2", expiresAt);
      assert.deepEqual(r, { userId: "user-1", clientId: "client-1", scopes: ["mcp:read", "mcp:write"], apiKey: "sk-or-v1-key", accessToken: "at-2", refreshToken: "rt-2" });
      assert.equal(s.getAccessToken("at-1"), null);
      assert.equal(s.getRefreshToken("rt-1"), null);
      const t = s.getAccessToken("at-2");
      assert.equal(t.refreshToken, "rt-2");
      assert.equal(t.expiresAt.getTime(), Math.trunc(expiresAt.getTime()));
      assert.equal(s.getRefreshToken("rt-2").accessToken, "at-2");
      // Without an expiry the new token never expires; a user id of null is carried over.
      s.storeAccessToken("at-n", "rt-n", "sk", null, "client-1", [], null);
      const n = s.rotateRefreshToken("rt-n", "at-n2", "rt-n2");
      assert.equal(n.userId, null);
      assert.equal(s.getAccessToken("at-n2").expiresAt, null);
    });

    it("unknown, expired, null and rotated-away tokens give null; the old functions still work", () => {
      const s = ctx.store;
      assert.equal(s.rotateRefreshToken("nope", "a", "b"), null);
      assert.equal(s.rotateRefreshToken(null, "a", "b"), null);
      assert.equal(s.rotateRefreshToken(undefined, "a", "b"), null);
      s.storeAccessToken("at-old", "rt-old", "sk", "u", "c", [], Date.now() - 1);
      assert.equal(s.rotateRefreshToken("rt-old", "a", "b"), null);
      assert.equal(s.getAccessToken("a"), null);
      s.storeAccessToken("at-1", "rt-1", "sk", "u", "c", [], null);
      assert.notEqual(s.rotateRefreshToken("rt-1", "at-2", "rt-2"), null);
      // Presented again at once (a client's retry): refused, the new pair kept.
      assert.equal(s.rotateRefreshToken("rt-1", "at-3", "rt-3"), null);
      assert.notEqual(s.getAccessToken("at-2"), null);
      assert.equal(s.getAccessToken("at-3"), null);
      // revokeRefreshToken and getRefreshToken work on rotated pairs as on any other.
      assert.equal(s.getRefreshToken("rt-2").accessToken, "at-2");
      s.revokeRefreshToken("rt-2");
      assert.equal(s.getAccessToken("at-2"), null);
    });

    it("bad arguments are TypeErrors and change nothing", () => {
      const s = ctx.store;
      s.storeAccessToken("at-1", "rt-1", "sk", "u", "c", [], null);
      for (const args of [["rt-1", "", "x"], ["rt-1", "x", null], ["rt-1", 5, "x"], ["rt-1", "same", "same"], ["rt-1", "a", "rt-1"], ["rt-1", "a", "b", "tomorrow"], [5, "a", "b"]]) {
        assert.throws(() => s.rotateRefreshToken(...args), TypeError, JSON.stringify(args));
      }
      assert.equal(s.getRefreshToken("rt-1").accessToken, "at-1");
    });

    it("a rotated-away token presented after the grace period revokes every token of its grant", () => {
      const s = new TokenStorage({ ...storeOptions(kind, path.join(ctx.dir, "grace0.db")), refreshGracePeriod: 0 });
      try {
        s.storeAccessToken("at-1", "rt-1", "sk", "u", "c", [], null);
        s.storeAccessToken("other", "rt-other", "sk", "u", "c", [], null);
        s.rotateRefreshToken("rt-1", "at-2", "rt-2");
        s.rotateRefreshToken("rt-2", "at-3", "rt-3");
        assert.equal(s.rotateRefreshToken("rt-1", "at-x", "rt-x"), null);
        assert.equal(s.getAccessToken("at-3"), null, "the grant's newest pair is revoked");
        assert.equal(s.getRefreshToken("rt-3"), null);
        assert.equal(s.rotateRefreshToken("rt-3", "at-y", "rt-y"), null);
        assert.notEqual(s.getAccessToken("other"), null, "other grants of the same user stay");
      } finally {
        s.close();
      }
    });
  });

  describe(`${kind} store: rotateRefreshToken and refresh strings used again`, () => {
    const ctx = freshStore(kind);
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

    it("a refresh string given to a new grant by storeAccessToken leaves the old grant: a replay there does not revoke it", async () => {
      const s = new TokenStorage({ ...storeOptions(kind, path.join(ctx.dir, "reuse.db")), refreshGracePeriod: 1 });
      try {
        s.storeAccessToken("a1", "r1", "sk-alice", "alice", "c", [], null);
        s.rotateRefreshToken("r1", "a2", "r2");
        s.deleteToken("a2");
        s.storeAccessToken("b1", "r2", "sk-bob", "bob", "c", [], null);
        await sleep(1100);
        assert.equal(s.rotateRefreshToken("r1", "x1", "x2"), null);
        assert.equal(s.getAccessToken("b1").apiKey, "sk-bob", "bob's grant is not alice's");
      } finally {
        s.close();
      }
    });

    it("a token rotated, given out again and rotated again: a retry within the grace period revokes nothing", async () => {
      const s = new TokenStorage({ ...storeOptions(kind, path.join(ctx.dir, "again.db")), refreshGracePeriod: 1 });
      try {
        s.storeAccessToken("a1", "r1", "sk", "u", "c", [], null);
        s.rotateRefreshToken("r1", "a2", "r2");
        await sleep(1100);
        s.storeAccessToken("b1", "r1", "sk", "u", "c", [], null);
        assert.notEqual(s.rotateRefreshToken("r1", "b2", "rb2"), null);
        assert.equal(s.rotateRefreshToken("r1", "b3", "rb3"), null);
        assert.notEqual(s.getAccessToken("b2"), null, "the pair just issued stays");
      } finally {
        s.close();
      }
    });
  });

  describe(`${kind} store: pending authorizations`, () => {
    const ctx = freshStore(kind);

    it("are returned once, as stored", () => {
      const s = ctx.store;
      const data = { codeVerifier: "v".repeat(43), redirectUri: "https://app.example/cb", scopes: ["mcp"], clientState: "xyz", nested: { n: 1, ok: true } };
      s.storePendingAuthorization("state-1", data);
      assert.deepEqual(s.consumePendingAuthorization("state-1"), data);
      assert.equal(s.consumePendingAuthorization("state-1"), null);
      assert.equal(s.consumePendingAuthorization("never"), null);
      assert.equal(s.consumePendingAuthorization(null), null);
    });

    it("expire after ttlSeconds, and cleanup removes them", () => {
      const s = ctx.store;
      s.storePendingAuthorization("gone", { a: 1 }, -1);
      assert.equal(s.consumePendingAuthorization("gone"), null);
      s.storePendingAuthorization("gone-2", { a: 1 }, -1);
      assert.equal(s.cleanupExpiredTokens(), 1);
    });

    it("bad data is a TypeError or RangeError and nothing is stored", () => {
      const s = ctx.store;
      const cyclic = {};
      cyclic.self = cyclic;
      for (const [data, type] of [[null, TypeError], ["text", TypeError], [[1, 2], TypeError], [cyclic, TypeError], [{ big: 1n }, TypeError], [{ huge: "x".repeat(70_000) }, RangeError], [new Date(), TypeError], [{ toJSON: () => 5 }, TypeError]]) {
        assert.throws(() => s.storePendingAuthorization("st", data), type);
      }
      // At most 2048 bytes of UTF-8 (an index entry's limit on PostgreSQL).
      assert.throws(() => s.storePendingAuthorization("鍵".repeat(2048), {}), RangeError);
      s.storePendingAuthorization("鍵".repeat(682), { ok: true });
      assert.deepEqual(s.consumePendingAuthorization("鍵".repeat(682)), { ok: true });
      assert.throws(() => s.storePendingAuthorization("", {}), TypeError);
      assert.throws(() => s.storePendingAuthorization("x".repeat(3000), {}), RangeError);
      assert.throws(() => s.storePendingAuthorization("st", {}, "soon"), TypeError);
      assert.equal(s.consumePendingAuthorization("st"), null);
    });
  });

  describe(`${kind} store: client registry`, () => {
    const ctx = freshStore(kind);

    it("registerClient returns the registration with its secret, once; getClient has it without", () => {
      const s = ctx.store;
      const c = s.registerClient({ redirect_uris: ["https://claude.ai/api/mcp/auth_callback"], client_name: "Claude", logo_uri: "https://x/y.png" });
      assert.match(c.client_id, /^[0-9a-f]{32}$/);
      assert.match(c.client_secret, /^[0-9a-f]{64}$/);
      assert.ok(Math.abs(c.client_id_issued_at - Date.now() / 1000) < 5);
      assert.deepEqual(
        { ...c, client_id: 0, client_secret: 0, client_id_issued_at: 0 },
        {
          client_id: 0,
          client_secret: 0,
          client_id_issued_at: 0,
          redirect_uris: ["https://claude.ai/api/mcp/auth_callback"],
          grant_types: ["authorization_code"],
          response_types: ["code"],
          scope: "mcp:read mcp:write",
          token_endpoint_auth_method: "client_secret_basic",
          application_type: "web",
          client_name: "Claude",
          logo_uri: "https://x/y.png",
        },
      );
      const { client_secret, ...stored } = c;
      assert.deepEqual(s.getClient(c.client_id), stored);
      assert.equal(s.verifyClient(c.client_id, client_secret), true);
      assert.equal(s.verifyClient(c.client_id, client_secret.replace(/.$/, (d) => (d === "0" ? "1" : "0"))), false);
      assert.equal(s.verifyClient(c.client_id, ""), false);
      assert.equal(s.verifyClient(c.client_id, undefined), false);
      assert.equal(s.verifyClient("unknown", client_secret), false);
      assert.equal(s.getClient("unknown"), null);
      assert.equal(s.getClient(null), null);
      const other = s.registerClient({});
      assert.deepEqual(other.redirect_uris, []);
      assert.notEqual(other.client_id, c.client_id);
      assert.deepEqual(s.getAllClients().sort(), [c.client_id, other.client_id].sort());
    });

    it("preRegisterClient is an upsert, with its own default redirect URIs", () => {
      const s = ctx.store;
      s.preRegisterClient("static-client", "s3cret");
      const c = s.getClient("static-client");
      assert.deepEqual(c.redirect_uris, ["http://localhost:*", "https://*"]);
      assert.equal(c.client_id, "static-client");
      assert.equal(c.client_secret, undefined);
      assert.equal(s.verifyClient("static-client", "s3cret"), true);
      s.preRegisterClient("static-client", "rotated", { redirect_uris: ["https://one.example/cb"], client_name: "One" });
      assert.equal(s.verifyClient("static-client", "s3cret"), false);
      assert.equal(s.verifyClient("static-client", "rotated"), true);
      assert.deepEqual(s.getClient("static-client").redirect_uris, ["https://one.example/cb"]);
      assert.deepEqual(s.getAllClients(), ["static-client"]);
    });

    it("bad metadata is a TypeError or RangeError and nothing is stored", () => {
      const s = ctx.store;
      for (const [metadata, type] of [[null, TypeError], ["x", TypeError], [[], TypeError], [{ redirect_uris: "https://x" }, TypeError], [{ redirect_uris: [1] }, TypeError], [{ pad: "x".repeat(70_000) }, RangeError]]) {
        assert.throws(() => s.registerClient(metadata), type, JSON.stringify(metadata)?.slice(0, 40));
      }
      assert.throws(() => s.preRegisterClient("", "s"), TypeError);
      assert.throws(() => s.preRegisterClient("id", 5), TypeError);
      assert.throws(() => s.preRegisterClient("id", "s", { redirect_uris: [null] }), TypeError);
      assert.deepEqual(s.getAllClients(), []);
    });

    it("the registry and the other new functions have Promise forms with the same answers", async () => {
      const s = ctx.store;
      const c = await s.promises.registerClient({ redirect_uris: ["https://a/cb"] });
      assert.equal(await s.promises.verifyClient(c.client_id, c.client_secret), true);
      assert.deepEqual(await s.promises.getAllClients(), [c.client_id]);
      await s.promises.storePendingAuthorization("st", { x: 1 });
      assert.deepEqual(await s.promises.consumePendingAuthorization("st"), { x: 1 });
      s.storeAccessToken("at", "rt", "k", "u", "c", [], null);
      assert.equal((await s.promises.rotateRefreshToken("rt", "at2", "rt2")).accessToken, "at2");
      await assert.rejects(s.promises.registerClient(null), TypeError);
    });
  });
}
