"use strict";
// Renders RESULTS.md from the trials' numbers: one side-by-side table, the issues' targets
// judged against this run, the four-process PostgreSQL workload, and how the run was made.
const { OPS } = require("./workloads");

const K = 10_000;
const M = 1_000_000;
const MiB = 2 ** 20;

const sizeLabel = (n) => (n >= M && n % M === 0 ? `${n / M}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n));
const num = (x, digits) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
// Three significant figures at most, thousands separated.
function fmt(x) {
  if (x === undefined || x === null || Number.isNaN(x)) return "–";
  const abs = Math.abs(x);
  if (abs >= 100) return num(x, 0);
  if (abs >= 10) return num(x, 1);
  if (abs >= 0.1) return num(x, 2);
  return num(x, 3);
}
const times = (x) => `${fmt(x)}×`;
const maxOf = (xs) => (xs.some((x) => x !== undefined) ? Math.max(...xs.filter((x) => x !== undefined)) : undefined);
// The longest event-loop delay over an awaited peer's watched runs, and the op it was seen in.
function loopDelay(r) {
  let worst;
  for (const [name, op] of Object.entries(r?.ops ?? {})) {
    if (op.loopDelayMs !== undefined && !(op.loopDelayMs <= worst?.ms)) worst = { ms: op.loopDelayMs, op: name };
  }
  return worst;
}

const ROWS = [
  ...Object.entries(OPS).map(([name, op]) => ({ label: `${op.label}, µs`, value: (r) => r.ops[name]?.us })),
  { label: "cleanup, 10% expired: total, ms", value: (r) => r.cleanup.totalMs },
  { label: "cleanup: longest event-loop block, ms", value: (r) => r.cleanup.longestBlockMs },
  { label: "longest event-loop delay, watched run of each op, msᵇ", value: (r) => loopDelay(r)?.ms },
  { label: "the same over 1 s of an idle loop in that process, msᵇ", value: (r) => r.idleLoopDelayMs },
  { label: "event loop busy per timed call, worst op, µsᵇ", value: (r) => maxOf(Object.values(r.ops).map((op) => op.loopBusyUs)) },
  { label: "seeding the store, s", value: (r) => r.seeding.ms / 1e3, note: (r) => (r.seeding.bulk ? "" : "ᵃ") },
  { label: "RSS above baseline after seeding, MiB", value: (r) => r.rss.aboveBaseline / MiB },
  { label: "file size after seeding (db + wal), MiB", value: (r) => (r.files.seeded.db ? (r.files.seeded.db + r.files.seeded.wal) / MiB : undefined) },
  { label: "PostgreSQL tables + indexes after seeding, MiB", value: (r) => (r.pgBytes ? r.pgBytes / MiB : undefined) },
];

function resultsTable(results, meta) {
  const columns = Object.keys(meta.peers).flatMap((peer) => meta.opts.sizes.map((size) => results.find((r) => r.peer === peer && r.size === size)).filter(Boolean));
  const head = `| | ${columns.map((r) => `${meta.peers[r.peer].label} ${sizeLabel(r.size)}`).join(" | ")} |`;
  const rule = `|---|${columns.map(() => "---:").join("|")}|`;
  // A row no column has a number for (the PostgreSQL size in a run without PostgreSQL) is left out.
  const body = ROWS.filter((row) => columns.some((r) => row.value(r) !== undefined)).map((row) => `| ${row.label} | ${columns.map((r) => fmt(row.value(r)) + (row.note?.(r) ?? "")).join(" | ")} |`);
  return [head, rule, ...body].join("\n");
}

// Each target: a line of the issue, judged on this run (null: not measured in this run).
function targets(results) {
  const at = (peer, size) => results.find((r) => r.peer === peer && r.size === size);
  const us = (peer, size, op) => at(peer, size)?.ops[op]?.us;
  const rows = [];
  const add = (target, measured, pass) => rows.push({ target, measured, pass });
  const judge = (target, a, b, f, describe) => {
    if (a === undefined || b === undefined) add(target, "not measured", null);
    else add(target, describe(a, b), f(a, b));
  };

  for (const size of [K, M]) {
    for (const op of ["store", "getHit", "code"]) {
      judge(`SQLite store ≥ 2× faster than better-sqlite3: ${OPS[op].label}, ${sizeLabel(size)}`, us("better-sqlite3", size, op), us("ours-sqlite", size, op),
        (b, o) => b / o >= 2, (b, o) => `${fmt(o)} vs ${fmt(b)} µs: ${times(b / o)}`);
    }
  }
  for (const op of ["store", "getHit", "getMiss", "code", "getStats"]) {
    judge(`SQLite store per-call cost at 1M within 2× of 10k: ${OPS[op].label}`, us("ours-sqlite", K, op), us("ours-sqlite", M, op),
      (a, b) => b / a <= 2, (a, b) => `${fmt(b)} vs ${fmt(a)} µs: ${times(b / a)}`);
  }
  for (const op of ["store", "getHit", "code"]) {
    judge(`SQLite store ≥ 50× faster than async sqlite3: ${OPS[op].label}, 10k`, us("sqlite3-async", K, op), us("ours-sqlite", K, op),
      (a, o) => a / o >= 50, (a, o) => `${fmt(o)} vs ${fmt(a)} µs: ${times(a / o)}`);
  }
  for (const peer of ["ours-memory", "ours-sqlite"]) {
    const name = peer === "ours-memory" ? "memory" : "SQLite";
    const v = us(peer, M, "getStats");
    add(`getStats under 20 µs at 1M: ${name} store`, v === undefined ? "not measured" : `${fmt(v)} µs`, v === undefined ? null : v < 20);
    for (const size of [K, M]) {
      const c = at(peer, size)?.cleanup;
      add(`cleanup never blocks the event loop > 10 ms: ${name} store, ${sizeLabel(size)}`, c ? `longest block ${fmt(c.longestBlockMs)} ms` : "not measured", c ? c.longestBlockMs <= 10 : null);
      const b = at("better-sqlite3", size)?.cleanup;
      const rate = (x) => x.expired / (x.totalMs / 1e3);
      judge(`cleanup throughput ≥ better-sqlite3: ${name} store, ${sizeLabel(size)}`, b, c, (bb, cc) => rate(cc) >= rate(bb),
        (bb, cc) => `${fmt(rate(cc))} vs ${fmt(rate(bb))} tokens/s`);
    }
  }
  judge("memory store get hit within 2× of JS Map at 1M", us("map", M, "getHit"), us("ours-memory", M, "getHit"),
    (m, o) => o / m <= 2, (m, o) => `${fmt(o)} vs ${fmt(m)} µs: ${times(o / m)}`);
  judge("memory store RSS at most half of JS Map's at 1M", at("map", M)?.rss.aboveBaseline, at("ours-memory", M)?.rss.aboveBaseline,
    (m, o) => o <= m / 2, (m, o) => `${fmt(o / MiB)} vs ${fmt(m / MiB)} MiB: ${fmt((100 * o) / m)}%`);
  // PostgreSQL: ours against pg's awaited round trips, on the same server.
  for (const [peer, name] of [["ours-postgres", "sync calls no slower than"], ["ours-postgres-promise", "Promise API at least as fast as"]]) {
    for (const size of [K, M]) {
      for (const op of Object.keys(OPS)) {
        judge(`PostgreSQL ${name} pg: ${OPS[op].label}, ${sizeLabel(size)}`, us("pg", size, op), us(peer, size, op),
          (g, o) => o <= g, (g, o) => `${fmt(o)} vs ${fmt(g)} µs: ${times(g / o)}`);
      }
    }
  }
  for (const size of [K, M]) {
    const r = at("ours-postgres-promise", size);
    const worst = loopDelay(r);
    add(`PostgreSQL Promise API never blocks the event loop > 1 ms, ${sizeLabel(size)}`,
      worst ? `longest delay ${fmt(worst.ms)} ms (${OPS[worst.op].label}); an idle loop in that process: ${fmt(r.idleLoopDelayMs)} ms;`
        + ` loop busy ${fmt(maxOf(Object.values(r.ops).map((op) => op.loopBusyUs)))} µs per call at most` : "not measured",
      worst ? worst.ms <= 1 : null);
  }
  return rows;
}

// The four-process workload (run.js runConcurrent, concurrent.js), one row per peer.
function concurrentSection(meta) {
  const w = meta.concurrent;
  if (!w) return [];
  const rows = w.results.map((r) => `| ${meta.peers[r.peer].label} | ${fmt(r.callsPerS)} | ${fmt(r.storeMedianUs)} | ${fmt(r.getMedianUs)} | ${fmt(r.p99Us)} |`);
  return [
    `## PostgreSQL: ${w.procs} processes at once`,
    "",
    `${w.procs} processes on one schema of ${w.size.toLocaleString("en-US")} seeded tokens, each alternating storeAccessToken (a new token with its refresh token)`
      + ` and getAccessToken (a seeded token) for ${w.seconds} s, one call at a time (ours synchronously, the others awaited);`
      + " all start together once each has warmed up. Calls per second summed over the processes; latencies over every call of every process, µs.",
    "",
    "| | calls/s, all processes | store, median µs | get, median µs | any call, p99 µs |",
    "|---|---:|---:|---:|---:|",
    ...(rows.length ? rows : ["| (no peer finished) | – | – | – | – |"]),
    "",
  ];
}

