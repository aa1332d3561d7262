"use strict";
// Renders RESULTS.md from the trials' numbers: one side-by-side table, issue 18's targets (lib/targets.js)
// judged against this run, the four-process PostgreSQL workload, and how the run was made.
const { OPS } = require("./workloads");
const { SHOWN, targets, fmt, maxOf, loopDelay, callBusy, sizeLabel } = require("./targets");

const MiB = 2 ** 20;

const ROWS = [
  ...Object.entries(OPS).map(([name, op]) => ({ label: `${op.label}, µs`, value: (r) => r.ops[name]?.us })),
  { label: "cleanup, 10% expired: total, ms", value: (r) => r.cleanup.totalMs },
  { label: "cleanup: longest event-loop block, ms", value: (r) => r.cleanup.longestBlockMs },
  { label: "longest event-loop busy time within one call, watched run of each op, µsᵇ", value: (r) => (callBusy(r) ? callBusy(r).ms * 1e3 : undefined) },
  { label: "longest event-loop delay, watched run of each op, msᵇ", value: (r) => loopDelay(r)?.ms },
  { label: "the same over 1 s of an idle loop in that process, msᵇ", value: (r) => r.idleLoopDelayMs },
  { label: "event loop busy per timed call, worst op, µsᵇ", value: (r) => maxOf(Object.values(r.ops).map((op) => op.loopBusyUs)) },
  { label: "seeding the store, s", value: (r) => r.seeding.ms / 1e3, note: (r) => (r.seeding.bulk ? "" : "ᵃ") },
  { label: "RSS above baseline after seeding, MiB", value: (r) => r.rss.aboveBaseline / MiB },
  { label: "of which mapped file pages (RssFile), MiB", value: (r) => (Number.isFinite(r.rss.fileAboveBaseline) ? r.rss.fileAboveBaseline / MiB : undefined) },
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

// How the paired checks were made, for the targets section.
function pairedMethod(meta) {
  const done = meta.pairs.filter((g) => g.pairs.length);
  const names = done.map((g) => `${meta.peers[g.ours].label} vs ${meta.peers[g.peer].label} at ${sizeLabel(g.size)} (${g.ops.map((op) => OPS[op].label).join(", ")})${g.oneProcess ? ", in one process" : ""}`);
  const together = done.some((g) => g.oneProcess)
    ? " Where seeding is long (at 1M: Redis 70–90 s a side, SQLite about 90 s, PostgreSQL 30–60 s), one process seeds both, each under its own key prefix or schema on the one server or in its own file, and alternates them round after round (ours first in odd rounds), each round timing the judged ops on both as a pair's processes do: each round gives a ratio, judged the same way. Ours' checkpoint thread may still be copying its WAL when the peer's round starts; it runs on the machine's other core."
    : "";
  const seconds = meta.pairs.reduce((sum, g) => sum + (g.seconds ?? 0), 0);
  return "The targets marked *paired check* are judged on it, not on the main trials:"
    + " one trial's absolute times on this shared machine move by ±30 % or more between processes minutes apart, so a ratio of two trials run minutes apart can come out on either side of its bound."
    + ` A paired check runs ours and the peer alternately in fresh processes, ${meta.opts.pairs} pairs (ours first in the 1st, 3rd, … pair, the peer first in the others, so a steady drift favours neither),`
    + ` each process short: it seeds the store, then calibrates, warms up and times only the judged ops (the median of ${done[0].runs} timed runs each, the same workloads and checks as the main trials; no contract pass, no cleanup),`
    + " so the two processes of a pair run seconds apart under about the same load. Each pair gives a ratio; the target is judged on their median, and every pair's ratio and their spread (lowest–highest) are shown beside it, with the main trials' ratio."
    + (done.some((g) => g.ours === "ours-memory-sealed") ? " The keys' cost on the memory store is paired the same way, the store with keys against itself without: each pair gives the time keys added to a get (µs), judged on the median." : "")
    + together
    + ` Paired here: ${names.join("; ")}; ${fmt(seconds / 60)} min in all.`;
}

function render(results, meta) {
  const { machine: m, versions: v, opts } = meta;
  const t = targets(results, meta.burst, meta.pairs);
  const pairedRun = meta.pairs?.some((g) => g.pairs.length);
  const verdict = (pass) => (pass === null ? "–" : pass === SHOWN ? "shown" : pass ? "**pass**" : "**MISS**");
  const judged = t.filter((r) => r.pass !== null && r.pass !== SHOWN);
  const shown = t.filter((r) => r.pass === SHOWN).length;
  const unmeasured = t.length - judged.length - shown;
  const lines = [
    "# Benchmark results",
    "",
    `Generated by \`${opts.full ? "npm run bench" : `node benchmark/run.js ${process.argv.slice(2).join(" ")}`.trim()}\` on ${meta.date.slice(0, 10)}`
      + ` (${meta.date.slice(11, 16)} UTC); the run took ${fmt(meta.durationS / 60)} min.`,
    opts.full ? "" : "\n**A partial run** (quick mode, a subset of sizes or competitors, or other runs or pairs): the committed RESULTS.md is a full run.\n",
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
    ...(meta.redis
      ? [meta.redis.version
        ? `- Redis: server ${meta.redis.version}, a throwaway local redis-server started for this run (scripts/redis.js: loopback TCP, nothing saved to disk), emptied before and after each trial; redis (node-redis) ${v.redis.version}`
        : `- Redis: not measured, ${meta.redis.missing}`]
      : []),
    "",
    "## Results",
    "",
    `Medians of ${opts.runs} timed runs of about ${opts.targetMs} ms each (after calibration and a warm-up), µs per call.`
      + " Columns: competitor and number of live tokens in the store.",
    "",
    ...(meta.chart ? [`![Ours vs each peer, per operation: how many times faster ours is, log scale](${meta.chart})`, ""] : []),
    resultsTable(results, meta),
    "",
    "ᵃ seeded through `storeAccessToken`, one call per token (the JS Map has no bulk load; the SQL peers load in one transaction, ours through `storeAccessTokens`, one transaction per 20,000 rows).",
    ...(results.some((r) => loopDelay(r))
      ? ["", "ᵇ awaited peers only (a synchronous peer holds the loop for each whole call). Longest busy time within one call: the time the loop was not waiting for I/O (`performance.eventLoopUtilization`) between a call and its answer awaited, the longest over every call of one more run of each op after its timed runs (not timed; the loop turns between two calls, as between a server's requests, and the answers are checked and let go every 128 calls, as a server keeps none: see PROFILE.md), the worst op's: all that call's stretches on the loop together (the call until it returns its Promise, the callback that settles it, the shaping of the answer, a garbage collection meanwhile), so at least its longest block; the machine's hiccups while the loop waits for I/O do not enter it, but a preemption of the thread while the call was busy does, and so does time the VM or interrupts took from its CPU (wall time; the targets show the thread's run-queue wait and its own CPU time in that call, from Linux's schedstat, beside it). The `/promises` event-loop target is judged on it: met when every call's is within 1 ms, missed when one call's is over 1 ms even less its wait for a CPU and the time taken from it (a call whose thread slept other than waiting for I/O, as for a lock, keeps all but its wait for a CPU; see PROFILE.md). Longest delay: how late a 1 ms timer (`perf_hooks.monitorEventLoopDelay`) fired at worst, less its 1 ms period, during one more run of each op after its timed runs, of the same size and not timed (the timer slows awaited calls on a VM, so it stays out of the timed runs); the worst op's. It sees blocks of about 1 ms and longer, and also the machine's own hiccups (stolen time on a VM, libuv's millisecond timers): the idle row is the same measure over a second in which the process did nothing, before the ops. Busy per call: the time the loop was not waiting for I/O (`performance.eventLoopUtilization`) during a timed run, over its calls (median of the runs; the worst op's; a code call is a store and a consume), which timer granularity does not blur."]
      : []),
    "",
    ...meta.skipped.map((s) => `- Not measured: ${s}`),
    ...meta.failures.map((f) => `- **FAILED**: ${f}`),
    "",
    ...concurrentSection(meta),
    "## Targets (issue 18), judged on this run",
    "",
    `${judged.filter((r) => r.pass).length} of ${judged.length} judged targets pass${unmeasured ? `; ${unmeasured} not measured or not decided in this run` : ""}${shown ? `; ${shown} rows show a cost without a bound (shown)` : ""}.`
      + " Each is a ratio between ours and a peer in this run (medians; absolute times on this shared machine are noisy): ours vs theirs, and how many times faster ours is (above 1×: ours is faster)."
      + " getStats O(1) is judged as its cost at 1M within 2× of its cost at 10k (a count over the rows grows 100×),"
      + " and after a burst of expiries ([stats-burst.js](stats-burst.js): n tokens of n/10 users all expiring within the first second of a 4.1 s bucket of SQLite's and PostgreSQL's counters, their worst case; cleanup off; getStats called again and again for the 5 s after the last expired)"
      + " as the median call of its slowest second within 2× of the same after a burst of 10 tokens."
      + (pairedRun ? ` ${pairedMethod(meta)}` : ""),
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
    "- The store is then seeded with N live tokens (random-looking 64-hex tokens, each with a refresh token; one user per ten tokens). Each op is calibrated, warmed up, then timed over several runs; its inputs are built before the clock starts, each timed run starts after a full garbage collection, and every result is checked with the clock stopped: a read-only op's (the gets, getStats) every 1,000 calls, when they are let go, as a server keeps no answer past its request; the others' after the run, as their checks write (get hit returns the stored apiKey, get miss returns null, a stored token and its refresh token read back, a consumed code comes back once and then null, getStats counts exactly N tokens and N/10 users).",
    "- Every peer but the Map module follows the contract, so a get returns a fresh object with `Date`s (the JS Map peer copies its record). The Map module is the original server's module as it behaves: it returns the stored record itself, which is faster and would let a caller change the store; it is there because issue 18 sets the memory store's targets against it.",
    "- get hit, uniform: each get reads a seeded token in a scattered order over the whole store. get hit, hot mix: 90 % of the gets read one of 2,000 hot tokens (the clients active right now), 10 % any seeded token, the choice hashed from the call's index so every peer reads the same sequence. get hit, recently read: every get reads one of the same 2,000 hot tokens, each read again every 2,000 calls (each read once before the op's calibration, and again during its calibration and warm-up before the timed runs).",
    "- store: a new token with a refresh token (tokens stored by a run are read back and deleted untimed, so the store keeps its size). code store+consume: storeAuthorizationCode plus consumeAuthorizationCode with an S256 verifier, per pair.",
    "- cleanup: N/10 expired tokens (with refresh tokens) are added, then one cleanup removes them; ours runs `cleanupExpiredTokensAsync` with its default batch size (it works in bounded batches and does not hold the event loop between them), the others `cleanupExpiredTokens`; at 1M the median of 3 such runs. The longest event-loop block is the longest gap seen by a setImmediate ticker during the cleanup (async sqlite3 works on libuv's thread pool, so it blocks little but takes long). Nothing else writes during the cleanup: a write from the main thread that meets a batch's lock waits for it (see PROFILE.md).",
    "- RSS: resident set size after seeding minus before, both after a forced GC (for PostgreSQL, the Node process only; the server's memory is not counted). Of it, the growth of mapped file pages (`RssFile` in /proc/self/status): ours' SQLite store reads its file through a memory map, so the file's pages it touched count in its RSS; they are the kernel's page cache of the file, shared, dropped under memory pressure, and the same pages the other SQLite peers read through `pread` without their RSS showing them. File size: the database plus its WAL right after seeding.",
    ...(pairedRun ? ["- Paired checks: after the trials, the judged speed targets are measured again with ours and the peer run alternately in fresh, short processes (seed, calibrate, time the judged ops only), pair after pair, and judged on the median of the per-pair ratios; the targets section says how, and shows every pair's ratio."] : []),
    ...(meta.postgres
      ? [
        "- PostgreSQL: every PostgreSQL trial gets a schema of its own on one local server (a Unix socket, so a round trip costs no network), dropped after it. Ours sends a call's statements in one round trip; so does pg, one named prepared statement per call (a store with its refresh token is one statement of CTEs; a code store+consume is an INSERT then a `DELETE … RETURNING`, two calls); its getStats counts rows (COUNT(*), COUNT(DISTINCT)), ours reads counters kept by triggers. Cleanup: the synchronous peer runs `cleanupExpiredTokensAsync`, the Promise peer `promises.cleanupExpiredTokens` (the same background batches), pg one statement of three DELETEs. fsync is off on this server: writes measure the server's work, not the disk's. Size: tables with their indexes and TOAST, after seeding.",
        "- Event loop of the awaited peers: the loop's busy time per call is recorded in every timed run; a 1 ms `monitorEventLoopDelay` timer watches one extra, untimed run of each op (on this kind of VM the timer itself slowed awaited calls by tens of µs, so the timed runs go without it); its worst lateness is reported beside the same timer's over an idle second in the same process. In that run each call's own busy time of the loop is recorded too (two `eventLoopUtilization` reads around the awaited call; the loop turns between two calls, and the answers are checked and dropped every 128 calls, so that a garbage collection in a call copies what a server would keep, not the whole batch's answers): its longest is what the `/promises` target is judged on, as it measures what our calls hold the loop, not the machine.",
      ]
      : []),
    ...(meta.redis
      ? ["- Redis: every Redis trial gets a key prefix of its own on one local server (loopback TCP) that holds nothing else. Ours runs each call as one command or one Lua script (one round trip, atomic on the server); the `redis` peer sends one command or one MULTI per call where the call allows it (a code store+consume is a MULTI then a GETDEL, two calls; a get of a refresh token, a revoke or a delete read before they write). Nothing is saved to disk on this server (no AOF, no snapshots): writes measure the server's work, not the disk's; ours logs at open that such a server can lose acknowledged tokens."]
      : []),
    "",
    "## How to rerun",
    "",
    "```sh",
    "npm run bench                     # full run: 10k and 1M tokens, 5 runs per op; writes benchmark/RESULTS.md",
    "node benchmark/run.js --quick     # 10k tokens, 3 short runs; writes benchmark/RESULTS.quick.md",
    "node benchmark/run.js --sizes=100000 --peers=better-sqlite3,ours-sqlite --runs=3",
    "node benchmark/run.js --quick --peers=ours-postgres,ours-postgres-promise,pg   # PostgreSQL only",
    "node benchmark/run.js --quick --peers=ours-redis,redis   # Redis only",
    "node benchmark/run.js --quick --pairs=0   # no paired checks: the targets judged on the trials alone",
    "node benchmark/run.js --help",
    "```",
    "",
    "The first run installs the benchmark's own dependencies (`npm ci` in `benchmark/`: pg, and better-sqlite3 and sqlite3 built from source; `benchmark/.npmrc` points node-gyp at the system Node headers). The PostgreSQL peers need PostgreSQL's server binaries (`initdb`, `pg_ctl`; Debian's `postgresql` package), the Redis peers `redis-server` (Debian's `redis-server` package), found as the tests find them; without them they are skipped and the report says so. Run it on a quiet machine: the load averages above say how quiet this one was.",
    "",
  ];
  return lines.join("\n");
}

module.exports = { render, targets };
