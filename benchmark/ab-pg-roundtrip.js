#!/usr/bin/env node
"use strict";
// Before and after, side by side in one process, for what a PostgreSQL call costs besides the
// server's work: this package and another copy of it (`--baseline DIR`, with its built .node)
// each get an empty schema of their own on one server, and getAccessToken of tokens never
// stored (a miss: never answered by the cache, every call a round trip) runs in interleaved
// rounds, A B B A..., synchronously and through `/promises`, timed by the wall clock.
// Prints each side's median µs a call and the median of B/A over the rounds.
//   node benchmark/ab-pg-roundtrip.js --baseline DIR [--rounds 21] [--per 1000]
// The server: BENCH_PG_URL or TOKEN_TEST_DATABASE_URL.
const { performance } = require("node:perf_hooks");
const { option, common, pgUrl, median, pgSides, closePgSides } = require("./lib/ab");

const { baseline: BASELINE, rounds: ROUNDS } = common(
  "usage: node benchmark/ab-pg-roundtrip.js --baseline DIR [--rounds N] [--per N] (BENCH_PG_URL)",
);
const PER = Number(option("per", "1000"));
const URL_ = pgUrl("ab-pg-roundtrip");
process.env.TOKEN_STORAGE_LOG ??= "silent";

async function main() {
  const sides = await pgSides(BASELINE, URL_, "rt");
  for (const s of sides) {
    // Connected, the schema made, the listener started: the rounds time calls only.
    s.store.getAccessToken("warm-up");
    await s.store.promises.getAccessToken("warm-up");
    s.sync = [];
    s.promise = [];
    s.n = 0;
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of r % 2 === 0 ? sides : [...sides].reverse()) {
      let t0 = performance.now();
      for (let i = 0; i < PER; i++) s.store.getAccessToken(`miss-${s.n++}`);
      s.sync.push(((performance.now() - t0) / PER) * 1e3);
      t0 = performance.now();
      for (let i = 0; i < PER; i++) await s.store.promises.getAccessToken(`miss-${s.n++}`);
      s.promise.push(((performance.now() - t0) / PER) * 1e3);
    }
  }
  const [a, b] = sides;
  for (const form of ["sync", "promise"]) {
    const paired = median(a[form].map((x, i) => b[form][i] / x));
    console.log(`getAccessToken miss, ${form}: A ${median(a[form]).toFixed(1)} us, B ${median(b[form]).toFixed(1)} us (paired B/A ${paired.toFixed(3)}; ${ROUNDS} rounds of ${PER})`);
  }
  await closePgSides(sides, URL_);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
