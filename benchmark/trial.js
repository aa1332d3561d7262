"use strict";
// One trial: one competitor at one store size, in a fresh process (forked by run.js with
// --expose-gc). Opens the store, checks the contract, seeds it, times every op (calibrate,
// warm up, then several runs; median), measures cleanup, memory and file size, and sends
// the numbers back to the parent. With `cfg.ops` (a list of op names) it is one side of a
// paired check (run.js runPairs): open, seed, time those ops only, nothing else; with
// `cfg.alternate` as well, both sides of every pair in this one process (alternateSides).
const fs = require("node:fs");
const path = require("node:path");
const { monitorEventLoopDelay, performance } = require("node:perf_hooks");
const data = require("./lib/data");
const { checkContract } = require("./lib/check");
const { OPS } = require("./lib/workloads");
const { openContext, seed } = require("./lib/context");
const pgSide = require("./lib/postgres");
const { threadClocks, loopTurns, callFigures } = require("./lib/loop");
const redisSide = require("./lib/redis");

const { median, pairOrder } = require("./lib/pairs");
const nowUs = () => Number(process.hrtime.bigint()) / 1e3;
const log = (msg) => process.stderr.write(`  ${msg}\n`);

function rssAfterGc() {
  for (let i = 0; i < 3; i++) global.gc();
  return process.memoryUsage().rss;
}

