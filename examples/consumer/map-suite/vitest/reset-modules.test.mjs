// Written for the Map module: vi.resetModules() and a new import give an empty store; a
// module already imported keeps its own until something imports the package again.
import { test, expect, vi } from "vitest";
import * as imported from "native-token-storage";

test("vi.resetModules() and a new import give a fresh, empty store", async () => {
  const before = await import("native-token-storage");
  before.storeAccessToken("token-before", null, "sk-or-key", "user", "client", [], null);
  expect(before.getStats().totalTokens).toBe(1);

  vi.resetModules();
  const after = await import("native-token-storage");
  expect(after.getStats().totalTokens).toBe(0);
  expect(after.getAccessToken("token-before")).toBeNull();
  // The entries imported after one reset share the new store, as one copy's entries do.
  after.storeAccessToken("token-after", null, "sk-or-key", "user", "client", [], null);
  const promises = await import("native-token-storage/promises");
  expect(await promises.getAccessToken("token-after")).not.toBeNull();
});

test("any entry imported after a reset starts empty", async () => {
  const main = await import("native-token-storage");
  main.storeAccessToken("token-main", null, "sk-or-key", "user", "client", [], null);
  vi.resetModules();
  const promises = await import("native-token-storage/promises");
  expect(await promises.getStats()).toMatchObject({ totalTokens: 0 });
  expect((await import("native-token-storage")).getAccessToken("token-main")).toBeNull();
});

test("vi.resetModules() alone, without a new import, keeps the store", () => {
  imported.storeAccessToken("token-kept", null, "sk-or-key", "user", "client", [], null);
  vi.resetModules();
  expect(imported.getAccessToken("token-kept")).not.toBeNull();
});
