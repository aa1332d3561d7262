"use strict";
// storeAccessTokens: many tokens at once, all or none, on every store.
const { describe, it, beforeEach } = require("node:test");
const assert = require("node:assert/strict");
const { KINDS, freshStore } = require("./helpers/setup");

for (const kind of KINDS) {
  describe(`${kind} store: storeAccessTokens`, () => {
    const ctx = freshStore(kind);
    let store;
    beforeEach(() => {
      store = ctx.store;
    });

    it("stores every record as storeAccessToken would, and returns the count", () => {
      const later = new Date(Date.now() + 3_600_000);
      const n = store.storeAccessTokens([
        { accessToken: "a1", refreshToken: "r1", apiKey: "k1", userId: "u1", clientId: "c", scopes: ["mcp"], expiresAt: later },
        { accessToken: "a2", apiKey: "k2", userId: null, clientId: "c" },
        { accessToken: "a3", refreshToken: "r3", apiKey: "k3", userId: "u1", clientId: "c", expiresAt: later.getTime() },
      ]);
      assert.equal(n, 3);
      const a1 = store.getAccessToken("a1");
      assert.deepEqual(
        { ...a1, createdAt: null },
        { apiKey: "k1", userId: "u1", clientId: "c", scopes: ["mcp"], refreshToken: "r1", expiresAt: later, createdAt: null },
      );
      assert.equal(store.getAccessToken("a2").userId, null);
      assert.equal(store.getRefreshToken("r3").accessToken, "a3");
      assert.deepEqual(store.getStats(), { totalTokens: 3, uniqueUsers: 1, storage: store.storage });
    });

    it("replaces existing tokens, and a later record replaces an earlier one", () => {
      store.storeAccessToken("a1", "old-r", "old", "u1", "c");
      store.storeAccessTokens([
        { accessToken: "a1", refreshToken: "r1", apiKey: "first", clientId: "c" },
        { accessToken: "a1", refreshToken: "r2", apiKey: "second", clientId: "c" },
      ]);
      assert.equal(store.getAccessToken("a1").apiKey, "second");
      assert.equal(store.getRefreshToken("old-r"), null);
      assert.equal(store.getRefreshToken("r1"), null);
      assert.equal(store.getStats().totalTokens, 1);
    });

    it("stores nothing when any record is wrong, and names the record and field", () => {
      store.storeAccessToken("kept", null, "k", "u", "c");
      const records = [
        { accessToken: "n1", apiKey: "k", clientId: "c" },
        { accessToken: "n2", apiKey: "k", clientId: "c", scopes: ["ok", 7] },
      ];
      assert.throws(() => store.storeAccessTokens(records), {
        name: "TypeError",
        message: /^storeAccessTokens: records\[1\]\.scopes\[1\] must be a string/,
      });
      assert.throws(() => store.storeAccessTokens([null]), { name: "TypeError", message: /records\[0\] must be an object/ });
      assert.throws(() => store.storeAccessTokens("a1"), { name: "TypeError", message: /records must be an array/ });
      assert.throws(() => store.storeAccessTokens([{ accessToken: "x", apiKey: "k", clientId: "c", expiresAt: new Date(NaN) }]), {
        name: "TypeError",
        message: /records\[0\]\.expiresAt is an invalid Date/,
      });
      assert.equal(store.getAccessToken("n1"), null);
      assert.equal(store.getStats().totalTokens, 1);
    });

    it("takes any iterable of records, such as a generator", () => {
      function* records() {
        for (let i = 0; i < 3; i++) yield { accessToken: `g${i}`, apiKey: "k", clientId: "c" };
      }
      assert.equal(store.storeAccessTokens(records()), 3);
      assert.equal(store.getAccessToken("g2").apiKey, "k");
    });

    it("an empty list stores nothing and returns 0", () => {
      assert.equal(store.storeAccessTokens([]), 0);
      assert.equal(store.getStats().totalTokens, 0);
    });
  });
}
