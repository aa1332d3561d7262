#!/usr/bin/env node
"use strict";
// Runs one op of one competitor in a loop, for a profiler to watch:
//   perf record -g -o perf.data node --perf-basic-prof benchmark/profile.js ours-sqlite store 1000000 10
//   valgrind --tool=callgrind node benchmark/profile.js ours-memory getHit 10000 2
// Arguments: peer, op (getHit getMiss store code getStats), store size, seconds (default 10).
// The PostgreSQL peers use the server at BENCH_PG_URL, else a throwaway one started here.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { OPS } = require("./lib/workloads");
const { openContext, seed } = require("./lib/context");
const pgSide = require("./lib/postgres");

async function main() {
  const [peerName, opName, size = "10000", seconds = "10"] = process.argv.slice(2);
  const op = OPS[opName];
  if (!peerName || !op) throw new Error(`usage: profile.js PEER OP [SIZE] [SECONDS]; ops: ${Object.keys(OPS).join(", ")}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-profile-"));
  const cfg = { peer: peerName, size: Number(size), runs: 1, targetMs: 100 };
  let server;
  if (pgSide.POSTGRES_PEERS.includes(peerName)) {
    if (!process.env.BENCH_PG_URL) {
      server = pgSide.startServer();
      if (server.missing) throw new Error(server.missing);
    }
    cfg.pgUrl = process.env.BENCH_PG_URL || server.url;
    cfg.schema = pgSide.schemaFor(peerName, `profile_${process.pid}`);
  }
  const ctx = await openContext(cfg, path.join(dir, "profile.db"));
  const t0 = Date.now();
  await seed(ctx, ctx.liveRows());
  console.error(`seeded ${size} in ${((Date.now() - t0) / 1e3).toFixed(1)} s; running ${opName} for ${seconds} s`);
  const call = ctx.isAsync ? op.callAsync ?? op.call : op.call;
  const k = Math.min(op.max(ctx), 5_000);
  const end = Date.now() + Number(seconds) * 1e3;
  let calls = 0;
  let us = 0;
  for (let start = 0; Date.now() < end; start += k) {
    const inputs = op.prepare(ctx, k, start);
    const results = new Array(k);
    const t = process.hrtime.bigint();
    for (let i = 0; i < k; i++) results[i] = ctx.isAsync ? await call(ctx.peer, inputs[i]) : call(ctx.peer, inputs[i]);
    us += Number(process.hrtime.bigint() - t) / 1e3;
    calls += k;
    await op.verify(ctx, inputs, results);
  }
  console.error(`${peerName} ${opName} at ${size}: ${(us / calls).toFixed(2)} µs per call over ${calls} calls`);
  await ctx.peer.close();
  if (cfg.schema) await pgSide.dropSchema(cfg.pgUrl, cfg.schema);
  server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
