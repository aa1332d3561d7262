// Written for the Map module, which read Date.now(): expiry tested with Vitest's fake timers.
// The scratch project runs this file on the memory store and on a SQLite file.
import { test, expect, vi, beforeEach, afterEach } from "vitest";
import * as tokenStorage from "native-token-storage";

const START = new Date("2030-01-01T00:00:00Z");
let n = 0;
const unique = (what) => `${what}-${++n}-${Math.random().toString(36).slice(2)}`;

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(START);
});
afterEach(() => {
  vi.useRealTimers();
});

test("an access token expires at its expiresAt, by the test's clock", () => {
  const token = unique("token");
  tokenStorage.storeAccessToken(token, null, "sk-or-key", "user", "client", ["mcp"], new Date(Date.now() + 3600e3));
  expect(tokenStorage.getAccessToken(token).createdAt).toEqual(START);
  vi.setSystemTime(START.getTime() + 2 * 3600e3);
  expect(tokenStorage.getAccessToken(token)).toBeNull();
});

test("an authorization code lives expiresIn seconds", () => {
  const kept = unique("code");
  const late = unique("code");
  tokenStorage.storeAuthorizationCode(kept, "user", "sk-or-key", "client", "https://app/cb", null, null, ["mcp"], 600);
  tokenStorage.storeAuthorizationCode(late, "user", "sk-or-key", "client", "https://app/cb", null, null, ["mcp"], 600);
  vi.advanceTimersByTime(599e3);
  expect(tokenStorage.consumeAuthorizationCode(kept)).toMatchObject({ createdAt: START.getTime() });
  vi.advanceTimersByTime(2e3);
  expect(tokenStorage.consumeAuthorizationCode(late)).toBeNull();
});

test("a pending login lives its ttlSeconds", () => {
  const state = unique("state");
  tokenStorage.storePendingAuthorization(state, { codeVerifier: "v" }, 600);
  vi.advanceTimersByTime(601e3);
  expect(tokenStorage.consumePendingAuthorization(state)).toBeNull();
});

test("the Promise API reads the same clock", async () => {
  const { getAccessToken } = await import("native-token-storage/promises");
  const token = unique("token");
  tokenStorage.storeAccessToken(token, null, "sk-or-key", "user", "client", [], Date.now() + 1000);
  vi.advanceTimersByTime(1000);
  expect(await getAccessToken(token)).toBeNull();
});

test("the package's own timer is none of the test's", () => {
  tokenStorage.getStats();
  expect(vi.getTimerCount()).toBe(0);
  vi.runAllTimers();
});
