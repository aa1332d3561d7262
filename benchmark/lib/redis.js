"use strict";
// The Redis side of the benchmark: the throwaway redis-server run.js starts once per run
// (scripts/redis.js, the one the tests use: loopback TCP, nothing saved to disk), a key
// prefix per trial, the server emptied before and after each trial.
const { PACKAGE } = require("../peers/ours");

// The peers that run against the server.
const REDIS_PEERS = ["ours-redis", "redis"];

const prefixFor = (peer, size) => `bench:${peer}:${size}:`;

// Runs fn(client) on a node-redis client of its own (loaded only when Redis is used).
async function withClient(url, fn) {
  const { createClient } = require("redis");
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.quit();
  }
}

// The run's server holds nothing else: each trial starts and ends on an empty one.
const flush = (url) => withClient(url, (c) => c.flushAll());

const serverVersion = (url) => withClient(url, async (c) => /redis_version:(\S+)/.exec(await c.info("server"))?.[1] ?? "unknown");

// Starts the run's server; returns { url, stop } or { missing: why } without redis-server.
function startServer() {
  const { findServer, startServer: start } = require(`${PACKAGE}/scripts/redis`);
  if (!findServer()) return { missing: "no redis-server (or valkey-server) found on PATH, /usr/bin or /usr/local/bin" };
  return start();
}

module.exports = { REDIS_PEERS, prefixFor, flush, serverVersion, startServer };
