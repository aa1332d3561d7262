"use strict";
// PostgreSQL: the Promise API's getAccessToken is run from the JS thread itself (src/napi/
// driven.rs: the I/O runtime turned on this thread, woken by libuv), not on libuv's pool.
// What a server relies on stays: every call in flight gets its own answer, also with more
// calls than the pool has connections and with synchronous calls between; the query
// timeout still rejects; the event loop runs while calls wait; a process ends on its own
// once its calls have settled, and not before; worker threads have their own calls, and
// one terminated with calls in flight leaves the others working.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { PG_URL, TokenStorage, freshSchema, runNodeAsync } = require("./helpers/setup");

const HOUR = 3600_000;

function tokens(prefix, n) {
  return Array.from({ length: n }, (_, i) => ({
    accessToken: `${prefix}-at-${i}-${"x".repeat(200)}`,
    refreshToken: `${prefix}-rt-${i}`,
    apiKey: `sk-or-${prefix}-${i}`,
    userId: `user-${i % 7}`,
    clientId: "client",
    scopes: ["mcp"],
    expiresAt: Date.now() + HOUR,
  }));
}

describe("PostgreSQL: the Promise API's getAccessToken, run from the JS thread", { skip: PG_URL ? false : "no TOKEN_TEST_DATABASE_URL" }, () => {
  let store;
  let rows;
  const schema = freshSchema();

  before(() => {
    store = new TokenStorage({ storage: "postgres", url: PG_URL, schema, poolSize: 3, cleanupInterval: 0 });
    rows = tokens("p", 300);
    store.storeAccessTokens(rows);
  });

  after(() => {
    store.close();
    execFileSync("psql", [PG_URL, "-Atc", `DROP SCHEMA IF EXISTS "${schema}" CASCADE`]);
  });

  it("answers 300 calls in flight at once (3 connections), each with its own token, and null for unknown ones", async () => {
    // A fresh store on the same schema: nothing in its cache, every read goes to the server.
    const cold = new TokenStorage({ storage: "postgres", url: PG_URL, schema, poolSize: 3, cleanupInterval: 0 });
    try {
      await cold.promises.getStats();
      const asked = [...rows.map((r) => r.accessToken), ...Array.from({ length: 30 }, (_, i) => `unknown-${i}`)];
      const got = await Promise.all(asked.map((t) => cold.promises.getAccessToken(t)));
      rows.forEach((r, i) => {
        assert.ok(got[i], `no answer for token ${i}`);
        assert.equal(got[i].apiKey, r.apiKey);
        assert.equal(got[i].userId, r.userId);
        assert.deepEqual(got[i].scopes, ["mcp"]);
        assert.ok(got[i].expiresAt instanceof Date);
      });
      for (const g of got.slice(rows.length)) assert.equal(g, null);
    } finally {
      cold.close();
    }
  });

  it("settles calls in flight while synchronous calls run between them on the same store", async () => {
    const cold = new TokenStorage({ storage: "postgres", url: PG_URL, schema, cleanupInterval: 0 });
    try {
      await cold.promises.getStats();
      const pending = rows.slice(0, 20).map((r) => cold.promises.getAccessToken(r.accessToken));
      // Synchronous calls while those wait: they turn the same I/O runtime on this thread.
      const extra = tokens("sync", 5);
      for (const t of extra) cold.storeAccessToken(t.accessToken, t.refreshToken, t.apiKey, t.userId, t.clientId, t.scopes, t.expiresAt);
      assert.equal(cold.getAccessToken(extra[2].accessToken).apiKey, extra[2].apiKey);
      const got = await Promise.all(pending);
      got.forEach((g, i) => assert.equal(g.apiKey, rows[i].apiKey));
      assert.equal((await cold.promises.getAccessToken(extra[4].accessToken)).apiKey, extra[4].apiKey);
    } finally {
      cold.close();
    }
  });

  it("keeps the event loop running while a call waits: a timer fires before a held-up read answers", async () => {
    const cold = new TokenStorage({ storage: "postgres", url: PG_URL, schema, cleanupInterval: 0 });
    await cold.promises.getStats();
    const locker = await lockTable(schema);
    try {
      const order = [];
      const read = cold.promises.getAccessToken(rows[5].accessToken).then((t) => order.push(`read ${t?.apiKey}`));
      await new Promise((r) => setTimeout(r, 50));
      order.push("timer");
      await locker.release();
      await read;
      assert.deepEqual(order, ["timer", `read ${rows[5].apiKey}`]);
    } finally {
      await locker.release();
      cold.close();
    }
  });

  it("rejects with ERR_TOKEN_STORAGE_UNAVAILABLE past the query timeout, and the next call answers", async () => {
    const cold = new TokenStorage({ storage: "postgres", url: PG_URL, schema, queryTimeout: 300, cleanupInterval: 0 });
    await cold.promises.getStats();
    const locker = await lockTable(schema);
    try {
      const t0 = Date.now();
      await assert.rejects(cold.promises.getAccessToken(rows[7].accessToken), (err) => {
        assert.equal(err.code, "ERR_TOKEN_STORAGE_UNAVAILABLE");
        assert.match(err.message, /query timeout \(300 ms\)/);
        assert.ok(!err.message.includes(rows[7].accessToken), "the token reached the message");
        return true;
      });
      const took = Date.now() - t0;
      assert.ok(took >= 290 && took < 3000, `rejected after ${took} ms`);
      await locker.release();
      assert.equal((await cold.promises.getAccessToken(rows[7].accessToken)).apiKey, rows[7].apiKey);
    } finally {
      await locker.release();
      cold.close();
    }
  });

  it("closing the store with calls in flight settles every one of them (an answer or a coded error), and it opens again", async () => {
    const cold = new TokenStorage({ storage: "postgres", url: PG_URL, schema, poolSize: 2, cleanupInterval: 0 });
    await cold.promises.getStats();
    const pending = rows.slice(40, 80).map((r) => cold.promises.getAccessToken(r.accessToken));
    cold.close();
    const settled = await Promise.allSettled(pending);
    settled.forEach((s, i) => {
      if (s.status === "fulfilled") assert.equal(s.value?.apiKey, rows[40 + i].apiKey);
      else assert.match(s.reason.code, /^ERR_TOKEN_STORAGE_/, String(s.reason));
    });
    assert.equal((await cold.promises.getAccessToken(rows[81].accessToken)).apiKey, rows[81].apiKey);
    cold.close();
  });

  // The timer that turns the runtime for tokio's timers also ends any stall a lost wake-up
  // would cause; set to a minute here, a lost wake-up shows as a call that takes a minute.
  it("no call waits for the timer: Promise reads between synchronous calls, pool calls, and after the server ended the store's connections", async () => {
    const r = await runNodeAsync(
      `const { execFileSync } = require("node:child_process");
       const { TokenStorage } = require(PKG);
       // Its own application_name: the connections ended below are this store's alone.
       const name = "nts_promises_" + process.pid;
       const url = process.env.PG + (process.env.PG.includes("?") ? "&" : "?") + "application_name=" + name;
       const opts = { storage: "postgres", url, schema: process.env.SCHEMA, cleanupInterval: 0, poolSize: 2 };
       const s = new TokenStorage(opts);
       const tokens = process.env.TOKENS.split(",");
       const slowest = {};
       async function timed(name, n, one) {
         let worst = 0;
         for (let i = 0; i < n; i++) {
           const t0 = process.hrtime.bigint();
           await one(i);
           worst = Math.max(worst, Number(process.hrtime.bigint() - t0) / 1e6);
         }
         slowest[name] = Math.round(worst);
       }
       (async () => {
         await s.promises.getStats();
         // Misses (never cached): each goes to the server.
         await timed("promise read, then a synchronous read", 1500, async (i) => {
           const p = s.promises.getAccessToken("miss-" + i);
           s.getAccessToken("sync-miss-" + i);
           if ((await p) !== null) throw new Error("a miss answered");
         });
         await timed("promise read beside a promise store", 800, async (i) => {
           const [got] = await Promise.all([s.promises.getAccessToken("pool-miss-" + i), s.promises.getStats()]);
           if (got !== null) throw new Error("a miss answered");
         });
         // The store's connections ended by the server (pg_terminate_backend returns before
         // the backends are gone: waited for, so that no read meets one still ending).
         const mine = "application_name = '" + name + "'";
         execFileSync("psql", [process.env.PG, "-Atc", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE " + mine]);
         for (let i = 0; i < 500 && execFileSync("psql", [process.env.PG, "-Atc", "SELECT count(*) FROM pg_stat_activity WHERE " + mine]).toString().trim() !== "0"; i++) {
           await new Promise((r) => setTimeout(r, 10));
         }
         await timed("promise reads after the connections were ended", 800, async (i) => {
           const got = await s.promises.getAccessToken(tokens[i % tokens.length]);
           if (!got) throw new Error("a stored token missed");
           await s.promises.getAccessToken("after-miss-" + i);
         });
         s.close();
         console.log(JSON.stringify(slowest));
       })();`,
      { env: { PG: PG_URL, SCHEMA: schema, TOKENS: rows.slice(100, 110).map((x) => x.accessToken).join(","), TOKEN_STORAGE_LOG: "warn", TOKEN_STORAGE_TURN_TIMER_MS: "60000" } },
    );
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    const slowest = JSON.parse(r.stdout);
    // A hang detector, far above any call's time here and far below the minute a lost
    // wake-up would take.
    for (const [what, ms] of Object.entries(slowest)) assert.ok(ms < 20_000, `${what}: one call took ${ms} ms`);
  });

  // Jest's --detectOpenHandles lists the async resources made during a test that are still
  // alive at its end, unless their hasRef() says they keep nothing alive.
  it("its one async resource per thread says hasRef() only while calls are in flight; a SQLite store's Promise calls make none", async () => {
    const r = await runNodeAsync(
      `const asyncHooks = require("node:async_hooks");
       const os = require("node:os");
       const path = require("node:path");
       const { TokenStorage } = require(PKG);
       const made = [];
       asyncHooks.createHook({ init(id, type, trigger, resource) { if (type === "native-token-storage") made.push(resource); } }).enable();
       (async () => {
         const db = path.join(os.tmpdir(), "nts-hasref-" + process.pid + ".db");
         const file = new TokenStorage({ storage: "sqlite", path: db });
         file.getStats();
         await file.promises.getAccessToken("none");
         const afterSqlite = made.length;
         file.close();
         for (const f of [db, db + "-wal", db + "-shm"]) require("node:fs").rmSync(f, { force: true });
         const s = new TokenStorage({ storage: "postgres", url: process.env.PG, schema: process.env.SCHEMA, cleanupInterval: 0 });
         s.getStats();
         const p = s.promises.getAccessToken("none");
         const inFlight = made.map((r) => r.hasRef());
         await p;
         const idle = made.map((r) => r.hasRef());
         await s.promises.getAccessToken("none-again");
         s.close();
         console.log(JSON.stringify({ afterSqlite, made: made.length, inFlight, idle }));
       })();`,
      { env: { PG: PG_URL, SCHEMA: schema, TOKEN_STORAGE_LOG: "warn" } },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { afterSqlite: 0, made: 1, inFlight: [true], idle: [false] });
  });

  it("a script whose awaited calls have settled exits on its own; a call in flight keeps it alive until it settles", async () => {
    const r = await runNodeAsync(
      `const { TokenStorage } = require(PKG);
       const s = new TokenStorage({ storage: "postgres", url: process.env.PG, schema: process.env.SCHEMA, cleanupInterval: 0 });
       (async () => {
         await s.promises.getStats();
         const got = await Promise.all(process.env.TOKENS.split(",").map((t) => s.promises.getAccessToken(t)));
         // Not awaited: the process must stay until it settles and print it.
         s.promises.getAccessToken(process.env.LAST).then((t) => console.log("last " + t.apiKey));
         console.log("got " + got.map((t) => t && t.apiKey).join(","));
       })();`,
      { env: { PG: PG_URL, SCHEMA: schema, TOKENS: rows.slice(0, 3).map((r) => r.accessToken).join(","), LAST: rows[9].accessToken, TOKEN_STORAGE_LOG: "warn" } },
    );
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [`got ${rows.slice(0, 3).map((x) => x.apiKey).join(",")}`, `last ${rows[9].apiKey}`]);
  });

  // libuv's pool has one thread here, held by a read of a FIFO nobody writes yet: a call
  // that went to the pool would wait for it. A cleanup batch (pool work) shows it is held.
  it("every call a request makes runs from the JS thread too: with libuv's one pool thread held, stores, codes, refresh reads, rotations, revocations, deletions, getStats and pending logins settle", async () => {
    const fifo = path.join(os.tmpdir(), `nts-pool-${process.pid}-${Date.now()}`);
    execFileSync("mkfifo", [fifo]);
    try {
      const r = await runNodeAsync(
        `const fs = require("node:fs");
         const { TokenStorage } = require(PKG);
         const s = new TokenStorage({ storage: "postgres", url: process.env.PG, schema: process.env.SCHEMA, cleanupInterval: 0 });
         const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
         const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
         const p = s.promises;
         const until = new Date(Date.now() + 3600e3);
         (async () => {
           await p.getStats(); // a store's first call goes to the pool
           let held = true;
           fs.open(process.env.FIFO, "r", (err, fd) => { held = false; if (!err) fs.closeSync(fd); });
           await new Promise((r) => setTimeout(r, 100));
           // Let go after 10 s whatever happens: a call waiting for the pool then settles late.
           let released = false;
           const release = () => { if (!released) { released = true; fs.closeSync(fs.openSync(process.env.FIFO, "w")); } };
           const guard = setTimeout(release, 10_000);
           let cleanupSettled = false;
           const cleanup = p.cleanupExpiredTokensAsync().then(() => { cleanupSettled = true; });
           const out = [];
           const step = async (name, call) => { const v = await call(); out.push([name, held, v === undefined ? "undefined" : v === null ? v : typeof v === "object" ? Object.keys(v).length : v]); return v; };
           await step("storeAccessToken", () => p.storeAccessToken("pool-at", "pool-rt", "sk-pool", "pool-user", "client", ["mcp"], until));
           await step("getAccessToken", () => p.getAccessToken("pool-at"));
           await step("storeAuthorizationCode", () => p.storeAuthorizationCode("pool-code", "pool-user", "sk-pool", "client", "https://app/cb", CHALLENGE, "S256", ["mcp"]));
           const twice = await Promise.all([p.consumeAuthorizationCode("pool-code", VERIFIER), p.consumeAuthorizationCode("pool-code", VERIFIER)]);
           out.push(["consumeAuthorizationCode x2", held, twice.filter(Boolean).length]);
           await step("storeAuthorizationCode", () => p.storeAuthorizationCode("pool-code2", "pool-user", "sk-pool", "client", "https://app/cb", CHALLENGE, "S256", ["mcp"]));
           await step("consumeAuthorizationCode, wrong verifier", () => p.consumeAuthorizationCode("pool-code2", "wrong"));
           await step("consumeAuthorizationCode, after", () => p.consumeAuthorizationCode("pool-code2", VERIFIER));
           await step("getRefreshToken", () => p.getRefreshToken("pool-rt"));
           const rotated = await step("rotateRefreshToken", () => p.rotateRefreshToken("pool-rt", "pool-at2", "pool-rt2"));
           await step("getAccessToken, rotated away", () => p.getAccessToken("pool-at"));
           await step("revokeRefreshToken", () => p.revokeRefreshToken("pool-rt2"));
           await step("getAccessToken, revoked", () => p.getAccessToken("pool-at2"));
           await step("storeAccessToken", () => p.storeAccessToken("pool-at3", null, "sk-pool", "pool-user", "client", ["mcp"], until));
           await step("deleteToken", () => p.deleteToken("pool-at3"));
           await step("storeAccessToken", () => p.storeAccessToken("pool-at4", null, "sk-pool", "pool-user", "client", ["mcp"], until));
           await step("deleteUserTokens", () => p.deleteUserTokens("pool-user"));
           await step("getStats", async () => Number.isInteger((await p.getStats()).totalTokens));
           await step("storePendingAuthorization", () => p.storePendingAuthorization("pool-state", { next: "/x" }));
           await step("consumePendingAuthorization", () => p.consumePendingAuthorization("pool-state"));
           await step("consumePendingAuthorization, again", () => p.consumePendingAuthorization("pool-state"));
           out.push(["cleanup, pool work, settled while held", held, cleanupSettled]);
           clearTimeout(guard);
           release();
           await cleanup;
           out.push(["cleanup after", held, cleanupSettled]);
           s.close();
           console.log(JSON.stringify(out));
         })();`,
        { env: { PG: PG_URL, SCHEMA: schema, FIFO: fifo, UV_THREADPOOL_SIZE: "1", TOKEN_STORAGE_LOG: "warn" } },
      );
      assert.equal(r.signal, null, r.stderr);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      const held = out.slice(0, -1);
      for (const [name, wasHeld] of held) assert.equal(wasHeld, true, `${name} settled only once the pool thread was free`);
      assert.deepEqual(
        out.map(([name, , v]) => [name, v]),
        [
          ["storeAccessToken", "undefined"],
          ["getAccessToken", 7],
          ["storeAuthorizationCode", "undefined"],
          ["consumeAuthorizationCode x2", 1],
          ["storeAuthorizationCode", "undefined"],
          ["consumeAuthorizationCode, wrong verifier", null],
          ["consumeAuthorizationCode, after", null],
          ["getRefreshToken", 5],
          ["rotateRefreshToken", 6],
          ["getAccessToken, rotated away", null],
          ["revokeRefreshToken", "undefined"],
          ["getAccessToken, revoked", null],
          ["storeAccessToken", "undefined"],
          ["deleteToken", "undefined"],
          ["storeAccessToken", "undefined"],
          ["deleteUserTokens", "undefined"],
          ["getStats", true],
          ["storePendingAuthorization", "undefined"],
          ["consumePendingAuthorization", 1],
          ["consumePendingAuthorization, again", null],
          ["cleanup, pool work, settled while held", false],
          ["cleanup after", true],
        ],
      );
      assert.equal(out.at(-1)[1], false);
    } finally {
      fs.rmSync(fifo, { force: true });
    }
  });

  it("worker threads each run their own calls; terminating one with calls in flight leaves the rest working", async () => {
    const r = await runNodeAsync(
      `const { Worker, isMainThread } = require("node:worker_threads");
       const code = \`
         const { parentPort, workerData } = require("node:worker_threads");
         const { TokenStorage } = require(workerData.pkg);
         const s = new TokenStorage({ storage: "postgres", url: workerData.pg, schema: workerData.schema, cleanupInterval: 0 });
         (async () => {
           await s.promises.getStats();
           if (workerData.forever) {
             parentPort.postMessage("ready");
             for (;;) await s.promises.getAccessToken(workerData.tokens[0] + "-none");
           }
           const got = await Promise.all(workerData.tokens.map((t) => s.promises.getAccessToken(t)));
           parentPort.postMessage(got.map((t) => t.apiKey).join(","));
         })();\`;
       const { TokenStorage } = require(PKG);
       const tokens = process.env.TOKENS.split(",");
       const data = { pkg: PKG, pg: process.env.PG, schema: process.env.SCHEMA, tokens };
       const answer = (w) => new Promise((res, rej) => { w.once("message", res); w.once("error", rej); });
       (async () => {
         const victim = new Worker(code, { eval: true, workerData: { ...data, forever: true } });
         await answer(victim);
         const s = new TokenStorage({ storage: "postgres", url: process.env.PG, schema: process.env.SCHEMA, cleanupInterval: 0 });
         await s.promises.getStats();
         const mine = s.promises.getAccessToken(tokens[1]);
         const workers = [0, 1].map(() => new Worker(code, { eval: true, workerData: data }));
         await new Promise((r) => setTimeout(r, 30));
         await victim.terminate();
         const fromWorkers = await Promise.all(workers.map(answer));
         const after = await Promise.all(tokens.map((t) => s.promises.getAccessToken(t)));
         console.log(JSON.stringify({ mine: (await mine).apiKey, fromWorkers, after: after.map((t) => t.apiKey) }));
       })();`,
      { env: { PG: PG_URL, SCHEMA: schema, TOKENS: rows.slice(10, 14).map((x) => x.accessToken).join(","), TOKEN_STORAGE_LOG: "warn" } },
    );
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const keys = rows.slice(10, 14).map((x) => x.apiKey);
    assert.equal(out.mine, keys[1]);
    assert.deepEqual(out.fromWorkers, [keys.join(","), keys.join(",")]);
    assert.deepEqual(out.after, keys);
  });
});

/** A psql session holding `access_tokens` locked (reads wait) until `release`. */
async function lockTable(schema) {
  const child = spawn("psql", [PG_URL, "-v", "ON_ERROR_STOP=1", "-At"], { stdio: ["pipe", "pipe", "inherit"] });
  child.stdout.setEncoding("utf8");
  const locked = new Promise((resolve) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("__locked__")) resolve();
    });
  });
  child.stdin.write(`BEGIN; LOCK TABLE "${schema}".access_tokens IN ACCESS EXCLUSIVE MODE;\n\\echo __locked__\n`);
  await locked;
  let released = null;
  return {
    release() {
      released ??= new Promise((resolve) => {
        child.once("exit", resolve);
        child.stdin.end("ROLLBACK;\n");
      });
      return released;
    },
  };
}
