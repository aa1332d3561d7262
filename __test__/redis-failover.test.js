"use strict";
// Issue 21, Redis: a failover behind one host name (a managed service's primary endpoint),
// as it happens in production. Two throwaway servers, A the primary and B its replica; a
// TCP proxy (./helpers/tcp-proxy.js) stands for the endpoint's host name: new connections
// go to the current primary, those made before stay where they were. The failover: B
// promoted (`REPLICAOF NO ONE`), the proxy switched to B, A demoted to a replica whose link
// to B does not come up (as a partition, or a slow resync, leaves it: nothing written on B
// reaches A). Then a token revoked on B by another store is honoured within 50 ms by a
// store (another process) that had it cached through the endpoint, and nothing stale is
// served after; a write on a connection kept to the demoted A (answered READONLY) fails
// UNAVAILABLE, and the next call reaches B.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const net = require("node:net");
const path = require("node:path");
const readline = require("node:readline");
const { execFileSync, spawn } = require("node:child_process");

const { TokenStorage } = require("./helpers/setup");
const { peer, sleep, until, BOUND_MS } = require("./helpers/cache-peers");
const { findServer, startServer } = require("../scripts/redis");

/** The endpoint: `{ url, to(port), close() }`, new connections going to `port` first. */
async function startProxy(port) {
  const child = spawn(process.execPath, [path.join(__dirname, "helpers", "tcp-proxy.js"), String(port)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const listening = Number((await lines.next()).value);
  return {
    url: `redis://127.0.0.1:${listening}/0`,
    async to(next) {
      child.stdin.write(`${next}\n`);
      assert.equal((await lines.next()).value, "ok");
    },
    async close() {
      child.stdin.end();
      if (child.exitCode === null) await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

describe("Redis: a failover behind one host name", { skip: findServer() ? false : "no redis-server" }, () => {
  const prefix = "fo:";
  const HOUR = 3600e3;
  let a;
  let b;
  let proxy;
  let held;
  let first;
  let writer;
  let onB;
  const cli = (server, ...args) => execFileSync("redis-cli", ["-p", String(server.port), ...args], { encoding: "utf8" }).trim();
  const exp = () => new Date(Date.now() + HOUR);
  const t = { at: "at_failover", rt: "rt_failover" };

  before(async () => {
    a = startServer();
    b = startServer();
    cli(b, "REPLICAOF", "127.0.0.1", String(a.port));
    await until(() => /master_link_status:up/.test(cli(b, "INFO", "replication")), 10_000);
    proxy = await startProxy(a.port);
    // A's link to B after the failover: a server that takes the connection and never answers.
    held = net.createServer(() => {});
    await new Promise((resolve) => held.listen(0, "127.0.0.1", resolve));
    const options = { storage: "redis", url: proxy.url, prefix };
    first = await peer(JSON.stringify(options));
    writer = new TokenStorage({ ...options, cleanupInterval: 0 });
    onB = new TokenStorage({ storage: "redis", url: b.url, prefix, cleanupInterval: 0 });
  });
  after(async () => {
    await first?.close();
    writer?.close();
    onB?.close();
    await proxy?.close();
    held?.close();
    a?.stop();
    b?.stop();
  });

  it("before: the token stored through the endpoint, on A and replicated to B, and cached by the first store", async () => {
    writer.storeAccessToken(t.at, t.rt, "sk-key", "u", "c", [], exp());
    // Replicated: read on B until it is there. (Not `WAIT` on A from redis-cli: WAIT counts
    // the replicas that have the writes of its own connection, which made none, so it
    // answered at once and the read on B could come before the write reached it.)
    await until(() => cli(b, "HGET", `${prefix}at:${t.at}`, "k") === "sk-key", 2000);
    // Read, and read again until the cache answers (its feed up: fewer reads reach A).
    await first.run(`tokens.getAccessToken(${JSON.stringify(t.at)})`);
    await sleep(50);
    const reads = () => Number(/cmdstat_hgetall:calls=(\d+)/.exec(cli(a, "INFO", "commandstats"))?.[1] ?? 0);
    const before = reads();
    await first.run(`for (let i = 0; i < 500; i++) tokens.getAccessToken(${JSON.stringify(t.at)})`);
    assert.ok(reads() - before < 50, `${reads() - before} of 500 reads reached A`);
  });

  it(`the failover, then a revoke on B by another store: honoured within ${BOUND_MS} ms`, async () => {
    const seen = await first.watch(
      t.at,
      async () => {
        cli(b, "REPLICAOF", "NO", "ONE");
        await proxy.to(b.port);
        cli(a, "REPLICAOF", "127.0.0.1", String(held.address().port));
        assert.match(cli(a, "ROLE"), /^slave/);
        onB.revokeRefreshToken(t.rt);
      },
      1500,
    );
    assert.ok(seen.changedAt !== null, `the first store still served the revoked token (${seen.reads} reads)`);
    assert.equal(seen.last, null);
    assert.ok(seen.after < BOUND_MS, `seen ${seen.after.toFixed(2)} ms after the revoke answered`);
    // A (demoted, cut off) still holds it: what the cache served before came from there.
    assert.equal(cli(a, "HGET", `${prefix}at:${t.at}`, "k"), "sk-key");
  });

  it("nothing stale afterwards: every read answers null, and the first store's writes reach B", async () => {
    const answers = await first.run(
      `const v = []; const end = Date.now() + 300; while (Date.now() < end) v.push(tokens.getAccessToken(${JSON.stringify(t.at)})); return v.filter((x) => x !== null).length;`,
    );
    assert.equal(answers, 0);
    await first.run(`tokens.storeAccessToken("at_after", null, "sk-after", "u", "c", [], null)`);
    assert.equal(cli(b, "HGET", `${prefix}at:at_after`, "k"), "sk-after");
    assert.equal(await first.run(`return tokens.getAccessToken("at_after")?.apiKey`), "sk-after");
  });

  it("a write on a connection kept to the demoted primary (READONLY): UNAVAILABLE, nothing written, and the next call reaches the new primary", () => {
    // The writer never read an access token: no feed, its kept connection is still on A.
    assert.throws(() => writer.storeAccessToken("at_ro", null, "sk-ro", "u", "c", [], null), { code: "ERR_TOKEN_STORAGE_UNAVAILABLE" });
    assert.equal(cli(a, "EXISTS", `${prefix}at:at_ro`), "0");
    assert.equal(cli(b, "EXISTS", `${prefix}at:at_ro`), "0");
    writer.storeAccessToken("at_ro", null, "sk-ro", "u", "c", [], null);
    assert.equal(cli(b, "HGET", `${prefix}at:at_ro`, "k"), "sk-ro");
  });
});
