"use strict";
// The four-process PostgreSQL workload: several processes storing and reading tokens in one
// schema at once, as instances of a server behind a load balancer would. Forked by run.js,
// first with role "seed" (creates the peer's tables and seeds them), then once per process
// with role "worker": open the store, warm up, say "ready", wait for "go", then for the given
// seconds alternate storeAccessToken (a new token with its refresh token) and getAccessToken
// (a seeded token), timing each call; every result is checked after the clock stops.
const { performance } = require("node:perf_hooks");
const data = require("./lib/data");

const WARM_UP_CALLS = 200;

async function openPeer(cfg) {
  const mod = require(`./peers/${cfg.peer}`);
  const peer = await mod.open({ url: cfg.pgUrl, schema: cfg.schema, create: cfg.role === "seed" });
  return { peer, isAsync: Boolean(mod.isAsync) };
}

async function seedRole(cfg) {
  const { peer } = await openPeer(cfg);
  const users = data.usersFor(cfg.size);
  await peer.seedTokens(data.tokenRows("at", 0, cfg.size, users, data.liveUntil()));
  const stats = await peer.getStats();
  if (stats.totalTokens !== cfg.size) throw new Error(`after seeding getStats() is ${JSON.stringify(stats)}`);
  await peer.close();
  return { seeded: cfg.size };
}

// Each process stores tokens of its own range, so no two processes write the same key.
const storedIndex = (worker, i) => worker * 10_000_000 + i;

async function workerRole(cfg) {
  const { peer, isAsync } = await openPeer(cfg);
  const users = data.usersFor(cfg.size);
  const scatter = data.scatter(cfg.size);
  const expiresAt = new Date(data.liveUntil());
  const storeUs = [];
  const getUs = [];
  const misses = [];
  let i = 0;
  // One store then one get; sync peers in a plain loop, the others awaited one at a time.
  const step = async (record) => {
    const row = { ...data.tokenRow("st", storedIndex(cfg.worker, i), users, null), expiresAt };
    const seeded = data.tokenRow("at", scatter((cfg.worker * 7919 + i) % cfg.size), users, null);
    i++;
    let t = performance.now();
    const stored = peer.storeAccessToken(row.accessToken, row.refreshToken, row.apiKey, row.userId, row.clientId, row.scopes, row.expiresAt);
    if (isAsync) await stored;
    let t2 = performance.now();
    if (record) storeUs.push(Math.round((t2 - t) * 1e4) / 10);
    t = t2;
    let got = peer.getAccessToken(seeded.accessToken);
    if (isAsync) got = await got;
    t2 = performance.now();
    if (record) getUs.push(Math.round((t2 - t) * 1e4) / 10);
    if (got?.apiKey !== seeded.apiKey && misses.length < 5) misses.push(seeded.accessToken.slice(0, 8));
  };
  for (let w = 0; w < WARM_UP_CALLS; w++) await step(false);
  const from = i;
  await new Promise((resolve) => {
    process.on("message", (m) => m === "go" && resolve());
    process.send({ ready: true });
  });
  const start = performance.now();
  const end = start + cfg.seconds * 1e3;
  while (performance.now() < end) await step(true);
  const elapsedS = (performance.now() - start) / 1e3;
  // Untimed: what this process stored reads back.
  for (const k of [from, i - 1]) {
    const row = data.tokenRow("st", storedIndex(cfg.worker, k), users, null);
    if ((await peer.getAccessToken(row.accessToken))?.apiKey !== row.apiKey) throw new Error(`worker ${cfg.worker}: stored token ${k} does not read back`);
  }
  await peer.close();
  if (misses.length) throw new Error(`worker ${cfg.worker}: getAccessToken missed seeded tokens (${misses.join(", ")})`);
  return { worker: cfg.worker, pid: process.pid, elapsedS, calls: storeUs.length + getUs.length, storeUs, getUs };
}

const cfg = JSON.parse(process.argv[2]);
(cfg.role === "seed" ? seedRole(cfg) : workerRole(cfg)).then(
  (result) => process.send({ ok: true, result }, () => process.exit(0)),
  (err) => process.send({ ok: false, error: err.stack || String(err) }, () => process.exit(1)),
);
