// Written for the Map module, which read Date.now() and set a timer per code: expiry tested
// with node:test's mock timers. The scratch project runs it on memory and on a SQLite file.
const { test, beforeEach, afterEach, mock } = require("node:test");
const assert = require("node:assert/strict");
const tokenStorage = require("../src/tokenStorage");

const START = Date.UTC(2030, 0, 1);
let n = 0;
const unique = (what) => `${what}-${++n}-${Math.random().toString(36).slice(2)}`;

beforeEach(() => mock.timers.enable({ apis: ["Date", "setTimeout", "setInterval"], now: START }));
afterEach(() => mock.timers.reset());

test("an access token expires at its expiresAt, by the test's clock", () => {
  const token = unique("token");
  tokenStorage.storeAccessToken(token, null, "sk-or-key", "user", "client", ["mcp"], new Date(Date.now() + 3600e3));
  assert.equal(tokenStorage.getAccessToken(token).createdAt.getTime(), START);
  mock.timers.tick(3600e3);
  assert.equal(tokenStorage.getAccessToken(token), null);
});

test("an authorization code lives expiresIn seconds", () => {
  const kept = unique("code");
  const late = unique("code");
  tokenStorage.storeAuthorizationCode(kept, "user", "sk-or-key", "client", "https://app/cb", null, null, [], 600);
  tokenStorage.storeAuthorizationCode(late, "user", "sk-or-key", "client", "https://app/cb", null, null, [], 600);
  mock.timers.tick(599e3);
  assert.equal(tokenStorage.consumeAuthorizationCode(kept).createdAt, START);
  mock.timers.tick(2e3);
  assert.equal(tokenStorage.consumeAuthorizationCode(late), null);
});

test("a pending login lives its ttlSeconds", () => {
  const state = unique("state");
  tokenStorage.storePendingAuthorization(state, { codeVerifier: "v" }, 600);
  mock.timers.tick(601e3);
  assert.equal(tokenStorage.consumePendingAuthorization(state), null);
});
