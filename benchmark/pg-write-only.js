"use strict";
// A PostgreSQL store that only writes (an import) against one that read first, in one
// process: two stores of ours, each on a schema of its own seeded with 10k tokens. A reads a
// token first (its listener's ping proves the session, so its statements are named from
// then on); B never reads. Rounds of 300 stores (new tokens with refresh tokens) alternate
// A and B; prints each side's median µs a store. The schemas are dropped at the end.
//   BENCH_PG_URL=postgres://... node benchmark/pg-write-only.js [--rounds 16]
const { openContext, seed } = require("./lib/context");
const data = require("./lib/data");
const pgSide = require("./lib/postgres");
const { option, pgUrl: serverUrl, median } = require("./lib/ab");

const SIZE = 10_000;
const PER_ROUND = 300;
const rounds = Number(option("rounds", "16"));
const pgUrl = serverUrl("pg-write-only.js");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function open(tag) {
  const schema = `write_only_${tag}_${process.pid}`;
  const ctx = await openContext({ peer: "ours-postgres", size: SIZE, runs: 1, targetMs: 200, pgUrl, schema });
  await seed(ctx, ctx.liveRows());
  return { ctx, schema, us: [] };
}

function storeRound(side, from) {
  const { ctx } = side;
  const rows = [];
  for (let i = 0; i < PER_ROUND; i++) rows.push(data.tokenRow("st", from + i, ctx.users, data.liveUntil()));
  const start = process.hrtime.bigint();
  for (const t of rows) ctx.peer.storeAccessToken(t.accessToken, t.refreshToken, t.apiKey, t.userId, t.clientId, t.scopes, t.expiresAt);
  side.us.push(Number(process.hrtime.bigint() - start) / 1e3 / PER_ROUND);
}

(async () => {
  const readFirst = await open("a");
  const writeOnly = await open("b");
  for (let k = 0; k < 5; k++) {
    readFirst.ctx.peer.getAccessToken(readFirst.ctx.seeded(0).accessToken);
    await sleep(50);
  }
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 ? [readFirst, writeOnly] : [writeOnly, readFirst]) {
      storeRound(side, n);
      n += PER_ROUND;
    }
  }
  console.log(`store µs, medians of ${rounds} rounds of ${PER_ROUND}: read first ${median(readFirst.us).toFixed(1)}, writes only ${median(writeOnly.us).toFixed(1)}`);
  for (const side of [readFirst, writeOnly]) {
    side.ctx.peer.close();
    await pgSide.dropSchema(pgUrl, side.schema);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
