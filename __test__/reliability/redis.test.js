"use strict";
// The Redis store under the failures a network store has, as postgres.test.js for
// PostgreSQL: the server SIGKILLed and started again under a write load, our connections
// killed by the server (CLIENT KILL) mid-load, and 4 processes racing for the same codes
// and rotations; and the server's persistence settings checked at open. The kills and the
// settings start redis-servers of their own (they kill them, or every client of them); the
// races use the test server (TOKEN_TEST_REDIS_URL).
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const { PKG, REDIS_URL, TokenStorage, freshSchema, cleanEnv, runNodeAsync, race } = require("../helpers/setup");
const redis = require("../../scripts/redis");

const skip = REDIS_URL ? false : "no Redis server (set TOKEN_TEST_REDIS_URL, or run npm test)";
const noServer = redis.findServer() ? false : "no redis-server to start one of this test's own";
const PASSWORD = "hunter2-redis";
const QUERY_TIMEOUT = 2000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A writer child on `url`: stores tokens `w-<i>` (with refresh token `wr-<i>`) one call
 * after the other, and reads one back, until the file `stop` exists; prints "writing" after
 * 50 writes, then at the end `{ acked, failures, codes, slowest, leaked, afterFailure }`:
 * the writes acknowledged, the calls that failed (their codes, the slowest one's time,
 * whether a message held the password) and the calls that succeeded after the first failure.
 */
