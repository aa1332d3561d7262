"use strict";
// The other instance of the cache tests (postgres-cache.test.js, redis-cache.test.js): a
// second process (./cache-peer.js) that reads a token as fast as it can while the test changes it.
const { it } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { spawn } = require("node:child_process");
const readline = require("node:readline");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const wall = () => performance.timeOrigin + performance.now();
const BOUND_MS = 50;
const HOUR = 3600e3;

/** The other instance: a process of its own (./cache-peer.js), given `args`. */
async function peer(...args) {
  const child = spawn(process.execPath, [path.join(__dirname, "cache-peer.js"), ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const queue = [];
  const waiting = [];
  lines.on("line", (l) => {
    const v = JSON.parse(l);
    if (waiting.length) waiting.shift()(v);
    else queue.push(v);
  });
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve)));
  assert.deepEqual(await next(), { ready: true });
  const send = (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`);
  return {
    pid: child.pid,
    async run(code) {
      send({ op: "run", code });
      const r = await next();
      if (r.error) throw new Error(r.error);
      return r.value;
    },
    /** B reads `token` in a loop while `change` runs here; what B saw, and when. */
    async watch(token, change, ms = 1500, { promises = false } = {}) {
      send({ op: "watch", token, ms, promises });
      const armed = await next();
      assert.deepEqual(armed, { armed: true });
      await sleep(30); // B's loop in its steady state: answered from its cache
      const t0 = wall();
      await change();
      const t1 = wall();
      const seen = await next();
      if (seen.error) throw new Error(seen.error);
      // The change committed between t0 and t1: `after` is from t1 (the write's answer),
      // `took` how long the write itself took.
      const after = seen.changedAt === null ? null : seen.changedAt - t1;
      if (process.env.CACHE_TEST_LOG) console.error(`took ${(t1 - t0).toFixed(2)} ms, seen ${after?.toFixed(2)} ms after`);
      return { ...seen, after, took: t1 - t0 };
    },
    async close() {
      send({ op: "close" });
      await next();
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

async function until(what, ms = 3000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}

/**
 * Tokens that A (`store()`) stores, each new: `fresh(user)` answers its `{ at, rt }`;
 * `exp()` is an expiry an hour ahead.
 */
function tokenMaker(store) {
  let n = 0;
  const exp = () => new Date(Date.now() + HOUR);
  const fresh = (user = "user_1") => {
    n += 1;
    const t = { at: `at_${n}_${"x".repeat(400)}`, rt: `rt_${n}_${"y".repeat(40)}` };
    store().storeAccessToken(t.at, t.rt, "sk-key", user, "client_1", ["mcp"], exp());
    return t;
  };
  return { exp, fresh };
}

/**
 * The tests both cache suites share: the changes by A that B must honour within BOUND_MS,
 * and an expired token never served from the cache; added to the suite that calls it:
 * `env()` gives its `{ a, b, fresh, exp }` (A's store, B's `peer`, a fresh token stored by A
 * for a user, a new expiry); `more` adds `[name, change, expected]` rows of its own.
 */
function sharedCacheTests(env, more = []) {
  const changes = [
    ["deleteToken", (a, t) => a.deleteToken(t.at), null],
    ["revokeRefreshToken", (a, t) => a.revokeRefreshToken(t.rt), null],
    ["rotateRefreshToken", (a, t, exp) => assert.ok(a.rotateRefreshToken(t.rt, `${t.at}_next`, `${t.rt}_next`, exp())), null],
    ["deleteUserTokens", (a, t) => a.deleteUserTokens(t.user), null],
    ["storeAccessToken of the same string (replaced)", (a, t, exp) => a.storeAccessToken(t.at, null, "sk-other", "user_2", "client_2", ["x"], exp()), "sk-other"],
    ["storeAccessToken giving its refresh string to another token", (a, t, exp) => a.storeAccessToken(`${t.at}_b`, t.rt, "sk-key", "user_1", "client_1", [], exp()), "no refresh"],
    ...more,
  ];
  for (const [name, change, expected] of changes) {
    it(`${name} by A: B honours it within ${BOUND_MS} ms`, async () => {
      const { a, b, fresh, exp } = env();
      const t = { ...fresh(`user_${name.length}`), user: `user_${name.length}` };
      const seen = await b.watch(t.at, async () => change(a, t, exp));
      assert.ok(seen.changedAt !== null, `B still served the token after the change (${seen.reads} reads)`);
      assert.ok(seen.after < BOUND_MS, `seen ${seen.after.toFixed(2)} ms after the write answered (which took ${seen.took.toFixed(2)} ms)`);
      if (expected === null) assert.equal(seen.last, null);
      else if (expected === "no refresh") assert.equal(seen.last.refreshToken, null);
      else assert.equal(seen.last.apiKey, expected);
    });
  }

  it(`a cleanup by A, whose clock is two hours ahead: B honours it within ${BOUND_MS} ms`, async (ctx) => {
    const { a, b, fresh } = env();
    const t = fresh();
    const seen = await b.watch(t.at, async () => {
      ctx.mock.timers.enable({ apis: ["Date"], now: Date.now() + 2 * HOUR });
      try {
        assert.ok(a.cleanupExpiredTokens() >= 1);
      } finally {
        ctx.mock.timers.reset();
      }
    });
    assert.equal(seen.last, null);
    assert.ok(seen.after < BOUND_MS, `seen after ${seen.after} ms`);
  });

  it(`a family revoked (a rotated-away refresh token replayed after the grace period) by A: B honours it within ${BOUND_MS} ms`, async () => {
    const { a, b, fresh, exp } = env();
    const t = fresh();
    const next = a.rotateRefreshToken(t.rt, `${t.at}_2`, `${t.rt}_2`, exp());
    assert.ok(next);
    await sleep(1100);
    const seen = await b.watch(next.accessToken, async () => assert.equal(a.rotateRefreshToken(t.rt, `${t.at}_3`, `${t.rt}_3`, exp()), null));
    assert.equal(seen.last, null);
    assert.ok(seen.after < BOUND_MS, `seen after ${seen.after} ms`);
  });

  it("an expired token is not served from the cache", async () => {
    const { a, b } = env();
    const at = `at_exp_${process.pid}_${Date.now()}`;
    a.storeAccessToken(at, null, "k", "u", "c", [], new Date(Date.now() + 400));
    const seen = await b.watch(at, async () => {}, 2000);
    assert.equal(seen.last, null);
    assert.ok(seen.changedAt !== null);
  });
}

module.exports = { peer, sleep, wall, until, sharedCacheTests, tokenMaker, BOUND_MS, HOUR };
