#!/usr/bin/env node
"use strict";
// Before and after, side by side in one process, for the SQLite store (issue 18): this
// package and another copy of it (`--baseline DIR`, e.g. a `git worktree add /tmp/base
// HEAD~1` with its built .node) each open a file of their own, seeded alike, and the ops
// run in interleaved rounds, A then B then B then A..., so that the machine's load hits
// both alike. Figures are medians over the rounds, µs per call.
//
//   node benchmark/ab-sqlite.js --baseline DIR [--size 10000] [--rounds 21] [--ops getHit,store,code]
//                               [--dir DIR]
//
// Ops: getHit (getAccessToken of seeded tokens), store (storeAccessToken with a refresh
// token), code (storeAuthorizationCode + consumeAuthorizationCode), and, not run unless
// named: refresh (getRefreshToken of seeded refresh tokens), rotate (rotateRefreshToken of
// a token stored untimed just before), codeGrant (code with a resource and extra, as the
// MCP provider stores it).
//
// `--dir DIR`: keep the two files there and use them again next time (seeding a million
// tokens takes a minute or two each); they keep their size (what an op stores, it deletes).
//
// Two copies of SQLite in one process must never open the same file (closing one's
// descriptor would drop the other's POSIX locks): each copy has its own file here.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const data = require("./lib/data");
const { REDIRECT } = require("./lib/check");
const { PACKAGE } = require("./peers/ours");

const { option, common, median, seed } = require("./lib/ab");
const { baseline: BASELINE, size: SIZE, rounds: ROUNDS } = common(
  "usage: node benchmark/ab-sqlite.js --baseline DIR [--size N] [--rounds N] [--ops getHit,store,code,refresh,rotate,codeGrant]",
);
const OPS = option("ops", "getHit,store,code").split(",");
const KEEP = option("dir", null);
process.env.TOKEN_STORAGE_LOG ??= "silent";

const PAIRS = data.pkcePairs(64);
const users = data.usersFor(SIZE);
const scatter = data.scatter(SIZE);

const CALLS = { getHit: 5000, store: 500, code: 1000, refresh: 5000, rotate: 500, codeGrant: 1000 };
const GRANT = { resource: "https://mcp.example/", extra: { org: "acme", plan: "pro" } };
const run = {
  getHit(store, round) {
    return reads(round, CALLS.getHit, (r) => store.getAccessToken(r.accessToken));
  },
  store(store, round) {
    const n = CALLS.store;
    const expiresAt = new Date(data.liveUntil());
    const rows = Array.from({ length: n }, (_, i) => data.tokenRow("st", round * n + i, users, null));
    const t = process.hrtime.bigint();
    for (const r of rows) store.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, expiresAt);
    const us = Number(process.hrtime.bigint() - t) / 1e3 / n;
    for (const r of rows) store.deleteToken(r.accessToken);
    return us;
  },
  refresh(store, round) {
    return reads(round, CALLS.refresh, (r) => store.getRefreshToken(r.refreshToken));
  },
  rotate(store, round) {
    const n = CALLS.rotate;
    const expiresAt = new Date(data.liveUntil());
    const rows = Array.from({ length: n }, (_, i) => data.tokenRow("miss", round * n + i, users, null));
    const next = Array.from({ length: n }, (_, i) => data.tokenRow("ex", round * n + i, users, null));
    for (const r of rows) store.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, expiresAt);
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if (!store.rotateRefreshToken(rows[i].refreshToken, next[i].accessToken, next[i].refreshToken, expiresAt)) throw new Error("not rotated");
    }
    const us = Number(process.hrtime.bigint() - t) / 1e3 / n;
    for (const r of next) store.deleteToken(r.accessToken);
    return us;
  },
  codeGrant(store, round) {
    return codes(store, round, CALLS.codeGrant, GRANT);
  },
  code(store, round) {
    return codes(store, round, CALLS.code, undefined);
  },
};

// `n` seeded tokens read by `read`, each found.
function reads(round, n, read) {
  const rows = Array.from({ length: n }, (_, i) => data.tokenRow("at", scatter(round * n + i), users, null));
  const t = process.hrtime.bigint();
  for (const r of rows) if (!read(r)) throw new Error("miss");
  return Number(process.hrtime.bigint() - t) / 1e3 / n;
}

// `n` codes stored and consumed, with `grant` (resource and extra) if given.
function codes(store, round, n, grant) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const user = i % users;
    const p = PAIRS[i % PAIRS.length];
    const code = data.token("code", round * n + i);
    store.storeAuthorizationCode(code, data.userIdOf(user), data.apiKeyOf(user), "client-1", REDIRECT, p.challenge, "S256", ["mcp"], 600, grant);
    const taken = store.consumeAuthorizationCode(code, p.verifier);
    if (!taken || (grant && taken.resource !== grant.resource)) throw new Error("code not consumed");
  }
  return Number(process.hrtime.bigint() - t) / 1e3 / n;
}

function open(pkg, dir, name) {
  const { TokenStorage } = require(pkg);
  const file = path.join(dir, `${name}-${SIZE}.db`);
  const seeded = fs.existsSync(file);
  const store = new TokenStorage({ storage: "db", path: file, cleanupInterval: 0 });
  if (seeded) return store;
  const t0 = Date.now();
  seed(store, SIZE);
  console.error(`${name}: seeded ${SIZE} in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
  return store;
}


const dir = KEEP ? (fs.mkdirSync(KEEP, { recursive: true }), KEEP) : fs.mkdtempSync(path.join(os.tmpdir(), "nts-ab-"));
try {
  const stores = { before: open(BASELINE, dir, "before"), after: open(PACKAGE, dir, "after") };
  const times = Object.fromEntries(OPS.map((op) => [op, { before: [], after: [] }]));
  for (let round = 0; round < ROUNDS + 1; round++) {
    const order = round % 2 ? ["after", "before"] : ["before", "after"];
    for (const op of OPS) {
      for (const side of order) {
        const us = run[op](stores[side], round);
        if (round > 0) times[op][side].push(us); // round 0 warms up
      }
    }
  }
  console.log(`SQLite, ${SIZE.toLocaleString("en-US")} tokens, medians of ${ROUNDS} interleaved rounds (µs per call)`);
  for (const op of OPS) {
    const b = median(times[op].before);
    const a = median(times[op].after);
    console.log(`${op.padEnd(8)} before ${b.toFixed(2).padStart(8)}  after ${a.toFixed(2).padStart(8)}  after/before ${(a / b).toFixed(2)}`);
  }
  for (const s of Object.values(stores)) s.close();
} finally {
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
}
