// Written for the Map module: jest.resetModules() and a new require give an empty store.
test("jest.resetModules() gives a fresh, empty store", () => {
  const before = require("../src/tokenStorage");
  before.storeAccessToken("token-before", null, "sk-or-key", "user", "client", [], null);
  expect(before.getStats().totalTokens).toBe(1);

  jest.resetModules();
  const after = require("../src/tokenStorage");
  expect(after).not.toBe(before);
  expect(after.getStats().totalTokens).toBe(0);
  expect(after.getAccessToken("token-before")).toBeNull();
  expect(before.getAccessToken("token-before")).not.toBeNull(); // the old copy keeps its own
});

test("jest.isolateModules() gives a store of its own", () => {
  const outer = require("../src/tokenStorage");
  outer.storeAccessToken("token-outer", null, "sk-or-key", "user", "client", [], null);
  jest.isolateModules(() => {
    const inner = require("../src/tokenStorage");
    expect(inner.getAccessToken("token-outer")).toBeNull();
  });
  expect(outer.getAccessToken("token-outer")).not.toBeNull();
});
