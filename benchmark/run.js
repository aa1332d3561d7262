#!/usr/bin/env node
"use strict";
// `npm run bench` (from the package root): installs this folder's dependencies if they are
// missing, starts a throwaway PostgreSQL server when a PostgreSQL peer is selected, runs
// every trial (competitor x store size) in a fresh child process, then the paired checks of
// the judged speed targets (lib/pairs.js), then the four-process PostgreSQL workload, and writes RESULTS.md and its chart, RESULTS.svg. `node benchmark/run.js --help` lists the options.
const { execFileSync, fork, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

// (pg itself is loaded only when a PostgreSQL peer runs, after ensureDependencies.)
const { POSTGRES_PEERS, schemaFor, dropSchema, startServer, serverVersion } = require("./lib/postgres");
const redisSide = require("./lib/redis");
const { pairGroups, pairOrder } = require("./lib/pairs");
const HERE = __dirname;
// label: the column's name; note: how the peer is written (statements, transactions, round
// trips per call), printed in RESULTS.md.
const PEERS = {
  "map-original": {
    label: "Map module",
    note: "the original server's tokenStorage.js as it behaves (peers/map-original.js reproduces it): four Maps; a store keeps the caller's objects, a get is one `Map.get` and an expiry check returning the stored record itself; no argument checks, no copies; one `setTimeout` per code as the original; its per-store `console.log` and 5-minute `setInterval` left out. It does not follow the contract (shared records, refresh tokens left behind), so it skips the contract pass; it passes the workloads' checks. Issue 18's memory targets are judged against it",
  },
  map: { label: "JS Map", note: "the same Maps made to follow the contract: arguments checked, scopes copied, a get returns a fresh object with `Date`s, a replaced or deleted token takes its refresh token along" },
  "sqlite3-async": { label: "async sqlite3", note: "the original SQLite design: `sqlite3` package, driver defaults (rollback journal, synchronous=FULL), each call awaited, one implicit transaction per statement: a store is three awaited statements (DELETE old refresh, INSERT OR REPLACE token, INSERT OR REPLACE refresh)", maxSize: 10_000 },
  "better-sqlite3": { label: "better-sqlite3", note: "synchronous better-sqlite3, WAL, synchronous=NORMAL; every statement prepared once at open and reused; a store is one `.immediate` transaction of three statements (DELETE old refresh, INSERT OR REPLACE token, INSERT OR REPLACE refresh); a get one cached SELECT; a code an INSERT, its consume one `DELETE … RETURNING`; getStats one SELECT of two COUNTs over indexes; cleanup one `.immediate` transaction of three DELETEs; SQLite's default page cache (2 MiB) and a memory map of 1 GiB (`PRAGMA mmap_size`, as ours: the tuning SQLite performance guides give; without it its get hit at 1M took a third longer, PROFILE.md \"SQLite at a million tokens\")" },
  "ours-memory": { label: "ours memory", note: "this package, `storage: \"memory\"`" },
  "ours-sqlite": { label: "ours SQLite", note: "this package, `storage: \"db\"`" },
  "ours-sqlite-nocounters": { label: "ours SQLite, no counters", note: "the same store on a file whose four counting triggers (getStats' counters) were dropped before it opened: what the counters cost a write. Its getStats counts the rows through better-sqlite3 instead (the counters go stale), so only its writes mean anything" },
  "ours-memory-sealed": { label: "ours memory, sealed", note: "this package, `storage: \"memory\"` with encryption keys (`encryptionKeys`, one key): the memory store keeps its tokens in clear in the process's memory, where the keys are, and seals what leaves it (a backup); its codes and pending logins are sealed. Against \"ours memory\": what keys add per get and per store (issue 19)" },
  "ours-sqlite-sealed": { label: "ours SQLite, sealed", note: "this package, `storage: \"db\"` with encryption keys (`encryptionKeys`, one key): tokens kept under their keyed digests, API keys and links sealed (AES-256-GCM where the CPU has AES instructions). Against \"ours SQLite\": what sealing adds per get and per store (issue 19)" },
  "ours-postgres": { label: "ours PostgreSQL", note: "this package, `storage: \"postgres\"`, called synchronously" },
  "ours-postgres-promise": { label: "ours PostgreSQL Promise", note: "the same store through its Promise API (`store.promises`), each call awaited" },
  "ours-redis": { label: "ours Redis", note: "this package, `storage: \"redis\"`, called synchronously" },
  redis: { label: "redis", note: "the `redis` npm client (node-redis) as a user writes it: one client, each call awaited, one round trip per call where the call allows it: a store with its refresh token is one MULTI (the token's hash, its refresh key, the expiry and per-user sorted sets getStats counts), a get one HGETALL (expiry checked in JS), a code one MULTI (SET with PX, the user's set) and its consume one GETDEL (PKCE checked in JS); getStats one MULTI of two ZCOUNTs; a refresh token is honoured while its token's hash names it (no read before a write)" },
  pg: { label: "pg", note: "node-postgres (`pg`) with a Pool, each call awaited, one round trip per call, every statement a named prepared statement (`{ name, text, values }`, planned once per connection): a store with its refresh token is one statement of CTEs (DELETE the old refresh row, upsert the token row, upsert the refresh row); a get one SELECT; a code one INSERT and its consume one `DELETE … RETURNING` (PKCE checked in JS); getStats one SELECT of two COUNTs; cleanup one statement of three DELETEs; no BEGIN … COMMIT anywhere (a single statement is its own transaction). Named statements need a session pooler or none" },
};
const HELP = `usage: node benchmark/run.js [--quick] [--sizes=10000,1000000] [--peers=${Object.keys(PEERS).join(",")}]
                             [--runs=5] [--target-ms=200] [--pairs=5] [--out=FILE]
  --quick       10,000 tokens only, 3 runs of 50 ms each, 3 pairs (a few minutes); writes RESULTS.quick.md
  --sizes       store sizes (tokens); async sqlite3 runs at 10,000 or fewer only
  --peers       competitors to run; the Redis ones (${redisSide.REDIS_PEERS.join(", ")}) on a throwaway
                redis-server of the run's own (scripts/redis.js); the PostgreSQL ones (${POSTGRES_PEERS.join(", ")}) also run
                the four-process workload, on a server of their own (PostgreSQL's binaries are
                found as the tests find them: PG_BIN, pg_config, /usr/lib/postgresql/*/bin, PATH)
  --runs        timed runs per op (the median is reported), after calibration and a warm-up
  --target-ms   how long one timed run of an op lasts
  --pairs       pairs of the paired check of each judged speed target (ours and its peer in
                fresh processes, alternately; judged on the median pair's ratio); 0: none
  --out         where to write the report (default RESULTS.md for a full run, every other
                option at its default; else RESULTS.quick.md)
Each option can also be set in the environment: BENCH_QUICK=1, BENCH_SIZES, BENCH_PEERS, BENCH_RUNS, BENCH_TARGET_MS, BENCH_PAIRS, BENCH_OUT.`;

function options(argv) {
  const flag = (name) => {
    const arg = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (arg !== undefined) return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : "1";
    return process.env[`BENCH_${name.toUpperCase().replace("-", "_")}`];
  };
  const unknown = argv.filter((a) => !/^--(quick|sizes|peers|runs|target-ms|pairs|out)(=|$)/.test(a));
  if (argv.includes("--help") || unknown.length) {
    console.log(HELP);
    process.exit(unknown.length && !argv.includes("--help") ? 2 : 0);
  }
  const quick = ["1", "true"].includes(flag("quick"));
  const list = (value, fallback) => (value ? value.split(",").map((s) => s.trim()).filter(Boolean) : fallback);
  const sizes = list(flag("sizes"), quick ? ["10000"] : ["10000", "1000000"]).map(Number);
  const peers = list(flag("peers"), Object.keys(PEERS));
  for (const p of peers) if (!PEERS[p]) throw new Error(`unknown peer ${p}; known: ${Object.keys(PEERS).join(", ")}`);
  if (!sizes.every((n) => Number.isInteger(n) && n >= 10)) throw new Error(`--sizes wants whole numbers of at least 10, got ${sizes}`);
  // Only a run with every default is the full run whose report is RESULTS.md: fewer sizes,
  // peers, runs or pairs write RESULTS.quick.md unless --out says otherwise.
  const full = !quick && ["sizes", "peers", "runs", "target-ms", "pairs"].every((name) => flag(name) === undefined);
  const pairs = Number(flag("pairs") ?? (quick ? 3 : 5));
  if (!Number.isInteger(pairs) || pairs < 0) throw new Error(`--pairs wants a whole number, got ${flag("pairs")}`);
  return {
    pairs,
    quick, sizes, peers, full,
    runs: Number(flag("runs") ?? (quick ? 3 : 5)),
    targetMs: Number(flag("target-ms") ?? (quick ? 50 : 200)),
    out: path.resolve(HERE, flag("out") ?? (full ? "RESULTS.md" : "RESULTS.quick.md")),
  };
}

// better-sqlite3@12 and sqlite3@6 build from source here; .npmrc points node-gyp at /usr.
function ensureDependencies() {
  const missing = ["better-sqlite3", "sqlite3", "pg", "redis"].filter((name) => {
    try {
      require.resolve(`${name}/package.json`, { paths: [HERE] });
      return false;
    } catch {
      return true;
    }
  });
  if (!missing.length) return;
  const args = fs.existsSync(path.join(HERE, "package-lock.json")) ? ["ci"] : ["install"];
  console.log(`benchmark: ${missing.join(", ")} missing; running npm ${args[0]} in ${HERE} (builds native modules, a few minutes)`);
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", args, { cwd: HERE, stdio: "inherit" });
  // This process looked for them before they were there, and Node keeps what it did not find
  // (a missing package.json stays missing: `Cannot find module 'redis'` later): the run goes
  // on in a fresh process, which finds them.
  const again = spawnSync(process.execPath, process.argv.slice(1), { stdio: "inherit" });
  process.exit(again.status ?? 1);
}

function oursAvailable() {
  try {
    const { PACKAGE } = require("./peers/ours");
    return typeof require(PACKAGE).TokenStorage === "function" ? null : "the package exports no TokenStorage";
  } catch (err) {
    return `the package does not load (${err.message.split("\n")[0]}); run \`npm run build\` in the package root`;
  }
}

// The run's Redis server, if a Redis peer is selected (main): { peers, server, version, missing }.
const redis = { peers: [] };

// `extra`: { ops, runs } for one side of a paired check (trial.js times those ops only).
function runTrial(peer, size, opts, dir, pgUrl, extra = {}) {
  return new Promise((resolve, reject) => {
    const cfg = {
      peer, size, runs: opts.runs, targetMs: opts.targetMs, dir,
      pgUrl: POSTGRES_PEERS.includes(peer) ? pgUrl : undefined, redisUrl: redisSide.REDIS_PEERS.includes(peer) ? redis.server?.url : undefined, ...extra,
    };
    const child = fork(path.join(HERE, "trial.js"), [JSON.stringify(cfg)], {
      execArgv: ["--expose-gc"],
      env: { ...process.env, TOKEN_STORAGE_LOG: "warn" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let answer;
    child.on("message", (m) => (answer = m));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (answer?.ok) resolve(answer.result);
      else reject(new Error(`${peer} at ${size}: ${answer?.error ?? `exited with ${signal ?? code}`}`));
    });
  });
}

// Timed runs per op in a pair's process: fewer than a trial's, so a pair stays short.
const PAIR_RUNS = 3;

// A pair's (or round's) times, as it finishes.
const logPair = (what, i, ops, pair) => console.log(`benchmark: ${what} ${i + 1}: ${ops.map((op) => `${op} ${pair.ours[op].toFixed(2)} vs ${pair.peer[op].toFixed(2)} µs`).join(", ")}`);

// The paired checks (lib/pairs.js): for each group (ours, its peer, a size, the judged ops),
// opts.pairs pairs of fresh processes, ours and the peer one after the other (the order
// swapped every other pair); a `oneProcess` group, opts.pairs rounds in one process (trial.js
// alternateSides). A pair whose process fails is reported and left out.
async function runPairs(groups, opts, dir, pgUrl, failures) {
  const done = [];
  for (const group of groups) {
    const entry = { ...group, runs: Math.min(opts.runs, PAIR_RUNS), pairs: [], seedMs: { ours: [], peer: [] } };
    console.log(`benchmark: ${opts.pairs} ${group.oneProcess ? "rounds in one process" : "pairs"}, ${PEERS[group.ours].label} and ${PEERS[group.peer].label} alternately at ${group.size.toLocaleString("en-US")} tokens (${group.ops.join(", ")})`);
    const t0 = Date.now();
    if (group.oneProcess) {
      try {
        const r = await runTrial(group.ours, group.size, opts, dir, pgUrl, { ops: group.ops, runs: entry.runs, alternate: { peer: group.peer, rounds: opts.pairs } });
        entry.pairs = r.pairs;
        entry.seedMs = r.seedMs;
        r.pairs.forEach((pair, i) => logPair("round", i, group.ops, pair));
      } catch (err) {
        failures.push(`alternated rounds: ${err.message}`);
        console.error(`benchmark: FAILED alternated rounds: ${err.message}`);
      }
    } else for (let i = 0; i < opts.pairs; i++) {
      const pair = {};
      try {
        for (const peer of pairOrder(i, group.ours, group.peer)) {
          const side = peer === group.ours ? "ours" : "peer";
          const r = await runTrial(peer, group.size, opts, dir, pgUrl, { ops: group.ops, runs: entry.runs });
          pair[side] = Object.fromEntries(Object.entries(r.ops).map(([op, m]) => [op, m.us]));
          entry.seedMs[side].push(r.seedMs);
        }
        entry.pairs.push(pair);
        logPair("pair", i, group.ops, pair);
      } catch (err) {
        failures.push(`pair ${i + 1}: ${err.message}`);
        console.error(`benchmark: FAILED pair ${i + 1}: ${err.message}`);
      }
    }
    entry.seconds = (Date.now() - t0) / 1e3;
    console.log(`benchmark: ${entry.pairs.length} pairs in ${entry.seconds.toFixed(0)} s`);
    done.push(entry);
  }
  return done;
}

// A child of concurrent.js; answer resolves with its result, onReady runs at its "ready".
function forkConcurrent(cfg, onReady) {
  const child = fork(path.join(HERE, "concurrent.js"), [JSON.stringify(cfg)], {
    env: { ...process.env, TOKEN_STORAGE_LOG: "warn" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const answer = new Promise((resolve, reject) => {
    let reply;
    child.on("message", (m) => {
      if (m.ready) onReady?.();
      else reply = m;
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (reply?.ok) resolve(reply.result);
      else reject(new Error(`${cfg.peer}, ${cfg.role}${cfg.worker === undefined ? "" : ` ${cfg.worker}`}: ${reply?.error ?? `exited with ${signal ?? code}`}`));
    });
  });
  return { child, answer };
}

// How many tokens expire at once in stats-burst.js's check.
const BURST = 100_000;

// stats-burst.js in a child process: its checks ({ kind, n, small, burst, pass } per store).
function runStatsBurst(kinds, dir, pgUrl) {
  const out = path.join(dir, "stats-burst.json");
  return new Promise((resolve, reject) => {
    const child = fork(path.join(HERE, "stats-burst.js"), [String(BURST), kinds.join(","), "--json", out], {
      env: { ...process.env, TOKEN_STORAGE_LOG: "warn", ...(pgUrl ? { BENCH_PG_URL: pgUrl } : {}) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0 && fs.existsSync(out)) resolve(JSON.parse(fs.readFileSync(out, "utf8")));
      else reject(new Error(`stats-burst.js exited with ${signal ?? code}`));
    });
  });
}

const quantile = (xs, q) => {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

// The four-process workload for one PostgreSQL peer: seed a schema of its own, start the
// processes, let them go at once when all are warmed up, and sum what they did.
async function runConcurrent(peer, workload, pgUrl) {
  const cfg = { peer, pgUrl, schema: schemaFor(peer, "procs"), size: workload.size, seconds: workload.seconds };
  await dropSchema(pgUrl, cfg.schema);
  try {
    await forkConcurrent({ ...cfg, role: "seed" }).answer;
    let ready = 0;
    let go;
    const allReady = new Promise((resolve) => (go = resolve));
    const workers = Array.from({ length: workload.procs }, (_, worker) =>
      forkConcurrent({ ...cfg, role: "worker", worker }, () => ++ready === workload.procs && go()),
    );
    let done;
    try {
      // Resolves when all are ready, or rejects as soon as one fails (before "go" or after).
      await Promise.race([allReady, Promise.all(workers.map((w) => w.answer))]);
      for (const w of workers) w.child.send("go");
      done = await Promise.all(workers.map((w) => w.answer));
    } catch (err) {
      // The others would wait for "go" for ever.
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill();
      throw err;
    }
    const all = done.flatMap((d) => [...d.storeUs, ...d.getUs]);
    return {
      peer, procs: workload.procs, seconds: workload.seconds, size: workload.size,
      callsPerS: done.reduce((sum, d) => sum + d.calls / d.elapsedS, 0),
      storeMedianUs: quantile(done.flatMap((d) => d.storeUs), 0.5),
      getMedianUs: quantile(done.flatMap((d) => d.getUs), 0.5),
      p99Us: quantile(all, 0.99),
      perProcess: done.map((d) => ({ worker: d.worker, calls: d.calls, elapsedS: d.elapsedS })),
    };
  } finally {
    await dropSchema(pgUrl, cfg.schema).catch(() => {});
  }
}

async function main() {
  const opts = options(process.argv.slice(2));
  ensureDependencies();
  const { machine, load, versions, addonBuild } = require("./lib/machine");
  const { render } = require("./lib/report");
  const { render: renderChart } = require("./lib/chart");

  const oursMissing = oursAvailable();
  const skipped = [];
  const plan = [];
  // One throwaway PostgreSQL server for the whole run, if a PostgreSQL peer is selected.
  const postgres = { peers: opts.peers.filter((p) => POSTGRES_PEERS.includes(p) && !(p.startsWith("ours") && oursMissing)) };
  if (postgres.peers.length) {
    try {
      const server = startServer();
      if (server.missing) postgres.missing = server.missing;
      else {
        postgres.server = server;
        postgres.version = await serverVersion(server.url);
        console.log(`benchmark: PostgreSQL ${postgres.version} started for this run`);
      }
    } catch (err) {
      postgres.server?.stop();
      postgres.server = undefined;
      postgres.missing = `the PostgreSQL server did not start: ${err.message.split("\n")[0]}`;
    }
  }
  // One throwaway redis-server for the whole run, if a Redis peer is selected.
  redis.peers = opts.peers.filter((p) => redisSide.REDIS_PEERS.includes(p) && !(p.startsWith("ours") && oursMissing));
  if (redis.peers.length) {
    try {
      const server = redisSide.startServer();
      if (server.missing) redis.missing = server.missing;
      else {
        redis.server = server;
        redis.version = await redisSide.serverVersion(server.url);
        console.log(`benchmark: Redis ${redis.version} started for this run`);
      }
    } catch (err) {
      redis.server?.stop();
      redis.server = undefined;
      redis.missing = `the Redis server did not start: ${err.message.split("\n")[0]}`;
    }
  }
  for (const size of opts.sizes) {
    for (const peer of opts.peers) {
      if (peer.startsWith("ours") && oursMissing) skipped.push(`${PEERS[peer].label}: ${oursMissing}`);
      else if (POSTGRES_PEERS.includes(peer) && postgres.missing) skipped.push(`${PEERS[peer].label}: ${postgres.missing}`);
      else if (redisSide.REDIS_PEERS.includes(peer) && redis.missing) skipped.push(`${PEERS[peer].label}: ${redis.missing}`);
      else if (size > (PEERS[peer].maxSize ?? Infinity)) skipped.push(`${PEERS[peer].label} at ${size.toLocaleString("en-US")} tokens: not run; above ${PEERS[peer].maxSize.toLocaleString("en-US")}, seeding it and timing it one awaited call at a time would take longer than the rest of the run`);
      else plan.push({ peer, size });
    }
  }
  const pgUrl = postgres.server?.url;
  const workload = { procs: 4, seconds: opts.quick ? 2 : 5, size: 10_000, results: [] };
  const dir = fs.mkdtempSync(path.join(HERE, ".tmp-"));
  const started = Date.now();
  const loadBefore = load();
  const addonBefore = addonBuild();
  const results = [];
  let burst;
  let pairs = [];
  const failures = [];
  const trialLoads = [];
  try {
    for (const { peer, size } of plan) {
      console.log(`benchmark: ${PEERS[peer].label} with ${size.toLocaleString("en-US")} tokens`);
      trialLoads.push(os.loadavg()[0]);
      try {
        results.push(await runTrial(peer, size, opts, dir, pgUrl));
      } catch (err) {
        failures.push(err.message);
        console.error(`benchmark: FAILED ${err.message}`);
      }
    }
    // The judged speed targets again, ours and its peer alternately in short processes.
    const groups = opts.pairs ? pairGroups(plan.map((p) => p.peer), opts.sizes) : [];
    if (groups.length) {
      trialLoads.push(os.loadavg()[0]);
      pairs = await runPairs(groups.filter((g) => plan.some((p) => p.peer === g.ours && p.size === g.size) && plan.some((p) => p.peer === g.peer && p.size === g.size)), opts, dir, pgUrl, failures);
    }
    // getStats right after a burst of expiries (stats-burst.js), for each of ours' stores run.
    const burstKinds = [["ours-memory", "memory"], ["ours-sqlite", "db"], ["ours-postgres", "postgres"]]
      .filter(([peer, kind]) => opts.peers.includes(peer) && !oursMissing && (kind !== "postgres" || pgUrl))
      .map(([, kind]) => kind);
    if (burstKinds.length) {
      console.log(`benchmark: getStats after ${BURST.toLocaleString("en-US")} tokens expire within a second (${burstKinds.join(", ")})`);
      trialLoads.push(os.loadavg()[0]);
      try {
        burst = await runStatsBurst(burstKinds, dir, pgUrl);
      } catch (err) {
        failures.push(`getStats after a burst of expiries: ${err.message}`);
        console.error(`benchmark: FAILED getStats after a burst of expiries: ${err.message}`);
      }
    }
    for (const peer of pgUrl ? postgres.peers : []) {
      console.log(`benchmark: ${PEERS[peer].label}, ${workload.procs} processes at once for ${workload.seconds} s`);
      trialLoads.push(os.loadavg()[0]);
      try {
        workload.results.push(await runConcurrent(peer, workload, pgUrl));
      } catch (err) {
        failures.push(`${workload.procs} processes: ${err.message}`);
        console.error(`benchmark: FAILED ${workload.procs} processes: ${err.message}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    postgres.server?.stop();
    redis.server?.stop();
  }
  const meta = {
    date: new Date().toISOString(), durationS: (Date.now() - started) / 1e3, loadBefore, loadAfter: load(),
    loadMaxAtTrialStart: Math.max(0, ...trialLoads),
    addon: { before: addonBefore, after: addonBuild() },
    machine: machine(), versions: versions(), opts, peers: PEERS, skipped: [...new Set(skipped)], failures,
    postgres: postgres.peers.length ? { version: postgres.version, missing: postgres.missing } : undefined,
    redis: redis.peers.length ? { version: redis.version, missing: redis.missing } : undefined,
    concurrent: pgUrl ? workload : undefined,
    burst, pairs,
  };
  // The chart beside the report (RESULTS.svg beside RESULTS.md), linked from it.
  const chartFile = opts.out.replace(/\.md$/, "") + ".svg";
  meta.chart = path.relative(path.dirname(opts.out), chartFile);
  fs.writeFileSync(chartFile, renderChart(results, meta));
  fs.writeFileSync(opts.out, render(results, meta));
  fs.writeFileSync(opts.out.replace(/\.md$/, ".json"), `${JSON.stringify({ meta, results }, null, 1)}\n`);
  console.log(`benchmark: ${plan.length} trials in ${(meta.durationS / 60).toFixed(1)} min; wrote ${path.relative(process.cwd(), opts.out)}`);
  if (meta.addon.before.hash !== meta.addon.after.hash) console.error("benchmark: WARNING the addon was rebuilt during the run; rerun it");
  if (failures.length) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
