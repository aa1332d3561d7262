// Written for the Map module, which read Date.now(): expiry tested with Jest's fake timers.
// The scratch project runs this file on the memory store and on a SQLite file.
const tokenStorage = require("../src/tokenStorage");

const START = new Date("2030-01-01T00:00:00Z");
const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
let n = 0;
const unique = (what) => `${what}-${++n}-${Math.random().toString(36).slice(2)}`;

beforeEach(() => {
  jest.useFakeTimers();
  jest.setSystemTime(START);
});
afterEach(() => {
  jest.useRealTimers();
});

test("an access token expires at its expiresAt, by the test's clock", () => {
  const token = unique("token");
  const refresh = unique("refresh");
  tokenStorage.storeAccessToken(token, refresh, "sk-or-key", "user", "client", ["mcp"], new Date(Date.now() + 3600e3));
  expect(tokenStorage.getAccessToken(token).createdAt).toEqual(START);
  jest.setSystemTime(START.getTime() + 2 * 3600e3);
  expect(tokenStorage.getAccessToken(token)).toBeNull();
  expect(tokenStorage.getRefreshToken(refresh)).toBeNull();
});

test("a token is live one millisecond before it expires", () => {
  const token = unique("token");
  tokenStorage.storeAccessToken(token, null, "sk-or-key", "user", "client", [], Date.now() + 60e3);
  jest.advanceTimersByTime(59999);
  expect(tokenStorage.getAccessToken(token)).not.toBeNull();
  jest.advanceTimersByTime(1);
  expect(tokenStorage.getAccessToken(token)).toBeNull();
});

test("an authorization code lives expiresIn seconds", () => {
  const kept = unique("code");
  const late = unique("code");
  tokenStorage.storeAuthorizationCode(kept, "user", "sk-or-key", "client", "https://app/cb", CHALLENGE, "S256", ["mcp"], 600);
  tokenStorage.storeAuthorizationCode(late, "user", "sk-or-key", "client", "https://app/cb", CHALLENGE, "S256", ["mcp"], 600);
  jest.advanceTimersByTime(599e3);
  expect(tokenStorage.consumeAuthorizationCode(kept, VERIFIER)).toMatchObject({ createdAt: START.getTime(), expiresAt: START.getTime() + 600e3 });
  jest.advanceTimersByTime(2e3);
  expect(tokenStorage.consumeAuthorizationCode(late, VERIFIER)).toBeNull();
});

test("a pending login lives its ttlSeconds", () => {
  const state = unique("state");
  tokenStorage.storePendingAuthorization(state, { codeVerifier: "v" }, 600);
  jest.advanceTimersByTime(601e3);
  expect(tokenStorage.consumePendingAuthorization(state)).toBeNull();
});

test("getStats and cleanupExpiredTokens count by the test's clock", () => {
  const before = tokenStorage.getStats().totalTokens;
  tokenStorage.storeAccessToken(unique("token"), null, "sk-or-key", "user", "client", [], Date.now() + 1000);
  expect(tokenStorage.getStats().totalTokens).toBe(before + 1);
  jest.advanceTimersByTime(1000);
  expect(tokenStorage.getStats().totalTokens).toBe(before);
  expect(tokenStorage.cleanupExpiredTokens()).toBeGreaterThanOrEqual(1);
});

test("the package's own timer is none of the test's: runAllTimers ends, getTimerCount is 0", () => {
  tokenStorage.getStats();
  expect(jest.getTimerCount()).toBe(0);
  jest.runAllTimers();
});