function startWriter(url, stop) {
  const code = `
    const fs = require("node:fs");
    const { TokenStorage } = require(PKG);
    const s = new TokenStorage({ storage: "redis", url: process.env.URL, prefix: "load:", connectTimeout: 1000, queryTimeout: ${QUERY_TIMEOUT} });
    const acked = [];
    const codes = {};
    let failures = 0, slowest = 0, leaked = false, afterFailure = 0;
    for (let i = 0; !fs.existsSync(process.env.STOP); i++) {
      const t0 = Date.now();
      try {
        s.storeAccessToken("w-" + i, "wr-" + i, "sk-key", "user-" + (i % 7), "c", ["mcp"], null);
        acked.push(i);
        if (acked.length) s.getAccessToken("w-" + acked[Math.floor(acked.length / 2)]);
        if (failures) afterFailure++;
      } catch (e) {
        failures++;
        codes[e.code] = (codes[e.code] || 0) + 1;
        slowest = Math.max(slowest, Date.now() - t0);
        if (e.message.includes(${JSON.stringify(PASSWORD)})) leaked = true;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
      if (acked.length === 50 && failures === 0 && i === 49) console.log("writing");
    }
    s.close();
    console.log(JSON.stringify({ acked, failures, codes, slowest, leaked, afterFailure }));`;
  const p = spawn(process.execPath, ["-e", `const PKG = ${JSON.stringify(PKG)};\n${code}`], {
    env: cleanEnv({ TOKEN_STORAGE_LOG: "silent", URL: url, STOP: stop }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  p.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  p.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const writing = new Promise((resolve, reject) => {
    p.stdout.on("data", () => stdout.includes("writing") && resolve());
    p.on("close", () => reject(new Error(`the writer exited before writing: ${stderr}`)));
  });
  const done = new Promise((resolve, reject) =>
    p.on("close", (status) => {
      if (status === 0) resolve(JSON.parse(stdout.trim().split("\n").pop()));
      else reject(new Error(`the writer failed (${status}): ${stderr}`));
    }),
  );
  return { writing, done };
}

/**
 * A redis-server of the suite's own with `args` and a password, started before its tests
 * and stopped after: `{ server, url, stop }` (`stop`: the file that ends a writer).
 */
function ownServer(args) {
  const own = {};
  before(() => {
    own.server = redis.startServer({ args: [...args, "--requirepass", PASSWORD] });
    own.url = `redis://:${PASSWORD}@127.0.0.1:${own.server.port}/0`;
    own.dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-redis-rel-"));
    own.stop = path.join(own.dir, "stop");
  });
  after(() => {
    own.server?.stop();
    if (own.dir) fs.rmSync(own.dir, { recursive: true, force: true });
  });
  return own;
}

/** What a writer saw, in a line. */
const summary = (r) =>
  `${r.acked.length} writes acknowledged, ${r.failures} calls failed (${JSON.stringify(r.codes)}, slowest ${r.slowest} ms), ${r.afterFailure} succeeded after the first failure`;

/** Every acknowledged write of `result` is there, on a store of `url`, with its refresh token. */
function assertAllThere(url, result) {
  const s = new TokenStorage({ storage: "redis", url, prefix: "load:" });
  const lost = result.acked.filter((i) => s.getAccessToken(`w-${i}`)?.refreshToken !== `wr-${i}` || s.getRefreshToken(`wr-${i}`)?.accessToken !== `w-${i}`);
  assert.deepEqual(lost.slice(0, 10), [], `${lost.length} of ${result.acked.length} acknowledged writes lost`);
  s.close();
}

describe("Redis: the server SIGKILLed and started again under a write load", { skip: noServer }, () => {
  // Every write on disk before it is acknowledged: what the store asks of a server.
  const own = ownServer(["--appendonly", "yes", "--appendfsync", "always"]);

  it("calls fail with ERR_TOKEN_STORAGE_UNAVAILABLE within the timeout while it is down, the store reconnects by itself, and no acknowledged write is lost", async (t) => {
    const { server, url, stop } = own;
    const writer = startWriter(url, stop);
    await writer.writing;
    await sleep(300);
    server.kill();
    await sleep(1500);
    server.start();
    await sleep(1000);
    fs.writeFileSync(stop, "");
    const result = await writer.done;
    t.diagnostic(summary(result));
    assert.ok(result.failures > 0, "the outage was seen");
    assert.deepEqual(Object.keys(result.codes), ["ERR_TOKEN_STORAGE_UNAVAILABLE"], JSON.stringify(result.codes));
    assert.ok(result.slowest < QUERY_TIMEOUT + 500, `a call took ${result.slowest} ms: never a hang past the timeout`);
    assert.equal(result.leaked, false, "no message holds the password");
    assert.ok(result.afterFailure > 0, "calls work again after the restart, in the same process");
    assertAllThere(url, result);
  });

  it("with no persistence (the defaults of this test's servers), a SIGKILL loses every acknowledged write, and the store warned at open", async () => {
    const bare = redis.startServer();
    try {
      const r = await runNodeAsync(
        `const { TokenStorage } = require(PKG);
         const s = new TokenStorage({ storage: "redis", url: process.env.URL, prefix: "bare:" });
         s.storeAccessToken("kept?", null, "sk", "u", "c", [], null);
         s.close();`,
        { env: { URL: bare.url, TOKEN_STORAGE_LOG: "warn" } },
      );
      assert.equal(r.status, 0, r.stderr);
      const warned = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(warned.length, 1, r.stderr);
      assert.equal(warned[0].level, "warn");
      assert.match(warned[0].message, /can lose acknowledged tokens/);
      assert.equal(warned[0].appendonly, "no");
      assert.match(warned[0].loses, /every acknowledged write/);
      bare.kill();
      bare.start();
      const s = new TokenStorage({ storage: "redis", url: bare.url, prefix: "bare:" });
      assert.equal(s.getAccessToken("kept?"), null, "lost, as the warning said");
      s.close();
    } finally {
      bare.stop();
    }
  });
});

describe("Redis: our connections killed by the server (CLIENT KILL) under a write load", { skip: noServer }, () => {
  const own = ownServer([]);

  it("a call on a killed connection fails UNAVAILABLE or goes through on a new one; the store goes on, nothing acknowledged lost", async (t) => {
    const { server, url, stop } = own;
    const writer = startWriter(url, stop);
    await writer.writing;
    // Every 30 ms, every normal client but this one is killed: the writer's, mid-call or idle.
    const killer = net.connect(server.port, "127.0.0.1");
    let killed = 0;
    let buffered = "";
    killer.setEncoding("utf8").on("data", (d) => {
      buffered += d;
      for (const m of buffered.matchAll(/:(\d+)\r\n/g)) killed += Number(m[1]);
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
    });
    killer.write(`AUTH ${PASSWORD}\r\n`);
    const timer = setInterval(() => killer.write("CLIENT KILL TYPE normal SKIPME yes\r\n"), 30);
    await sleep(2000);
    clearInterval(timer);
    killer.end();
    await sleep(500);
    fs.writeFileSync(stop, "");
    const result = await writer.done;
    t.diagnostic(`${killed} connections killed; ${summary(result)}`);
    assert.ok(killed > 10, `${killed} connections killed`);
    for (const code of Object.keys(result.codes)) assert.equal(code, "ERR_TOKEN_STORAGE_UNAVAILABLE", JSON.stringify(result.codes));
    assert.ok(result.slowest < QUERY_TIMEOUT + 500, `a call took ${result.slowest} ms`);
    assert.equal(result.leaked, false);
    assert.ok(result.acked.length > 100, `${result.acked.length} writes acknowledged`);
    assertAllThere(url, result);
  });
});

describe("Redis: 4 processes racing", { skip }, () => {
  const options = () => ({ storage: "redis", url: REDIS_URL, prefix: `${freshSchema()}:` });

  it("4 processes consume the same 300 codes, one after the other: each code is consumed exactly once", async () => {
    const o = options();
    const s = new TokenStorage(o);
    for (let i = 0; i < 300; i++) s.storeAuthorizationCode(`race-code-${i}`, "u", "sk-key", "client", "https://app.example/cb", null, null, ["mcp"], 600);
    const won = await race(o, `async (s, i) => { const won = []; for (let c = 0; c < 300; c++) if (s.consumeAuthorizationCode("race-code-" + c) !== null) won.push(c); return won; }`, { processes: 4, calls: 1 });
    const all = won.flat();
    assert.equal(all.length, 300, "every code consumed once in all");
    assert.equal(new Set(all).size, 300, "no code consumed twice");
    s.close();
  });

  it("20 consumes of one code at once from 4 processes: exactly one gets it (5 runs)", async () => {
    for (let run = 0; run < 5; run++) {
      const o = options();
      const s = new TokenStorage(o);
      s.storeAuthorizationCode("the-code", "u", "sk-key", "client", "https://app.example/cb", null, null, ["mcp"], 600);
      const results = await race(o, `(s) => s.promises.consumeAuthorizationCode("the-code").then((c) => c && c.clientId)`, { processes: 4, calls: 5 });
      assert.deepEqual(results.filter((r) => r !== null), ["client"], `run ${run}`);
      s.close();
    }
  });

  it("20 rotations of one refresh token at once from 4 processes: exactly one succeeds (5 runs)", async () => {
    for (let run = 0; run < 5; run++) {
      const o = { ...options(), refreshGracePeriod: 1 };
      const s = new TokenStorage(o);
      s.storeAccessToken("at-0", "rt-0", "sk-key", "user-1", "client-1", ["mcp"], Date.now() + 3600e3);
      const results = await race(o, `(s, i) => s.promises.rotateRefreshToken("rt-0", "at-" + process.pid + "-" + i, "rt-" + process.pid + "-" + i).then((r) => r && r.refreshToken)`, { processes: 4, calls: 5 });
      const winners = results.filter((r) => r !== null);
      assert.equal(winners.length, 1, `run ${run}: ${winners.length} rotations succeeded`);
      assert.equal(s.getRefreshToken(winners[0]).clientId, "client-1", "the winner's pair is live");
      assert.equal(s.getStats().totalTokens, 1);
      s.close();
    }
  });
});

describe("Redis: the server's persistence checked at open", { skip: noServer }, () => {
  /** The warn lines a child logs storing a token on `url` with two stores of it, each opened twice. */
  async function warnings(url) {
    const r = await runNodeAsync(
      `const { TokenStorage } = require(PKG);
       const s = new TokenStorage({ storage: "redis", url: process.env.URL, prefix: "check:" });
       s.storeAccessToken("t", null, "sk", "u", "c", [], null);
       s.close();
       s.open();
       s.getAccessToken("t");
       s.close();`,
      { env: { URL: url, TOKEN_STORAGE_LOG: "warn" } },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stderr.includes(PASSWORD), r.stderr);
    return r.stderr.trim() ? r.stderr.trim().split("\n").map((l) => JSON.parse(l)) : [];
  }

  it("appendonly yes with appendfsync always: no warning", async () => {
    const server = redis.startServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
    try {
      assert.deepEqual(await warnings(server.url), []);
    } finally {
      server.stop();
    }
  });

  it("appendfsync everysec: one warning per store, saying what a crash can lose", async () => {
    const server = redis.startServer({ args: ["--appendonly", "yes", "--appendfsync", "everysec", "--requirepass", PASSWORD] });
    try {
      const [w, ...more] = await warnings(`redis://:${PASSWORD}@127.0.0.1:${server.port}/0`);
      assert.deepEqual(more, []);
      assert.equal(w.level, "warn");
      assert.equal(w.message, "the Redis server can lose acknowledged tokens in a crash; set appendonly yes and appendfsync always");
      assert.equal(w.storage, "redis");
      assert.equal(w.server, `redis://127.0.0.1:${server.port}/0`);
      assert.equal(w.appendfsync, "everysec");
      assert.match(w.loses, /about a second/);
    } finally {
      server.stop();
    }
  });

  it("CONFIG renamed away (as on hosted Redis), or not allowed to the user: a warning that it could not be checked", async () => {
    let renamed;
    let acl;
    try {
      renamed = redis.startServer({ args: ["--rename-command", "CONFIG", ""] });
      acl = redis.startServer({ args: ["--user", "app", "on", `>${PASSWORD}`, "~*", "&*", "+@all", "-config"] });
      for (const [url, word] of [
        [renamed.url, "ERR"],
        [`redis://app:${PASSWORD}@127.0.0.1:${acl.port}/0`, "NOPERM"],
      ]) {
        const [w, ...more] = await warnings(url);
        assert.deepEqual(more, []);
        assert.match(w.message, /persistence settings could not be checked; make sure it runs with appendonly yes and appendfsync always/);
        assert.equal(w.reason, `CONFIG GET was refused (${word})`);
      }
    } finally {
      renamed?.stop();
      acl?.stop();
    }
  });
});
