"use strict";
// getStats stays exact through storeAccessToken's every case (issue 18: PostgreSQL's
// storeAccessToken of one token keeps the counters itself since migration 6, no longer
// through the statement-level triggers): a new token, a token stored again with another
// user or expiry (which may have been its user's latest), a never-expiring one, one already
// expired, a refresh string moved from the token that had it, no user; and the writes that
// remove tokens in between. A seeded sequence over a few strings, compared call by call
// with the reference model, on every store; then PostgreSQL writers in several processes
// storing the same strings at once, the counts compared with the rows left.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { KINDS, TokenStorage, storeOptions, tempDir, removeDir, runNodeAsync } = require("./helpers/setup");
const { Model } = require("./reliability/helpers/model");
const { startCluster, findBinaries } = require("../scripts/postgres");

// A small deterministic generator (mulberry32), so that a failure replays.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.COUNTS_SEED ?? 0x18c0de);
const STEPS = 300;
const MINUTE = 60_000;
// Expiries in different buckets of every level (4 s, 65 s, 17 min), never, and past.
const EXPIRIES = [null, 90_000, 20 * MINUTE, 61 * MINUTE, 3 * 24 * 60 * MINUTE, 4 * 24 * 60 * MINUTE + 7, -MINUTE];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

/** One write of the sequence: [name, args] (the expiry as an offset from now). */
function step(rand) {
  const token = `t${Math.floor(rand() * 10)}`;
  const refresh = rand() < 0.75 ? `r${Math.floor(rand() * 7)}` : null;
  const user = rand() < 0.85 ? `u${Math.floor(rand() * 4)}` : null;
  const r = rand();
  if (r < 0.72) return ["storeAccessToken", token, refresh, user, pick(rand, EXPIRIES)];
  if (r < 0.8) return ["deleteToken", token];
  if (r < 0.88) return ["revokeRefreshToken", `r${Math.floor(rand() * 7)}`];
  if (r < 0.92) return ["deleteUserTokens", `u${Math.floor(rand() * 4)}`];
  if (r < 0.97) return ["getAccessToken", token];
  return ["cleanupExpiredTokens"];
}

function run(store, model, [name, ...args], now) {
  const call = { now, t0: now, t1: now };
  switch (name) {
    case "storeAccessToken": {
      const [token, refresh, user, offset] = args;
      const expiresAt = offset === null ? null : new Date(now + offset);
      store.storeAccessToken(token, refresh, "sk", user, "client", ["mcp"], expiresAt);
      model.storeAccessToken(call, token, refresh, "sk", user, "client", ["mcp"], offset === null ? null : now + offset);
      return;
    }
    case "cleanupExpiredTokens":
      store.cleanupExpiredTokens();
      model.cleanupExpiredTokens(call);
      return;
    default:
      store[name](...args);
      model[name](call, ...args);
  }
}

describe("getStats after each storeAccessToken case, call by call against the model", () => {
  for (const kind of KINDS) {
    it(`${kind}: ${STEPS} seeded writes over 10 tokens, 7 refresh strings and 4 users (seed ${SEED})`, () => {
      const dir = tempDir();
      const store = new TokenStorage(storeOptions(kind, path.join(dir, "counts.db")));
      try {
        const model = new Model();
        const rand = random(SEED);
        const done = [];
        for (let i = 0; i < STEPS; i++) {
          const s = step(rand);
          done.push(JSON.stringify(s));
          const now = Date.now();
          run(store, model, s, now);
          const { totalTokens, uniqueUsers } = store.getStats();
          const want = model.getStats({ now: Date.now() }).value;
          assert.deepEqual({ totalTokens, uniqueUsers }, want, `after step ${i}:\n${done.slice(-6).join("\n")}`);
        }
      } finally {
        store.close();
        removeDir(dir);
      }
    });
  }
});

// Each process stores the same few strings (tokens, refresh strings, users) over and over,
// one storeAccessToken at a time, with expiries that move users' untils back and forth.
const WRITER = `
  const { TokenStorage } = require(PKG);
  const { URL, SCHEMA, ID } = process.env;
  const s = new TokenStorage({ storage: "postgres", url: URL, schema: SCHEMA });
  for (let i = 0; i < 150; i++) {
    const n = (i * 7 + Number(ID) * 3) % 11;
    const exp = n % 5 === 0 ? null : new Date(Date.now() + 60e3 * (1 + ((i + Number(ID)) % 40)));
    s.storeAccessToken("ct" + (n % 6), n % 4 === 0 ? null : "cr" + (n % 5), "sk", n % 7 === 0 ? null : "cu" + (n % 3), "client", ["mcp"], exp);
    if (i % 25 === 24) s.deleteToken("ct" + ((n + 1) % 6));
  }
  s.close();`;

/** The live tokens and users, read back token by token. */
function rows(store) {
  let tokens = 0;
  const users = new Set();
  for (let i = 0; i < 6; i++) {
    const t = store.getAccessToken(`ct${i}`);
    if (t) {
      tokens++;
      if (t.userId) users.add(t.userId);
    }
  }
  return { totalTokens: tokens, uniqueUsers: users.size };
}

const pgSkip = process.env.CI || findBinaries() ? false : "no PostgreSQL binaries to start a server of this test's own";

describe("PostgreSQL: concurrent storeAccessToken of the same strings", { skip: pgSkip }, () => {
  it("4 processes × 150 stores: no call fails, getStats equals the rows left, and the server logs no ERROR", async () => {
    const cluster = startCluster();
    try {
      const schema = "nts_counts";
      const first = new TokenStorage({ storage: "postgres", url: cluster.url, schema });
      first.open();
      first.close();
      const runs = await Promise.all(
        [1, 2, 3, 4].map((id) => runNodeAsync(WRITER, { env: { URL: cluster.url, SCHEMA: schema, ID: String(id), TOKEN_STORAGE_LOG: "silent" } })),
      );
      for (const r of runs) assert.equal(r.status, 0, r.stderr);
      const store = new TokenStorage({ storage: "postgres", url: cluster.url, schema });
      try {
        const want = rows(store);
        const { totalTokens, uniqueUsers } = store.getStats();
        assert.deepEqual({ totalTokens, uniqueUsers }, want);
      } finally {
        store.close();
      }
      const lines = fs.readFileSync(path.join(cluster.dir, "server.log"), "utf8").split("\n");
      const told = lines.flatMap((l, i) => (/\b(ERROR|FATAL|PANIC):/.test(l) ? lines.slice(i, i + 12) : []));
      assert.deepEqual(told, [], `the server logged:\n${told.join("\n")}`);
    } finally {
      cluster.stop();
    }
  });
});