function render(results, meta) {
  const { machine: m, versions: v, opts } = meta;
  const t = targets(results);
  const verdict = (pass) => (pass === null ? "–" : pass ? "**pass**" : "**MISS**");
  const judged = t.filter((r) => r.pass !== null);
  const lines = [
    "# Benchmark results",
    "",
    `Generated by \`${opts.full ? "npm run bench" : `node benchmark/run.js ${process.argv.slice(2).join(" ")}`.trim()}\` on ${meta.date.slice(0, 10)}`
      + ` (${meta.date.slice(11, 16)} UTC); the run took ${fmt(meta.durationS / 60)} min.`,
    opts.full ? "" : "\n**A partial run** (quick mode or a subset of sizes or competitors): the committed RESULTS.md is a full run.\n",
    "## Machine",
    "",
    `- ${m.cpu}, ${m.cores} cores, ${fmt(m.ramGiB)} GiB RAM; ${m.os}`,
    `- Node ${m.node}`,
    `- Load average (1, 5, 15 min) before the run: ${meta.loadBefore}; after: ${meta.loadAfter};`
      + ` highest 1-min load seen at the start of a trial: ${fmt(meta.loadMaxAtTrialStart)} (a trial itself keeps about one core busy)`,
    `- Ours: addon build ${meta.addon.before.hash} of ${meta.addon.before.built?.slice(0, 16).replace("T", " ") ?? "?"} UTC`
      + (meta.addon.before.hash === meta.addon.after.hash ? ", the same build throughout the run"
        : `; **rebuilt during the run** (now ${meta.addon.after.hash}): the ours columns may mix two builds, rerun`),
    `- SQLite: ours ${v.ours.sqlite} (${v.ours.source}), package ${v.ours.version};`
      + ` better-sqlite3 ${v["better-sqlite3"].version} with SQLite ${v["better-sqlite3"].sqlite};`
      + ` sqlite3 ${v.sqlite3.version} with SQLite ${v.sqlite3.sqlite}`,
    ...(meta.postgres
      ? [meta.postgres.version
        ? `- PostgreSQL: server ${meta.postgres.version}, a throwaway local cluster started for this run (scripts/postgres.js: Unix socket, fsync=off), a fresh schema per trial; pg ${v.pg.version}`
        : `- PostgreSQL: not measured, ${meta.postgres.missing}`]
      : []),
    "",
    "## Results",
    "",
    `Medians of ${opts.runs} timed runs of about ${opts.targetMs} ms each (after calibration and a warm-up), µs per call.`
      + " Columns: competitor and number of live tokens in the store.",
    "",
    resultsTable(results, meta),
    "",
    "ᵃ seeded through `storeAccessToken`, one call per token (the JS Map has no bulk load; the SQL peers load in one transaction, ours through `storeAccessTokens`, one transaction per 20,000 rows).",
    ...(results.some((r) => loopDelay(r))
      ? ["", "ᵇ awaited peers only (a synchronous peer holds the loop for each whole call). Longest delay: how late a 1 ms timer (`perf_hooks.monitorEventLoopDelay`) fired at worst, less its 1 ms period, during one more run of each op after its timed runs, of the same size and not timed (the timer slows awaited calls on a VM, so it stays out of the timed runs); the worst op's. It sees blocks of about 1 ms and longer, and also the machine's own hiccups (stolen time on a VM, libuv's millisecond timers): the idle row is the same measure over a second in which the process did nothing, before the ops. Busy per call: the time the loop was not waiting for I/O (`performance.eventLoopUtilization`) during a timed run, over its calls (median of the runs; the worst op's; a code call is a store and a consume), which timer granularity does not blur."]
      : []),
    "",
    ...meta.skipped.map((s) => `- Not measured: ${s}`),
    ...meta.failures.map((f) => `- **FAILED**: ${f}`),
    "",
    ...concurrentSection(meta),
    "## Targets (issue 4; PostgreSQL's from its own issue), judged on this run",
    "",
    `${judged.filter((r) => r.pass).length} of ${judged.length} judged targets pass${t.length > judged.length ? `; ${t.length - judged.length} not measured in this run` : ""}.`,
    "",
    "| target | measured (ours vs theirs) | result |",
    "|---|---|---|",
    ...t.map((r) => `| ${r.target} | ${r.measured} | ${verdict(r.pass)} |`),
    "",
    "Where the time goes, and what bounds the targets that are missed: [PROFILE.md](PROFILE.md).",
    "",
    "## What was measured",
    "",
    ...Object.entries(meta.peers).map(([id, p]) => `- **${p.label}** ([peers/${id}.js](peers/${id}.js)): ${p.note}.`),
    "- Every trial runs in a fresh Node process. It first runs an untimed pass over the contract (PKCE S256 test vector, single-use codes, expiry on read, refresh tokens, revocation, deleteUserTokens, TypeErrors): a wrong peer fails instead of getting a number (the Map module excepted, see below).",
    "- The store is then seeded with N live tokens (random-looking 64-hex tokens, each with a refresh token; one user per ten tokens). Each op is calibrated, warmed up, then timed over several runs; its inputs are built before the clock starts and every result is checked after it stops (get hit returns the stored apiKey, get miss returns null, a stored token and its refresh token read back, a consumed code comes back once and then null, getStats counts exactly N tokens and N/10 users).",
    "- Every peer but the Map module follows the contract, so a get returns a fresh object with `Date`s (the JS Map peer copies its record). The Map module is the original server's module as it behaves: it returns the stored record itself, which is faster and would let a caller change the store; it is there because issue 18 sets the memory store's targets against it.",
    "- get hit, uniform: each get reads a seeded token in a scattered order over the whole store. get hit, hot mix: 90 % of the gets read one of 2,000 hot tokens (the clients active right now), 10 % any seeded token, the choice hashed from the call's index so every peer reads the same sequence.",
    "- store: a new token with a refresh token (tokens stored by a run are read back and deleted untimed, so the store keeps its size). code store+consume: storeAuthorizationCode plus consumeAuthorizationCode with an S256 verifier, per pair.",
    "- cleanup: N/10 expired tokens (with refresh tokens) are added, then one cleanup removes them; ours runs `cleanupExpiredTokensAsync` with its default batch size (it works in bounded batches and does not hold the event loop between them), the others `cleanupExpiredTokens`; at 1M the median of 3 such runs. The longest event-loop block is the longest gap seen by a setImmediate ticker during the cleanup (async sqlite3 works on libuv's thread pool, so it blocks little but takes long). Nothing else writes during the cleanup: a write from the main thread that meets a batch's lock waits for it (see PROFILE.md).",
    "- RSS: resident set size after seeding minus before, both after a forced GC (for PostgreSQL, the Node process only; the server's memory is not counted). File size: the database plus its WAL right after seeding.",
    ...(meta.postgres
      ? [
        "- PostgreSQL: every PostgreSQL trial gets a schema of its own on one local server (a Unix socket, so a round trip costs no network), dropped after it. Ours sends a call's statements in one round trip; so does pg, one named prepared statement per call (a store with its refresh token is one statement of CTEs; a code store+consume is an INSERT then a `DELETE … RETURNING`, two calls); its getStats counts rows (COUNT(*), COUNT(DISTINCT)), ours reads counters kept by triggers. Cleanup: the synchronous peer runs `cleanupExpiredTokensAsync`, the Promise peer `promises.cleanupExpiredTokens` (the same background batches), pg one statement of three DELETEs. fsync is off on this server: writes measure the server's work, not the disk's. Size: tables with their indexes and TOAST, after seeding.",
        "- Event loop of the awaited peers: the loop's busy time per call is recorded in every timed run; a 1 ms `monitorEventLoopDelay` timer watches one extra, untimed run of each op (on this kind of VM the timer itself slowed awaited calls by tens of µs, so the timed runs go without it); its worst lateness is reported beside the same timer's over an idle second in the same process.",
      ]
      : []),
    "",
    "## How to rerun",
    "",
    "```sh",
    "npm run bench                     # full run: 10k and 1M tokens, 5 runs per op; writes benchmark/RESULTS.md",
    "node benchmark/run.js --quick     # 10k tokens, 3 short runs; writes benchmark/RESULTS.quick.md",
    "node benchmark/run.js --sizes=100000 --peers=better-sqlite3,ours-sqlite --runs=3",
    "node benchmark/run.js --quick --peers=ours-postgres,ours-postgres-promise,pg   # PostgreSQL only",
    "node benchmark/run.js --help",
    "```",
    "",
    "The first run installs the benchmark's own dependencies (`npm ci` in `benchmark/`: pg, and better-sqlite3 and sqlite3 built from source; `benchmark/.npmrc` points node-gyp at the system Node headers). The PostgreSQL peers need PostgreSQL's server binaries (`initdb`, `pg_ctl`; Debian's `postgresql` package), found as the tests find them; without them they are skipped and the report says so. Run it on a quiet machine: the load averages above say how quiet this one was.",
    "",
  ];
  return lines.join("\n");
}

module.exports = { render, targets };