// Of the RSS, the pages of mapped files (kB in /proc/self/status: ours' SQLite file read
// through its memory map is counted here), in bytes; undefined off Linux.
function rssFile() {
  try {
    const m = /^RssFile:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

// The timed runs of an op whose check only reads the answers (`readOnly` in workloads.js: the
// gets, getStats) check and drop them every CHECK_CHUNK calls with the clock stopped (`settle`),
// as the watched run does (below): a run kept up to 50,000 answers alive until its end, so
// every scavenge in it copied them all again, a cost of the harness that fell only on the
// peers whose answers are new objects (not on the Map module, which hands out its stored
// records) (PROFILE.md, "Memory at 1M: the tokens inside the slot, and the answers a run kept").
// Ops whose check writes (store, code) keep theirs until the run ends, as before: their check
// reads back, deletes and consumes, which must not fall between timed calls.
const CHECK_CHUNK = 1_000;

function timeSync(call, peer, inputs, results, settle) {
  let ns = 0n;
  for (let from = 0; from < inputs.length; ) {
    const to = settle ? Math.min(inputs.length, from + CHECK_CHUNK) : inputs.length;
    const t0 = process.hrtime.bigint();
    for (let i = from; i < to; i++) results[i] = call(peer, inputs[i]);
    ns += process.hrtime.bigint() - t0;
    if (settle) settle(from, to);
    from = to;
  }
  return Number(ns) / 1e3;
}

// The same, awaited; with how long the loop was busy (not waiting for I/O) over the calls,
// not the checks, in ms, from event-loop utilization (two reads of libuv's counters a chunk):
// over the calls, the JavaScript thread's cost of one call, which timer granularity does not
// blur.
async function timeAsync(call, peer, inputs, results, settle) {
  let ns = 0n;
  let busyMs = 0;
  for (let from = 0; from < inputs.length; ) {
    const to = settle ? Math.min(inputs.length, from + CHECK_CHUNK) : inputs.length;
    const before = performance.eventLoopUtilization();
    const t0 = process.hrtime.bigint();
    for (let i = from; i < to; i++) results[i] = await call(peer, inputs[i]);
    ns += process.hrtime.bigint() - t0;
    busyMs += performance.eventLoopUtilization(before).active;
    if (settle) settle(from, to);
    from = to;
  }
  return { us: Number(ns) / 1e3, busyMs };
}

// The same, awaited, with the loop's busy time of each call (`performance.eventLoopUtilization`:
// the time the loop was not waiting for I/O between the call and its answer awaited). Its
// longest is what one call held the loop at most, all its stretches together (the call until
// it returns its Promise, the callback that settles it, the shaping of the answer, and any
// garbage collection meanwhile): an upper bound on our own blocking, which the machine's
// hiccups while the loop waits for I/O do not enter. It is wall time, so it still counts the
// time the thread was preempted while busy (the other processes of this shared 2-core VM):
// for each call the thread's own clocks are read beside it (lib/loop.js: its CPU time, its
// wait for a CPU, its sleeps), and the call is judged on its busy time less what the machine
// added (callFigures). Reads of libuv's counters and of /proc per call: the watched run only.
//
// A garbage collection that falls inside a call is counted in it, and its cost is the
// harness's to keep honest: a V8 scavenge copies what is still alive in the young generation,
// so a batch that kept all its tens of thousands of answers until the end (as the timed runs
// do, to check them after the clock stops) made every scavenge copy and promote some 3 MB of
// them, ~10 ms on this VM, landing in whichever call allocated last (PROFILE.md, "One awaited
// call held the loop 10 ms"). A server keeps no answer past its request, so the watched run
// checks and drops them every WATCH_CHUNK calls (`settle`, outside any call's window), and
// starts after a full collection that takes away the inputs just made for it (the same
// amount again, freshly allocated) and the previous runs' garbage. The peer's own garbage
// still triggers the scavenges it triggers.
//
// And the loop turns between two calls (a setImmediate, outside any call's window), as it
// does between a server's requests. An answer at hand (a PostgreSQL store's trusted cache)
// settles its Promise at once, so without it a batch of them ran as one macrotask of a few
// hundred ms: the delay timer could not fire (its longest delay read 0) and V8 could never
// run a scavenge as a task between calls, as it does for a peer whose calls wait for I/O; it
// fell on the call that ran out of young space instead.
const WATCH_CHUNK = 128;
const turnOfTheLoop = () => new Promise((resolve) => setImmediate(resolve));
async function timeAsyncBusy(call, peer, inputs, results, settle) {
  let longest = { ms: 0 };
  let floorMs = 0; // the longest busy time less what was not the call's (above), over the calls
  let settled = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < inputs.length; i++) {
    const clocks = threadClocks();
    const turns = loopTurns();
    const before = performance.eventLoopUtilization();
    results[i] = await call(peer, inputs[i]);
    const { active: ms, idle: idleMs } = performance.eventLoopUtilization(before);
    const one = callFigures({ ms, idleMs, turns: loopTurns() - turns, before: clocks, after: threadClocks(true) });
    if (ms > longest.ms) longest = one;
    floorMs = Math.max(floorMs, one.floorMs);
    if (i + 1 - settled === WATCH_CHUNK || i + 1 === inputs.length) {
      await settle(settled, i + 1);
      settled = i + 1;
    }
    await turnOfTheLoop();
  }
  return { us: Number(process.hrtime.bigint() - t0) / 1e3, longest, floorMs };
}

// How late a 1 ms timer fired at worst while fn ran: perf_hooks' histogram holds the
// intervals between the timer's callbacks, so the longest block is its max minus the 1 ms
// resolution. It sees blocks of about 1 ms and longer, and also the machine's own hiccups (a
// VM's stolen time, libuv's millisecond timers), which idleLoopDelay measures in the same
// process for comparison. Not during the timed runs: on a 2-core VM a 1 ms timer slowed
// awaited PostgreSQL calls by tens of µs each (every wait for I/O gets a timeout), so each
// op gets one more run of the same size under it, whose time is not counted. (A setImmediate
// ticker, as cleanup uses, would keep the loop spinning and change the calls more.)
const DELAY_RESOLUTION_MS = 1;
async function withLoopDelay(fn) {
  const histogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  histogram.enable();
  try {
    const value = await fn();
    return { value, delayMs: histogram.count ? Math.max(0, histogram.max / 1e6 - DELAY_RESOLUTION_MS) : 0 };
  } finally {
    histogram.disable();
  }
}

// The same measure over a second of doing nothing: what the loop's delay is without a store.
const idleLoopDelay = async () => (await withLoopDelay(() => new Promise((resolve) => setTimeout(resolve, 1000)))).delayMs;

async function measure(ctx, op) {
  const call = ctx.isAsync ? op.callAsync ?? op.call : op.call;
  const max = Math.floor(op.max(ctx));
  let cursor = 0;
  let loopDelayMs; // async peers: the longest event-loop delay in the watched run
  let callBusyMs; // and the longest busy time of the loop within one call of it
  let callBusyWaitedMs; // and how long the thread waited for a CPU during that call
  let callBusyRunMs; // and the thread's own CPU time in it
  let callBusySlept; // and whether the thread slept in it other than waiting for I/O
  let callBusyFloorMs; // the longest of a call's busy time less what was not the call's (timeAsyncBusy)
  const busy = []; // and the loop's busy time per call in each timed run, µs
  // mode: undefined (calibration, warm-up), "timed" or "watched".
  const runOnce = async (k, mode) => {
    const inputs = op.prepare(ctx, k, cursor);
    cursor += k;
    const results = new Array(k);
    // A read-only op's answers are checked and let go as the run goes (CHECK_CHUNK), and a
    // timed run starts after a full collection that takes away the inputs just made for it
    // and the runs' garbage before it, so no call pays for the harness's own objects.
    // Checks answers from..to and lets them go (the check's Promise, if it has one).
    const check = (from, to) => {
      const checked = op.verify(ctx, inputs.slice(from, to), results.slice(from, to));
      results.fill(undefined, from, to);
      return checked;
    };
    const settle = op.readOnly && mode !== "watched" ? check : undefined;
    if (mode === "timed") global.gc?.();
    let us;
    if (!ctx.isAsync) us = timeSync(call, ctx.peer, inputs, results, settle);
    else if (mode === "timed") {
      const timed = await timeAsync(call, ctx.peer, inputs, results, settle);
      us = timed.us;
      busy.push((timed.busyMs * 1e3) / k);
    } else if (mode === "watched") {
      // Checks the answers every WATCH_CHUNK calls and lets them go (see timeAsyncBusy).
      global.gc?.(); // before the delay timer starts: the collection is not a call's
      const watched = await withLoopDelay(() => timeAsyncBusy(call, ctx.peer, inputs, results, check));
      us = watched.value.us;
      callBusyMs = watched.value.longest.ms;
      callBusyWaitedMs = watched.value.longest.waitedMs;
      callBusyRunMs = watched.value.longest.runMs;
      callBusySlept = watched.value.longest.slept;
      callBusyFloorMs = watched.value.floorMs;
      loopDelayMs = watched.delayMs;
    } else us = (await timeAsync(call, ctx.peer, inputs, results, settle)).us;
    if (mode !== "watched" && !settle) await op.verify(ctx, inputs, results);
    return us;
  };
  await op.prime?.(ctx);
  // Calibrate (this is also the first warm-up): grow the batch until it takes a quarter of the target.
  let k = 1;
  let us = await runOnce(k);
  while (us < ctx.targetUs / 4 && k < max) {
    k = Math.min(max, k * 4);
    us = await runOnce(k);
  }
  // Warm up at the calibrated size, then size the timed runs again from the warm-up.
  const resize = () => Math.max(1, Math.min(max, Math.round((k * ctx.targetUs) / Math.max(us, 1))));
  k = resize();
  us = await runOnce(k);
  k = resize();
  const samples = [];
  for (let r = 0; r < ctx.runs; r++) samples.push((await runOnce(k, "timed")) / k);
  if (ctx.isAsync && ctx.watch) await runOnce(k, "watched");
  return { us: median(samples), samples, batch: k, loopDelayMs, callBusyMs, callBusyWaitedMs, callBusyRunMs, callBusySlept, callBusyFloorMs, loopBusyUs: busy.length ? median(busy) : undefined };
}

// Runs fn while a setImmediate ticker watches the event loop: the longest gap between two
// ticks is the longest time the store kept the loop from serving anything else.
async function watchEventLoop(fn) {
  let last = nowUs();
  let longestUs = 0;
  let running = true;
  const tick = () => {
    const t = nowUs();
    longestUs = Math.max(longestUs, t - last);
    last = t;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const start = nowUs();
  const value = await fn();
  running = false;
  const end = nowUs();
  return { value, totalUs: end - start, longestUs: Math.max(longestUs, end - last) };
}

// Cleanup with size/10 expired tokens on top of the size live ones, through the store's
// non-blocking variant where it has one (ours: cleanupExpiredTokensAsync, which yields
// between batches), else cleanupExpiredTokens.
async function measureCleanup(ctx) {
  const expired = Math.max(1, ctx.size / 10);
  const { peer } = ctx;
  const cleanup = peer.cleanupExpiredTokensAsync ? () => peer.cleanupExpiredTokensAsync() : () => peer.cleanupExpiredTokens();
  const rounds = [];
  for (let round = 0; round <= ctx.cleanupRuns; round++) {
    const seedStart = nowUs();
    await seed(ctx, data.tokenRows("ex", round * expired, expired, ctx.users, data.expiredAt()));
    const seedUs = nowUs() - seedStart;
    const { value: removed, totalUs, longestUs } = await watchEventLoop(cleanup);
    if (removed !== expired) throw new Error(`cleanup removed ${removed}, expected ${expired}`);
    const stats = await peer.getStats();
    if (stats.totalTokens !== ctx.size) throw new Error(`after cleanup getStats().totalTokens is ${stats.totalTokens}, expected ${ctx.size}`);
    if (!(await peer.getAccessToken(ctx.seeded(0).accessToken))) throw new Error("cleanup removed a live token");
    if (await peer.getAccessToken(data.token("ex", round * expired))) throw new Error("an expired token survived cleanup");
    if (round > 0) rounds.push({ totalUs, longestUs, seedUs }); // round 0 is the warm-up
  }
  const ms = (key) => median(rounds.map((r) => r[key])) / 1e3;
  return {
    expired, method: peer.cleanupExpiredTokensAsync ? "cleanupExpiredTokensAsync" : "cleanupExpiredTokens",
    totalMs: ms("totalUs"), longestBlockMs: ms("longestUs"), seedExpiredMs: ms("seedUs"), runs: rounds.length,
  };
}

// A SQLite peer's file and its -wal and -shm, where they are.
function removeDb(file) {
  for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(file + suffix, { force: true });
}

// One side of a trial: its options, with a PostgreSQL schema or a Redis key prefix of its own
// on the run's server, and a SQLite file of its own in the run's folder.
function sideOf(cfg, peer) {
  const side = { ...cfg, peer };
  if (cfg.pgUrl) side.schema = pgSide.schemaFor(peer, cfg.size);
  if (cfg.redisUrl) side.prefix = redisSide.prefixFor(peer, cfg.size);
  return { cfg: side, file: path.join(cfg.dir, `${peer}-${cfg.size}.db`) };
}

// What one side of a trial leaves behind, removed (before it opens and after it closes): its
// SQLite file, its PostgreSQL schema; the Redis server is emptied (every prefix on it).
async function discard({ cfg, file }) {
  removeDb(file);
  if (cfg.schema) await pgSide.dropSchema(cfg.pgUrl, cfg.schema);
  if (cfg.prefix) await redisSide.flush(cfg.redisUrl);
}

function fileBytes(file) {
  const size = (f) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  return { db: size(file), wal: size(`${file}-wal`) };
}

async function main() {
  const options = JSON.parse(process.argv[2]);
  // Each side's schema dropped, its prefix emptied, its file removed, before and after.
  const side = sideOf(options, options.peer);
  const { cfg, file } = side;
  const other = cfg.alternate && sideOf(cfg, cfg.alternate.peer);
  for (const s of [side, other]) if (s) await discard(s);

  const ctx = await openContext(cfg, file);
  const { peer, users } = ctx;
  if (other) return alternateSides(side, ctx, other);
  if (cfg.ops) return pairSide(side, ctx);
  ctx.watch = true;

  // The original Map module's reproduction does not follow the contract (peers/map-original.js).
  if (ctx.followsContract) await checkContract(peer);
  const rssBase = rssAfterGc();
  const rssFileBase = rssFile();
  log(`${cfg.peer} ${cfg.size}: seeding`);
  const seedStart = nowUs();
  await seed(ctx, ctx.liveRows());
  const seedMs = (nowUs() - seedStart) / 1e3;
  const rssSeeded = rssAfterGc();
  const rssFileSeeded = rssFile();
  const seededFiles = fileBytes(file);
  const seededPgBytes = cfg.pgUrl ? await pgSide.schemaBytes(cfg.pgUrl, cfg.schema) : undefined;
  const stats = await peer.getStats();
  if (stats.totalTokens !== cfg.size || stats.uniqueUsers !== users) throw new Error(`after seeding getStats() is ${JSON.stringify(stats)}`);
  log(`${cfg.peer} ${cfg.size}: seeded in ${(seedMs / 1e3).toFixed(1)} s, RSS +${((rssSeeded - rssBase) / 2 ** 20).toFixed(0)} MiB`);

  const idleLoopDelayMs = ctx.isAsync ? await idleLoopDelay() : undefined;
  const ops = {};
  for (const [name, op] of Object.entries(OPS)) {
    ops[name] = await measure(ctx, op);
    const { loopDelayMs, loopBusyUs, callBusyMs } = ops[name];
    const delay = loopDelayMs === undefined ? "" : `, event loop busy ${loopBusyUs.toFixed(1)} µs per call, ${(callBusyMs * 1e3).toFixed(0)} µs in one call at most, delayed ${loopDelayMs.toFixed(2)} ms at most`;
    log(`${cfg.peer} ${cfg.size}: ${op.label} ${ops[name].us.toFixed(2)} µs (batch ${ops[name].batch}${delay})`);
  }
  const cleanup = await measureCleanup(ctx);
  log(`${cfg.peer} ${cfg.size}: cleanup ${cleanup.totalMs.toFixed(1)} ms, longest block ${cleanup.longestBlockMs.toFixed(1)} ms`);
  await peer.close();
  const closedFiles = fileBytes(file);
  await discard(side);

  return {
    peer: cfg.peer, size: cfg.size, users, seeding: { ms: seedMs, bulk: Boolean(peer.seedTokens) && !peer.seedTokens.oneCallPerToken },
    rss: { baseline: rssBase, seeded: rssSeeded, aboveBaseline: rssSeeded - rssBase, fileAboveBaseline: rssFileSeeded - rssFileBase },
    files: { seeded: seededFiles, closed: closedFiles }, pgBytes: seededPgBytes, idleLoopDelayMs, ops, cleanup,
  };
}

// Seeds a side of a paired check and checks it holds cfg.size tokens; returns the ms it took.
async function seedChecked(ctx, size, side = "") {
  const seedStart = nowUs();
  await seed(ctx, ctx.liveRows());
  const seedMs = (nowUs() - seedStart) / 1e3;
  const stats = await ctx.peer.getStats();
  if (stats.totalTokens !== size) throw new Error(`${side}after seeding getStats() is ${JSON.stringify(stats)}`);
  return seedMs;
}

// One side of a paired check: seed, time cfg.ops only (no contract pass, no watched run, no
// cleanup), so that the two peers of a pair run close together in time.
async function pairSide(side, ctx) {
  const { cfg } = side;
  const seedMs = await seedChecked(ctx, cfg.size);
  const ops = {};
  for (const name of cfg.ops) {
    const { us, samples, batch } = await measure(ctx, OPS[name]);
    ops[name] = { us, samples, batch };
  }
  await ctx.peer.close();
  await discard(side);
  return { peer: cfg.peer, size: cfg.size, seedMs, ops };
}

// A paired check in one process (lib/pairs.js `oneProcess`, at 1M: the Redis and PostgreSQL
// peers, clients of the run's one server, under a key prefix or a schema each; the SQLite
// peers, a file each in the run's folder): the peer opened beside ours, both seeded once,
// then cfg.alternate.rounds rounds, each timing cfg.ops on both (ours first in the 1st, 3rd,
// … round, as pairOrder does for fresh pairs). Each round is a pair.
async function alternateSides(side, ours, other) {
  const { cfg } = side;
  const ctx = { ours, peer: await openContext(other.cfg, other.file) };
  const seedMs = {};
  for (const who of ["ours", "peer"]) seedMs[who] = [await seedChecked(ctx[who], cfg.size, `${who}: `)];
  const pairs = [];
  for (let i = 0; i < cfg.alternate.rounds; i++) {
    const pair = { ours: {}, peer: {} };
    for (const who of pairOrder(i, "ours", "peer")) {
      for (const name of cfg.ops) pair[who][name] = (await measure(ctx[who], OPS[name])).us;
    }
    pairs.push(pair);
  }
  for (const who of ["ours", "peer"]) await ctx[who].peer.close();
  for (const s of [side, other]) await discard(s);
  return { peer: cfg.peer, size: cfg.size, seedMs, pairs };
}

main().then(
  (result) => process.send({ ok: true, result }, () => process.exit(0)),
  (err) => process.send({ ok: false, error: err.stack || String(err) }, () => process.exit(1)),
);
