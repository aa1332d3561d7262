#!/usr/bin/env node
"use strict";
// Before and after, side by side in one process, for the PostgreSQL store's writes (issue 18,
// migration 10): this package and another copy of it (`--baseline DIR`, with its built .node)
// each get a schema of their own on one server, seeded alike (`--size` tokens of size/10 users,
// expiring in an hour), and storeAccessToken (a new token with its refresh token, expiring in an
// hour, of a seeded user) runs in interleaved rounds, A B B A..., timed by the wall clock.
// Figures are medians over the rounds, µs per call.
//
// `--live`: before the rounds, this package's schema gets a refined bucket that getStats still
// reads (the 4-second bucket 8 s ahead of the server's clock, refined with a token in it, and
// refined again each round so that it stays ahead): the price of a write while one is live.
// `--near` (with `--live`): the new tokens expire in that bucket (both sides), so that B counts
// each one finely: the price of a write that touches a live refined bucket.
// `--peer`: the `pg` peer (benchmark/peers/pg.js: a Pool, one named statement per store, awaited)
// runs the same calls in the same rounds, in a schema of its own seeded alike, so that both
// builds are judged against it within one run.
//
//   node benchmark/ab-postgres.js --baseline DIR [--size 10000] [--rounds 21] [--per 200] [--live [--near]] [--peer]
// The server: BENCH_PG_URL or TOKEN_TEST_DATABASE_URL.
const { performance } = require("node:perf_hooks");
const { dropSchema, withClient } = require("./lib/postgres");

const { option, common, pgUrl, median, pgSides, closePgSides } = require("./lib/ab");
const { baseline: BASELINE, size: SIZE, rounds: ROUNDS } = common(
  "usage: node benchmark/ab-postgres.js --baseline DIR [--size N] [--rounds N] [--per N] [--live [--near]] [--peer] (BENCH_PG_URL)",
);
const PER = Number(option("per", "200"));
const LIVE = process.argv.includes("--live");
const NEAR = LIVE && process.argv.includes("--near");
const PEER = process.argv.includes("--peer");
const URL_ = pgUrl("ab-postgres");
process.env.TOKEN_STORAGE_LOG ??= "silent";

const HOUR = 3_600_000;

async function main() {
  const sides = await pgSides(BASELINE, URL_, "pg");
  const rowsOf = (i, end, now) => {
    const rows = [];
    for (let j = i; j < end; j++) {
      rows.push({ accessToken: `seed-${j}`, refreshToken: `seed-r-${j}`, apiKey: "sk", userId: `user-${j % Math.max(1, SIZE / 10)}`, clientId: "c", scopes: [], expiresAt: now + HOUR });
    }
    return rows;
  };
  for (const s of sides) {
    const now = Date.now();
    for (let i = 0; i < SIZE; i += 5000) {
      s.store.storeAccessTokens(rowsOf(i, Math.min(SIZE, i + 5000), now));
    }
    s.times = [];
    s.n = 0;
  }
  const peer = PEER ? { name: "pg peer", schema: `bench_ab_pg_peer_${process.pid}`, times: [], n: 0 } : null;
  if (peer) {
    await dropSchema(URL_, peer.schema);
    peer.store = await require("./peers/pg").open({ url: URL_, schema: peer.schema });
    await peer.store.seedTokens(rowsOf(0, SIZE, Date.now()));
  }
  let liveBase = 0;
  const refineLive = () =>
    withClient(URL_, async (db) => {
      const { rows } = await db.query(
        `SELECT ${sides[1].schema}.nts_refine(b, b, 1000), (b << 12)::float8 AS base FROM
           (SELECT (${sides[1].schema}.nts_clock_ms() >> 12) + 2 AS b) x`,
      );
      liveBase = rows[0].base;
    });
  if (LIVE) {
    sides[1].store.storeAccessToken("live", null, "sk", "live-user", "c", [], new Date(Date.now() + 10_000));
  }
  for (let r = 0; r < ROUNDS; r++) {
    if (LIVE) await refineLive();
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) {
      const t0 = performance.now();
      for (let i = 0; i < PER; i++) {
        const k = s.n++;
        s.store.storeAccessToken(`ab-${k}`, `ab-r-${k}`, "sk", `user-${k % Math.max(1, SIZE / 10)}`, "c", [], new Date(NEAR ? liveBase + (k % 4096) : Date.now() + HOUR));
      }
      s.times.push(((performance.now() - t0) / PER) * 1e3);
    }
    if (peer) {
      const t0 = performance.now();
      for (let i = 0; i < PER; i++) {
        const k = peer.n++;
        await peer.store.storeAccessToken(`ab-${k}`, `ab-r-${k}`, "sk", `user-${k % Math.max(1, SIZE / 10)}`, "c", [], new Date(NEAR ? liveBase + (k % 4096) : Date.now() + HOUR));
      }
      peer.times.push(((performance.now() - t0) / PER) * 1e3);
    }
  }
  const a = median(sides[0].times);
  const b = median(sides[1].times);
  console.log(`storeAccessToken at ${SIZE} tokens${LIVE ? `, one refined bucket live in B${NEAR ? ", the new tokens expiring in it" : ""}` : ""}: A ${a.toFixed(1)} us, B ${b.toFixed(1)} us (B/A ${(b / a).toFixed(3)}; ${ROUNDS} rounds of ${PER})`);
  if (peer) {
    const p = median(peer.times);
    console.log(`pg peer (one statement, awaited): ${p.toFixed(1)} us; peer/A ${(p / a).toFixed(3)}, peer/B ${(p / b).toFixed(3)} (ours vs peer: >= 1 is ours at least as fast)`);
    await peer.store.close();
    await dropSchema(URL_, peer.schema);
  }
  await closePgSides(sides, URL_);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
