#!/usr/bin/env node
"use strict";
// The PostgreSQL server's CPU time per storeAccessToken (issue 18), before and after, and the
// `pg` peer's, interleaved in one backend (the measure of benchmark/PROFILE.md, "PostgreSQL
// store: storeAccessToken with a refresh token, server side"). Three schemas seeded alike
// (`--size` tokens of size/10 users expiring in an hour): A made by another copy of this package
// (`--baseline DIR`), B by this one, and the peer's (benchmark/peers/pg.js). A procedure per
// schema runs `--per` stores (a new token with a new refresh string, expiring in an hour, of a
// seeded user: `SELECT nts_store_access_tokens(…)` for A and B, the peer's one statement for
// the peer), each committed; one backend calls them in rounds (A B P, then B A P, ...), and the
// backend's CPU time is read from /proc/<pid>/schedstat around each batch: it needs the server
// on this machine, readable by this user. Figures are medians over the rounds, µs per store.
//
//   node benchmark/pg-server-cpu.js --baseline DIR [--size 10000] [--rounds 8] [--per 300]
// The server: BENCH_PG_URL or TOKEN_TEST_DATABASE_URL.
const path = require("node:path");
const { PACKAGE } = require("./peers/ours");
const { dropSchema, withClient } = require("./lib/postgres");
const { option, common, pgUrl, median } = require("./lib/ab");
const { cpuNs, seedRows, peerStore } = require("./lib/pg-cpu");

const { baseline: BASELINE, size: SIZE } = common(
  "usage: node benchmark/pg-server-cpu.js --baseline DIR [--size N] [--rounds N] [--per N] (BENCH_PG_URL)",
);
const ROUNDS = Number(option("rounds", "8"));
const PER = Number(option("per", "300"));
const URL_ = pgUrl("pg-server-cpu");
process.env.TOKEN_STORAGE_LOG ??= "silent";

const HOUR = 3_600_000;
const USERS = Math.max(1, SIZE / 10);


const ours = (s) => `CREATE PROCEDURE ${s}.nts_bench_stores(n INTEGER, tag TEXT)
  LANGUAGE plpgsql AS $b$
  DECLARE t BIGINT;
  BEGIN
    FOR i IN 1..n LOOP
      t := (date_part('epoch', clock_timestamp()) * 1000)::BIGINT;
      PERFORM ${s}.nts_store_access_tokens(ARRAY['cpu-' || tag || i], ARRAY['sk'],
        ARRAY['user-' || (i % ${USERS})], ARRAY['c'], ARRAY['[]'], ARRAY['cpu-r-' || tag || i],
        ARRAY[t + ${HOUR}], t);
      COMMIT;
    END LOOP;
  END $b$`;

// The peer's statement (benchmark/peers/pg.js's `store`), its parameters as variables.
const peer = (s) => `CREATE PROCEDURE ${s}.nts_bench_stores(n INTEGER, tag TEXT)
  LANGUAGE plpgsql AS $b$
  DECLARE t BIGINT; tok TEXT; rt TEXT; uid TEXT;
  BEGIN
    FOR i IN 1..n LOOP
      t := (date_part('epoch', clock_timestamp()) * 1000)::BIGINT;
      tok := 'cpu-' || tag || i; rt := 'cpu-r-' || tag || i; uid := 'user-' || (i % ${USERS});
      ${peerStore(s, `t + ${HOUR}`)}
      COMMIT;
    END LOOP;
  END $b$`;

async function main() {
  const tag = process.pid;
  const sides = [
    { name: "A (baseline)", pkg: BASELINE, schema: `bench_cpu_a_${tag}`, times: [] },
    { name: "B (this)", pkg: PACKAGE, schema: `bench_cpu_b_${tag}`, times: [] },
    { name: "pg peer", schema: `bench_cpu_peer_${tag}`, times: [] },
  ];
  const rowsOf = (i, end, now) => seedRows(i, end, USERS, now + HOUR);
  for (const s of sides) await dropSchema(URL_, s.schema);
  try {
    for (const s of sides.slice(0, 2)) {
      const { TokenStorage } = require(s.pkg);
      const store = new TokenStorage({ storage: "postgres", url: URL_, schema: s.schema, cleanupInterval: 0 });
      const now = Date.now();
      for (let i = 0; i < SIZE; i += 5000) store.storeAccessTokens(rowsOf(i, Math.min(SIZE, i + 5000), now));
      store.close();
    }
    const p = await require("./peers/pg").open({ url: URL_, schema: sides[2].schema });
    await p.seedTokens(rowsOf(0, SIZE, Date.now()));
    await p.close();
    await withClient(URL_, async (db) => {
      await db.query(ours(sides[0].schema));
      await db.query(ours(sides[1].schema));
      await db.query(peer(sides[2].schema));
      for (const s of sides) await db.query(`VACUUM ANALYZE ${s.schema}.access_tokens, ${s.schema}.refresh_tokens`);
      const pid = (await db.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      // A first batch of each, not counted: the session's plans and caches.
      for (const s of sides) await db.query(`CALL ${s.schema}.nts_bench_stores(50, 'w')`);
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? sides : [sides[1], sides[0], sides[2]];
        for (const s of order) {
          const c0 = cpuNs(pid);
          await db.query(`CALL ${s.schema}.nts_bench_stores(${PER}, '${r}-')`);
          s.times.push((cpuNs(pid) - c0) / 1e3 / PER);
        }
      }
    });
    const [a, b, pe] = sides.map((s) => median(s.times));
    console.log(`server CPU per store at ${SIZE} tokens (${ROUNDS} rounds of ${PER}, one backend): A ${a.toFixed(1)} us, B ${b.toFixed(1)} us (B/A ${(b / a).toFixed(3)}), pg peer ${pe.toFixed(1)} us (peer/A ${(pe / a).toFixed(3)}, peer/B ${(pe / b).toFixed(3)})`);
    for (const s of sides) console.log(`  ${s.name}: ${s.times.map((t) => t.toFixed(0)).join(" ")}`);
  } finally {
    for (const s of sides) await dropSchema(URL_, s.schema);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
