"use strict";
// Issue 21, Redis: getAccessToken of a token this process read recently answers from its
// cache (RESP3 `CLIENT TRACKING`, broadcast on the store's prefix), without a round trip,
// while every change made by any instance is honoured by every other instance within 50 ms,
// measured with a second process (B, __test__/helpers/cache-peer.js) reading the token as
// fast as it can while this one (A) changes it; nothing stale is served while B's
// invalidation connection is down; and a server that refuses tracking gets no cache.
// Also honoured: a client's tokens revoked, a copy into the prefix, a key Redis expires.
// On a throwaway redis-server of its own (its command counts and clients are the test's).
// Proof that B answers from its cache: the server's count of HGETALL (the read of a token)
// barely moves while B reads thousands of times.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const { TokenStorage } = require("./helpers/setup");
const { peer, sleep, until, sharedCacheTests, tokenMaker, BOUND_MS } = require("./helpers/cache-peers");
const { findServer, startServer } = require("../scripts/redis");


describe("Redis: the cache of recently read access tokens, two processes on one prefix", { skip: findServer() ? false : "no redis-server" }, () => {
  let server;
  let a;
  let b;
  const prefix = "cache:";
  const cli = (...args) => execFileSync("redis-cli", ["-u", server.url, ...args], { encoding: "utf8" }).trim();
  const hgetalls = () => Number(/cmdstat_hgetall:calls=(\d+)/.exec(cli("INFO", "commandstats"))?.[1] ?? 0);
  const feeds = () =>
    cli("CLIENT", "LIST")
      .split("\n")
      .filter((l) => l.includes("name=native-token-storage-cache"))
      .map((l) => /\bid=(\d+)/.exec(l)[1]);
  const { exp, fresh } = tokenMaker(() => a);

  before(async () => {
    server = startServer();
    const options = { storage: "redis", url: server.url, prefix };
    a = new TokenStorage({ ...options, cleanupInterval: 0, refreshGracePeriod: 1 });
    b = await peer(JSON.stringify(options));
  });
  after(async () => {
    await b?.close();
    a?.close();
    server?.stop();
  });

  // The cache is trusted only while a ping came back within 40 ms: on a loaded machine a
  // late ping makes B ask the server for a while (as it should), so a watch is tried again,
  // up to three times.
  async function watchCached(options) {
    let seen;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const t = fresh();
      await b.run(`tokens.getAccessToken(${JSON.stringify(t.at)})`);
      await sleep(50);
      const before = hgetalls();
      seen = await b.watch(t.at, async () => {}, 400, options);
      seen.serverReads = hgetalls() - before;
      if (seen.serverReads < 50) break;
    }
    return seen;
  }

  for (const promises of [false, true]) {
    it(`B answers a hot token from its cache, without a round trip${promises ? " (Promise API)" : ""}`, async () => {
      const seen = await watchCached({ promises });
      assert.equal(seen.last.apiKey, "sk-key");
      assert.ok(seen.reads > 2000, `${seen.reads} reads in 400 ms`);
      assert.ok(seen.serverReads < 50, `${seen.serverReads} reads of ${seen.reads} went to the server`);
    });
  }

  sharedCacheTests(() => ({ a, b, fresh, exp }), [
    ["a client's own HSET (not this store's)", (_a, t) => cli("HSET", `${prefix}at:${t.at}`, "k", "sk-hset"), "sk-hset"],
  ]);

  it("FLUSHDB (an invalidation of everything): B honours it within 50 ms", async () => {
    const t = fresh();
    const seen = await b.watch(t.at, async () => cli("FLUSHDB"));
    assert.equal(seen.last, null);
    assert.ok(seen.after < BOUND_MS, `seen after ${seen.after} ms`);
  });

  it(`revokeClientTokens (the command line's revoke --client) by A: B honours it within ${BOUND_MS} ms`, async () => {
    const at = `at_client_${"x".repeat(100)}`;
    a.storeAccessToken(at, "rt_client", "sk-key", "user_c", "client_revoked", [], exp());
    const seen = await b.watch(at, async () => assert.equal(a._native.revokeClientTokens("client_revoked"), 1));
    assert.equal(seen.last, null);
    assert.ok(seen.after < BOUND_MS, `seen after ${seen.after} ms`);
  });

  // A key's TTL (PEXPIRE, which the store sets an hour past a token's expiry) run out:
  // Redis removes the key by itself, in its expiry cycle (10 times a second by default,
  // `hz`), and that removal is an invalidation like any other.
  it("a token Redis expires by itself (its TTL) while B has it cached: B honours the removal", async () => {
    const t = fresh();
    const ttl = 200;
    const seen = await b.watch(t.at, async () => assert.equal(cli("PEXPIRE", `${prefix}at:${t.at}`, String(ttl)), "1"), 2000);
    assert.equal(seen.last, null);
    assert.ok(seen.after >= ttl - 5, `seen ${seen.after} ms after the TTL was set to ${ttl} ms`);
    // An expiry cycle (100 ms), then the bound; and some room on a loaded machine.
    assert.ok(seen.after < ttl + 100 + BOUND_MS + 100, `seen ${seen.after} ms after the TTL was set to ${ttl} ms`);
  });

  it(`a copy into the prefix (replacing its rows, --force) by another store: an instance that cached a token honours it within ${BOUND_MS} ms`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-cache-copy-"));
    const copyPrefix = "cache_copy:";
    const options = { storage: "redis", url: server.url, prefix: copyPrefix };
    const target = new TokenStorage({ ...options, cleanupInterval: 0 });
    const source = new TokenStorage({ storage: "db", path: path.join(dir, "source.db"), cleanupInterval: 0 });
    const c = await peer(JSON.stringify(options));
    try {
      const at = "at_copied";
      target.storeAccessToken(at, "rt_copied", "sk-before", "u", "c", [], exp());
      source.storeAccessToken(at, "rt_copied", "sk-copied", "u", "c", [], exp());
      const seen = await c.watch(at, async () => JSON.parse(await source._native.copyToAsync(target._native, true, 100)));
      assert.ok(seen.changedAt !== null, `the copied-over token still served (${seen.reads} reads)`);
      assert.ok(seen.after < BOUND_MS, `seen after ${seen.after} ms`);
      assert.equal((await c.run(`return tokens.getAccessToken("${at}")`)).apiKey, "sk-copied");
    } finally {
      await c.close();
      target.close();
      source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("B's own writes are honoured by B at once", async () => {
    for (const op of [
      (u) => `tokens.deleteToken(${JSON.stringify(u.at)})`,
      (u) => `tokens.revokeRefreshToken(${JSON.stringify(u.rt)})`,
      (u) => `tokens.rotateRefreshToken(${JSON.stringify(u.rt)}, "${u.at}_r", "${u.rt}_r", null)`,
      (u) => `tokens.deleteUserTokens(${JSON.stringify(u.user)})`,
    ]) {
      const u = { ...fresh("own_user"), user: "own_user" };
      const c = `const v = [tokens.getAccessToken(${JSON.stringify(u.at)})]; for (let i = 0; i < 50; i++) tokens.getAccessToken(${JSON.stringify(u.at)}); ${op(u)}; v.push(tokens.getAccessToken(${JSON.stringify(u.at)})); return v;`;
      const [before, afterward] = await b.run(c);
      assert.ok(before);
      assert.equal(afterward, null, op(u));
    }
    const u = fresh();
    const [before, afterward] = await b.run(
      `const v = [tokens.getAccessToken(${JSON.stringify(u.at)})]; tokens.storeAccessToken(${JSON.stringify(u.at)}, null, "sk-new", "u", "c", [], null); v.push(tokens.getAccessToken(${JSON.stringify(u.at)})); return v;`,
    );
    assert.equal(before.apiKey, "sk-key");
    assert.equal(afterward.apiKey, "sk-new");
  });

  it("the invalidation connection killed: nothing stale is served, and the cache comes back", async () => {
    const t = fresh();
    await b.run(`tokens.getAccessToken(${JSON.stringify(t.at)})`);
    const [id] = await until(() => feeds().length === 1 && feeds());
    // Killed, then the token changed: the change's invalidation reaches no one.
    const seen = await b.watch(t.at, async () => {
      cli("CLIENT", "KILL", "ID", id);
      a.storeAccessToken(t.at, null, "sk-after-kill", "u", "c", [], exp());
    });
    assert.equal(seen.last?.apiKey, "sk-after-kill");
    assert.ok(seen.after < BOUND_MS, `seen after ${seen.after} ms`);
    // A new connection, and the cache answers again.
    await until(() => feeds().length === 1 && feeds()[0] !== id);
    const cached = await watchCached();
    assert.ok(cached.serverReads < 50, `${cached.serverReads} of ${cached.reads} reads went to the server`);
  });

  // As a proxy that speaks RESP2 only refuses HELLO 3 (which an ACL cannot deny).
  it("a server that refuses tracking (CLIENT denied to the user): no cache, every read goes to the server", async () => {
    cli("ACL", "SETUSER", "resp2", "on", ">pw", "~*", "&*", "+@all", "-client");
    const url = server.url.replace("redis://", "redis://resp2:pw@");
    const c = new TokenStorage({ storage: "redis", url, prefix: "resp2:", cleanupInterval: 0 });
    try {
      c.storeAccessToken("at_r2", null, "k", "u", "c", [], exp());
      const before = hgetalls();
      for (let i = 0; i < 20; i++) {
        assert.equal(c.getAccessToken("at_r2").apiKey, "k");
        await sleep(5);
      }
      assert.equal(hgetalls() - before, 20);
      cli("HSET", "resp2:at:at_r2", "k", "k2");
      assert.equal(c.getAccessToken("at_r2").apiKey, "k2");
    } finally {
      c.close();
    }
  });

  it("close() ends the invalidation connection", async () => {
    const c = new TokenStorage({ storage: "redis", url: server.url, prefix: "closing:", cleanupInterval: 0 });
    const before = feeds();
    c.storeAccessToken("at_c", null, "k", "u", "c", [], null);
    c.getAccessToken("at_c");
    await until(() => feeds().length === before.length + 1);
    c.close();
    assert.deepEqual(feeds(), before);
  });
});
