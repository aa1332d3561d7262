"use strict";
// Issue 16: every expiry decision, createdAt, the TTL of pending authorizations, the
// rotation grace period and the cleanup use the clock the JavaScript side sees
// (`Date.now()` at the call), as the old module's Maps did: a test's fake clock drives them.
// The fake clock here is node:test's mock.timers (Date only), set in 2001, so that every
// "live" row below is long expired by the wall clock: a store that asked the system clock
// would fail each test.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { KINDS, storeOptions, storesPerTest } = require("./helpers/setup");
const { s256 } = require("./reliability/helpers/common");

const ctx = storesPerTest();
const T0 = Date.UTC(2001, 0, 1);
const HOUR = 3600e3;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fakes Date (only Date: timers stay real) at T0 for the current test. */
function fakeClock(t) {
  t.mock.timers.enable({ apis: ["Date"], now: T0 });
  return t.mock.timers;
}

const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

for (const kind of KINDS) {
  const open = (name, extra = {}) => ctx.open({ ...storeOptions(kind, path.join(ctx.dir, `${name}.db`)), cleanupInterval: 0, ...extra });

  describe(`${kind} store: the caller's clock`, () => {
    it("access tokens expire, and createdAt is stamped, by Date.now()", (t) => {
      const clock = fakeClock(t);
      const s = open("tokens");
      s.storeAccessToken("at", "rt", "sk-key", "u", "c", ["mcp"], Date.now() + HOUR);
      const got = s.getAccessToken("at");
      assert.equal(got.createdAt.getTime(), T0);
      assert.equal(got.expiresAt.getTime(), T0 + HOUR);
      assert.deepEqual(s.getStats().totalTokens, 1);
      clock.tick(HOUR - 1);
      assert.notEqual(s.getAccessToken("at"), null, "live one millisecond before expiresAt");
      assert.equal(s.getRefreshToken("rt").createdAt.getTime(), T0);
      clock.tick(1);
      assert.equal(s.getStats().totalTokens, 0, "getStats counts by the same clock");
      assert.equal(s.getRefreshToken("rt"), null);
      assert.equal(s.getAccessToken("at"), null);
    });

    it("a clock set back makes an expired-by-the-wall-clock token live (jest.setSystemTime to the past)", (t) => {
      const clock = fakeClock(t);
      const s = open("back");
      clock.setTime(T0 + 2 * HOUR);
      s.storeAccessToken("at", null, "sk-key", "u", "c", [], T0 + 3 * HOUR);
      clock.setTime(T0 + 4 * HOUR);
      assert.equal(s.getStats().totalTokens, 0);
      clock.setTime(T0 + 2 * HOUR);
      assert.equal(s.getStats().totalTokens, 1, "not removed by the look-up: nothing read it");
    });

    it("authorization codes live expiresIn seconds of the caller's clock; createdAt and expiresAt are its readings", (t) => {
      const clock = fakeClock(t);
      const s = open("codes");
      s.storeAuthorizationCode("c1", "u", "sk-key", "c", "https://app/cb", s256(VERIFIER), "S256", ["mcp"], 600);
      s.storeAuthorizationCode("c2", "u", "sk-key", "c", "https://app/cb", null, null, [], 600);
      clock.tick(599_999);
      const got = s.consumeAuthorizationCode("c1", VERIFIER);
      assert.equal(got.createdAt, T0);
      assert.equal(got.expiresAt, T0 + 600_000);
      clock.tick(1);
      assert.equal(s.consumeAuthorizationCode("c2", null), null, "expired at exactly expiresIn seconds");
    });

    it("pending authorizations live ttlSeconds of the caller's clock", (t) => {
      const clock = fakeClock(t);
      const s = open("pending");
      s.storePendingAuthorization("state-1", { verifier: "v1" }, 60);
      s.storePendingAuthorization("state-2", { verifier: "v2" }, 60);
      clock.tick(59_999);
      assert.deepEqual(s.consumePendingAuthorization("state-1"), { verifier: "v1" });
      clock.tick(1);
      assert.equal(s.consumePendingAuthorization("state-2"), null);
    });

    it("the rotation grace period is measured on the caller's clock", (t) => {
      const clock = fakeClock(t);
      const s = open("rotation", { refreshGracePeriod: 10 });
      s.storeAccessToken("at1", "rt1", "sk-key", "u", "c", ["mcp"], T0 + HOUR);
      assert.equal(s.rotateRefreshToken("rt1", "at2", "rt2", T0 + HOUR).refreshToken, "rt2");
      clock.tick(9_000);
      assert.equal(s.rotateRefreshToken("rt1", "at3", "rt3", T0 + HOUR), null, "a retry within the grace period");
      assert.notEqual(s.getAccessToken("at2"), null, "a retry revokes nothing");
      clock.tick(2_000);
      assert.equal(s.rotateRefreshToken("rt1", "at4", "rt4", T0 + HOUR), null, "a replay after it");
      assert.equal(s.getAccessToken("at2"), null, "a replay after the grace period revokes the grant");
    });

    it("cleanupExpiredTokens removes what the caller's clock takes for expired, and nothing else", (t) => {
      const clock = fakeClock(t);
      const s = open("cleanup");
      s.storeAccessToken("at", "rt", "sk-key", "u", "c", [], T0 + HOUR);
      s.storeAuthorizationCode("code", "u", "sk-key", "c", "https://app/cb", null, null, [], 1800);
      s.storePendingAuthorization("state", { v: 1 }, 1800);
      assert.equal(s.cleanupExpiredTokens(), 0, "every row is live at T0, though long expired by the wall clock");
      clock.tick(HOUR);
      assert.equal(s.cleanupExpiredTokens(), 3, "the token, the code and the pending authorization");
      assert.equal(s.consumePendingAuthorization("state"), null);
    });

    it("the Promise API reads the caller's clock when it is called", async (t) => {
      const clock = fakeClock(t);
      const s = open("promises");
      const stored = s.promises.storeAccessToken("at", null, "sk-key", "u", "c", [], T0 + HOUR);
      clock.tick(HOUR); // before the store has run: the call's time is the one it was made at
      await stored;
      assert.equal(s.getStats().totalTokens, 0, "expired an hour later");
      clock.setTime(T0);
      assert.equal((await s.promises.getAccessToken("at")).createdAt.getTime(), T0);
      await s.promises.storeAuthorizationCode("code", "u", "sk-key", "c", "https://app/cb", null, null, [], 60);
      assert.equal(await s.promises.cleanupExpiredTokens(), 0);
      clock.tick(60_000);
      assert.equal(await s.promises.consumeAuthorizationCode("code", null), null);
      assert.deepEqual(await s.promises.getStats(), { totalTokens: 1, uniqueUsers: 1, storage: s.storage }, "the token lives to T0 + 1 h");
    });

    it("the automatic cleanup never removes a row the caller's clock still takes for live", async (t) => {
      const clock = fakeClock(t);
      const s = open("auto", { cleanupInterval: 1 });
      s.storeAccessToken("live", "live-rt", "sk-key", "u", "c", [], T0 + HOUR);
      s.storeAccessToken("dead", null, "sk-key", "u", "c", [], T0 + 1000);
      s.storeAuthorizationCode("code", "u", "sk-key", "c", "https://app/cb", null, null, [], 3600);
      s.storePendingAuthorization("state", { v: 1 }, 3600);
      clock.tick(2000);
      await sleep(1500); // a real second: one pass ran, at the faked time
      assert.equal(s.getStats().totalTokens, 1);
      assert.equal(s.getAccessToken("live").refreshToken, "live-rt");
      assert.equal(s.cleanupExpiredTokens(), 0, "the pass took the expired token");
      assert.deepEqual(s.consumePendingAuthorization("state"), { v: 1 });
      assert.equal(s.consumeAuthorizationCode("code", null).createdAt, T0);
    });

    it("a Date.now() that gives no time is a TypeError, and nothing is stored", (t) => {
      const s = open("broken");
      s.storeAccessToken("kept", null, "sk-key", "u", "c", [], null);
      for (const bad of [NaN, Infinity, "1700000000000", undefined]) {
        t.mock.method(Date, "now", () => bad);
        assert.throws(() => s.storeAccessToken("at", null, "sk-key", "u", "c", [], null), (err) => err instanceof TypeError && /Date\.now\(\)/.test(err.message));
        assert.throws(() => s.getAccessToken("kept"), TypeError);
        t.mock.restoreAll();
      }
      assert.equal(s.getAccessToken("at"), null);
      assert.notEqual(s.getAccessToken("kept"), null);
    });

    it("a Date.now() that gives no time rejects the Promise API's call with a TypeError", async (t) => {
      const s = open("broken-async");
      t.mock.method(Date, "now", () => NaN);
      await assert.rejects(s.promises.storeAccessToken("at", null, "sk-key", "u", "c", [], null), TypeError);
      t.mock.restoreAll();
      assert.equal(await s.promises.getAccessToken("at"), null);
    });
  });
}

describe("the native store's own check of the clock it is given", () => {
  it("a now that is no time reading is refused with ERR_TOKEN_STORAGE_INVALID_ARGUMENT, before anything runs", async () => {
    const native = require("../lib/native");
    const { config } = require("../lib/config").storeConfig({});
    const s = new native.NativeStore({ ...config, shared: false });
    for (const bad of [NaN, Infinity, -Infinity, 9e15]) {
      assert.throws(() => s.getStats(bad), (err) => err.code === "ERR_TOKEN_STORAGE_INVALID_ARGUMENT" && /epoch milliseconds/.test(err.message));
      assert.throws(() => s.storePendingAuthorization("state", "{}", 1000, bad), { code: "ERR_TOKEN_STORAGE_INVALID_ARGUMENT" });
      assert.throws(() => s.getAccessTokenAsync("t", bad), { code: "ERR_TOKEN_STORAGE_INVALID_ARGUMENT" });
    }
    assert.equal(s.consumePendingAuthorization("state", T0), null);
    assert.equal(s.getStats(T0).totalTokens, 0);
  });
});
