// Written for the Map module: deleting the module from require.cache and requiring it again
// gives an empty store.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

test("a copy required after require.cache is cleared starts empty", () => {
  const before = require("../src/tokenStorage");
  before.storeAccessToken("token-before", null, "sk-or-key", "user", "client", [], null);
  const pkg = path.dirname(require.resolve("native-token-storage/package.json")) + path.sep;
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(pkg) || key === require.resolve("../src/tokenStorage")) delete require.cache[key];
  }
  const after = require("../src/tokenStorage");
  assert.notEqual(after, before);
  assert.equal(after.getStats().totalTokens, 0);
  assert.notEqual(before.getAccessToken("token-before"), null);
});
