// Written for the Map module: each test file starts from an empty store (node --test runs
// each file in a process of its own).
const { test } = require("node:test");
const assert = require("node:assert/strict");
const tokenStorage = require("../src/tokenStorage");

test("the store starts empty in this file", () => {
  assert.equal(tokenStorage.getStats().totalTokens, 0);
  assert.equal(tokenStorage.getAccessToken("token-first"), null);
});

test("a token stored here is the only one", () => {
  tokenStorage.storeAccessToken("token-second", null, "sk-or-key", "user-second", "client", ["mcp"], Date.now() + 3600e3);
  assert.equal(tokenStorage.getStats().totalTokens, 1);
});
