"use strict";
// Automatic cleanup of a large backlog against a writer in another process (issue 15,
// defect 4). Builds `n` expired access tokens in one SQLite file, then starts two
// processes whose stores clean automatically (cleanupInterval 1 s) and a third that calls
// storeAccessToken in a loop (one call per millisecond or so) until the backlog is gone;
// reports the writer's latency (p50, p99, max) and how long the cleanup took, against a
// control run of the writer alone.
//   node benchmark/cleanup-vs-writers.js [--n=100000] [--cleaners=2] [--json]
const { fork, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { performance } = require("node:perf_hooks");
process.env.TOKEN_STORAGE_LOG ??= "silent";
const { TokenStorage } = require("..");

function flag(name, fallback) {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : fallback;
}

function quantile(sorted, q) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// ---- children ---------------------------------------------------------------------------
async function cleaner(file) {
  // Opened at once (the automatic cleanup starts with the first call), then idle: the
  // unreferenced timer alone does the work; the parent kills this process when done.
  const store = new TokenStorage({ storage: "db", path: file, cleanupInterval: 1 });
  store.open();
  process.send({ type: "ready" });
  setInterval(() => {}, 1 << 30); // keep the process alive
}

async function writer(file) {
  const store = new TokenStorage({ storage: "db", path: file, cleanupInterval: 0 });
  store.open();
  const times = [];
  const slow = [];
  const started = performance.now();
  let stop = false;
  process.on("message", (m) => {
    if (m.type === "stop") stop = true;
  });
  process.send({ type: "ready" });
  let i = 0;
  while (!stop) {
    const t0 = performance.now();
    store.storeAccessToken(`w-${process.pid}-${i++}`, null, "sk-bench", "writer", "c", ["a"], Date.now() + 3600_000);
    const took = performance.now() - t0;
    times.push(took);
    if (took > 20) slow.push([Math.round(t0 - started), Math.round(took)]);
    await new Promise((r) => setTimeout(r, 1));
  }
  store.close();
  process.send({ type: "times", times, slow });
}

// ---- parent -----------------------------------------------------------------------------
function start(role, file) {
  const child = fork(__filename, [`--role=${role}`, `--file=${file}`], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const messages = [];
  const waiting = [];
  child.on("message", (m) => {
    const w = waiting.findIndex((x) => x.type === m.type);
    if (w >= 0) waiting.splice(w, 1)[0].resolve(m);
    else messages.push(m);
  });
  child.next = (type) => {
    const i = messages.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(messages.splice(i, 1)[0]);
    return new Promise((resolve) => waiting.push({ type, resolve }));
  };
  return child;
}

function buildBacklog(file, n) {
  const store = new TokenStorage({ storage: "db", path: file, cleanupInterval: 0 });
  const past = Date.now() - 60_000;
  for (let done = 0; done < n; done += 50_000) {
    const records = [];
    for (let i = done; i < Math.min(n, done + 50_000); i++) {
      records.push({ accessToken: `old-${i}`, refreshToken: `old-r-${i}`, apiKey: "sk-bench", userId: `u${i % 1000}`, clientId: "c", scopes: ["a"], expiresAt: past });
    }
    store.storeAccessTokens(records);
  }
  store.close();
}

function summary(times) {
  const s = [...times].sort((a, b) => a - b);
  return { calls: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] };
}

/** Runs the writer alone for `ms`, or alongside `cleaners` cleaning processes until the backlog is gone. */
async function run({ n, cleaners, controlMs }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-cleanup-writers-"));
  const file = path.join(dir, "tokens.db");
  try {
    if (n > 0) buildBacklog(file, n);
    else new TokenStorage({ storage: "db", path: file, cleanupInterval: 0 }).close();
    const w = start("writer", file);
    await w.next("ready");
    const t0 = performance.now();
    const cs = [];
    for (let i = 0; i < cleaners; i++) cs.push(start("cleaner", file));
    await Promise.all(cs.map((c) => c.next("ready")));
    let cleanupMs = null;
    if (n > 0) {
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        // The writer's own rows stay; the backlog's are named old-*.
        if (backlogLeft(file) === 0) break;
      }
      cleanupMs = performance.now() - t0;
    } else {
      await new Promise((r) => setTimeout(r, controlMs));
    }
    w.send({ type: "stop" });
    const { times, slow } = await w.next("times");
    for (const c of [w, ...cs]) c.kill();
    await Promise.all([w, ...cs].map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.on("exit", r)) : null)));
    return { ...summary(times), cleanupMs, slow };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Backlog rows left, counted by python3's sqlite3 (getStats counts live tokens only). */
function backlogLeft(file) {
  return Number(execFileSync("python3", ["-c", "import sqlite3,sys;c=sqlite3.connect(sys.argv[1],timeout=30);print(c.execute(\"select count(*) from access_tokens where token like 'old-%'\").fetchone()[0])", file]).toString());
}

module.exports = { run };

if (require.main === module) {
  const role = process.argv.find((a) => a.startsWith("--role="))?.slice(7);
  const file = process.argv.find((a) => a.startsWith("--file="))?.slice(7);
  if (role === "cleaner") cleaner(file);
  else if (role === "writer") writer(file);
  else {
    (async () => {
      const n = flag("n", 100_000);
      const cleaners = flag("cleaners", 2);
      const fmt = (r) => `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms over ${r.calls} writes`;
      const control = await run({ n: 0, cleaners: 0, controlMs: 3000 });
      console.log(`control (writer alone, 3 s): ${fmt(control)}`);
      const r = await run({ n, cleaners });
      console.log(`${n} expired tokens, ${cleaners} cleaning processes: cleanup ${(r.cleanupMs / 1000).toFixed(1)} s; writer ${fmt(r)}`);
      if (r.slow.length > 0) console.log(`writes over 20 ms ([ms after the writer started, ms]): ${JSON.stringify(r.slow.slice(0, 20))}`);
      if (process.argv.includes("--json")) console.log(JSON.stringify({ control, cleanup: r }));
    })().catch((err) => {
      console.error(err);
      process.exit(1);
    });
  }
}
