// Written for the Map module: each test file starts from an empty store, also when the
// files share a process (the threads pool).
import { test, expect } from "vitest";
import * as tokenStorage from "native-token-storage";

test("the store starts empty in this file", () => {
  expect(tokenStorage.getStats().totalTokens).toBe(0);
  expect(tokenStorage.getAccessToken("token-first")).toBeNull();
});

test("a token stored here is the only one", () => {
  tokenStorage.storeAccessToken("token-second", "refresh-second", "sk-or-key", "user-second", "client", ["mcp"], Date.now() + 3600e3);
  expect(tokenStorage.getStats()).toMatchObject({ totalTokens: 1, uniqueUsers: 1 });
});
