#!/usr/bin/env node
"use strict";
// The PostgreSQL store's cleanup of a burst of just-expired tokens in a refined bucket
// (issue 18, migration 10), before and after, in one process: this package and another copy
// of it (`--baseline DIR`, with its built .node) each get a schema of their own on one server.
// Per round and side: `--size` tokens of size/10 users expiring within one second, in a
// 4-second bucket that is refined (listed in nts_refined) before they expire, as the
// automatic cleanup's refine-ahead does; then, `--after` ms past the last expiry (the
// automatic cleanup's pass coming soon after the burst), cleanupExpiredTokens() until
// nothing is left, timed by the wall clock. Sides alternate A B B A... `--unrefined` adds
// a side C: this package with the bucket not refined (the cost without fine counts).
//
//   node benchmark/burst-cleanup.js [--baseline DIR] [--unrefined] [--size 100000] [--rounds 2] [--after 5000]
// The server: BENCH_PG_URL or TOKEN_TEST_DATABASE_URL.
const { performance } = require("node:perf_hooks");
const path = require("node:path");
process.env.TOKEN_STORAGE_LOG ??= "silent";
const { PACKAGE } = require("./peers/ours");
const { dropSchema, withClient } = require("./lib/postgres");
const { option } = require("./lib/ab");

const BASELINE = option("baseline", null);
const SIZE = Number(option("size", "100000"));
const ROUNDS = Number(option("rounds", "2"));
const AFTER = Number(option("after", "5000"));
const URL_ = process.env.BENCH_PG_URL || process.env.TOKEN_TEST_DATABASE_URL;
const SLICE = 20_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function round(pkg, tag, refine) {
  const { TokenStorage } = require(pkg);
  const schema = `bench_burst_cleanup_${process.pid}_${tag}`;
  await dropSchema(URL_, schema);
  const store = new TokenStorage({ storage: "postgres", url: URL_, schema, cleanupInterval: 0 });
  try {
    // Seeding takes a while: the burst starts a bucket after it is expected to end.
    const t0 = Date.now();
    store.storeAccessTokens([{ accessToken: "warm", apiKey: "k", clientId: "c", scopes: [], expiresAt: t0 + 3_600_000 }]);
    const seedMs = SIZE / 10;
    const bucket = Math.floor((t0 + seedMs + 4096) / 4096) + 1;
    const base = bucket * 4096;
    for (let i = 0; i < SIZE; i += SLICE) {
      store.storeAccessTokens(
        Array.from({ length: Math.min(SLICE, SIZE - i) }, (_, j) => ({
          accessToken: `burst-${i + j}`,
          apiKey: "k",
          userId: `user-${(i + j) % Math.max(1, SIZE / 10)}`,
          clientId: "c",
          scopes: ["a"],
          expiresAt: base + ((i + j) % 1000),
        })),
      );
    }
    if (Date.now() >= base) throw new Error("seeding ended after the burst's first expiry: raise the margin");
    if (refine) {
      const listed = await withClient(URL_, (db) =>
        db.query(`SELECT ${schema}.nts_refine($1, $2, 5000) AS ok`, [Math.floor(Date.now() / 4096), bucket]),
      );
      if (!listed.rows[0].ok) throw new Error("the bucket was not refined");
    }
    await sleep(base + 1000 + AFTER - Date.now());
    const start = performance.now();
    let n = 0;
    for (let k; (k = store.cleanupExpiredTokens()) > 0; ) n += k;
    const ms = performance.now() - start;
    if (n !== SIZE) throw new Error(`cleaned ${n} of ${SIZE}`);
    return ms;
  } finally {
    store.close();
    await dropSchema(URL_, schema);
  }
}

async function main() {
  if (!URL_) throw new Error("set BENCH_PG_URL or TOKEN_TEST_DATABASE_URL");
  const sides = [["B (this)", PACKAGE, true]];
  if (BASELINE) sides.unshift(["A (baseline)", path.resolve(BASELINE), true]);
  if (process.argv.includes("--unrefined")) sides.push(["C (this, not refined)", PACKAGE, false]);
  const times = new Map(sides.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...sides].reverse() : sides;
    for (const [name, pkg, refine] of order) {
      const ms = await round(pkg, name[0].toLowerCase(), refine);
      times.get(name).push(ms);
      console.log(`round ${r} ${name}: ${SIZE} tokens cleaned ${AFTER} ms after the burst in ${ms.toFixed(0)} ms`);
    }
  }
  for (const [name, ms] of times) console.log(`${name}: ${ms.map((m) => m.toFixed(0)).join(", ")} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
