"use strict";
// Opening a competitor with the data set it is measured on, shared by trial.js and profile.js.
const data = require("./data");

// cfg.pgUrl and cfg.schema: the PostgreSQL peers' server and the fresh schema of this trial;
// cfg.redisUrl and cfg.prefix: the Redis peers' server and this trial's key prefix.
async function openContext(cfg, file) {
  const mod = require(`../peers/${cfg.peer}`);
  const peer = await mod.open({ path: file, url: cfg.pgUrl ?? cfg.redisUrl, schema: cfg.schema, prefix: cfg.prefix });
  const users = Math.min(cfg.size, data.usersFor(cfg.size));
  const liveUntil = data.liveUntil();
  return {
    peer, isAsync: Boolean(mod.isAsync), followsContract: mod.followsContract !== false, size: cfg.size, users,
    runs: cfg.runs, targetUs: cfg.targetMs * 1e3,
    // Each cleanup run first adds size/10 expired tokens: at 1M that is slow, so fewer runs.
    cleanupRuns: cfg.size >= 1_000_000 ? Math.min(cfg.runs, 3) : cfg.runs,
    scatter: data.scatter(cfg.size),
    seeded: (i) => data.tokenRow("at", i, users, liveUntil),
    liveRows: () => data.tokenRows("at", 0, cfg.size, users, liveUntil),
  };
}

// Seeds rows through the peer's bulk loader where it has one (one transaction), else
// through storeAccessToken, as a server would.
async function seed(ctx, rows) {
  const { peer } = ctx;
  if (peer.seedTokens) return peer.seedTokens(rows);
  for (const r of rows) {
    const done = peer.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt);
    if (ctx.isAsync) await done;
  }
}

module.exports = { openContext, seed };
