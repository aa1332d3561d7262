// Written for the Map module: each test file starts from an empty store. Jest runs this
// file and second-file.test.js in one process (--runInBand); neither sees the other's tokens.
const tokenStorage = require("../src/tokenStorage");

test("the store starts empty in this file", () => {
  expect(tokenStorage.getStats().totalTokens).toBe(0);
  expect(tokenStorage.getAccessToken("token-second")).toBeNull();
  expect(tokenStorage.consumePendingAuthorization("state-second")).toBeNull();
});

test("a token stored here is the only one", () => {
  tokenStorage.storeAccessToken("token-first", "refresh-first", "sk-or-key", "user-first", "client", ["mcp"], Date.now() + 3600e3);
  tokenStorage.storePendingAuthorization("state-first", { codeVerifier: "v" });
  expect(tokenStorage.getStats()).toMatchObject({ totalTokens: 1, uniqueUsers: 1 });
  expect(tokenStorage.getRefreshToken("refresh-first")).toMatchObject({ accessToken: "token-first" });
});
